"""The fused runner: a whole sequence with a hand-written backward pass.

Autodiff through ``lax.scan`` accumulates the weight gradients inside the reverse
loop: at every step it forms ``x_t^T d_t`` and ``h_{t-1}^T d_t`` (small matmuls with
the batch as inner dimension) and adds them to a carried ``[F, G]``/``[H, G]``
accumulator. Here, as in cuDNN, the reverse loop carries only the gradient of the
recurrent state and emits the pre-activation gradients ``d_t``; the weight and input
gradients are then a few large matmuls over all ``T * B`` rows at once:

    dW_x = X^T D,   dW_h = H_prev^T D,   db = sum D,   dX = D W_x^T.

A cell opts in by giving its :class:`~jaxseq.cells.Cell` a :class:`SequenceKernel`:
the forward step from a projected input, the backward step, and the final matmuls.
The masking for ``lengths`` and the two directions are handled here, once, with the
same semantics as the reference runner (``_runner.py``), which the tests compare
against, gradients included.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class SequenceKernel(NamedTuple):
    """A cell's batched, hand-differentiated step for the fused runner.

    All arrays are batched: ``x`` ``[B, F]``, carry leaves ``[B, H]``.

    Attributes:
        project: ``project(params, x) -> ax``: the input side of the pre-activation,
            ``x W_x (+ input bias)``; ``x`` may carry extra leading axes (hoisting).
        forward: ``forward(params, carry, ax) -> (carry, y, res)``: one step given
            the projected input; ``res`` is what ``backward`` needs from this step.
        backward: ``backward(params, res, carry_prev, dcarry) -> (dcarry_prev,
            dpre)``: gradient of the step w.r.t. the incoming carry and the
            pre-activations ``dpre`` (a pytree the cell chooses).
        grads: ``grads(params, xs, carry_prevs, res, dpre) -> (dparams, dxs)``:
            parameter and input gradients from all steps at once (``[T, B, ...]``).
        fm_step: ``fm_step(params, carry, x) -> (carry, y)``: the step in the
            feature-major layout (``x`` ``[F, B]``, carry leaves ``[H, B]``,
            parameters after ``layout.prepare``), used by the forward-only loop.
        layout: the :class:`~jaxseq.cells._base.Layout` of ``fm_step``.
    """

    project: Callable[[Any, jax.Array], jax.Array]
    forward: Callable[[Any, Any, jax.Array], tuple[Any, jax.Array, Any]]
    backward: Callable[[Any, Any, Any, Any], tuple[Any, Any]]
    grads: Callable[[Any, jax.Array, Any, Any, Any], tuple[Any, jax.Array]]
    fm_step: Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]]
    layout: Any


def flat(a: jax.Array) -> jax.Array:
    """``[T, B, ...]`` -> ``[T * B, ...]`` (rows of the final matmuls)."""
    return a.reshape((a.shape[0] * a.shape[1], *a.shape[2:]))


def input_grads(
    w_x: jax.Array, xs: jax.Array, dax: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(dW_x, db, dX)`` for ``ax = x W_x + b`` from ``dax`` ``[T, B, G]``."""
    d = flat(dax)
    dw_x = flat(xs).T @ d
    dxs = (d @ w_x.T).reshape(xs.shape)
    return dw_x, d.sum(axis=0), dxs


def _where(mask: jax.Array, a: Any, b: Any) -> Any:
    """Tree-wise ``where`` with a ``[B]`` mask over ``[B, ...]`` leaves."""
    return jax.tree.map(
        lambda x, y: jnp.where(mask.reshape((-1,) + (1,) * (x.ndim - 1)), x, y), a, b
    )


def _forward(kernel, params, carry0, xs, valid, *, reverse, unroll, hoist):
    """The loop over time for the backward pass: ``(carry, ys, saved)``, where
    ``saved`` holds each step's incoming carry and residuals."""
    seq = kernel.project(params, xs) if hoist else xs

    def body(carry, inp):
        x, m = inp
        ax = x if hoist else kernel.project(params, x)
        new, y, res = kernel.forward(params, carry, ax)
        if m is not None:
            new = _where(m, new, carry)
            y = jnp.where(m[:, None], y, jnp.zeros_like(y))
        return new, (y, (carry, res))

    carry, (ys, saved) = jax.lax.scan(
        body, carry0, (seq, valid), reverse=reverse, unroll=unroll
    )
    return carry, ys, saved


def _forward_only(kernel, params, carry0, xs, valid, *, reverse, unroll):
    """The primal loop (no residuals), feature-major: ``x_t`` ``[F, B]`` and carry
    leaves ``[H, B]``, so each gate block is contiguous along the batch. Measured
    faster than batch-major on CPU (benchmarks/results/speed.md)."""

    def body(carry, inp):
        x, m = inp
        new, y = kernel.fm_step(params, carry, x)
        if m is not None:
            keep = m[None, :]
            new = jax.tree.map(lambda a, b: jnp.where(keep, a, b), new, carry)
            y = jnp.where(keep, y, jnp.zeros_like(y))
        return new, y

    params = kernel.layout.prepare(params)  # transposed kernels, once per call
    carry_fm = jax.tree.map(jnp.transpose, carry0)
    carry, ys = jax.lax.scan(
        body, carry_fm, (jnp.swapaxes(xs, 1, 2), valid), reverse=reverse, unroll=unroll
    )
    return jax.tree.map(jnp.transpose, carry), jnp.swapaxes(ys, 1, 2)


def _backward(kernel, params, xs, valid, saved, dcarry, dys, *, reverse, unroll):
    """The reverse loop carrying only the state's gradient, then the large
    matmuls: ``(dparams, dcarry0, dxs)``."""
    carry_prevs, res = saved

    def body(dcarry, inp):
        dy, m, carry_prev, r = inp
        if m is not None:
            dnew = _where(m, dcarry, jax.tree.map(jnp.zeros_like, dcarry))
            dy = jnp.where(m[:, None], dy, jnp.zeros_like(dy))
        else:
            dnew = dcarry
        dnew = dnew._replace(h=dnew.h + dy)
        dprev, dpre = kernel.backward(params, r, carry_prev, dnew)
        if m is not None:  # padded steps pass the carry's gradient straight through
            dprev = _where(m, dprev, dcarry)
        return dprev, dpre

    dcarry0, dpre = jax.lax.scan(
        body, dcarry, (dys, valid, carry_prevs, res), reverse=not reverse, unroll=unroll
    )
    dparams, dxs = kernel.grads(params, xs, carry_prevs, res, dpre)
    return dparams, dcarry0, dxs


def fused_rnn(
    kernel: SequenceKernel,
    params: Any,
    carry0: Any,
    xs: jax.Array,
    lengths: jax.Array | None,
    *,
    reverse: bool,
    unroll: int | bool,
    hoist: bool,
    remat: int | None = None,
) -> tuple[Any, jax.Array]:
    """Run a kernel over time-major ``xs`` ``[T, B, F]``; returns ``(carry, ys)``.

    Semantics as :func:`jaxseq.rnn` (masking with ``lengths``, ``reverse`` within
    each length). ``hoist`` computes the input projection for all steps before the
    loop (one large matmul) instead of inside it. ``remat=k`` keeps only the carry
    at every k-th step for the backward pass and recomputes each block of k steps
    from it (gradient checkpointing): memory ``O(T/k + k)`` steps instead of
    ``O(T)``, for about one extra forward pass.
    """
    time, batch = xs.shape[0], xs.shape[1]
    if remat is not None and time % remat and lengths is None:
        lengths = jnp.full((batch,), time, jnp.int32)  # masks the padded tail
    masked = lengths is not None
    opts = dict(reverse=reverse, unroll=unroll)
    fwd_opts = dict(hoist=hoist, **opts)

    def mask(lengths, steps):
        if not masked:
            return None
        return jnp.arange(steps, dtype=lengths.dtype)[:, None] < lengths[None, :]

    if remat is None:

        @jax.custom_vjp
        def fused(params, carry0, xs, lengths):
            valid = mask(lengths, time)
            return _forward_only(kernel, params, carry0, xs, valid, **opts)

        def fwd(params, carry0, xs, lengths):
            valid = mask(lengths, time)
            carry, ys, saved = _forward(kernel, params, carry0, xs, valid, **fwd_opts)
            return (carry, ys), (params, xs, valid, saved)

        def bwd(residuals, cotangents):
            params, xs, valid, saved = residuals
            dcarry, dys = cotangents
            grads = _backward(kernel, params, xs, valid, saved, dcarry, dys, **opts)
            return (*grads, None)

        fused.defvjp(fwd, bwd)
        return fused(params, carry0, xs, lengths)
    return _blocked(kernel, params, carry0, xs, lengths, mask, remat, fwd_opts)


def _blocked(kernel, params, carry0, xs, lengths, mask, block, fwd_opts):
    """Gradient checkpointing over blocks of ``block`` steps (see fused_rnn)."""
    time = xs.shape[0]
    reverse, unroll = fwd_opts["reverse"], fwd_opts["unroll"]
    n_blocks = -(-time // block)
    pad = n_blocks * block - time

    def blocks(a):
        a = jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1))
        return a.reshape((n_blocks, block, *a.shape[1:]))

    def run_blocks(params, carry0, xs_b, valid_b):
        def outer(carry, inp):
            x, m = inp
            new, ys = _forward_only(
                kernel, params, carry, x, m, reverse=reverse, unroll=unroll
            )
            return new, (ys, carry)

        return jax.lax.scan(outer, carry0, (xs_b, valid_b), reverse=reverse)

    @jax.custom_vjp
    def fused(params, carry0, xs_b, lengths):
        carry, (ys, _) = run_blocks(params, carry0, xs_b, _block_mask(lengths))
        return carry, ys

    def _block_mask(lengths):
        valid = mask(lengths, n_blocks * block)
        return None if valid is None else valid.reshape((n_blocks, block, -1))

    def fwd(params, carry0, xs_b, lengths):
        valid_b = _block_mask(lengths)
        carry, (ys, starts) = run_blocks(params, carry0, xs_b, valid_b)
        return (carry, ys), (params, xs_b, valid_b, starts)

    def bwd(residuals, cotangents):
        params, xs_b, valid_b, starts = residuals
        dcarry, dys = cotangents

        def outer(acc, inp):
            dcarry, dparams = acc
            x, m, start, dy = inp
            _, _, saved = _forward(kernel, params, start, x, m, **fwd_opts)
            dp, dcarry, dx = _backward(
                kernel, params, x, m, saved, dcarry, dy, reverse=reverse, unroll=unroll
            )
            return (dcarry, jax.tree.map(jnp.add, dparams, dp)), dx

        zeros = jax.tree.map(jnp.zeros_like, params)
        (dcarry0, dparams), dxs = jax.lax.scan(
            outer,
            (dcarry, zeros),
            (xs_b, valid_b, starts, dys),
            reverse=not reverse,
        )
        return dparams, dcarry0, dxs, None

    fused.defvjp(fwd, bwd)
    carry, ys = fused(params, carry0, blocks(xs), lengths)
    return carry, ys.reshape((n_blocks * block, *ys.shape[2:]))[:time]
