"""Checkpoints of a training run with Orbax: atomic, verified, resumable.

A checkpoint holds the whole :class:`~jaxseq.train.TrainState` (parameters,
optimiser state, step and PRNG key), the best parameters so far when early
stopping is on, and a JSON record (``meta``) with the data-order position (epoch
and batch index), the early-stopping bookkeeping and the metrics history, and
optionally an ``extra`` pytree of arrays a training loop keeps besides the train
state (e.g. the streams' carry of stateful truncated BPTT, :mod:`jaxseq.lm`),
verified and restored like the state.

Atomicity is Orbax's: each step is written into a temporary directory
(``<step>.orbax-checkpoint-tmp-*``) and renamed to ``<step>`` only once every file
is on disk (or marked with a commit file on object stores). A process that dies
while writing leaves a temporary directory that is never listed or restored, so
the previous checkpoint stays the latest good one.

Integrity is jaxseq's: Orbax restores an array file with a flipped bit or
overwritten bytes without complaint, so :func:`save_checkpoint` records in the
JSON record the sha256 of every saved array (of its dtype, shape and bytes) and
a sha256 of the record itself; the record is one item of the same Orbax save,
so it is committed atomically with the arrays. :func:`restore_checkpoint`
restores a step, recomputes every checksum and treats a mismatch, or any error
while reading, as damage: it falls back to the newest intact step (with a
:class:`CheckpointWarning` naming both steps) or raises
:class:`CheckpointCorruptError` naming the directory. What is verified is what
is restored: every array and the record.

PRNG keys are stored as their raw ``key_data`` and re-wrapped with the
implementation of the template's key on restore.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import orbax.checkpoint as ocp

from . import _integrity
from ._integrity import Damaged as _Damaged
from .step import TrainState


class CheckpointError(Exception):
    """A checkpoint directory that cannot be used; the message is one line."""


class CheckpointCorruptError(CheckpointError):
    """No intact checkpoint (checksums do not match, or the files do not read)."""


class CheckpointMismatchError(CheckpointError, ValueError):
    """The checkpoint belongs to another run (other shapes, optimiser, data...)."""


class CheckpointWriteError(CheckpointError, OSError):
    """A checkpoint directory that cannot be written."""


class CheckpointWarning(UserWarning):
    """A damaged checkpoint was skipped in favour of an older, intact one."""


class Restored(NamedTuple):
    """What :func:`restore_checkpoint` returns: the verified state, its record,
    the best parameters (or ``None``), the newer steps that were skipped as
    damaged and the ``extra`` pytree (``None`` unless asked for)."""

    state: TrainState
    meta: dict[str, Any]
    best_params: Any | None
    skipped: tuple[int, ...] = ()
    extra: Any | None = None


def _one_line(err: BaseException, width: int = 300) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= width else text[: width - 3] + "..."


def _local(directory: str | os.PathLike) -> bool:
    return "://" not in os.fspath(directory)


def check_writable(directory: str | os.PathLike) -> str:
    """Create ``directory`` if needed and check that a file can be written in it
    (a real write, since permission bits do not stop root); returns its
    absolute path. Raises :class:`CheckpointWriteError` naming it otherwise."""
    path = os.fspath(directory)
    if not _local(path):
        return path
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise CheckpointWriteError(
            f"checkpoint_dir: expected a directory, got the file {path}."
        )
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".jaxseq-write-test-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise CheckpointWriteError(
            f"checkpoint_dir: expected a writable directory, got {path} "
            f"({err.strerror or _one_line(err)})."
        ) from None
    return path


def checkpoint_manager(
    directory: str | os.PathLike,
    *,
    max_to_keep: int | None = 2,
    async_save: bool = True,
) -> ocp.CheckpointManager:
    """An ``orbax.checkpoint.CheckpointManager`` for :func:`save_checkpoint`.

    Args:
        directory: where step directories go (created if missing; it must be
            writable: checked with a real write).
        max_to_keep: keep at most this many checkpoints (oldest deleted after a
            newer one is committed); ``None`` keeps all.
        async_save: write in a background thread (device-to-host copies happen
            before ``save`` returns, so the next, donating, train step cannot
            change what is written). Call ``manager.wait_until_finished()``
            before reading a checkpoint back. The step's directories are created
            in the calling thread either way, so that a directory that has
            become unwritable fails there (Orbax's background threads otherwise
            wait for it for minutes after the error, and the process does not
            exit).

    Raises:
        CheckpointWriteError: if ``directory`` is a file or cannot be written.
    """
    if max_to_keep is not None and (
        isinstance(max_to_keep, bool)
        or not isinstance(max_to_keep, int)
        or max_to_keep < 1
    ):
        raise ValueError(
            f"max_to_keep: expected a positive int or None, got {max_to_keep!r}."
        )
    path = check_writable(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        enable_async_checkpointing=async_save,
        create=True,
        async_options=ocp.AsyncOptions(create_directories_asynchronously=False),
    )
    return ocp.CheckpointManager(path, options=options)


def finish(manager: ocp.CheckpointManager, *, close: bool = True) -> None:
    """Wait for pending writes, then (``close``) release the manager's threads
    even when a write failed; a failed write raises
    :class:`CheckpointWriteError`."""
    try:
        manager.wait_until_finished()
    except Exception as err:
        raise CheckpointWriteError(
            f"checkpoint_dir: could not write a checkpoint to {manager.directory}: "
            f"{_one_line(err)}"
        ) from err
    finally:
        if close:
            try:
                manager.close()
            except Exception:  # already failed: the first error is the one to see
                pass


def _storable(state: TrainState) -> TrainState:
    return state._replace(key=jax.random.key_data(state.key))


def _check_like(
    arrays: dict[str, Any], like: TrainState, where: str, extra_like: Any = None
) -> None:
    items = (("state", _storable(like)), ("best", like.params), ("extra", extra_like))
    for item, tree in items:
        if item not in arrays or (item == "extra" and extra_like is None):
            continue
        stored, now = _integrity.layout(arrays[item]), _integrity.tree_layout(tree)
        if stored != now:
            diff = next(
                (
                    f"{a[0]}: {a[1]} {a[2]} there, {b[1]} {b[2]} in like"
                    for a, b in zip(stored, now, strict=False)
                    if a != b
                ),
                f": {len(stored)} arrays there, {len(now)} in like",
            )
            raise CheckpointMismatchError(
                f"like: expected the arrays of the checkpoint {where}, got others "
                f"({item}{diff})."
            )


# ------------------------------------------------------------------ save/restore
def save_checkpoint(
    manager: ocp.CheckpointManager,
    state: TrainState,
    meta: dict[str, Any],
    *,
    best_params: Any | None = None,
    extra: Any | None = None,
) -> None:
    """Save ``state`` (and ``best_params``, ``extra``) under step
    ``int(state.step)``, with the sha256 of every array in the record.

    Args:
        manager: from :func:`checkpoint_manager`.
        state: the train state.
        meta: JSON-serialisable record saved alongside (keys starting with
            ``_`` are reserved).
        best_params: optional parameters of the best epoch so far.
        extra: optional pytree of arrays kept besides the state (restore it
            with ``restore_checkpoint(..., extra_like=...)``).

    Raises:
        CheckpointWriteError: if the write fails (now, or an earlier
            asynchronous one).
    """
    step = int(state.step)
    storable = _storable(state)
    arrays = {"state": _integrity.digests(storable)}
    if best_params is not None:
        arrays["best"] = _integrity.digests(best_params)
    if extra is not None:
        arrays["extra"] = _integrity.digests(extra)
    flags = {"has_best": best_params is not None, "has_extra": extra is not None}
    record = _integrity.seal({**meta, **flags}, arrays)
    items = {
        "state": ocp.args.StandardSave(storable),
        "meta": ocp.args.JsonSave(record),
    }
    if best_params is not None:
        items["best"] = ocp.args.StandardSave(best_params)
    if extra is not None:
        items["extra"] = ocp.args.StandardSave(extra)
    try:
        manager.save(step, args=ocp.args.Composite(**items), force=True)
    except Exception as err:
        raise CheckpointWriteError(
            f"checkpoint_dir: could not write the checkpoint of step {step} to "
            f"{manager.directory}: {_one_line(err)}"
        ) from err


def _abstract(tree: Any) -> Any:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def _restore_step(
    manager, like: TrainState, step: int, check, extra_like: Any = None
) -> Restored:
    """Restore and verify one step; ``_Damaged`` if it is not intact."""
    where = f"of step {step} in {manager.directory}"
    try:
        with _integrity.quiet_reads():
            record = manager.restore(
                step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())
            ).meta
    except Exception as err:
        raise _Damaged(f"its record (meta) does not read: {_one_line(err)}") from err
    meta, arrays = _integrity.unseal(record)
    if check is not None:
        check(meta)
    if extra_like is not None and not meta.get("has_extra"):
        raise CheckpointMismatchError(
            f"extra_like: expected a checkpoint with extra arrays, got the "
            f"checkpoint {where} without them."
        )
    _check_like(arrays, like, where, extra_like)
    items = {"state": ocp.args.StandardRestore(_abstract(_storable(like)))}
    if meta.get("has_best"):
        items["best"] = ocp.args.StandardRestore(_abstract(like.params))
    if extra_like is not None:
        items["extra"] = ocp.args.StandardRestore(_abstract(extra_like))
    try:
        with _integrity.quiet_reads():
            out = manager.restore(step, args=ocp.args.Composite(**items))
    except Exception as err:
        raise _Damaged(f"its arrays do not read: {_one_line(err, 160)}") from err
    _integrity.verify("state", arrays["state"], out.state)
    best = out.best if meta.get("has_best") else None
    if best is not None:
        _integrity.verify("best", arrays["best"], best)
    extra = out.extra if extra_like is not None else None
    if extra is not None:
        _integrity.verify("extra", arrays["extra"], extra)
    impl = jax.random.key_impl(like.key)
    state = out.state._replace(key=jax.random.wrap_key_data(out.state.key, impl=impl))
    return Restored(state, meta, best, extra=extra)


def restore_checkpoint(
    manager: ocp.CheckpointManager,
    like: TrainState,
    *,
    step: int | None = None,
    check: Callable[[dict[str, Any]], None] | None = None,
    extra_like: Any = None,
) -> Restored:
    """Restore a verified checkpoint into the structure, dtypes and shardings of
    ``like``.

    Every array and the record are checked against the checksums saved with
    them. Without ``step``, a damaged newest checkpoint is skipped for the
    newest intact one, with a :class:`CheckpointWarning` naming both steps.

    Args:
        manager: from :func:`checkpoint_manager`.
        like: a train state of the same structure (e.g. a fresh
            :func:`~jaxseq.train.init_state`); its arrays' shardings are used.
        step: which step (it must be intact); the newest intact one by default.
        check: called with each candidate's record (``meta``) before its
            arrays are read; raise to refuse it (``fit`` compares its
            fingerprint there).
        extra_like: a pytree like the ``extra`` arrays saved with the state
            (``None``: they are not read).

    Returns:
        :class:`Restored` ``(state, meta, best_params, skipped, extra)``.

    Raises:
        FileNotFoundError: if there is no committed checkpoint.
        CheckpointCorruptError: if no checkpoint (or not ``step``) is intact.
        CheckpointMismatchError: if the arrays differ from ``like``'s in
            structure, shapes or dtypes.
    """
    directory = manager.directory
    steps = sorted(manager.all_steps(), reverse=True) if step is None else [step]
    if not steps:
        raise FileNotFoundError(
            f"checkpoint_dir: expected a committed checkpoint in {directory}, "
            "found none."
        )
    damaged: list[str] = []
    for s in steps:
        try:
            restored = _restore_step(manager, like, s, check, extra_like)
        except _Damaged as err:
            damaged.append(f"step {s}: {err}")
            continue
        if damaged:
            warnings.warn(
                f"checkpoint_dir: skipped the damaged checkpoint(s) in {directory} "
                f"({'; '.join(damaged)}); restored step {s}, the newest intact one.",
                CheckpointWarning,
                stacklevel=2,
            )
        return restored._replace(skipped=tuple(steps[: len(damaged)]))
    raise CheckpointCorruptError(
        f"checkpoint_dir: no intact checkpoint in {directory} ({'; '.join(damaged)})."
        " Delete the directory or pass another checkpoint_dir to start afresh."
    )


def set_aside(manager: ocp.CheckpointManager, steps: tuple[int, ...]) -> list[str]:
    """Rename damaged step directories to ``<step>.damaged`` (``.damaged-2``,
    ... if taken), which Orbax no longer lists, so that a resumed run can write
    those steps again; returns the new paths."""
    moved = []
    for step in steps:
        src = os.path.join(os.fspath(manager.directory), str(step))
        dst, n = f"{src}.damaged", 1
        while os.path.exists(dst):
            n += 1
            dst = f"{src}.damaged-{n}"
        try:
            os.rename(src, dst)
        except FileNotFoundError:  # another process of the run moved it first
            continue
        moved.append(dst)
    manager.reload()
    return moved


def latest_step(directory: str | os.PathLike) -> int | None:
    """The latest committed step in ``directory`` (``None`` if there is none).

    Committed is not verified: :func:`restore_checkpoint` may fall back to an
    older step if this one is damaged.
    """
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
