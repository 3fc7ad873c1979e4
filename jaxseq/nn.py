"""Stateless helpers around the recurrent layers: masks, pooling, dropout.

All functions are pure, take batch-major ``[B, T, ...]`` arrays and per-sequence
``lengths`` ``[B]`` (right padding), and work under ``jax.jit``.

Lengths are checked as the runners check them: an integer dtype and shape
``[B]`` always (at trace time, ``TypeError`` / ``ValueError``), and values in
``[0, T]`` when they are concrete (``ValueError`` naming the first bad entry).
Traced values (inside ``jax.jit``) cannot be checked; there a length outside
``[0, T]`` behaves as if clipped to that range, like in the runners.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_lengths


def _as_array(lengths: Any) -> Any:
    # Python lists and scalars have no dtype for the checks to read.
    if isinstance(lengths, jax.Array | np.ndarray):
        return lengths
    return np.asarray(lengths)


def mask_from_lengths(lengths: jax.Array, time: int) -> jax.Array:
    """Boolean ``[B, T]`` mask, ``True`` at valid steps ``t < lengths[b]``.

    Any integer value is a valid bound here: a length above ``T`` gives an
    all-``True`` row and a negative one an all-``False`` row (the mask of the
    length clipped to ``[0, T]``). The pooling functions below, which divide
    by or index with the length, refuse such values when they are concrete.

    Raises:
        TypeError: when ``lengths`` is not an integer array.
        ValueError: when ``lengths`` is not 1-D or ``time`` is not an int >= 0.
    """
    if not isinstance(time, int | np.integer) or isinstance(time, bool) or time < 0:
        raise ValueError(f"time: expected an int >= 0, got {time!r}.")
    lengths = _as_array(lengths)
    if np.ndim(lengths) != 1:
        raise ValueError(
            f"lengths: expected shape (B,) (one length per sequence), got shape "
            f"{tuple(np.shape(lengths))}."
        )
    dtype = jnp.result_type(lengths)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"lengths: expected an integer dtype, got {dtype}.")
    return jnp.arange(time)[None, :] < jnp.asarray(lengths)[:, None]


def _checked(ys: jax.Array, lengths: Any) -> jax.Array | None:
    """``lengths`` checked against ``ys`` ``[B, T, ...]`` and clipped to
    ``[0, T]`` (a no-op unless traced values are out of range)."""
    if np.ndim(ys) < 2:
        raise ValueError(
            f"ys: expected rank >= 2 ([B, T, ...]), got shape {tuple(np.shape(ys))}."
        )
    if lengths is None:
        return None
    batch, time = np.shape(ys)[:2]
    return jnp.clip(check_lengths(_as_array(lengths), batch, time), 0, time)


def _valid(ys: jax.Array, lengths: jax.Array) -> jax.Array:
    """The mask of valid steps, shaped to broadcast against ``ys``."""
    mask = mask_from_lengths(lengths, ys.shape[1])
    return mask.reshape(mask.shape + (1,) * (ys.ndim - 2))


def masked_mean(ys: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
    """Mean of ``ys`` ``[B, T, ...]`` over the valid steps -> ``[B, ...]``.

    Keras' ``GlobalAveragePooling1D`` with a mask. A sequence of length 0 gives
    zeros (not NaN).

    Raises:
        TypeError: for non-integer ``lengths``.
        ValueError: for ``ys`` of rank < 2, ``lengths`` not of shape ``[B]``, or
            concrete lengths outside ``[0, T]``.
    """
    lengths = _checked(ys, lengths)
    if lengths is None:
        return ys.mean(axis=1)
    total = jnp.where(_valid(ys, lengths), ys, jnp.zeros_like(ys)).sum(axis=1)
    count = jnp.maximum(lengths, 1).astype(ys.dtype)
    return total / count.reshape(count.shape + (1,) * (total.ndim - 1))


def masked_max(ys: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
    """Max of ``ys`` ``[B, T, ...]`` over the valid steps -> ``[B, ...]`` (zeros
    when a sequence is empty). Raises as :func:`masked_mean`."""
    lengths = _checked(ys, lengths)
    if lengths is None:
        return ys.max(axis=1)
    out = jnp.where(_valid(ys, lengths), ys, jnp.full_like(ys, -jnp.inf)).max(axis=1)
    return jnp.where(jnp.isfinite(out), out, jnp.zeros_like(out))


def last_valid(ys: jax.Array, lengths: jax.Array | None = None) -> jax.Array:
    """Output at each sequence's last valid step ``ys[b, lengths[b] - 1]`` ->
    ``[B, ...]`` (zeros for an empty sequence). For a forward layer this equals
    the final carry's ``h``. Raises as :func:`masked_mean`."""
    lengths = _checked(ys, lengths)
    if lengths is None:
        return ys[:, -1]
    idx = jnp.maximum(lengths - 1, 0)
    out = jnp.take_along_axis(ys, idx.reshape((-1,) + (1,) * (ys.ndim - 1)), axis=1)
    nonempty = (lengths > 0).reshape((-1,) + (1,) * (ys.ndim - 2))
    return jnp.where(nonempty, out[:, 0], jnp.zeros_like(out[:, 0]))


def dropout(key: jax.Array, rate: float, x: jax.Array) -> jax.Array:
    """Inverted dropout: zero each entry with probability ``rate`` and scale the
    rest by ``1 / (1 - rate)``, so the expectation is unchanged."""
    if (
        not isinstance(rate, int | float | np.floating | np.integer)
        or isinstance(rate, bool)
        or not 0.0 <= rate < 1.0
    ):
        raise ValueError(f"rate: expected a dropout rate in [0, 1), got {rate!r}.")
    if rate == 0.0:
        return x
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))
