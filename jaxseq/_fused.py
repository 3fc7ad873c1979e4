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
    """

    project: Callable[[Any, jax.Array], jax.Array]
    forward: Callable[[Any, Any, jax.Array], tuple[Any, jax.Array, Any]]
    backward: Callable[[Any, Any, Any, Any], tuple[Any, Any]]
    grads: Callable[[Any, jax.Array, Any, Any, Any], tuple[Any, jax.Array]]


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
) -> tuple[Any, jax.Array]:
    """Run a kernel over time-major ``xs`` ``[T, B, F]``; returns ``(carry, ys)``.

    Semantics as :func:`jaxseq.rnn` (masking with ``lengths``, ``reverse`` within
    each length). ``hoist`` computes the input projection for all steps before the
    loop (one large matmul) instead of inside it.
    """
    time = xs.shape[0]
    masked = lengths is not None

    def run(params, carry0, xs, lengths, save):
        valid = (
            jnp.arange(time, dtype=lengths.dtype)[:, None] < lengths[None, :]
            if masked
            else None
        )
        seq = kernel.project(params, xs) if hoist else xs

        def body(carry, inp):
            x, m = inp
            ax = x if hoist else kernel.project(params, x)
            new, y, res = kernel.forward(params, carry, ax)
            if masked:
                new = _where(m, new, carry)
                y = jnp.where(m[:, None], y, jnp.zeros_like(y))
            return new, (y, (carry, res) if save else None)

        carry, (ys, saved) = jax.lax.scan(
            body, carry0, (seq, valid), reverse=reverse, unroll=unroll
        )
        return (carry, ys), (valid, saved)

    @jax.custom_vjp
    def fused(params, carry0, xs, lengths):
        return run(params, carry0, xs, lengths, save=False)[0]

    def fwd(params, carry0, xs, lengths):
        out, (valid, saved) = run(params, carry0, xs, lengths, save=True)
        return out, (params, xs, valid, saved)

    def bwd(residuals, cotangents):
        params, xs, valid, (carry_prevs, res) = residuals
        dcarry_last, dys = cotangents

        def body(dcarry, inp):
            dy, m, carry_prev, r = inp
            if masked:
                dnew = _where(m, dcarry, jax.tree.map(jnp.zeros_like, dcarry))
                dy = jnp.where(m[:, None], dy, jnp.zeros_like(dy))
            else:
                dnew = dcarry
            dnew = dnew._replace(h=dnew.h + dy)
            dprev, dpre = kernel.backward(params, r, carry_prev, dnew)
            if masked:  # padded steps pass the carry's gradient straight through
                dprev = _where(m, dprev, dcarry)
            return dprev, dpre

        dcarry0, dpre = jax.lax.scan(
            body,
            dcarry_last,
            (dys, valid, carry_prevs, res),
            reverse=not reverse,
            unroll=unroll,
        )
        dparams, dxs = kernel.grads(params, xs, carry_prevs, res, dpre)
        return dparams, dcarry0, dxs, None

    fused.defvjp(fwd, bwd)
    return fused(params, carry0, xs, lengths)
