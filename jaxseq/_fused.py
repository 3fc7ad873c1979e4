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
The masking for ``lengths`` and the carry restarts of ``resets`` (helpers shared
with the reference runner, :mod:`jaxseq._loop`) and the two directions are
handled here, with the same semantics as the reference runner (``_runner.py``),
which the tests compare against, gradients included.
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
    Resets,
    from_blocks,
    masked_step,
    n_blocks,
    padded_lengths,
    restart,
    restart_transpose,
    to_blocks,
    where_tree,
)
from ._plan import Plan, Tuning


def add_output_grad(dcarry: Any, dy: jax.Array) -> Any:
    """The default :attr:`SequenceKernel.output_grad`: ``dy`` added to the gradient
    of ``carry.h``, the state a step outputs (``y = h_t``)."""
    return dcarry._replace(h=dcarry.h + dy)


class ProductSplit(NamedTuple):
    """A kernel's step with the input of the recurrent product ``h_{t-1} W_h``
    taken apart from the carry, as recurrent dropout needs it (it feeds the
    product ``hp = m * h_{t-1}``, :mod:`jaxseq.cells._dropout`). Arrays and
    parameters as for :class:`SequenceKernel`'s functions.

    Attributes:
        equations: ``equations(lay, params, carry, hp, x) -> (carry, y)``.
        forward: ``forward(lay, params, carry, hp, ax) -> (carry, y, res)``.
        backward: ``backward(lay, params_t, res, prev, hp, dcarry) -> (dprev,
            dhp, dpre)``: ``dprev`` the gradient of the incoming carry through
            its uses outside the product, ``dhp`` that of the product's input.

    The kernel's ``grads`` then receive the stacked incoming carries with ``h``
    replaced by ``hp``. A kernel whose step reads ``h_{t-1}`` only in the product
    needs none: :func:`product_split` derives it.
    """

    equations: Callable[..., tuple[Any, jax.Array]]
    forward: Callable[..., tuple[Any, jax.Array, Any]]
    backward: Callable[..., tuple[Any, jax.Array, Any]]


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
        output_grad: ``output_grad(dcarry, dy) -> dcarry``: the gradient ``dy`` of
            a step's output added to that of the carry leaf the output is
            (default :func:`add_output_grad`, ``dcarry.h``; a wrapper whose carry
            holds the cell's carry as a field, such as recurrent dropout's,
            routes it there).
        split: the kernel's :class:`ProductSplit`, for a step that reads
            ``h_{t-1}`` outside the recurrent product too (the GRU's ``z *
            h_{t-1}``); ``None``: derived where the cell reads it only there
            (:func:`product_split`), else no fused recurrent dropout.
        overwrite: where ``backward``'s ``dpre`` has the structure, shapes
            and dtypes of ``res`` (the kernel may return another form, e.g. at
            batch one), the reverse loop writes each step's ``dpre`` over that
            step's residuals (read just before, never again) instead of
            stacking it afresh: ``grads`` then receives the residual stacks
            overwritten (``res`` and ``dpre`` are the same arrays there), and
            the backward allocates no stacks of its own (see
            :func:`_backward` and :func:`_writes_over`).
    """

    equations: Callable[..., tuple[Any, jax.Array]]
    project: Callable[..., jax.Array]
    forward: Callable[..., tuple[Any, jax.Array, Any]]
    backward: Callable[..., tuple[Any, Any]]
    grads: Callable[..., tuple[Any, jax.Array]]
    tuning: Tuning = Tuning()
    output_grad: Callable[[Any, jax.Array], Any] = add_output_grad
    split: ProductSplit | None = None
    overwrite: bool = False


def product_split(
    kernel: SequenceKernel, h_only_in_product: bool
) -> ProductSplit | None:
    """``kernel.split``, or, for a cell whose step reads ``h_{t-1}`` only in the
    recurrent product (``h_only_in_product``), the split derived from the kernel
    itself: the product's input is then the carry's ``h``, and the gradient the
    kernel returns for ``h`` is the product input's (none reaches ``h`` apart).
    ``None`` for other kernels without one."""
    if kernel.split is not None or not h_only_in_product:
        return kernel.split

    def equations(lay, p, carry, hp, x):
        return kernel.equations(lay, p, carry._replace(h=hp), x)

    def forward(lay, p, carry, hp, ax):
        return kernel.forward(lay, p, carry._replace(h=hp), ax)

    def backward(lay, p, res, prev, hp, d):
        dprev, dpre = kernel.backward(lay, p, res, prev._replace(h=hp), d)
        return dprev._replace(h=jnp.zeros_like(hp)), dprev.h, dpre

    return ProductSplit(equations, forward, backward)


def _keep(lay: Layout, mask: jax.Array) -> Keep:
    """A ``[B]`` step mask as :mod:`jaxseq._loop` takes it, for arrays in ``lay``
    (every carry leaf and the output have the batch on the same axis)."""
    keep = lay.keep(mask)
    return lambda _: keep


def _enter(lay, carry, r, fresh):
    """The carry entering a step: restarted to ``fresh`` where ``r`` (``[B]``)."""
    return carry if r is None else restart(_keep(lay, r), carry, fresh)


def _forward_only(kernel, lay, params, carry0, xs, valid, at, fresh, *, reverse,
                  unroll, hoist):  # fmt: skip
    """The primal loop (no residuals). ``xs`` ``[T, B, F]``, carry ``[B, ...]``.
    ``hoist``: the input projection for all steps first, then ``kernel.forward``
    (its residuals unused, so XLA drops them) on each projected step. ``at``
    ``[T, B]`` and ``fresh`` (leaves ``[B, ...]``): the restarts, or ``None``."""
    seq = lay.steps(xs)
    fresh = None if fresh is None else lay.carry(fresh)
    if hoist:
        seq = kernel.project(lay, params, seq)

        def step(carry, ax):
            return kernel.forward(lay, params, carry, ax)[:2]
    else:
        step = partial(kernel.equations, lay, params)

    def body(carry, inp):
        x, m, r = inp
        new, y = step(_enter(lay, carry, r, fresh), x)
        if m is None:
            return new, y
        return masked_step(_keep(lay, m), new, carry, y)

    carry, ys = jax.lax.scan(
        body,
        lay.carry(carry0),
        (seq, valid, at),
        reverse=reverse,
        unroll=unroll,
    )
    return lay.carry(carry), lay.steps(ys)


def _forward(kernel, lay, params, carry0, xs, valid, at, fresh, *, reverse, unroll,
             hoist):  # fmt: skip
    """The loop over time for the backward pass: ``(carry, ys, saved)``, where
    ``saved`` holds each step's incoming carry (after a restart) and residuals.
    Arrays in ``lay``."""
    seq = kernel.project(lay, params, xs) if hoist else xs

    def body(carry, inp):
        x, m, r = inp
        ax = x if hoist else kernel.project(lay, params, x)
        prev = _enter(lay, carry, r, fresh)
        new, y, res = kernel.forward(lay, params, prev, ax)
        if m is not None:
            new, y = masked_step(_keep(lay, m), new, carry, y)
        return new, (y, (prev, res))

    carry, (ys, saved) = jax.lax.scan(
        body, carry0, (seq, valid, at), reverse=reverse, unroll=unroll
    )
    return carry, ys, saved


def _step_of(stacks: Any, t: jax.Array) -> Any:
    """Step ``t`` of arrays stacked over time (leading axis)."""
    return jax.tree.map(
        lambda a: jax.lax.dynamic_index_in_dim(a, t, keepdims=False), stacks
    )


def _overwrite_step(stacks: Any, step: Any, t: jax.Array) -> Any:
    """``stacks`` with step ``t`` replaced by ``step``."""
    return jax.tree.map(
        lambda a, d: jax.lax.dynamic_update_index_in_dim(a, d, t, 0), stacks, step
    )


def _writes_over(kernel, lay, params_t, res, carry_prevs, dcarry, unroll) -> bool:
    """Whether the reverse loop writes the kernel's pre-activation gradients
    over its residuals (:attr:`SequenceKernel.overwrite`): the kernel says so,
    its ``backward`` returns them with the residuals' structure, shapes and
    dtypes here (found by tracing it abstractly), and the loop runs one step
    per iteration (an unrolled one would read stacks it has just written within
    an iteration, where XLA copies them)."""
    if not kernel.overwrite or not (
        unroll is False or (unroll is not True and unroll == 1)
    ):
        return False
    step = partial(jax.tree.map, lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype))
    dpre = jax.eval_shape(
        partial(kernel.backward, lay), params_t, step(res), step(carry_prevs), dcarry
    )[1]
    shape = partial(jax.tree.map, lambda a: (a.shape, a.dtype))
    same_tree = jax.tree.structure(dpre) == jax.tree.structure(res)
    return same_tree and shape(dpre) == shape(step(res))


def _backward(kernel, lay, params, xs, valid, at, saved, dcarry, dys, *, reverse,
              unroll):  # fmt: skip
    """The reverse loop carrying only the state's gradient (and, with restarts,
    the accumulated gradient of the carry restarted to), then the large matmuls:
    ``(dparams, dcarry0, dxs, dfresh)`` (``dfresh`` ``None`` without restarts).
    Arrays in ``lay``; ``params`` as given to ``fused_rnn`` (not yet prepared).

    With ``kernel.overwrite`` the loop also carries the residual stacks and
    writes each step's pre-activation gradients over that step's residuals, so
    XLA updates them in place: no fresh ``[T, B, ...]`` buffers, whose pages the
    CPU runtime maps anew on every call. The next step's residuals ride in the
    carry, read from the stacks after the write (their slot is untouched by it):
    each stack's old value then has the write as its only use, which is what
    lets XLA share the buffer instead of copying the stack at every step
    (:func:`_writes_over` says where)."""
    carry_prevs, res = saved
    params_t = lay.prepare_t(params)
    params = lay.prepare(params)
    overwrite = _writes_over(kernel, lay, params_t, res, carry_prevs, dcarry, unroll)

    def body(acc, inp):
        dcarry, dfresh, stacks, rs_next = acc
        dy, m, r, carry_prev, rs = inp
        if overwrite:  # rs: this step's index and the next one's
            (t, t_next), rs = rs, rs_next
        dnew = dcarry
        if m is not None:  # the forward's masking, transposed
            zeros = jax.tree.map(jnp.zeros_like, dcarry)
            dnew, dy = masked_step(_keep(lay, m), dcarry, zeros, dy)
        dnew = kernel.output_grad(dnew, dy)
        dprev, dpre = kernel.backward(lay, params_t, rs, carry_prev, dnew)
        if m is not None:  # padded steps pass the carry's gradient straight through
            dprev = where_tree(_keep(lay, m), dprev, dcarry)
        if r is not None:  # a restart: the gradient goes to the fresh carry
            dprev, df = restart_transpose(_keep(lay, r), dprev)
            dfresh = jax.tree.map(jnp.add, dfresh, df)
        if overwrite:
            stacks = _overwrite_step(stacks, dpre, t)
            return (dprev, dfresh, stacks, _step_of(stacks, t_next)), None
        return (dprev, dfresh, None, None), dpre

    dfresh = None if at is None else jax.tree.map(jnp.zeros_like, dcarry)
    init, steps = (dcarry, dfresh, None, None), res
    if overwrite:  # the loop runs backwards in time unless the layer does
        t = jnp.arange(dys.shape[0])
        t_next = t + 1 if reverse else t - 1  # clamped by the read at the end
        init = (dcarry, dfresh, res, _step_of(res, t[0 if reverse else -1]))
        steps = (t, t_next)
    (dcarry0, dfresh, stacks, _), dpre = jax.lax.scan(
        body,
        init,
        (dys, valid, at, carry_prevs, steps),
        reverse=not reverse,
        unroll=unroll,
    )
    if overwrite:
        res = dpre = stacks
    dparams, dxs = kernel.grads(lay, params, xs, carry_prevs, res, dpre)
    return dparams, dcarry0, dxs, dfresh


def fused_rnn(
    kernel: SequenceKernel,
    params: Any,
    carry0: Any,
    xs: jax.Array,
    lengths: jax.Array | None,
    *,
    reverse: bool,
    plan: Plan,
    remat: int | None = None,
    reference: Callable[..., tuple[Any, jax.Array]] | None = None,
    resets: Resets | None = None,
) -> tuple[Any, jax.Array]:
    """Run a kernel over time-major ``xs`` ``[T, B, F]``; returns ``(carry, ys)``
    with carry leaves ``[B, ...]`` and ``ys`` ``[T, B, H]``.

    Semantics as :func:`jaxseq.rnn` (masking with ``lengths``, ``reverse`` within
    each length, restarts). ``plan`` (:class:`~jaxseq._plan.Plan`) says how: the
    layout, unroll and input hoisting of the loops that feed the backward pass and
    of a forward-only call (chosen separately: the fastest forward is not always
    the layout of the fastest backward); ``hoist`` computes the input projection
    for all steps before the loop. ``plan.autodiff`` is the caller's to act on, by
    passing ``reference``. ``remat=k`` keeps only the carry at every k-th step
    for the backward pass and recomputes each block of k steps from it (gradient
    checkpointing): memory ``O(T/k + k)`` steps instead of ``O(T)``, for about one
    extra forward pass. With ``reference(params, carry0, xs, lengths, resets)``
    given, every derivative is JAX's autodiff of that reference loop instead of
    the kernel's backward (at tiny sizes the fused kernel's large matmuls have
    nothing to amortise), while a forward-only call still runs the primal loop;
    it is a ``custom_jvp``, so forward mode works too (``remat`` is then the
    reference's to apply). Without it the kernel's backward is a ``custom_vjp``:
    reverse mode only. ``resets`` (:class:`~jaxseq._loop.Resets`, or ``None``):
    where the carry entering a step is put back to ``resets.carry``; the
    hand-written backward stops the carry's gradient there and returns it as
    ``resets.carry``'s (so a learned initial state gets its gradient).
    """
    time, batch = xs.shape[0], xs.shape[1]
    lengths = padded_lengths(lengths, time, batch, remat)
    masked = lengths is not None
    opts = dict(reverse=reverse, unroll=plan.unroll)
    primal_opts = dict(reverse=reverse, unroll=plan.primal_unroll)
    lay = plan.layout
    at, fresh = (None, None) if resets is None else resets

    def mask(lengths, steps):
        if not masked:
            return None
        return jnp.arange(steps, dtype=lengths.dtype)[:, None] < lengths[None, :]

    def primal(params, carry0, xs, valid, at, fresh):
        lay_p = plan.primal_layout
        return _forward_only(
            kernel, lay_p, lay_p.prepare(params), carry0, xs, valid, at, fresh,
            hoist=plan.primal_hoist, **primal_opts,
        )  # fmt: skip

    def forward(params, carry0, xs, valid, at, fresh):
        """Forward in ``lay`` with residuals: (carry [B,..], ys [T,B,H], saved)."""
        fresh = None if fresh is None else lay.carry(fresh)
        carry, ys, saved = _forward(
            kernel, lay, lay.prepare(params), lay.carry(carry0), lay.steps(xs),
            valid, at, fresh, hoist=plan.hoist, **opts,
        )  # fmt: skip
        return lay.carry(carry), lay.steps(ys), saved

    def backward(params, xs, valid, at, saved, dcarry, dys):
        """``(dparams, dcarry0, dxs, dfresh)``, carries ``[B, ...]``."""
        dparams, dcarry0, dxs, dfresh = _backward(
            kernel, lay, params, lay.steps(xs), valid, at, saved, lay.carry(dcarry),
            lay.steps(dys), **opts,
        )  # fmt: skip
        dfresh = None if dfresh is None else lay.carry(dfresh)
        return dparams, lay.carry(dcarry0), lay.steps(dxs), dfresh

    if reference is not None:
        # A custom_jvp, not a custom_vjp: the forward-only call runs the primal
        # loop, and every derivative (jvp, jacfwd, grad, hessian, also under jit)
        # is JAX's autodiff of the reference loop, which computes the same function.
        @jax.custom_jvp
        def fused(params, carry0, xs, lengths, at, fresh):
            return primal(params, carry0, xs, mask(lengths, time), at, fresh)

        @fused.defjvp
        def fused_jvp(primals, tangents):
            params, carry0, xs, lengths, at, fresh = primals
            dparams, dcarry0, dxs, _, _, dfresh = tangents

            def ref(p, c, x, f):
                r = None if at is None else Resets(at, f)
                return reference(p, c, x, lengths, r)

            return jax.jvp(
                ref, (params, carry0, xs, fresh), (dparams, dcarry0, dxs, dfresh)
            )

        return fused(params, carry0, xs, lengths, at, fresh)
    if remat is None:

        @jax.custom_vjp
        def fused(params, carry0, xs, lengths, at, fresh):
            return primal(params, carry0, xs, mask(lengths, time), at, fresh)

        def fwd(params, carry0, xs, lengths, at, fresh):
            valid = mask(lengths, time)
            carry, ys, saved = forward(params, carry0, xs, valid, at, fresh)
            return (carry, ys), (params, xs, valid, at, saved)

        def bwd(residuals, cotangents):
            params, xs, valid, at, saved = residuals
            dparams, dcarry0, dxs, dfresh = backward(
                params, xs, valid, at, saved, *cotangents
            )
            return dparams, dcarry0, dxs, None, None, dfresh

        fused.defvjp(fwd, bwd)
        return fused(params, carry0, xs, lengths, at, fresh)
    return _blocked(primal, forward, backward, params, carry0, xs, lengths, mask,
                    remat, reverse, at, fresh)  # fmt: skip


def _blocked(primal, forward, backward, params, carry0, xs, lengths, mask, block,
             reverse, at, fresh):  # fmt: skip
    """Gradient checkpointing over blocks of ``block`` steps (see fused_rnn)."""
    time = xs.shape[0]
    n = n_blocks(time, block)

    def block_mask(lengths):
        valid = mask(lengths, n * block)
        return None if valid is None else valid.reshape((n, block, -1))

    def run_blocks(params, carry0, xs_b, valid_b, at_b, fresh):
        def outer(carry, inp):
            x, m, r = inp
            new, ys = primal(params, carry, x, m, r, fresh)
            return new, (ys, carry)

        return jax.lax.scan(outer, carry0, (xs_b, valid_b, at_b), reverse=reverse)

    @jax.custom_vjp
    def fused(params, carry0, xs_b, lengths, at_b, fresh):
        carry, (ys, _) = run_blocks(
            params, carry0, xs_b, block_mask(lengths), at_b, fresh
        )
        return carry, ys

    def fwd(params, carry0, xs_b, lengths, at_b, fresh):
        valid_b = block_mask(lengths)
        carry, (ys, starts) = run_blocks(params, carry0, xs_b, valid_b, at_b, fresh)
        return (carry, ys), (params, xs_b, valid_b, at_b, fresh, starts)

    def bwd(residuals, cotangents):
        params, xs_b, valid_b, at_b, fresh, starts = residuals
        dcarry, dys = cotangents

        def outer(acc, inp):
            dcarry, dparams, dfresh = acc
            x, m, r, start, dy = inp
            _, _, saved = forward(params, start, x, m, r, fresh)
            dp, dcarry, dx, df = backward(params, x, m, r, saved, dcarry, dy)
            dfresh = None if df is None else jax.tree.map(jnp.add, dfresh, df)
            return (dcarry, jax.tree.map(jnp.add, dparams, dp), dfresh), dx

        zeros = jax.tree.map(jnp.zeros_like, params)
        dfresh = None if fresh is None else jax.tree.map(jnp.zeros_like, fresh)
        (dcarry0, dparams, dfresh), dxs = jax.lax.scan(
            outer,
            (dcarry, zeros, dfresh),
            (xs_b, valid_b, at_b, starts, dys),
            reverse=not reverse,
        )
        return dparams, dcarry0, dxs, None, None, dfresh

    fused.defvjp(fwd, bwd)
    at_b = None if at is None else to_blocks(at, block)
    carry, ys = fused(params, carry0, to_blocks(xs, block), lengths, at_b, fresh)
    return carry, from_blocks(ys, time)
