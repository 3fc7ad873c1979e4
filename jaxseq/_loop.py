"""What every loop over time shares: length masking of a step, carry resets at
segment starts, and the blocks of gradient checkpointing (``remat``). Used by the
reference runner (:mod:`jaxseq._runner`) and the fused one (:mod:`jaxseq._fused`),
forward and backward, so the semantics are written once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

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


class Resets(NamedTuple):
    """Where a loop restarts the carry, and what it restarts it to.

    Attributes:
        at: ``[T, B]`` bool, time-major, in the input's time index: true where
            the carry entering step ``t`` (in the loop's own order, so for a
            reverse loop the step after ``t + 1``) is replaced by ``carry``
            (:func:`restart_points` makes it from the user's ``resets``).
        carry: the carry restarted to, leaves ``[B, ...]`` (the cell's
            ``init_carry`` broadcast over the batch); an input of the loop, so
            its gradient (e.g. a learned initial state's) is returned like
            ``carry0``'s.
    """

    at: jax.Array
    carry: Any


def restart_points(
    resets: jax.Array, lengths: jax.Array | None, reverse: bool
) -> jax.Array:
    """``[B, T]`` segment starts -> ``[T, B]`` restart points of a loop.

    ``resets[b, t]`` true starts a new segment at step ``t``: each segment is
    run from the initial carry, as if it were a sequence of its own. A forward
    loop restarts before step ``t``; a reverse loop, which enters a segment at
    its last step, restarts before step ``t - 1`` (so ``resets[:, 0]`` matters to
    a forward loop only). Flags at padded steps (``t >= lengths[b]``) are
    ignored, as padding never touches the carry.
    """
    at = jnp.asarray(resets, bool)
    if lengths is not None:
        steps = jnp.arange(at.shape[1], dtype=jnp.result_type(lengths))
        at = at & (steps[None, :] < lengths[:, None])
    if reverse:  # segment [s, e) is entered at e - 1, where segment e starts
        at = jnp.concatenate([at[:, 1:], jnp.zeros_like(at[:, :1])], axis=1)
    return at.T


def restart(keep: Keep, carry: Any, fresh: Any) -> Any:
    """The carry entering a step: ``fresh`` where ``keep`` (a restart point),
    else ``carry``. Apply before the step, and :func:`masked_step` after it with
    the carry from *before* the restart as ``old``."""
    return where_tree(keep, fresh, carry)


def restart_transpose(keep: Keep, dcarry_in: Any) -> tuple[Any, Any]:
    """The gradient of :func:`restart`: the cotangent of the carry that entered
    the step is split into ``(dcarry, dfresh)``; a restart sends it to
    ``fresh`` and stops it from reaching the earlier steps."""
    zeros = jax.tree.map(jnp.zeros_like, dcarry_in)
    return where_tree(keep, zeros, dcarry_in), where_tree(keep, dcarry_in, zeros)


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
