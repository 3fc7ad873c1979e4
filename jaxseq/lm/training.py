"""A resumable stateful-TBPTT run: epochs over the chunks in order, metrics
records, checkpoints holding the streams' carry and the data position, a
progress bar and a perplexity curve.

:func:`fit_stream` is to :func:`~jaxseq.lm.train_epochs` what
:func:`jaxseq.train.fit` is to a bare train step. Each checkpoint (through
:mod:`jaxseq.train.checkpoint`: atomic, every array's sha256 verified on
restore) holds

- the :class:`~jaxseq.train.TrainState` (step, parameters, optimiser state, key);
- the streams' carry after the last chunk read (the checkpoint's ``extra``
  arrays), so a resumed run continues each stream where it stopped;
- the data position (``epoch``, ``chunk``), the metrics history and the
  running sums of the current record (its JSON ``meta``);
- the run's fingerprint (initial parameters, optimiser, key, data, options):
  a checkpoint of another run is refused.

A run killed at any point and started again with the same arguments continues
from the newest verified checkpoint and ends with the same bits as a run that
was never interrupted (same machine and program): the per-step key is
``fold_in(key, step)``, the chunks are read in a fixed order, each epoch
starts from the model's initial carry, and the compiled calls (``K`` chunks
each, :func:`~jaxseq.lm.stateful.make_stream_train_steps`, then one chunk a
call up to the next record, checkpoint or epoch end) fall on the same chunks.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
from tqdm import tqdm

from ..train import _fingerprint, accumulate, summarize
from ..train._resume import RunCheckpoints
from ..train.history import write_metrics
from ._checks import check_positive
from .loss import bits_per_token, perplexity
from .models import LanguageModel
from .stateful import (
    CHUNKS_PER_CALL,
    StreamState,
    call_plan,
    chunk_group,
    fresh_carry,
    make_stream_eval_step,
    make_stream_train_step,
    make_stream_train_steps,
    run_span,
)
from .streams import Chunks


class Checkpoints(NamedTuple):
    """Where and how often :func:`fit_stream` checkpoints.

    Attributes:
        directory: the checkpoint directory (created; checked writable).
        every: also checkpoint every this many steps (``None``: at the end of
            each epoch and of the run only).
        max_to_keep: checkpoints kept on disk.
        resume: continue from the newest verified checkpoint in ``directory``.
    """

    directory: str | os.PathLike[str]
    every: int | None = None
    max_to_keep: int | None = 2
    resume: bool = True


class StreamFit(NamedTuple):
    """What :func:`fit_stream` returns.

    Attributes:
        state: the final :class:`~jaxseq.lm.StreamState` (carry included).
        history: the metrics records (see :func:`fit_stream`).
        resumed_from: the checkpoint step this call continued from (``None``:
            it started afresh).
        compile_seconds: time spent compiling the train step (this call).
        train_seconds: time spent in train steps (this call, compile excluded).
    """

    state: StreamState
    history: list[dict[str, Any]]
    resumed_from: int | None
    compile_seconds: float
    train_seconds: float


def _mean_record(totals: dict[str, float], prefix: str) -> dict[str, float]:
    loss = summarize(totals)["loss"]
    return {
        f"{prefix}loss": loss,
        f"{prefix}perplexity": float(perplexity(loss)),
        f"{prefix}bits_per_token": float(bits_per_token(loss)),
    }


class _Loop:
    """One call of :func:`fit_stream`: compiled step, data, bookkeeping."""

    def __init__(self, lm, optimizer, train, valid, epochs, log_every, progress,
                 per_call):  # fmt: skip
        self.lm, self.train, self.valid = lm, train, valid
        self.epochs, self.progress = epochs, progress
        self.n = train.num_chunks
        self.log_every = log_every or self.n
        self.per_call = per_call
        self.batch = int(train.inputs.shape[1])
        # the one-chunk and the per_call-chunk step, compiled when first needed
        self.step_fns = {
            per_call: make_stream_train_steps(lm, optimizer),
            1: make_stream_train_step(lm, optimizer),
        }
        self.compiled: dict[int, Callable[..., Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.totals: dict[str, float] = {}
        self.ckpt: RunCheckpoints | None = None
        self.ckpt_every: int | None = None
        self.eval_step = make_stream_eval_step(lm)
        self.compile_seconds = self.train_seconds = 0.0

    def meta(self, step: int) -> dict[str, Any]:
        position = {"epoch": step // self.n, "chunk": step % self.n}
        return {"position": position, "history": self.history, "totals": self.totals}

    def save(self, state: StreamState) -> None:
        if self.ckpt is not None:
            step = int(state.train.step)
            self.ckpt.save(state.train, self.meta(step), None, extra=state.carry)

    def record(self, state: StreamState, seconds: float, end_of_epoch: bool) -> None:
        step = int(state.train.step)
        rec: dict[str, Any] = {"step": step, "epoch": (step - 1) // self.n + 1}
        rec.update(_mean_record(self.totals, "train_"))
        rec["train_tokens"] = int(self.totals.get("count", 0))
        if end_of_epoch and self.valid is not None:
            rec.update(_mean_record(self.evaluate(state.train.params), "valid_"))
        rec["seconds"] = seconds
        self.history.append(rec)
        self.totals = {}

    def evaluate(self, params: Any) -> dict[str, float]:
        """NLL sums over the validation chunks, read in order from the initial
        carry (one compiled eval step for the whole run)."""
        assert self.valid is not None
        carry = self.lm.init_carry(params, int(self.valid.inputs.shape[1]))
        totals: dict[str, float] = {}
        for i in range(self.valid.num_chunks):
            carry, metrics = self.eval_step(params, carry, self.valid.chunk(i))
            totals = accumulate(totals, jax.device_get(metrics))
        return totals

    def compile(self, state: StreamState, size: int) -> None:
        """Compile the step of ``size`` chunks per call."""
        one = size == 1
        note = "compiling the train step" + ("" if one else f" ({size} chunks a call)")
        if self.progress:
            print(f"{note} ...", end="", file=sys.stderr, flush=True)
        tic = time.perf_counter()
        batch = chunk_group(self.train, 0, size)
        if one:
            batch = Chunks(*(None if a is None else a[0] for a in batch))
        self.compiled[size] = self.step_fns[size].lower(state, batch).compile()
        seconds = time.perf_counter() - tic
        self.compile_seconds += seconds
        if self.progress:
            print(f" done in {seconds:.1f} s", file=sys.stderr)

    def next_stop(self, step: int, total: int) -> int:
        """The next step after ``step`` that ends a record, a checkpoint
        interval, an epoch or the run: each call stays inside one such span."""
        stops = [total, (step // self.n + 1) * self.n]
        stops.append((step // self.log_every + 1) * self.log_every)
        if self.ckpt_every is not None:
            stops.append((step // self.ckpt_every + 1) * self.ckpt_every)
        return min(stops)

    def spans(self, step: int, total: int):
        """The ``(step, stop, plan)`` of each span from ``step`` to ``total``:
        ``plan`` holds the calls' chunk indices in the epoch (:func:`call_plan`)."""
        while step < total:
            stop = self.next_stop(step, total)
            chunk = step % self.n  # a span never crosses an epoch's end
            yield step, stop, call_plan(chunk, chunk + stop - step, self.per_call)
            step = stop

    def run(self, state: StreamState, on_record) -> StreamState:
        total, step = self.epochs * self.n, int(state.train.step)
        if step >= total:
            return state
        sizes: set[int] = set()  # the calls' sizes, compiled before the bar
        for _, _, plan in self.spans(step, total):
            sizes.update(b - a for a, b in plan)
            if len(sizes) == len(self.step_fns):
                break
        for size in sorted(sizes, reverse=True):
            self.compile(state, size)
        bar = tqdm(
            total=total,
            initial=step,
            unit="step",
            desc="train",
            disable=not self.progress,
            file=sys.stderr,
        )
        tic = time.perf_counter()
        for start, _, plan in self.spans(step, total):
            step = start  # the first step of the next call
            if step % self.n == 0:  # each epoch starts from the initial carry
                state = state._replace(
                    carry=fresh_carry(self.lm, state.train.params, self.batch)
                )
            for a, b in plan:
                fn = self.compiled[b - a]
                state, per_step = run_span(fn, fn, state, self.train, a, b)
                for i, metrics in enumerate(per_step):
                    if not metrics["finite"]:
                        bar.close()
                        at = step + i
                        raise FloatingPointError(
                            f"loss: expected finite values, got a non-finite loss "
                            f"or gradient at step {at} (epoch {at // self.n + 1}, "
                            f"chunk {a + i + 1} of {self.n}); the update was not "
                            "applied. Lower the learning rate or clip gradients "
                            "harder."
                        )
                    self.totals = accumulate(self.totals, metrics)
                step += b - a
                bar.update(b - a)
            end = step % self.n == 0
            if end or step % self.log_every == 0:
                self.train_seconds += time.perf_counter() - tic
                self.record(state, time.perf_counter() - tic, end)
                bar.set_postfix(ppl=f"{self.history[-1]['train_perplexity']:.4g}")
                on_record(self.history)
                tic = time.perf_counter()
            every = self.ckpt_every
            if end or (every is not None and step % every == 0):
                self.save(state)
        self.train_seconds += time.perf_counter() - tic
        bar.close()
        return state


def fit_stream(
    lm: LanguageModel,
    optimizer: optax.GradientTransformation,
    state: StreamState,
    train: Chunks,
    *,
    epochs: int,
    valid: Chunks | None = None,
    log_every: int | None = None,
    checkpoints: Checkpoints | None = None,
    on_record: Callable[[list[dict[str, Any]]], None] | None = None,
    options: dict[str, Any] | None = None,
    progress: bool = False,
    chunks_per_call: int = CHUNKS_PER_CALL,
) -> StreamFit:
    """Stateful TBPTT over ``train`` for ``epochs`` epochs, resumable.

    Args:
        lm: the model.
        optimizer: an Optax transformation.
        state: the initial :class:`~jaxseq.lm.StreamState`
            (:func:`~jaxseq.lm.init_stream_state`; copied, not donated).
        train: the training chunks (:func:`~jaxseq.lm.chunk_stream`), read in
            order; each epoch starts from the initial carry.
        epochs: passes over ``train`` (``train.num_chunks`` steps each).
        valid: chunks evaluated at the end of each epoch (no dropout).
        log_every: steps per metrics record (default: one per epoch); a
            record also ends at each epoch's end.
        checkpoints: a :class:`Checkpoints` (``None``: none are written).
        on_record: called with the history after each record (write files).
        options: JSON values that make this run this run (for the checkpoint
            fingerprint: a resumed run must give the same).
        progress: a tqdm progress bar and a "compiling" line on stderr.
        chunks_per_call: chunks run per compiled call
            (:func:`~jaxseq.lm.stateful.make_stream_train_steps`: the same
            updates, with one dispatch, one read of the metrics and one
            allocation of scratch memory per call); a call never crosses a
            record, a checkpoint or an epoch's end, and the rest of such a span
            runs one chunk a call. A resumed run gives the same bits as an
            uninterrupted one with the same ``chunks_per_call``.

    Returns:
        A :class:`StreamFit`. Each history record holds ``step``, ``epoch``
        (1-based), ``train_loss`` (mean NLL per token, nats),
        ``train_perplexity``, ``train_bits_per_token``, ``train_tokens`` (of
        the steps since the previous record), at an epoch's end
        ``valid_loss``, ``valid_perplexity`` and ``valid_bits_per_token``, and
        ``seconds``.

    Raises:
        FloatingPointError: a non-finite loss or gradient (not applied; the
            last checkpoint stays).
        jaxseq.train.CheckpointMismatchError: ``checkpoints.directory`` holds
            another run's checkpoint.
    """
    check_positive("epochs", epochs)
    check_positive("chunks_per_call", chunks_per_call)
    if log_every is not None:
        check_positive("log_every", log_every)
    if not isinstance(state, StreamState):
        raise TypeError(
            f"state: expected a jaxseq.lm.StreamState (jaxseq.lm.init_stream_state), "
            f"got {type(state).__name__}."
        )
    # the steps donate the state they are given: keep the caller's
    state = jax.tree.map(lambda a: a.copy(), state)
    loop = _Loop(
        lm, optimizer, train, valid, epochs, log_every, progress, int(chunks_per_call)
    )
    resumed = None
    if checkpoints is not None:
        if checkpoints.every is not None:
            check_positive("checkpoints.every", checkpoints.every)
        loop.ckpt_every = checkpoints.every
        loop.ckpt = RunCheckpoints(
            checkpoints.directory,
            max_to_keep=checkpoints.max_to_keep,
            optimizer=optimizer,
        )
    try:
        if loop.ckpt is not None:
            state, resumed = _restore(loop, optimizer, state, options, checkpoints)
        # committed to one device, as restored arrays are: a fresh and a resumed
        # run then share one compilation of the step (jit's cache tells them apart)
        state = jax.device_put(state, jax.devices()[0])
        state = loop.run(state, on_record or (lambda history: None))
        loop.save(state)
    except BaseException:
        if loop.ckpt is not None:
            loop.ckpt.abandon()
        raise
    if loop.ckpt is not None:
        loop.ckpt.close()
    return StreamFit(
        state, loop.history, resumed, loop.compile_seconds, loop.train_seconds
    )


def _restore(loop: _Loop, optimizer, state: StreamState, options, checkpoints):
    tr = state.train
    probe = _fingerprint.initial_probe(optimizer, tr.opt_state, tr.params)
    data = tuple(loop.train)
    valid = None if loop.valid is None else tuple(loop.valid)
    opts = {
        "kind": "jaxseq.lm.fit_stream",
        "log_every": loop.log_every,
        **(options or {}),
    }
    assert loop.ckpt is not None
    loop.ckpt.fingerprint = _fingerprint.fingerprint(tr, data, valid, opts, probe)
    restored = loop.ckpt.restore(tr, resume=checkpoints.resume, extra_like=state.carry)
    if restored is None:
        return state, None
    meta = restored.meta
    loop.history = list(meta["history"])
    loop.totals = dict(meta["totals"])
    step = int(restored.state.step)
    position = meta["position"]
    if (position["epoch"], position["chunk"]) != (step // loop.n, step % loop.n):
        raise ValueError(
            f"checkpoint: expected the data position of step {step} (epoch "
            f"{step // loop.n}, chunk {step % loop.n}), got {position}."
        )
    if loop.progress:
        print(
            f"resuming from the verified checkpoint of step {step} in "
            f"{loop.ckpt.directory} (epoch {position['epoch'] + 1}, chunk "
            f"{position['chunk'] + 1} of {loop.n})",
            file=sys.stderr,
        )
    return StreamState(restored.state, restored.extra), step


def restore_stream(
    directory: str | os.PathLike[str], like: StreamState, *, step: int | None = None
) -> tuple[StreamState, dict[str, Any]]:
    """The newest verified checkpoint (or that of ``step``) of a
    :func:`fit_stream` run: ``(state, meta)`` with the carry in ``state.carry``
    and the data position in ``meta["position"]``; ``like`` gives the structure
    (a fresh :func:`~jaxseq.lm.init_stream_state` of the same model and
    optimiser)."""
    from ..train.checkpoint import checkpoint_manager, finish, restore_checkpoint

    manager = checkpoint_manager(directory)
    try:
        r = restore_checkpoint(manager, like.train, step=step, extra_like=like.carry)
    finally:
        finish(manager)
    return StreamState(r.state, r.extra), r.meta


def write_records(
    history: list[dict[str, Any]],
    log_dir: str | os.PathLike[str],
    title: str,
    *,
    plot: bool = True,
) -> None:
    """``metrics.jsonl``, ``metrics.csv`` and (``plot``) ``perplexity.png`` in
    ``log_dir`` (rewritten whole: a resumed run's files equal an uninterrupted
    run's)."""
    write_metrics(history, log_dir)
    if plot:
        plot_perplexity(history, os.path.join(log_dir, "perplexity.png"), title)


def plot_perplexity(
    history: list[dict[str, Any]], path: str | os.PathLike[str], title: str
) -> None:
    """Training and validation perplexity against the update step (log scale),
    with bits per token on a second axis; matplotlib's object API (Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    steps = [r["step"] for r in history]
    ax.plot(
        steps,
        [r["train_perplexity"] for r in history],
        "-o",
        ms=3,
        label="training (mean over the steps since the previous point)",
    )
    valid = [
        (r["step"], r["valid_perplexity"]) for r in history if "valid_perplexity" in r
    ]
    if valid:
        ax.plot(
            *zip(*valid, strict=True),
            "-s",
            ms=5,
            label="validation (end of each epoch)",
        )
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xlabel("update step (one chunk of B streams x T tokens)")
    ax.set_ylabel("perplexity (exp of mean NLL per token, log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    right = ax.secondary_yaxis(
        "right",
        functions=(lambda p: np.log2(np.maximum(p, 1e-12)), lambda b: np.exp2(b)),
    )
    right.set_yscale("linear")
    right.set_ylabel("bits per token (log2 of perplexity)")
    fig.savefig(os.fspath(path), dpi=100)


__all__ = [
    "Checkpoints",
    "StreamFit",
    "fit_stream",
    "plot_perplexity",
    "restore_stream",
    "write_records",
]
