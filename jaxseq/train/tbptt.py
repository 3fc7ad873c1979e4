"""Truncated backpropagation through time (Williams & Peng, 1990).

Full BPTT differentiates through every step of the scan. For long sequences the
seed's "limiting steps back for stability" cuts the sequence into chunks of
``k`` steps: the forward pass still runs the whole sequence (each chunk starts
from the previous chunk's final carry), but the carry enters each chunk under
``jax.lax.stop_gradient``, so gradients flow back at most ``k`` steps and stop at
chunk boundaries.

:func:`truncated_bptt` returns the *total* loss (sum of the chunk losses); its
gradient is the sum of the per-chunk gradients with the incoming carries held
fixed. With one chunk covering the whole sequence it equals full BPTT. With
``remat=True`` each chunk is rematerialised in the backward pass, so memory holds
one carry per chunk plus one chunk's activations, not the whole sequence's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

ChunkLoss = Callable[[Any, Any, Any, jax.Array], tuple[jax.Array, Any]]


def _time_length(sequences: Any) -> int:
    leaves = jax.tree_util.tree_flatten_with_path(sequences)[0]
    if not leaves:
        raise ValueError(
            "sequences: expected at least one [B, T, ...] array, got none."
        )
    times = {}
    for path, leaf in leaves:
        if jnp.ndim(leaf) < 2:
            raise ValueError(
                f"sequences{jax.tree_util.keystr(path)}: expected a batch-major "
                f"[B, T, ...] array, got shape {jnp.shape(leaf)}."
            )
        times[jax.tree_util.keystr(path) or "<leaf>"] = jnp.shape(leaf)[1]
    if len(set(times.values())) != 1:
        raise ValueError(
            "sequences: expected one time length T on axis 1 for every leaf, got "
            f"{times}."
        )
    return next(iter(times.values()))


def chunk_lengths(lengths: jax.Array, start: jax.Array, chunk_size: int) -> jax.Array:
    """Valid lengths inside the chunk that starts at time ``start``:
    ``clip(lengths - start, 0, chunk_size)`` (0 for a chunk past the end, so the
    runner leaves the carry unchanged there)."""
    return jnp.clip(jnp.asarray(lengths) - start, 0, chunk_size).astype(jnp.int32)


def truncated_bptt(
    chunk_loss: ChunkLoss,
    params: Any,
    carry0: Any,
    sequences: Any,
    *,
    chunk_size: int,
    remat: bool = True,
) -> tuple[jax.Array, Any]:
    """Sum of per-chunk losses whose gradient is truncated at chunk boundaries.

    Args:
        chunk_loss: ``chunk_loss(params, carry, chunk, start) -> (loss, carry)``:
            runs the model over one chunk (``sequences`` sliced to
            ``[:, start:start + chunk_size]``) from ``carry`` and returns the
            chunk's contribution to the loss and the final carry. Normalise so
            that the contributions *add up* to the sequence loss (e.g. divide by
            the total number of valid steps, not the chunk's). Per-sequence
            lengths go through :func:`chunk_lengths`.
        params: parameters (the variable of differentiation).
        carry0: initial carry for the batch (leaves ``[B, ...]``); it is also held
            fixed (``stop_gradient``).
        sequences: pytree of batch-major ``[B, T, ...]`` arrays (inputs, targets);
            ``T`` must be a multiple of ``chunk_size`` (pad to one: padded steps
            beyond each length are ignored by the runner).
        chunk_size: ``k``, the truncation length.
        remat: rematerialise each chunk in the backward pass
            (``jax.checkpoint``).

    Returns:
        ``(loss, carry)``: the summed loss and the carry after the last chunk.

    Raises:
        ValueError: if ``chunk_size`` is not a positive int dividing ``T``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import jaxseq
        >>> from jaxseq.train import truncated_bptt
        >>> cell = jaxseq.cells.elman(3)
        >>> params = cell.init(jax.random.key(0), 2)
        >>> xs = jax.random.normal(jax.random.key(1), (4, 12, 2))
        >>> def chunk_loss(p, carry, xs_chunk, start):
        ...     carry, ys = jaxseq.rnn(cell, p, xs_chunk, carry0=carry)
        ...     return jnp.sum(ys ** 2) / ys.size / 3, carry
        >>> carry0 = jax.tree.map(lambda a: jnp.zeros((4, *a.shape)),
        ...                       cell.init_carry(params))
        >>> grads = jax.grad(lambda p: truncated_bptt(
        ...     chunk_loss, p, carry0, xs, chunk_size=4)[0])(params)
        >>> grads.w_h.shape
        (3, 3)
    """
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, int)
        or chunk_size < 1
    ):
        raise ValueError(f"chunk_size: expected a positive int, got {chunk_size!r}.")
    time = _time_length(sequences)
    if time % chunk_size:
        raise ValueError(
            f"chunk_size: expected a divisor of the sequence length T = {time}, got "
            f"{chunk_size}. Pad T up to {-(-time // chunk_size) * chunk_size} "
            "(padding beyond each length is ignored) or pick another chunk size."
        )
    n = time // chunk_size

    def split(a):  # [B, T, ...] -> [n, B, k, ...]
        a = a.reshape(a.shape[0], n, chunk_size, *a.shape[2:])
        return jnp.moveaxis(a, 1, 0)

    chunks = jax.tree.map(split, sequences)
    starts = jnp.arange(n, dtype=jnp.int32) * chunk_size
    fn = jax.checkpoint(chunk_loss) if remat else chunk_loss

    def body(carry, inputs):
        start, chunk = inputs
        loss, carry = fn(params, jax.lax.stop_gradient(carry), chunk, start)
        return carry, loss

    # A scan over chunks (not time steps): each iteration runs the model's own
    # scan over k steps.
    carry, losses = jax.lax.scan(body, carry0, (starts, chunks))
    return losses.sum(), carry
