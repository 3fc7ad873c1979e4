"""What every loop over time shares: length masking of a step and the blocks of
gradient checkpointing (``remat``). Used by the reference runner
(:mod:`jaxseq._runner`) and the fused one (:mod:`jaxseq._fused`), forward and
backward, so the semantics are written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

#: ``keep(leaf) -> mask``: the ``[B]`` validity mask of a step, broadcastable to
#: ``leaf`` (a carry leaf or the output, in the loop's layout)
Keep = Callable[[jax.Array], jax.Array]


def where_tree(keep: Keep, a: Any, b: Any) -> Any:
    """Leaf-wise ``where(keep, a, b)`` over two pytrees of one step's arrays."""
    return jax.tree.map(lambda x, y: jnp.where(keep(x), x, y), a, b)


def masked_step(keep: Keep, new: Any, old: Any, y: jax.Array) -> tuple[Any, jax.Array]:
    """One step under ``lengths``: a padded step (``keep`` false) leaves the carry
    ``old`` unchanged and outputs zeros. Returns ``(carry, y)``.

    The backward loop applies the same rule to cotangents: with ``new`` the
    incoming carry gradient and ``old`` zeros, a padded step sends no gradient
    into the step and drops the output's.
    """
    return where_tree(keep, new, old), jnp.where(keep(y), y, jnp.zeros_like(y))


def padded_lengths(
    lengths: jax.Array | None, time: int, batch: int, block: int | None
) -> jax.Array | None:
    """``lengths``, or full lengths ``[B]`` when blocks of ``block`` steps pad the
    tail of a sequence given without lengths (so the padded steps are masked)."""
    if block is not None and time % block and lengths is None:
        return jnp.full((batch,), time, jnp.int32)
    return lengths


def n_blocks(time: int, block: int) -> int:
    """Blocks of ``block`` steps covering ``time`` steps (the last one padded)."""
    return -(-time // block)


def to_blocks(a: jax.Array, block: int) -> jax.Array:
    """``[T, ...] -> [n_blocks, block, ...]``, the tail padded with zeros."""
    n = n_blocks(a.shape[0], block)
    a = jnp.pad(a, [(0, n * block - a.shape[0])] + [(0, 0)] * (a.ndim - 1))
    return a.reshape((n, block, *a.shape[1:]))


def from_blocks(a: jax.Array, time: int) -> jax.Array:
    """``[n_blocks, block, ...] -> [time, ...]``: the inverse of :func:`to_blocks`."""
    return a.reshape((a.shape[0] * a.shape[1], *a.shape[2:]))[:time]
