"""Stateless helpers around the recurrent layers: masks, pooling, dropout.

All functions are pure, take batch-major ``[B, T, ...]`` arrays and per-sequence
``lengths`` ``[B]`` (right padding), and work under ``jax.jit``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def mask_from_lengths(lengths: jax.Array, time: int) -> jax.Array:
    """Boolean ``[B, T]`` mask, ``True`` at valid steps ``t < lengths[b]``."""
    return jnp.arange(time)[None, :] < jnp.asarray(lengths)[:, None]


def masked_mean(ys: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
    """Mean of ``ys`` ``[B, T, H]`` over the valid steps -> ``[B, H]``.

    Keras' ``GlobalAveragePooling1D`` with a mask. A sequence of length 0 gives
    zeros (not NaN).
    """
    if lengths is None:
        return ys.mean(axis=1)
    mask = mask_from_lengths(lengths, ys.shape[1])[..., None]
    total = jnp.where(mask, ys, jnp.zeros_like(ys)).sum(axis=1)
    count = jnp.maximum(jnp.asarray(lengths), 1).astype(ys.dtype)[:, None]
    return total / count


def masked_max(ys: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
    """Max of ``ys`` ``[B, T, H]`` over the valid steps -> ``[B, H]`` (zeros when
    a sequence is empty)."""
    if lengths is None:
        return ys.max(axis=1)
    mask = mask_from_lengths(lengths, ys.shape[1])[..., None]
    out = jnp.where(mask, ys, jnp.full_like(ys, -jnp.inf)).max(axis=1)
    return jnp.where(jnp.isfinite(out), out, jnp.zeros_like(out))


def last_valid(ys: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
    """Output at each sequence's last valid step ``ys[b, lengths[b] - 1]`` ->
    ``[B, H]`` (zeros for an empty sequence). For a forward layer this equals the
    final carry's ``h``."""
    if lengths is None:
        return ys[:, -1]
    lengths = jnp.asarray(lengths)
    idx = jnp.maximum(lengths - 1, 0)
    out = jnp.take_along_axis(ys, idx[:, None, None], axis=1)[:, 0]
    return jnp.where((lengths > 0)[:, None], out, jnp.zeros_like(out))


def dropout(key: jax.Array, rate: float, x: jax.Array) -> jax.Array:
    """Inverted dropout: zero each entry with probability ``rate`` and scale the
    rest by ``1 / (1 - rate)``, so the expectation is unchanged."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"rate: expected a dropout rate in [0, 1), got {rate!r}.")
    if rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))
