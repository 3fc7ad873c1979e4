"""``fit``: epochs of minibatch training with validation, early stopping,
checkpoints, metrics files and a progress bar.

Progress comes in two stages: "compiling" (the first step of a call traces
and compiles the jitted update; its time is ``FitResult.compile_seconds``, and
no ETA is shown until it is done), then the steps, with the running loss and an
ETA from compiled steps only. By default the bar shows only where a person
watches (stderr a terminal, ``CI`` unset: :func:`jaxseq.cli.watched`);
elsewhere the same news comes as plain lines on stderr, one per epoch.

Data are pytrees (typically tuples) of NumPy arrays sharing a leading example
axis, e.g. ``(ids [N, T], lengths [N], labels [N])``. Each epoch visits a fresh
permutation of the examples, drawn from ``numpy.random.default_rng((seed,
epoch))``: minibatches are without replacement, the last incomplete batch is
dropped (every batch has the same shape), and the order of any epoch can be
recomputed, which is how a resumed run continues mid-epoch at the same batch.
A ``batch_order`` (:data:`~jaxseq.train.batching.BatchOrder`, e.g.
:func:`~jaxseq.train.sortish_order`) replaces that order by one of its own,
under the same rule: a function of the epoch.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
from tqdm import tqdm

from . import _fingerprint, parallel
from ._resume import RunCheckpoints
from .batching import BatchOrder, Collate, epoch_order, num_examples, take
from .config import KEYWORDS, Checkpointing, EarlyStopping, Logging, from_keywords
from .history import plot_history, write_metrics
from .step import (
    LossFn,
    TrainState,
    accumulate,
    check_key,
    init_state,
    make_eval_step,
    make_train_step,
    summarize,
)

_PLOT_EVERY_S = 30.0  # curves.png is redrawn at most this often during a fit


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
        params: the best epoch's parameters when validation data were given (and
            ``restore_best``), else the final parameters.
        state: the final :class:`~jaxseq.train.TrainState` (last step's params).
        history: one dict per epoch: ``epoch`` (1-based), ``step``,
            ``train_<metric>``, ``valid_<metric>``, ``seconds`` (the epoch's
            training time, validation excluded) and ``compile_seconds`` (the
            part of it spent in a call's first step, compiling; 0.0 in epochs
            where no call started).
        best_epoch: the 1-based epoch ``params`` come from (``None`` without
            validation).
        stopped_early: whether early stopping ended the run (this call or the
            checkpointed run it resumed).
        resumed_from: the verified checkpoint step this call continued from
            (``None``: it started afresh); ``state.step - resumed_from`` steps
            were trained by this call.
        compile_seconds: wall time of this call's first step: tracing,
            compiling and running the jitted update once (``None``: no step
            ran). Epoch 1's ``seconds`` include it, and any compile of other
            batch shapes (buckets) and of the validation step.
    """

    params: Any
    state: TrainState
    history: list[dict[str, Any]]
    best_epoch: int | None
    stopped_early: bool
    resumed_from: int | None = None
    compile_seconds: float | None = None


class NonFiniteError(FloatingPointError):
    """A non-finite loss or gradient stopped :func:`fit`.

    Attributes:
        step: the 0-based update that produced it (it was not applied).
        checkpoint_step: the step of the newest checkpoint that was read back
            and verified against its checksums, or ``None``.
    """

    def __init__(self, message: str, step: int, checkpoint_step: int | None):
        super().__init__(message)
        self.step = step
        self.checkpoint_step = checkpoint_step


class _Run:
    """Host bookkeeping of a run (everything in a checkpoint's ``meta``)."""

    def __init__(self):
        self.history: list[dict[str, Any]] = []
        self.totals: dict[str, float] = {}
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.stopped = False
        self.best_params: Any = None

    def meta(self, step: int, steps_per_epoch: int) -> dict[str, Any]:
        return {
            "step": step,
            "epoch": step // steps_per_epoch,
            "batch": step % steps_per_epoch,
            "history": self.history,
            "totals": self.totals,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
        }

    def load(self, meta: dict[str, Any], best_params: Any) -> None:
        self.history = list(meta["history"])
        self.totals = dict(meta["totals"])
        self.best, self.best_epoch = meta["best"], meta["best_epoch"]
        self.bad_epochs, self.stopped = meta["bad_epochs"], meta["stopped"]
        self.best_params = best_params

    def improved(self, value: float, mode: str, min_delta: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if mode == "min":
            return value < self.best - min_delta
        return value > self.best + min_delta


def _check_fit_args(batch_size, epochs, n):
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}.")
    if batch_size > n:
        raise ValueError(
            f"batch_size: expected at most the number of training examples ({n}), "
            f"got {batch_size}."
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs: expected a positive int, got {epochs!r}.")


def _check_config(name: str, value: Any, kind: type) -> None:
    if value is not None and not isinstance(value, kind):
        raise TypeError(
            f"{name}: expected a jaxseq.train.{kind.__name__} or None, got "
            f"{type(value).__name__}."
        )


class _Setup(NamedTuple):
    """The options of one :func:`fit` call, after checking."""

    batch_size: int
    epochs: int
    seed: int
    eval_batch_size: int | None
    collate: Collate | None
    batch_order: BatchOrder | None
    mesh: jax.sharding.Mesh | None
    stop: EarlyStopping
    ckpt: Checkpointing | None
    log: Logging


def _watched() -> bool:
    from ..cli import watched

    return watched()


def _epoch_line(record: dict[str, Any]) -> str:
    skip = ("epoch", "step", "seconds", "compile_seconds")
    values = " ".join(f"{k}={v:.4g}" for k, v in record.items() if k not in skip)
    return f"epoch {record['epoch']} (step {record['step']}): {values}"


class _Fit:
    """One call of :func:`fit`: the compiled steps, the data and the bookkeeping."""

    def __init__(self, loss_fn, optimizer, train_data, valid_data, setup: _Setup):
        self.o = o = setup
        self.train_data, self.valid_data = train_data, valid_data
        self.n = num_examples("train_data", train_data)
        self.spe = self.n // o.batch_size
        if o.batch_order is not None:
            self.spe = len(o.batch_order(0))
            if self.spe == 0:
                raise ValueError("batch_order: expected at least one batch, got none.")
        self.mesh = o.mesh
        self.collate = o.collate or (lambda batch: batch)
        shard = {}
        if self.mesh is not None:
            self.rows = parallel.process_rows(o.batch_size)
            shard = {
                "state_sharding": parallel.replicated(self.mesh),
                "batch_sharding": parallel.batch_sharded(self.mesh),
            }
        self.train_step = make_train_step(loss_fn, optimizer, **shard)
        self.eval_step = make_eval_step(loss_fn)
        self.run = _Run()
        self.ckpt: RunCheckpoints | None = None
        if o.ckpt is not None:  # checks it is writable
            self.ckpt = RunCheckpoints(
                o.ckpt.directory, max_to_keep=o.ckpt.max_to_keep, optimizer=optimizer
            )
        self.resumed_from: int | None = None
        self.compile_seconds: float | None = None
        self.epoch_compile = 0.0  # compile seconds inside the current epoch
        self.primary = parallel.is_primary()
        progress = o.log.progress
        # the bar where a person watches; plain lines elsewhere; nothing if False
        self.show_bar = self.primary and (_watched() if progress is None else progress)
        self.show_lines = self.primary and progress is not False and not self.show_bar

    def options(self) -> dict[str, Any]:
        """The fit options that change the result (``epochs`` may grow)."""
        o = self.o
        return {
            "num_examples": self.n,
            "batch_size": o.batch_size,
            "seed": o.seed,
            "batches_per_epoch": None if o.batch_order is None else self.spe,
            "monitor": o.stop.monitor,
            "mode": o.stop.mode,
            "patience": o.stop.patience,
            "min_delta": o.stop.min_delta,
        }

    # -- data ---------------------------------------------------------------
    def batches(self, epoch: int) -> Any:
        """The index arrays of ``epoch``'s minibatches."""
        size = self.o.batch_size
        if self.o.batch_order is None:
            order = epoch_order(self.o.seed, epoch, self.n)
            return [order[b * size : (b + 1) * size] for b in range(self.spe)]
        batches = self.o.batch_order(epoch)
        shapes = {np.shape(b) for b in batches}
        if len(batches) != self.spe or (batches and shapes != {(size,)}):
            raise ValueError(
                f"batch_order: expected {self.spe} batches (as in epoch 1) of "
                f"{size} indices each for epoch {epoch + 1}, got {len(batches)} "
                f"of shapes {sorted(shapes)}."
            )
        return batches

    def _batch(self, idx: np.ndarray) -> Any:
        batch = self.collate(take(self.train_data, idx))
        if self.mesh is None:
            return batch
        return parallel.shard_batch(take(batch, self.rows), self.mesh)

    def evaluate(self, params: Any) -> dict[str, float]:
        n_val = num_examples("valid_data", self.valid_data)
        size = self.o.eval_batch_size or self.o.batch_size
        totals: dict[str, float] = {}
        for start in range(0, n_val, size):
            idx = np.arange(start, min(start + size, n_val))
            batch = self.collate(take(self.valid_data, idx))
            if self.mesh is not None:
                if len(idx) % jax.device_count() == 0:
                    rows = parallel.process_rows(len(idx))
                    batch = parallel.shard_batch(take(batch, rows), self.mesh)
                else:  # a short last batch: every device evaluates it whole
                    batch = parallel.replicate(batch, self.mesh)
            totals = accumulate(totals, jax.device_get(self.eval_step(params, batch)))
        return summarize(totals)

    # -- checkpoints ----------------------------------------------------------
    def restore(self, state: TrainState) -> TrainState:
        if self.ckpt is None:
            return state
        restored = self.ckpt.restore(state, resume=self.o.ckpt.resume)
        if restored is None:
            return state
        self.run.load(restored.meta, restored.best_params)
        self.resumed_from = int(restored.state.step)
        self.say(self._resumed_line(self.resumed_from))
        return restored.state

    def _resumed_line(self, step: int) -> str:
        line = (
            f"fit: resuming from the verified checkpoint of step {step} in "
            f"{self.ckpt.directory} (epoch {step // self.spe + 1}, batch "
            f"{step % self.spe + 1} of {self.spe})"
        )
        if self.run.stopped:
            return f"{line}; early stopping had ended this run, nothing to train"
        if step >= self.o.epochs * self.spe:
            return f"{line}; the run had finished all {self.o.epochs} epochs"
        return line

    def say(self, line: str) -> None:
        """A status line on stderr (through tqdm, so that a bar stays intact)."""
        if self.show_bar or self.show_lines:
            tqdm.write(line, file=sys.stderr)

    def save(self, state: TrainState) -> None:
        if self.ckpt is not None:
            meta = self.run.meta(int(state.step), self.spe)
            self.ckpt.save(state, meta, self.run.best_params)

    # -- training -------------------------------------------------------------
    def fail(self, state: TrainState, metrics: dict, epoch: int, batch: int):
        step = int(state.step)
        latest = None if self.ckpt is None else self.ckpt.verified_step(state)
        count = float(metrics["count"]) or 1.0
        ckpt = self.o.ckpt
        where = (
            f"the last good checkpoint is step {latest} in {ckpt.directory}, read "
            "back and verified (fit(..., checkpoint=Checkpointing(..., "
            "resume=True)) continues from it)"
            if latest is not None and ckpt is not None
            else "no checkpoint was written (pass checkpoint=Checkpointing(dir) to "
            "keep one)"
            if ckpt is None
            else f"no intact checkpoint is left in {ckpt.directory}"
        )
        raise NonFiniteError(
            f"non-finite loss or gradient at step {step} (epoch {epoch + 1}, batch "
            f"{batch + 1} of {self.spe}): loss={float(metrics['loss']) / count!r}, "
            f"grad_norm={float(metrics['grad_norm'])!r}. The update was not applied; "
            f"{where}. Lower the learning rate, clip gradients (clip_norm=) or check "
            "the data of that batch.",
            step=step,
            checkpoint_step=latest,
        )

    def end_epoch(self, state: TrainState, epoch: int, seconds: float) -> None:
        run, o, stop = self.run, self.o, self.o.stop
        record: dict[str, Any] = {"epoch": epoch + 1, "step": int(state.step)}
        record.update({f"train_{k}": v for k, v in summarize(run.totals).items()})
        run.totals = {}
        if self.valid_data is not None:
            valid = self.evaluate(state.params)
            record.update({f"valid_{k}": v for k, v in valid.items()})
            if stop.monitor not in valid:
                raise ValueError(
                    f"EarlyStopping.monitor: expected one of the validation metrics "
                    f"{sorted(valid)}, got {stop.monitor!r}."
                )
            if run.improved(valid[stop.monitor], stop.mode, stop.min_delta):
                run.best = valid[stop.monitor]
                run.best_epoch, run.bad_epochs = epoch + 1, 0
                run.best_params = jax.tree.map(lambda x: x.copy(), state.params)
            else:
                run.bad_epochs += 1
                if stop.patience is not None and run.bad_epochs >= stop.patience:
                    run.stopped = True
        record["seconds"] = seconds
        record["compile_seconds"], self.epoch_compile = self.epoch_compile, 0.0
        run.history.append(record)
        if self.primary and o.log.directory is not None:
            write_metrics(run.history, o.log.directory)
            # the PNG costs ~1 s of matplotlib: redrawn at most every
            # _PLOT_EVERY_S seconds, and always after the last epoch
            last = run.stopped or epoch + 1 >= o.epochs
            now = time.perf_counter()
            if not last and now - getattr(self, "_plotted_at", -1e9) < _PLOT_EVERY_S:
                return
            self._plotted_at = now
            best = run.best_epoch if stop.restore_best else None
            plot_history(
                run.history,
                os.path.join(o.log.directory, "curves.png"),
                title=o.log.title,
                best_epoch=best,
                monitor=stop.monitor,
            )

    def bar(self, step: int, compiling: bool) -> tqdm:
        """The progress bar from ``step`` on; while ``compiling``, labelled so
        and without rate or ETA (the first step's time is compile time)."""
        total = self.o.epochs * self.spe
        return tqdm(
            total=total,
            initial=min(step, total),
            unit="step",
            desc="compiling" if compiling else "fit",
            bar_format="{desc}: {n_fmt}/{total_fmt} steps [{elapsed}]"
            if compiling
            else None,
            leave=not compiling,
            file=sys.stderr,
            disable=not self.show_bar,
        )

    def first_step(self, state: TrainState, idx: np.ndarray, bar: tqdm) -> Any:
        """The call's first step, timed as :attr:`compile_seconds` and announced
        as a stage of its own: "fit: compiling the training step ... done in
        X s" (``bar``, the "compiling" bar, is closed)."""
        lines = self.show_lines
        if lines:  # (the bar says "compiling" itself)
            print("fit: compiling the training step ...", end="", file=sys.stderr)
            sys.stderr.flush()
        tic = time.perf_counter()
        try:
            state, metrics = self.train_step(state, self._batch(idx))
            metrics = jax.device_get(metrics)
        except BaseException:
            if lines:
                print(file=sys.stderr)  # end the line before the error's
            raise
        finally:
            bar.close()
        self.compile_seconds = self.epoch_compile = time.perf_counter() - tic
        done = f"done in {self.compile_seconds:.1f} s"
        if lines:
            print(f" {done}", file=sys.stderr)
        elif self.show_bar:
            tqdm.write(f"fit: compiling the training step ... {done}", file=sys.stderr)
        return state, metrics

    def train(self, state: TrainState) -> TrainState:
        o, run, spe = self.o, self.run, self.spe
        step = int(state.step)
        epoch = step // spe
        if epoch >= o.epochs or run.stopped:
            return state
        bar = self.bar(step, compiling=True)
        while epoch < o.epochs and not run.stopped:
            batches = self.batches(epoch)
            tic = time.perf_counter()
            for b in range(step % spe, spe):  # mid-epoch after a resume
                first = self.compile_seconds is None
                if first:
                    state, metrics = self.first_step(state, batches[b], bar)
                else:
                    state, metrics = self.train_step(state, self._batch(batches[b]))
                    metrics = jax.device_get(metrics)
                if not metrics["finite"]:
                    bar.close()
                    self.fail(state, metrics, epoch, b)
                run.totals = accumulate(run.totals, metrics)
                step += 1
                if first:  # the steps' bar, its rate and ETA from compiled steps
                    bar = self.bar(step, compiling=False)
                else:
                    bar.update(1)
                bar.set_postfix(
                    epoch=epoch + 1,
                    loss=f"{summarize(run.totals)['loss']:.4g}",
                    refresh=False,
                )
                if b == spe - 1:
                    self.end_epoch(state, epoch, time.perf_counter() - tic)
                    self.say(_epoch_line(run.history[-1]))
                every = None if o.ckpt is None else o.ckpt.every
                if every is not None and step % every == 0:
                    self.save(state)
            epoch += 1
        bar.close()
        return state


def fit(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    params: Any,
    train_data: Any,
    *,
    key: jax.Array,
    batch_size: int,
    epochs: int,
    seed: int = 0,
    valid_data: Any = None,
    eval_batch_size: int | None = None,
    early_stopping: EarlyStopping | None = None,
    checkpoint: Checkpointing | None = None,
    logging: Logging | None = None,
    collate: Collate | None = None,
    batch_order: BatchOrder | None = None,
    mesh: jax.sharding.Mesh | None = None,
    **deprecated: Any,
) -> FitResult:
    """Train ``params`` by minibatch gradient descent on ``loss_fn``.

    Each step is :func:`~jaxseq.train.make_train_step`'s jitted update (compiled
    once per batch shape: bucket variable lengths with ``collate=``
    :func:`bucket_by_length`). After every epoch the validation metrics are
    computed with ``key=None`` (no dropout), the epoch is appended to the
    history, and early stopping may end the run.

    Args:
        loss_fn: ``loss_fn(params, batch, key) -> (loss, aux)``; ``batch`` is
            ``train_data`` indexed by a minibatch (then ``collate``d); ``aux`` is
            ``None`` or a dict of scalar batch means (see :mod:`jaxseq.train.step`).
        optimizer: an Optax transformation (chain clipping/ridge in front).
        params: initial parameters.
        train_data: pytree of NumPy arrays with a shared leading axis ``N``.
        key: the run's PRNG key (dropout); step ``k`` uses ``fold_in(key, k)``.
        batch_size: examples per step (the global batch with a ``mesh``).
        epochs: number of passes over ``train_data`` (``N // batch_size`` steps
            each; the incomplete last batch is dropped).
        seed: seed of the data order (:func:`epoch_order`).
        valid_data: optional validation data, same layout as ``train_data``; all
            of it is evaluated (the last batch may be short: one more compile).
        eval_batch_size: validation batch size (default ``batch_size``).
        early_stopping: an :class:`~jaxseq.train.EarlyStopping`: the validation
            metric that picks the best epoch's parameters and may stop the run
            (default ``EarlyStopping()``: the loss, never stopping early).
        checkpoint: a :class:`~jaxseq.train.Checkpointing`: verified Orbax
            checkpoints and resuming (``None``: no checkpoints).
        logging: a :class:`~jaxseq.train.Logging`: metrics files, curves and the
            progress display (default ``Logging()``: no files, the bar where a
            person watches).
        collate: host function applied to each minibatch before the step.
        batch_order: ``batch_order(epoch) -> batches``, the example indices of
            each of the epoch's minibatches (default: consecutive slices of
            :func:`epoch_order`); the same number of ``batch_size`` batches
            every epoch, and a pure function of ``epoch`` so that resuming
            finds the same batches (:func:`sortish_order` draws batches of
            similar lengths for ``collate=bucket_by_length(...)``).
        mesh: a device mesh (:func:`~jaxseq.train.data_mesh`) for data
            parallelism; ``batch_size`` must be a multiple of its size.
        **deprecated: the flat keywords of earlier releases (``monitor``,
            ``mode``, ``patience``, ``min_delta``, ``restore_best``,
            ``checkpoint_dir``, ``checkpoint_every``, ``max_to_keep``,
            ``resume``, ``log_dir``, ``title``, ``progress``): still accepted,
            with a ``DeprecationWarning``, for one release
            (:func:`jaxseq.train.config.from_keywords` maps them).

    Returns:
        A :class:`FitResult`.

    Raises:
        NonFiniteError: when a step's loss or gradient is not finite; the message
            names the step and the last verified checkpoint, left in place.
        CheckpointMismatchError: (a ``ValueError``) ``checkpoint_dir`` holds
            another run; the message says what differs.
        CheckpointCorruptError: no checkpoint in ``checkpoint_dir`` is intact.
        CheckpointWriteError: (an ``OSError``) ``checkpoint_dir`` cannot be
            written, up front or during the run.
        ValueError, TypeError: for invalid arguments (``optimizer`` included: its
            updates of a probe gradient must be finite, descend and move).
    """
    setup = _setup(
        batch_size, epochs, seed, eval_batch_size, collate, batch_order, mesh,
        early_stopping, checkpoint, logging, deprecated,
    )  # fmt: skip
    n = num_examples("train_data", train_data)
    _check_fit_args(batch_size, epochs, n)
    key = check_key(key)
    if valid_data is not None:
        num_examples("valid_data", valid_data)
    restore_best = setup.stop.restore_best
    run = _Fit(loss_fn, optimizer, train_data, valid_data, setup)
    try:
        state = init_state(params, optimizer, key)
        if mesh is not None:
            state = parallel.replicate(state, mesh)
        probe = _fingerprint.initial_probe(optimizer, state.opt_state, state.params)
        if run.ckpt is not None:
            run.ckpt.fingerprint = _fingerprint.fingerprint(
                state, train_data, valid_data, run.options(), probe
            )
        state = run.restore(state)
        state = run.train(state)
        run.save(state)
    except BaseException:
        if run.ckpt is not None:
            run.ckpt.abandon()
        raise
    if run.ckpt is not None:
        run.ckpt.close()
    best = run.run.best_params if (restore_best and valid_data is not None) else None
    return FitResult(
        params=state.params if best is None else best,
        state=state,
        history=run.run.history,
        best_epoch=run.run.best_epoch,
        stopped_early=run.run.stopped,
        resumed_from=run.resumed_from,
        compile_seconds=run.compile_seconds,
    )


def _setup(batch_size, epochs, seed, eval_batch_size, collate, batch_order, mesh,
           early_stopping, checkpoint, logging, deprecated) -> _Setup:  # fmt: skip
    """The checked options of a :func:`fit` call; the deprecated flat keywords
    (with a warning) mapped to their groups."""
    _check_config("early_stopping", early_stopping, EarlyStopping)
    _check_config("checkpoint", checkpoint, Checkpointing)
    _check_config("logging", logging, Logging)
    if deprecated:
        groups = from_keywords(deprecated)
        given = {"early_stopping": early_stopping, "checkpoint": checkpoint,
                 "logging": logging}  # fmt: skip
        for group in ("early_stopping", "checkpoint", "logging"):
            flat = sorted(k for k in deprecated if KEYWORDS[k][0] == group)
            if flat and given[group] is not None:
                raise TypeError(
                    f"fit(): got both {group}= and its deprecated keywords {flat}; "
                    "pass one."
                )
        warnings.warn(
            f"fit(): the keywords {sorted(deprecated)} are deprecated; pass "
            "early_stopping=EarlyStopping(...), checkpoint=Checkpointing(...) and "
            "logging=Logging(...) (jaxseq.train) instead.",
            DeprecationWarning,
            stacklevel=3,
        )
        early_stopping = groups.get("early_stopping", early_stopping)
        checkpoint = groups.get("checkpoint", checkpoint)
        logging = groups.get("logging", logging)
    return _Setup(
        batch_size=batch_size,
        epochs=epochs,
        seed=seed,
        eval_batch_size=eval_batch_size,
        collate=collate,
        batch_order=batch_order,
        mesh=mesh,
        stop=EarlyStopping() if early_stopping is None else early_stopping,
        ckpt=checkpoint,
        log=Logging() if logging is None else logging,
    )
