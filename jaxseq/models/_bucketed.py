"""Training with length-bucketed batches.

Local piece, kept small on purpose: :func:`jaxseq.train.fit` draws each epoch's
minibatches uniformly at random, so almost every batch of IMDb reviews holds one
review of the full length and the recurrence runs over all ``maxlen`` steps.
Here each epoch is shuffled, cut into pools of ``pool`` batches, each pool is
sorted by length and cut into batches, and the batch order is shuffled (the
"sortish" sampling of bucketed iterators). Each batch is then trimmed to the
smallest bucket length that holds its longest review
(:func:`jaxseq.train.bucket_by_length`: one compile per bucket), so the runner
does about as many steps as the reviews have tokens. The train and eval steps,
metric sums, metrics files and curves are :mod:`jaxseq.train`'s own; what this
adds is the batch order. It has no checkpoints: use ``fit`` for resumable runs.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from ..train import (
    FitResult,
    NonFiniteError,
    accumulate,
    bucket_by_length,
    init_state,
    make_eval_step,
    make_train_step,
    plot_history,
    summarize,
    write_metrics,
)

logger = logging.getLogger("jaxseq.models")


def bucket_lengths(maxlen: int, count: int = 4) -> tuple[int, ...]:
    """``count`` evenly spaced bucket lengths up to ``maxlen``."""
    return tuple(sorted({max(1, maxlen * k // count) for k in range(1, count + 1)}))


def sortish_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 32
) -> list[np.ndarray]:
    """One epoch's batches: indices of examples of similar lengths.

    A random permutation is cut into pools of ``pool * batch_size`` examples;
    each pool is sorted by length and cut into batches of ``batch_size``; the
    batches are shuffled. The incomplete last batch of each pool is dropped
    (as ``fit`` drops its last incomplete batch), at most ``batch_size - 1``
    examples per pool, different ones every epoch.
    """
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), pool * batch_size):
        chunk = order[start : start + pool * batch_size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        full = len(chunk) // batch_size * batch_size
        batches.extend(chunk[:full].reshape(-1, batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def num_batches(num_examples: int, batch_size: int, pool: int = 32) -> int:
    """Batches per epoch of :func:`sortish_batches`."""
    full, rest = divmod(num_examples, pool * batch_size)
    return full * pool + rest // batch_size


def _take(data: tuple[np.ndarray, ...], idx: np.ndarray) -> tuple[np.ndarray, ...]:
    return tuple(a[idx] for a in data)


def _evaluate(eval_step, params, data, collate, batch_size: int) -> dict[str, float]:
    order = np.argsort(data[1], kind="stable")
    totals: dict[str, float] = {}
    for start in range(0, len(order), batch_size):
        batch = collate(_take(data, order[start : start + batch_size]))
        totals = accumulate(totals, jax.device_get(eval_step(params, batch)))
    return summarize(totals)


def _epoch(step_fn, state, batches, data, collate, bar, epoch: int):
    """One epoch of updates; returns the state and the metric totals."""
    totals: dict[str, float] = {}
    for b, idx in enumerate(batches):
        state, metrics = step_fn(state, collate(_take(data, idx)))
        metrics = jax.device_get(metrics)
        if not metrics["finite"]:
            raise NonFiniteError(
                f"non-finite loss or gradient at step {int(state.step)} (epoch "
                f"{epoch + 1}, batch {b + 1}); the update was not applied. Lower the "
                "learning rate or clip gradients.",
                step=int(state.step),
                checkpoint_step=None,
            )
        totals = accumulate(totals, metrics)
        bar.update(1)
        loss = f"{summarize(totals)['loss']:.4g}"
        bar.set_postfix(epoch=epoch + 1, loss=loss, refresh=False)
    return state, totals


def bucketed_fit(
    loss_fn: Any,
    optimizer: Any,
    params: Any,
    train_data: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    key: jax.Array,
    batch_size: int,
    epochs: int,
    seed: int = 0,
    valid_data: tuple[np.ndarray, ...] | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    log_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> FitResult:
    """``fit`` for ``(ids [N, T], lengths [N], labels [N])`` with length-bucketed
    batches (see the module docstring); the validation accuracy is monitored for
    early stopping (``patience`` epochs without improvement) and the best
    parameters. Returns the same :class:`~jaxseq.train.FitResult` as ``fit``;
    each history record's ``seconds`` is the epoch's training time.
    """
    collate = bucket_by_length(bucket_lengths(train_data[0].shape[1]))
    step_fn, eval_step = make_train_step(loss_fn, optimizer), make_eval_step(loss_fn)
    state, rng = init_state(params, optimizer, key), np.random.default_rng(seed)
    per_epoch = num_batches(len(train_data[1]), batch_size)
    left_out = len(train_data[1]) - per_epoch * batch_size
    if left_out:
        logger.info(
            "length buckets: %d of %d training examples sit out each epoch "
            "(incomplete batches; different ones every epoch)",
            left_out,
            len(train_data[1]),
        )
    steps = epochs * per_epoch
    bar = tqdm(total=steps, desc="fit", unit="step", disable=not progress)
    history: list[dict[str, Any]] = []
    best, best_params, bad = None, None, 0
    for epoch in range(epochs):
        batches = sortish_batches(train_data[1], batch_size, rng)
        tic = time.perf_counter()
        state, totals = _epoch(step_fn, state, batches, train_data, collate, bar, epoch)
        record = {"epoch": epoch + 1, "step": int(state.step)}
        record.update({f"train_{k}": v for k, v in summarize(totals).items()})
        record["seconds"] = time.perf_counter() - tic
        if valid_data is not None and len(valid_data[0]):
            size = max(batch_size, 256)
            valid = _evaluate(eval_step, state.params, valid_data, collate, size)
            record.update({f"valid_{k}": v for k, v in valid.items()})
            if best is None or valid["accuracy"] > best[0]:
                best, bad = (valid["accuracy"], epoch + 1), 0
                best_params = jax.tree.map(lambda x: x.copy(), state.params)
            else:
                bad += 1
        history.append(record)
        if log_dir is not None:
            write_metrics(history, log_dir)
            plot_history(history, os.path.join(log_dir, "curves.png"))
        if patience is not None and bad >= patience:
            break
    bar.close()
    return FitResult(
        params=best_params
        if restore_best and best_params is not None
        else state.params,
        state=state,
        history=history,
        best_epoch=None if best is None else best[1],
        stopped_early=patience is not None and bad >= patience,
    )
