"""The fused runner: a whole sequence with a hand-written backward pass.

Autodiff through ``lax.scan`` accumulates the weight gradients inside the reverse
loop: at every step it forms ``x_t^T d_t`` and ``h_{t-1}^T d_t`` (small matmuls with
the batch as inner dimension) and adds them to a carried ``[F, G]``/``[H, G]``
accumulator. Here, as in cuDNN, the reverse loop carries only the gradient of the
recurrent state and emits the pre-activation gradients ``d_t``; the weight and input
gradients are then a few large matmuls over all ``T * B`` rows at once:

    dW_x = X^T D,   dW_h = H_prev^T D,   db = sum D,   dX = D W_x^T.

A cell opts in by giving its :class:`~jaxseq.cells.Cell` a :class:`SequenceKernel`
written against a :class:`~jaxseq._layout.Layout`, so that the same code runs with
the batch as rows (batch-major) or as columns (feature-major) of every step's
arrays; which one is faster depends on the sizes (benchmarks/results/speed.md).
The masking for ``lengths`` (one helper with the reference runner,
:mod:`jaxseq._loop`) and the two directions are handled here, with the same
semantics as the reference runner (``_runner.py``), which the tests compare
against, gradients included.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._layout import Layout
from ._loop import (
    Keep,
    from_blocks,
    masked_step,
    n_blocks,
    padded_lengths,
    to_blocks,
    where_tree,
)
from ._plan import Tuning


class SequenceKernel(NamedTuple):
    """A cell's step and its hand-differentiated form for the fused runner.

    Every function takes the :class:`~jaxseq._layout.Layout` first and the
    parameters after ``layout.prepare``; arrays are one step of a batch in that
    layout (e.g. ``x`` ``[B, F]`` or ``[F, B]``).

    Attributes:
        equations: ``equations(lay, params, carry, x) -> (carry, y)``: the step
            (the cell's ``step`` is ``equations`` in the batch-major layout).
        project: ``project(lay, params, x) -> ax``: the input side of the
            pre-activation, ``x W_x (+ input bias)``.
        forward: ``forward(lay, params, carry, ax) -> (carry, y, res)``: one step
            given the projected input; ``res`` is what ``backward`` needs.
        backward: ``backward(lay, params_t, res, carry_prev, dcarry) -> (dcarry_prev,
            dpre)``: gradient of the step w.r.t. the incoming carry and the
            pre-activations ``dpre`` (a pytree the cell chooses); ``params_t`` are
            the parameters after ``layout.prepare_t``, for ``lay.mm_t`` and
            ``lay.cols_t``.
        grads: ``grads(lay, params, xs, carry_prevs, res, dpre) -> (dparams,
            dxs)``: parameter gradients (in the parameters' own orientation) and
            input gradients from all steps at once (arrays stacked over time).
        tuning: the kernel's measured CPU preferences for ``impl="auto"``
            (:class:`~jaxseq._plan.Tuning`; default: the generic ones). The plan
            depends on the kernel, never on the cell's name.
    """

    equations: Callable[..., tuple[Any, jax.Array]]
    project: Callable[..., jax.Array]
    forward: Callable[..., tuple[Any, jax.Array, Any]]
    backward: Callable[..., tuple[Any, Any]]
    grads: Callable[..., tuple[Any, jax.Array]]
    tuning: Tuning = Tuning()


def _keep(lay: Layout, mask: jax.Array) -> Keep:
    """A ``[B]`` step mask as :mod:`jaxseq._loop` takes it, for arrays in ``lay``
    (every carry leaf and the output have the batch on the same axis)."""
    keep = lay.keep(mask)
    return lambda _: keep


def _forward_only(kernel, lay, params, carry0, xs, valid, *, reverse, unroll, hoist):
    """The primal loop (no residuals). ``xs`` ``[T, B, F]``, carry ``[B, ...]``.
    ``hoist``: the input projection for all steps first, then ``kernel.forward``
    (its residuals unused, so XLA drops them) on each projected step."""
    seq = lay.steps(xs)
    if hoist:
        seq = kernel.project(lay, params, seq)

        def step(carry, ax):
            return kernel.forward(lay, params, carry, ax)[:2]
    else:
        step = partial(kernel.equations, lay, params)

    def body(carry, inp):
        x, m = inp
        new, y = step(carry, x)
        if m is None:
            return new, y
        return masked_step(_keep(lay, m), new, carry, y)

    carry, ys = jax.lax.scan(
        body,
        lay.carry(carry0),
        (seq, valid),
        reverse=reverse,
        unroll=unroll,
    )
    return lay.carry(carry), lay.steps(ys)


def _forward(kernel, lay, params, carry0, xs, valid, *, reverse, unroll, hoist):
    """The loop over time for the backward pass: ``(carry, ys, saved)``, where
    ``saved`` holds each step's incoming carry and residuals. Arrays in ``lay``."""
    seq = kernel.project(lay, params, xs) if hoist else xs

    def body(carry, inp):
        x, m = inp
        ax = x if hoist else kernel.project(lay, params, x)
        new, y, res = kernel.forward(lay, params, carry, ax)
        if m is not None:
            new, y = masked_step(_keep(lay, m), new, carry, y)
        return new, (y, (carry, res))

    carry, (ys, saved) = jax.lax.scan(
        body, carry0, (seq, valid), reverse=reverse, unroll=unroll
    )
    return carry, ys, saved


def _backward(kernel, lay, params, xs, valid, saved, dcarry, dys, *, reverse, unroll):
    """The reverse loop carrying only the state's gradient, then the large
    matmuls: ``(dparams, dcarry0, dxs)``. Arrays in ``lay``; ``params`` as given
    to ``fused_rnn`` (not yet prepared)."""
    carry_prevs, res = saved
    params_t = lay.prepare_t(params)
    params = lay.prepare(params)

    def body(dcarry, inp):
        dy, m, carry_prev, r = inp
        dnew = dcarry
        if m is not None:  # the forward's masking, transposed
            zeros = jax.tree.map(jnp.zeros_like, dcarry)
            dnew, dy = masked_step(_keep(lay, m), dcarry, zeros, dy)
        dnew = dnew._replace(h=dnew.h + dy)
        dprev, dpre = kernel.backward(lay, params_t, r, carry_prev, dnew)
        if m is not None:  # padded steps pass the carry's gradient straight through
            dprev = where_tree(_keep(lay, m), dprev, dcarry)
        return dprev, dpre

    dcarry0, dpre = jax.lax.scan(
        body, dcarry, (dys, valid, carry_prevs, res), reverse=not reverse, unroll=unroll
    )
    dparams, dxs = kernel.grads(lay, params, xs, carry_prevs, res, dpre)
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
    layout: Layout,
    primal_layout: Layout,
    remat: int | None = None,
    reference: Callable[..., tuple[Any, jax.Array]] | None = None,
    primal_unroll: int | bool | None = None,
    primal_hoist: bool | None = None,
) -> tuple[Any, jax.Array]:
    """Run a kernel over time-major ``xs`` ``[T, B, F]``; returns ``(carry, ys)``
    with carry leaves ``[B, ...]`` and ``ys`` ``[T, B, H]``.

    Semantics as :func:`jaxseq.rnn` (masking with ``lengths``, ``reverse`` within
    each length). ``layout`` is the layout of the loops that feed the backward
    pass, ``primal_layout`` that of a forward-only call (they are chosen
    separately: the fastest forward is not always the layout of the fastest
    backward). ``hoist`` computes the input projection for all steps before the
    loop. ``remat=k`` keeps only the carry at every k-th step for the backward pass
    and recomputes each block of k steps from it (gradient checkpointing): memory
    ``O(T/k + k)`` steps instead of ``O(T)``, for about one extra forward pass.
    With ``reference(params, carry0, xs, lengths)`` given, every derivative is
    JAX's autodiff of that reference loop instead of the kernel's backward (at
    tiny sizes the fused kernel's large matmuls have nothing to amortise), while a
    forward-only call still runs the primal loop; it is a ``custom_jvp``, so
    forward mode works too (``remat`` is then the reference's to apply). Without
    it the kernel's backward is a ``custom_vjp``: reverse mode only.
    ``primal_unroll`` and ``primal_hoist`` (defaults: ``unroll``, ``hoist``) are
    the unroll and the hoisting of that forward-only loop.
    """
    time, batch = xs.shape[0], xs.shape[1]
    lengths = padded_lengths(lengths, time, batch, remat)
    masked = lengths is not None
    opts = dict(reverse=reverse, unroll=unroll)
    lay = layout

    def mask(lengths, steps):
        if not masked:
            return None
        return jnp.arange(steps, dtype=lengths.dtype)[:, None] < lengths[None, :]

    primal_opts = dict(opts, unroll=unroll if primal_unroll is None else primal_unroll)
    primal_hoist = hoist if primal_hoist is None else primal_hoist

    def primal(params, carry0, xs, valid):
        p = primal_layout.prepare(params)
        return _forward_only(
            kernel,
            primal_layout,
            p,
            carry0,
            xs,
            valid,
            hoist=primal_hoist,
            **primal_opts,
        )

    def forward(params, carry0, xs, valid):
        """Forward in ``lay`` with residuals: (carry [B,..], ys [T,B,H], saved)."""
        p = lay.prepare(params)
        carry, ys, saved = _forward(
            kernel, lay, p, lay.carry(carry0), lay.steps(xs), valid, hoist=hoist, **opts
        )
        return lay.carry(carry), lay.steps(ys), saved

    def backward(params, xs, valid, saved, dcarry, dys):
        dparams, dcarry0, dxs = _backward(
            kernel, lay, params, lay.steps(xs), valid, saved, lay.carry(dcarry),
            lay.steps(dys), **opts,
        )  # fmt: skip
        return dparams, lay.carry(dcarry0), lay.steps(dxs)

    if reference is not None:
        # A custom_jvp, not a custom_vjp: the forward-only call runs the primal
        # loop, and every derivative (jvp, jacfwd, grad, hessian, also under jit)
        # is JAX's autodiff of the reference loop, which computes the same function.
        @jax.custom_jvp
        def fused(params, carry0, xs, lengths):
            return primal(params, carry0, xs, mask(lengths, time))

        @fused.defjvp
        def fused_jvp(primals, tangents):
            params, carry0, xs, lengths = primals
            dparams, dcarry0, dxs, _ = tangents

            def ref(p, c, x):
                return reference(p, c, x, lengths)

            return jax.jvp(ref, (params, carry0, xs), (dparams, dcarry0, dxs))

        return fused(params, carry0, xs, lengths)
    if remat is None:

        @jax.custom_vjp
        def fused(params, carry0, xs, lengths):
            return primal(params, carry0, xs, mask(lengths, time))

        def fwd(params, carry0, xs, lengths):
            valid = mask(lengths, time)
            carry, ys, saved = forward(params, carry0, xs, valid)
            return (carry, ys), (params, xs, valid, saved)

        def bwd(residuals, cotangents):
            params, xs, valid, saved = residuals
            return (*backward(params, xs, valid, saved, *cotangents), None)

        fused.defvjp(fwd, bwd)
        return fused(params, carry0, xs, lengths)
    return _blocked(primal, forward, backward, params, carry0, xs, lengths, mask,
                    remat, reverse)  # fmt: skip


def _blocked(primal, forward, backward, params, carry0, xs, lengths, mask, block,
             reverse):  # fmt: skip
    """Gradient checkpointing over blocks of ``block`` steps (see fused_rnn)."""
    time = xs.shape[0]
    n = n_blocks(time, block)

    def block_mask(lengths):
        valid = mask(lengths, n * block)
        return None if valid is None else valid.reshape((n, block, -1))

    def run_blocks(params, carry0, xs_b, valid_b):
        def outer(carry, inp):
            x, m = inp
            new, ys = primal(params, carry, x, m)
            return new, (ys, carry)

        return jax.lax.scan(outer, carry0, (xs_b, valid_b), reverse=reverse)

    @jax.custom_vjp
    def fused(params, carry0, xs_b, lengths):
        carry, (ys, _) = run_blocks(params, carry0, xs_b, block_mask(lengths))
        return carry, ys

    def fwd(params, carry0, xs_b, lengths):
        valid_b = block_mask(lengths)
        carry, (ys, starts) = run_blocks(params, carry0, xs_b, valid_b)
        return (carry, ys), (params, xs_b, valid_b, starts)

    def bwd(residuals, cotangents):
        params, xs_b, valid_b, starts = residuals
        dcarry, dys = cotangents

        def outer(acc, inp):
            dcarry, dparams = acc
            x, m, start, dy = inp
            _, _, saved = forward(params, start, x, m)
            dp, dcarry, dx = backward(params, x, m, saved, dcarry, dy)
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
    carry, ys = fused(params, carry0, to_blocks(xs, block), lengths)
    return carry, from_blocks(ys, time)
