"""Stateful truncated BPTT: ``B`` streams read in consecutive chunks, the carry at
the end of one chunk starting the next.

Each train step runs one chunk ``(inputs, targets, resets)`` (``[B, T]`` each,
:class:`~jaxseq.lm.Chunks`) from the carry kept in the :class:`StreamState`,
under ``jax.lax.stop_gradient``: the forward pass sees the whole stream, the
gradient flows back at most ``T`` steps (Williams & Peng, 1990), and the carry it
ends with is stored for the next chunk. With ``resets`` a stream's carry is put
back to the start inside the chunk where a document begins
(:mod:`jaxseq.lm.reset`).

Conventions are those of :mod:`jaxseq.train.step`: the per-step key is
``fold_in(state.train.key, state.train.step)``; metrics are sums plus a
``count`` of predicted tokens (:func:`jaxseq.train.accumulate`,
:func:`jaxseq.train.summarize` turn them into means); a non-finite loss or
gradient leaves the state unchanged and reports ``finite = False``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._weakcache import weak_cache
from ..train import TrainState, accumulate, init_state, summarize
from ._checks import check_positive
from .loss import bits_per_token, perplexity, sequence_nll
from .models import LanguageModel
from .streams import Chunks


class StreamState(NamedTuple):
    """A :class:`~jaxseq.train.TrainState` plus the streams' carry.

    Attributes:
        train: step, parameters, optimiser state and the run's key.
        carry: the model's carry after the last chunk read (leaves ``[B, ...]``).
    """

    train: TrainState
    carry: Any


def init_stream_state(
    lm: LanguageModel,
    params: Any,
    optimizer: optax.GradientTransformation,
    key: jax.Array,
    batch_size: int,
) -> StreamState:
    """A fresh :class:`StreamState`: step 0 and the model's initial carry for
    ``batch_size`` streams (parameters and key copied, see
    :func:`jaxseq.train.init_state`)."""
    train = init_state(params, optimizer, key)
    return StreamState(train, fresh_carry(lm, train.params, batch_size))


def fresh_carry(lm: LanguageModel, params: Any, batch_size: int) -> Any:
    """``lm.init_carry(params, batch_size)`` with every leaf its own buffer: the
    train step donates the state, and a carry whose leaves share one array
    (zeros reused for ``h`` and ``c``) cannot be donated twice."""
    carry = lm.init_carry(params, batch_size)
    return jax.tree.map(lambda a: jnp.array(a, copy=True), carry)


def chunk_loss(
    lm: LanguageModel,
    params: Any,
    carry: Any,
    batch: Chunks,
    key: jax.Array | None = None,
) -> tuple[jax.Array, tuple[Any, jax.Array, jax.Array]]:
    """Mean NLL per token of one chunk from ``carry`` (held fixed).

    Returns ``(mean, (carry_out, nll_sum, count))``.
    """
    inputs, targets, resets = batch
    carry = jax.lax.stop_gradient(carry)
    carry, logits = lm.apply(params, carry, inputs, resets=resets, key=key)
    total, count = sequence_nll(logits, targets)
    return total / count, (carry, total, count)


def _all_finite(tree: Any) -> jax.Array:
    leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]
    return jnp.stack(leaves).all() if leaves else jnp.array(True)


def stream_train_step_fn(
    lm: LanguageModel, optimizer: optax.GradientTransformation
) -> Callable[[StreamState, Chunks], tuple[StreamState, dict[str, jax.Array]]]:
    """The un-jitted train step: one chunk, one update, carry passed on."""

    def step(state: StreamState, batch: Chunks):
        tr = state.train
        key = jax.random.fold_in(tr.key, tr.step)
        (loss, (carry, total, count)), grads = jax.value_and_grad(
            lambda p: chunk_loss(lm, p, state.carry, batch, key), has_aux=True
        )(tr.params)
        updates, opt_state = optimizer.update(grads, tr.opt_state, tr.params)
        params = optax.apply_updates(tr.params, updates)
        finite = jnp.isfinite(loss) & _all_finite(grads)
        keep = lambda n, o: jnp.where(finite, n, o)
        train = TrainState(
            step=keep(tr.step + 1, tr.step),
            params=jax.tree.map(keep, params, tr.params),
            opt_state=jax.tree.map(keep, opt_state, tr.opt_state),
            key=tr.key,
        )
        carry = jax.tree.map(keep, carry, state.carry)
        metrics = {
            "loss": total,
            "count": count,
            "grad_norm": optax.tree.norm(grads).astype(jnp.float32),
            "finite": finite,
        }
        return StreamState(train, carry), metrics

    return step


def make_stream_train_step(
    lm: LanguageModel, optimizer: optax.GradientTransformation, *, donate: bool = True
) -> Callable[[StreamState, Chunks], tuple[StreamState, dict[str, jax.Array]]]:
    """One jit-compiled stateful TBPTT update.

    ``step(state, batch) -> (state, metrics)``: ``batch`` is one chunk
    ``Chunks(inputs, targets, resets)`` of ``[B, T]`` arrays (``chunks.chunk(i)``);
    the returned state holds the updated parameters and the carry after the
    chunk. Compiles once per chunk shape.

    Examples:
        >>> import jax, numpy as np, optax
        >>> from jaxseq import lm
        >>> model = lm.rnn_lm(12, cell="elman", embed_dim=4, hidden=4, num_layers=1)
        >>> s = lm.TokenStream(np.arange(41, dtype=np.int32) % 12, np.zeros(41, bool))
        >>> chunks = lm.chunk_stream(s, batch_size=2, chunk_len=5)
        >>> opt = optax.adam(1e-2)
        >>> state = lm.init_stream_state(model, model.init(jax.random.key(0)), opt,
        ...                              jax.random.key(1), batch_size=2)
        >>> step = lm.make_stream_train_step(model, opt)
        >>> for i in range(chunks.num_chunks):
        ...     state, metrics = step(state, chunks.chunk(i))
        >>> int(state.train.step), float(metrics["count"])
        (3, 10.0)
    """
    return _cached_train_step(lm.apply, optimizer, bool(donate))


class _Applies(NamedTuple):
    """The part of a :class:`LanguageModel` the steps use (hashable: a cache key)."""

    apply: Callable[..., Any]


# One jitted step per live model function and optimiser (jaxseq._weakcache):
# asking again for the same model's step (a command run twice in one process)
# reuses its compilation, and the cache never keeps a model alive.
def _jit_train_step(apply, optimizer, donate: bool):
    fn = stream_train_step_fn(_Applies(apply), optimizer)  # type: ignore[arg-type]
    return jax.jit(fn, donate_argnums=(0,) if donate else ())


_cached_train_step = weak_cache(_jit_train_step)

#: Chunks per compiled call of :func:`make_stream_train_steps` in
#: :func:`~jaxseq.lm.training.fit_stream` and :func:`train_epochs`.
CHUNKS_PER_CALL = 10


def stream_train_steps_fn(
    lm: LanguageModel, optimizer: optax.GradientTransformation
) -> Callable[[StreamState, Chunks], tuple[StreamState, dict[str, jax.Array]]]:
    """The un-jitted multi-chunk step: :func:`stream_train_step_fn` scanned
    (``jax.lax.scan``) over the leading axis of ``group`` (``[K, B, T]``);
    metrics come back stacked, ``[K]`` each."""
    step = stream_train_step_fn(lm, optimizer)

    def steps(state: StreamState, group: Chunks):
        return jax.lax.scan(step, state, group)

    return steps


def make_stream_train_steps(
    lm: LanguageModel, optimizer: optax.GradientTransformation, *, donate: bool = True
) -> Callable[[StreamState, Chunks], tuple[StreamState, dict[str, jax.Array]]]:
    """``K`` consecutive :func:`make_stream_train_step` updates in one compiled
    call.

    ``steps(state, group) -> (state, metrics)``: ``group`` is ``K`` chunks
    ``Chunks(inputs, targets, resets)`` of ``[K, B, T]`` arrays
    (:func:`chunk_group`), read in order with the carry passed on; ``metrics``
    holds each step's metrics stacked (``[K]`` leaves). The same updates as
    ``K`` calls of the one-chunk step, with one dispatch, one host read of the
    metrics and one allocation of the step's scratch memory per ``K`` chunks
    instead of per chunk (on CPU, the fresh pages of each call's scratch
    memory cost about a fifth of a word-level LSTM step). Compiles once per
    ``K`` and chunk shape. A non-finite step leaves the state unchanged and
    the following steps of the group continue from it; its ``finite`` entry
    is false.

    Examples:
        >>> import jax, numpy as np, optax
        >>> from jaxseq import lm
        >>> from jaxseq.lm.stateful import chunk_group, make_stream_train_steps
        >>> model = lm.rnn_lm(12, cell="elman", embed_dim=4, hidden=4, num_layers=1)
        >>> s = lm.TokenStream(np.arange(41, dtype=np.int32) % 12, np.zeros(41, bool))
        >>> chunks = lm.chunk_stream(s, batch_size=2, chunk_len=5)
        >>> opt = optax.adam(1e-2)
        >>> state = lm.init_stream_state(model, model.init(jax.random.key(0)), opt,
        ...                              jax.random.key(1), batch_size=2)
        >>> steps = make_stream_train_steps(model, opt)
        >>> state, metrics = steps(state, chunk_group(chunks, 0, 3))
        >>> int(state.train.step), metrics["count"].tolist()
        (3, [10.0, 10.0, 10.0])
    """
    return _cached_train_steps(lm.apply, optimizer, bool(donate))


def _jit_train_steps(apply, optimizer, donate: bool):
    fn = stream_train_steps_fn(_Applies(apply), optimizer)  # type: ignore[arg-type]
    return jax.jit(fn, donate_argnums=(0,) if donate else ())


_cached_train_steps = weak_cache(_jit_train_steps)


def chunk_group(chunks: Chunks, start: int, stop: int) -> Chunks:
    """Chunks ``start`` to ``stop - 1`` as one group (``[stop - start, B, T]``
    arrays; ``resets`` may be ``None``) for :func:`make_stream_train_steps`."""
    if not 0 <= start < stop <= chunks.num_chunks:
        raise ValueError(
            f"start, stop: expected 0 <= start < stop <= {chunks.num_chunks} "
            f"(the number of chunks), got start={start}, stop={stop}."
        )
    return Chunks(*(None if a is None else a[start:stop] for a in chunks))


def call_plan(start: int, stop: int, per_call: int) -> list[tuple[int, int]]:
    """The calls that run chunks ``start`` to ``stop - 1``: ``(a, b)`` spans of
    ``per_call`` chunks from ``start`` (one :func:`make_stream_train_steps`
    call each), then the remainder one chunk per span (the one-chunk step).
    A fixed function of its arguments: a resumed run makes the same calls on
    the same chunks as an uninterrupted one.

    Examples:
        >>> call_plan(3, 12, 4)
        [(3, 7), (7, 11), (11, 12)]
    """
    per_call = max(1, int(per_call))
    full = start + (stop - start) // per_call * per_call
    spans = [(a, a + per_call) for a in range(start, full, per_call)]
    return spans + [(a, a + 1) for a in range(full, stop)]


def run_span(
    step: Callable[..., Any],
    steps: Callable[..., Any],
    state: StreamState,
    chunks: Chunks,
    start: int,
    stop: int,
) -> tuple[StreamState, list[dict[str, Any]]]:
    """Chunks ``start`` to ``stop - 1`` in one call: ``step`` (one chunk,
    :func:`make_stream_train_step`) when ``stop - start == 1``, else ``steps``
    (:func:`make_stream_train_steps`). Returns the state and each update's
    metrics read to the host (one dict of NumPy scalars per chunk, in order)."""
    if stop - start == 1:
        one = Chunks(*(None if a is None else a[start] for a in chunks))
        state, metrics = step(state, one)
        return state, [jax.device_get(metrics)]
    state, metrics = steps(state, chunk_group(chunks, start, stop))
    metrics = jax.device_get(metrics)
    return state, [{k: v[i] for k, v in metrics.items()} for i in range(stop - start)]


def _jit_eval_step(apply):
    lm = _Applies(apply)

    def eval_step(params: Any, carry: Any, batch: Chunks):
        _, (carry, total, count) = chunk_loss(lm, params, carry, batch, None)  # type: ignore[arg-type]
        return carry, {"loss": total, "count": count}

    return jax.jit(eval_step)


_cached_eval_step = weak_cache(_jit_eval_step)


def make_stream_eval_step(
    lm: LanguageModel,
) -> Callable[[Any, Any, Chunks], tuple[Any, dict[str, jax.Array]]]:
    """``eval_step(params, carry, batch) -> (carry, metrics)`` (jitted, no
    dropout): the NLL sum and token count of one chunk, carry passed on."""
    return _cached_eval_step(lm.apply)


def evaluate_stream(
    lm: LanguageModel, params: Any, chunks: Chunks, *, carry: Any = None
) -> dict[str, float]:
    """Mean NLL per token, perplexity and bits per token over all chunks, read in
    order with the carry passed on (from ``carry``, default the initial one)."""
    eval_step = make_stream_eval_step(lm)
    if carry is None:
        carry = lm.init_carry(params, int(chunks.inputs.shape[1]))
    totals: dict[str, float] = {}
    for i in range(chunks.num_chunks):
        carry, metrics = eval_step(params, carry, chunks.chunk(i))
        totals = accumulate(totals, metrics)
    loss = summarize(totals)["loss"]
    return {"loss": loss, "perplexity": float(perplexity(loss)),
            "bits_per_token": float(bits_per_token(loss))}  # fmt: skip


class EpochResult(NamedTuple):
    """What :func:`train_epochs` returns."""

    state: StreamState
    history: list[dict[str, float]]


def train_epochs(
    lm: LanguageModel,
    optimizer: optax.GradientTransformation,
    state: StreamState,
    chunks: Chunks,
    *,
    epochs: int = 1,
    valid: Chunks | None = None,
    max_steps: int | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    chunks_per_call: int = CHUNKS_PER_CALL,
) -> EpochResult:
    """Stateful TBPTT over ``chunks`` in order for ``epochs`` epochs; each epoch
    starts from the initial carry. Stops early after ``max_steps`` updates.
    Runs ``chunks_per_call`` chunks per compiled call
    (:func:`make_stream_train_steps`; the same updates as one call per chunk).

    Returns the final state and one record per epoch: train ``loss`` (mean NLL),
    ``perplexity`` and, with ``valid``, ``valid_loss`` / ``valid_perplexity``.
    """
    check_positive("chunks_per_call", chunks_per_call)
    step = make_stream_train_step(lm, optimizer)
    steps = make_stream_train_steps(lm, optimizer)
    history = []
    batch = int(chunks.inputs.shape[1])
    done = 0
    for epoch in range(epochs):
        state = state._replace(carry=fresh_carry(lm, state.train.params, batch))
        totals: dict[str, float] = {}
        stop = chunks.num_chunks
        if max_steps is not None:
            stop = min(stop, max_steps - done)
        for a, b in call_plan(0, stop, chunks_per_call):
            state, per_step = run_span(step, steps, state, chunks, a, b)
            for i, metrics in enumerate(per_step):
                if not bool(metrics["finite"]):
                    raise FloatingPointError(
                        f"loss: expected finite values, got a non-finite loss or "
                        f"gradient at update {done + i} (epoch {epoch}, chunk "
                        f"{a + i})."
                    )
                totals = accumulate(totals, metrics)
            done += b - a
        record = summarize(totals)
        record["perplexity"] = float(np.exp(record["loss"]))
        if valid is not None:
            v = evaluate_stream(lm, state.train.params, valid)
            record["valid_loss"] = v["loss"]
            record["valid_perplexity"] = v["perplexity"]
        history.append(record)
        if callback is not None:
            callback(epoch, record)
        if max_steps is not None and done >= max_steps:
            break
    return EpochResult(state, history)
