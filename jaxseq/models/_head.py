"""Pieces shared by the models: the embedding table, pooling over valid steps,
and the dense readout (Flax Linen ``Dense`` layers with Keras' initialisers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from .. import nn as jnn

#: Keras' default kernel initialiser for ``Dense`` and ``Conv1D``.
GLOROT_UNIFORM = jax.nn.initializers.glorot_uniform()

POOLS = ("mean", "max", "mean_max", "last")


class Head(nn.Module):
    """``Dense(units[0], relu) -> ... -> Dense(1)``: features ``[B, F]`` -> logits
    ``[B]``. Kernels Glorot-uniform and biases zero (Keras' defaults)."""

    units: Sequence[int] = ()

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, size in enumerate(self.units):
            x = nn.relu(
                nn.Dense(size, kernel_init=GLOROT_UNIFORM, name=f"dense_{i}")(x)
            )
        out = nn.Dense(1, kernel_init=GLOROT_UNIFORM, name=f"dense_{len(self.units)}")
        return out(x)[:, 0]


def head_init(key: jax.Array, units: Sequence[int], in_features: int) -> Any:
    """Parameters of :class:`Head` for ``in_features`` inputs."""
    return Head(tuple(units)).init(key, jnp.zeros((1, in_features)))["params"]


def head_apply(units: Sequence[int], params: Any, x: jax.Array) -> jax.Array:
    """Apply :class:`Head` (``x`` ``[B, F]`` -> ``[B]``)."""
    return Head(tuple(units)).apply({"params": params}, x)


def pool(
    kind: str, ys: jax.Array, lengths: jax.Array, last: jax.Array | None = None
) -> jax.Array:
    """Pool ``ys`` ``[B, T, H]`` over each sequence's valid steps -> ``[B, H']``.

    ``"mean"`` (Keras ``GlobalAveragePooling1D`` with a mask), ``"max"``,
    ``"mean_max"`` (both, concatenated) or ``"last"`` (``last``, the final
    state ``[B, H']`` the caller passes).
    """
    if kind == "mean":
        return jnn.masked_mean(ys, lengths)
    if kind == "max":
        return jnn.masked_max(ys, lengths)
    if kind == "mean_max":
        return jnp.concatenate(
            [jnn.masked_mean(ys, lengths), jnn.masked_max(ys, lengths)], axis=-1
        )
    if kind == "last" and last is not None:
        return last
    raise ValueError(f"pool: expected one of {POOLS}, got {kind!r}.")


def pooled_size(kind: str, size: int) -> int:
    """Feature size after :func:`pool` of ``size`` features."""
    if kind not in POOLS:
        raise ValueError(f"pool: expected one of {POOLS}, got {kind!r}.")
    return 2 * size if kind == "mean_max" else size


def maybe_dropout(key: jax.Array | None, rate: float, x: jax.Array) -> jax.Array:
    """Inverted dropout when ``key`` is given (training), identity otherwise."""
    if key is None or rate == 0.0:
        return x
    return jnn.dropout(key, rate, x)


def split_key(key: jax.Array | None, num: int) -> list[jax.Array | None]:
    """``num`` keys from ``key``, or ``num`` ``None`` (inference)."""
    if key is None:
        return [None] * num
    return list(jax.random.split(key, num))
