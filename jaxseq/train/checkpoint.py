"""Checkpoints of a training run with Orbax: atomic, resumable.

A checkpoint holds the whole :class:`~jaxseq.train.TrainState` (parameters,
optimiser state, step and PRNG key), the best parameters so far when early
stopping is on, and a JSON record (``meta``) with the data-order position (epoch
and batch index), the early-stopping bookkeeping and the metrics history.

Atomicity is Orbax's: each step is written into a temporary directory
(``<step>.orbax-checkpoint-tmp-*``) and renamed to ``<step>`` only once every file
is on disk (or marked with a commit file on object stores). A process that dies
while writing leaves a temporary directory that is never listed or restored, so
the previous checkpoint stays the latest good one.

PRNG keys are stored as their raw ``key_data`` and re-wrapped with the
implementation of the template's key on restore.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp

from .step import TrainState


class Restored(NamedTuple):
    """What :func:`restore_checkpoint` returns."""

    state: TrainState
    meta: dict[str, Any]
    best_params: Any | None


def checkpoint_manager(
    directory: str | os.PathLike,
    *,
    max_to_keep: int | None = 2,
    async_save: bool = True,
) -> ocp.CheckpointManager:
    """An ``orbax.checkpoint.CheckpointManager`` for :func:`save_checkpoint`.

    Args:
        directory: where step directories go (created if missing).
        max_to_keep: keep at most this many checkpoints (oldest deleted after a
            newer one is committed); ``None`` keeps all.
        async_save: write in a background thread (device-to-host copies happen
            before ``save`` returns, so the next, donating, train step cannot
            change what is written). Call ``manager.wait_until_finished()``
            before reading a checkpoint back.
    """
    if max_to_keep is not None and (
        not isinstance(max_to_keep, int) or max_to_keep < 1
    ):
        raise ValueError(
            f"max_to_keep: expected a positive int or None, got {max_to_keep!r}."
        )
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        enable_async_checkpointing=async_save,
        create=True,
    )
    return ocp.CheckpointManager(os.path.abspath(os.fspath(directory)), options=options)


def _storable(state: TrainState) -> TrainState:
    return state._replace(key=jax.random.key_data(state.key))


def save_checkpoint(
    manager: ocp.CheckpointManager,
    state: TrainState,
    meta: dict[str, Any],
    *,
    best_params: Any | None = None,
) -> None:
    """Save ``state`` (and ``best_params``) under step ``int(state.step)``.

    Args:
        manager: from :func:`checkpoint_manager`.
        state: the train state.
        meta: JSON-serialisable record saved alongside.
        best_params: optional parameters of the best epoch so far.
    """
    step = int(state.step)
    items = {
        "state": ocp.args.StandardSave(_storable(state)),
        "meta": ocp.args.JsonSave({**meta, "has_best": best_params is not None}),
    }
    if best_params is not None:
        items["best"] = ocp.args.StandardSave(best_params)
    manager.save(step, args=ocp.args.Composite(**items), force=True)


def _abstract(tree: Any) -> Any:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def restore_checkpoint(
    manager: ocp.CheckpointManager, like: TrainState, *, step: int | None = None
) -> Restored:
    """Restore a checkpoint into the structure, dtypes and shardings of ``like``.

    Args:
        manager: from :func:`checkpoint_manager`.
        like: a train state of the same structure (e.g. a fresh
            :func:`~jaxseq.train.init_state`); its arrays' shardings are used.
        step: which step; the latest committed one by default.

    Returns:
        :class:`Restored` ``(state, meta, best_params)``.

    Raises:
        FileNotFoundError: if there is no committed checkpoint.
    """
    if step is None:
        step = manager.latest_step()
    if step is None:
        raise FileNotFoundError(
            f"directory: expected a committed checkpoint in {manager.directory}, "
            "found none."
        )
    meta = manager.restore(
        step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
    ).meta
    items = {
        "state": ocp.args.StandardRestore(_abstract(_storable(like))),
        "meta": ocp.args.JsonRestore(),
    }
    if meta.get("has_best"):
        items["best"] = ocp.args.StandardRestore(_abstract(like.params))
    out = manager.restore(step, args=ocp.args.Composite(**items))
    impl = jax.random.key_impl(like.key)
    state = out.state._replace(key=jax.random.wrap_key_data(out.state.key, impl=impl))
    return Restored(state, dict(out.meta), out.best if meta.get("has_best") else None)


def latest_step(directory: str | os.PathLike) -> int | None:
    """The latest committed step in ``directory`` (``None`` if there is none)."""
    path = os.path.abspath(os.fspath(directory))
    if not os.path.isdir(path):
        return None
    manager = ocp.CheckpointManager(
        path, options=ocp.CheckpointManagerOptions(create=False)
    )
    try:
        return manager.latest_step()
    finally:
        manager.close()
