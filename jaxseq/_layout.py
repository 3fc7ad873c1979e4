"""Memory layouts of a batch inside the time loop.

Each cell's equations and hand-written backward pass are written once against a
:class:`Layout`, which supplies the few operations whose form depends on where the
batch axis sits:

- ``BATCH_MAJOR``: ``x_t`` ``[B, F]``, carry leaves ``[B, H]``, kernels ``[K, G]``.
  The cell API (a single example is the case ``B`` absent), and the layout in
  which the per-step matmuls have the batch as their rows.
- ``FEATURE_MAJOR``: ``x_t`` ``[F, B]``, carry leaves ``[H, B]``, kernels stored
  transposed ``[G, K]`` (``prepare``). Every gate block is then a contiguous
  ``[H, B]`` slab, so the elementwise gate arithmetic vectorises along the batch
  even when ``H`` is tiny (measured much faster on CPU for ``H = 4``, the seed's
  IMDb lab model; see benchmarks/results/speed.md).

``feature_mean`` and ``scale`` (a layer norm's statistics and gain) accept one
step or arrays stacked over time alike: the feature axis is the last axis
batch-major and the second-to-last feature-major.

Sequence-level operations (``gram``, ``bsum``, ``seq_mm_t``) act on arrays stacked
over time by ``lax.scan`` (``[T, B, K]`` or ``[T, K, B]``) and give results in the
parameters' own orientation, so gradients come out the same in both layouts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


def add_bias(z: jax.Array, b: jax.Array) -> jax.Array:
    """``z + b`` with ``b`` ``[G]`` broadcast explicitly over ``z``'s leading axes,
    so a batched call works under ``jax_numpy_rank_promotion="raise"``."""
    return z + b.reshape((1,) * (z.ndim - 1) + b.shape)


def _flat(a: jax.Array) -> jax.Array:
    return a.reshape((a.shape[0] * a.shape[1], *a.shape[2:]))


def _gram_fm(a: jax.Array, d: jax.Array) -> jax.Array:
    """``sum_{t,b} a[t, :, b] d[t, :, b]^T`` for time-stacked feature-major arrays.

    XLA's CPU dot is slow when it contracts two non-adjacent axes at once (measured
    8x slower here), so: a batched matmul over ``t`` then a sum when the
    ``[T, K, G]`` intermediate is small (the small-``H`` case this layout is for),
    else one transpose to ``[K, T*B]`` and a single large matmul.
    """
    t, k, b = a.shape
    g = d.shape[1]
    if t * k * g <= 1 << 22:
        return jnp.einsum("tkb,tgb->tkg", a, d).sum(axis=0)
    return (
        jnp.swapaxes(a, 0, 1).reshape(k, t * b)
        @ jnp.swapaxes(d, 0, 1).reshape(g, t * b).T
    )


def _transposed(a: jax.Array) -> jax.Array:
    """``a.T`` for a 2-D kernel, materialised once before the backward loop.

    ``d @ w.T`` inside the loop is a dot contracting ``w``'s last axis, which XLA's
    CPU dot runs markedly slower than a plain ``d @ wt`` (measured: the LSTM's
    per-step ``[32, 512] x [512, 128]`` product 2.73 -> 2.13 ms over 100 steps,
    5.5 ms less per call at ``B=128, H=256``). The optimisation barrier keeps XLA
    from folding the transpose back into the dot.
    """
    return jax.lax.optimization_barrier(a.T) if a.ndim == 2 else a


class Layout(NamedTuple):
    """Layout-dependent operations (see the module docstring)."""

    name: str
    prepare: Callable[[Any], Any]  # params -> params in this layout (outside loops)
    mm: Callable[[jax.Array, jax.Array], jax.Array]  # (a, w) -> a W
    # the backward loop's params: kernels oriented so that mm_t is a plain matmul
    prepare_t: Callable[[Any], Any]
    mm_t: Callable[[jax.Array, jax.Array], jax.Array]  # (d, w from prepare_t) -> d W^T
    cols_t: Callable[[jax.Array, int, int], jax.Array]  # gate columns, prepare_t form
    split: Callable[[jax.Array, int], list[jax.Array]]  # gate blocks
    concat: Callable[[list[jax.Array]], jax.Array]  # inverse of split
    bias: Callable[[jax.Array, jax.Array], jax.Array]  # (z, b [G]) -> z + b
    cols: Callable[[jax.Array, int, int], jax.Array]  # gate columns of a kernel
    keep: Callable[[jax.Array], jax.Array]  # mask [B] -> broadcastable to a step
    batch: Callable[[jax.Array], int]  # B of one step's array ([B, K] or [K, B])
    steps: Callable[[jax.Array], jax.Array]  # [T, B, K] <-> this layout, both ways
    carry: Callable[[Any], Any]  # carry leaves [B, H] <-> this layout, both ways
    gram: Callable[[jax.Array, jax.Array], jax.Array]  # sum_{t,b} a d^T -> [K, G]
    bsum: Callable[[jax.Array], jax.Array]  # sum_{t,b} d -> [G]
    seq_mm_t: Callable[[jax.Array, jax.Array], jax.Array]  # stacked d W^T
    seq_split: Callable[[jax.Array, Any], list[jax.Array]]  # gate blocks, stacked
    # mean over the feature axis, kept as size 1: [..., B, G] -> [..., B, 1] or
    # [..., G, B] -> [..., 1, B] (one step or stacked over time)
    feature_mean: Callable[[jax.Array], jax.Array]
    scale: Callable[[jax.Array, jax.Array], jax.Array]  # (z, v [G]) -> z * v per unit


BATCH_MAJOR = Layout(
    name="batch_major",
    prepare=lambda p: p,
    mm=lambda a, w: a @ w,
    prepare_t=lambda p: jax.tree.map(_transposed, p),
    mm_t=lambda d, wt: d @ wt,
    cols_t=lambda wt, i, j: wt[i:j],
    split=lambda z, n: jnp.split(z, n, axis=-1),
    concat=lambda zs: jnp.concatenate(zs, axis=-1),
    bias=add_bias,
    cols=lambda w, i, j: w[:, i:j],
    keep=lambda m: m[:, None],
    batch=lambda a: a.shape[0],
    steps=lambda a: a,
    carry=lambda c: c,
    gram=lambda a, d: _flat(a).T @ _flat(d),
    bsum=lambda d: d.sum(axis=(0, 1)),
    seq_mm_t=lambda d, w: (_flat(d) @ w.T).reshape((*d.shape[:2], w.shape[0])),
    seq_split=lambda z, n: jnp.split(z, n, axis=-1),
    feature_mean=lambda a: jnp.mean(a, axis=-1, keepdims=True),
    scale=lambda z, v: z * v.reshape((1,) * (z.ndim - 1) + v.shape),
)

FEATURE_MAJOR = Layout(
    name="feature_major",
    prepare=lambda p: jax.tree.map(lambda a: a.T if a.ndim == 2 else a, p),
    mm=lambda a, wt: wt @ a,
    prepare_t=lambda p: p,
    mm_t=lambda d, w: w @ d,
    cols_t=lambda w, i, j: w[:, i:j],
    split=lambda z, n: jnp.split(z, n, axis=0),
    concat=lambda zs: jnp.concatenate(zs, axis=0),
    bias=lambda z, b: z + b[:, None],
    cols=lambda wt, i, j: wt[i:j],
    keep=lambda m: m[None, :],
    batch=lambda a: a.shape[-1],
    steps=lambda a: jnp.swapaxes(a, 1, 2),
    carry=lambda c: jax.tree.map(jnp.transpose, c),
    gram=_gram_fm,
    bsum=lambda d: d.sum(axis=(0, 2)),
    seq_mm_t=lambda d, wt: jnp.einsum("gk,tgb->tkb", wt, d),
    seq_split=lambda z, n: jnp.split(z, n, axis=1),
    feature_mean=lambda a: jnp.mean(a, axis=-2, keepdims=True),
    scale=lambda z, v: z * v.reshape((1,) * (z.ndim - 2) + (-1, 1)),
)
