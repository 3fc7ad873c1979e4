"""Gated recurrent unit (Cho et al., 2014) in both published forms."""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._fused import ProductSplit, SequenceKernel
from .._plan import Tuning
from ._base import (
    BATCH_MAJOR,
    GLOROT_UNIFORM,
    ORTHOGONAL,
    ZEROS,
    Cell,
    Initializer,
    Layout,
    check_hidden_size,
    gate_kernels,
    initialize,
    make_cell,
    sigmoid,
)

#: Order of the gate blocks along the fused axis: reset, update, candidate (new),
#: the same as ``torch.nn.GRU`` and ``flax.linen.GRUCell``. Keras stores ``z, r, h``;
#: the Keras importer permutes.
GATE_ORDER = "rzn"

#: ``impl="auto"`` on CPU (one core, benchmarks/results/layouts.md): the gradient
#: is autodiff of the reference loop for ``8 <= H <= 32`` (up to 1.9x faster than
#: the kernel's backward there: B=512, T=200, H=8: 11.5 against 25.9 ms); at batch
#: 1 (B=1, T=1000, H=64) the gradient unrolls 4 (2.47 -> 2.03 ms) and the
#: forward-only call projects step by step (projecting first: 0.75 -> 1.26 ms).
#: Both forms (``reset_after`` or not) share it.
TUNING = Tuning(autodiff_hidden=(8, 32), batch1_unroll=(1, 4))


class GRUParams(NamedTuple):
    """GRU parameters, gates fused along the last axis in ``GATE_ORDER``.

    Attributes:
        w_x: ``[F, 3H]`` input kernel.
        w_h: ``[H, 3H]`` recurrent kernel.
        b_x: ``[3H]`` input bias (PyTorch ``b_ih``).
        b_h: ``[3H]`` recurrent bias (PyTorch ``b_hh``). In the ``reset_after`` form
            its candidate slice sits inside the reset gate, so it is not redundant
            with ``b_x``; in the seed's form the two simply add.
    """

    w_x: jax.Array
    w_h: jax.Array
    b_x: jax.Array
    b_h: jax.Array


class GRUCarry(NamedTuple):
    """GRU state: the hidden vector ``h``."""

    h: jax.Array


def gru(
    hidden_size: int,
    *,
    reset_after: bool = True,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: Initializer = GLOROT_UNIFORM,
    recurrent_init: Initializer = ORTHOGONAL,
    bias_init: Initializer = ZEROS,
) -> Cell:
    r"""A GRU cell as pure functions.

    With ``a = x_t W_x + b_x`` and gates in ``GATE_ORDER``:

    .. math::

        r_t &= \sigma(a_r + h_{t-1} W_{h,r} + b_{h,r}) \\
        z_t &= \sigma(a_z + h_{t-1} W_{h,z} + b_{h,z}) \\
        n_t &= \tanh(a_n + r_t * (h_{t-1} W_{h,n} + b_{h,n}))
            \quad\text{(reset_after=True: cuDNN, PyTorch, Keras default)} \\
        n_t &= \tanh(a_n + (r_t * h_{t-1}) W_{h,n} + b_{h,n})
            \quad\text{(reset_after=False: the seed's and Cho et al.'s form)} \\
        h_t &= (1 - z_t) * n_t + z_t * h_{t-1}

    The seed writes ``h_t = (1 - z_t) h_{t-1} + z_t \tilde h_t``: its update gate
    is ``1 - z_t`` here, i.e. the same model with the ``z`` weights and biases
    negated (``sigma(-u) = 1 - sigma(u)``). jaxseq follows PyTorch/Keras/Flax so
    their weights import unchanged.

    Args:
        hidden_size: ``H``.
        reset_after: where the reset gate acts (see above).
        dtype: parameter dtype (``float32`` or ``bfloat16``).
        kernel_init, recurrent_init, bias_init: initialisers ``(key, shape, dtype)``;
            defaults match Keras (Glorot-uniform, orthogonal, zeros).

    Returns:
        A :class:`~jaxseq.cells.Cell`; ``carry`` is :class:`GRUCarry`, ``y = h_t``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxseq.cells import gru
        >>> cell = gru(4, reset_after=False)
        >>> params = cell.init(jax.random.key(0), 2)
        >>> cell.step(params, cell.init_carry(params), jnp.ones(2))[1].shape
        (4,)
    """
    hidden = check_hidden_size(hidden_size)
    reset_after = bool(reset_after)

    def init(key: jax.Array, input_size: int) -> GRUParams:
        k_x, k_h, k_bx, k_bh = jax.random.split(key, 4)
        w_x, w_h = gate_kernels(
            k_x, k_h, input_size, 3 * hidden, hidden, dtype, kernel_init, recurrent_init
        )
        b_x = initialize(bias_init, k_bx, (3 * hidden,), dtype)
        return GRUParams(w_x, w_h, b_x, initialize(bias_init, k_bh, b_x.shape, dtype))

    return make_cell(
        "gru",
        hidden,
        init,
        GRUCarry,
        partial(_equations, reset_after, BATCH_MAJOR),
        options=(("reset_after", reset_after),),
        kernel=_kernel_reset_after(hidden) if reset_after else _kernel_seed(hidden),
    )


def _equations(
    reset_after: bool, lay: Layout, params: GRUParams, carry: GRUCarry, x: jax.Array
) -> tuple[GRUCarry, jax.Array]:
    """The GRU step, either form, in either layout (see
    :class:`~jaxseq.cells._base.Layout`): :func:`_equations_split` with the
    recurrent product reading ``carry.h``."""
    return _equations_split(reset_after, lay, params, carry, carry.h, x)


def _equations_split(
    reset_after: bool,
    lay: Layout,
    params: GRUParams,
    carry: GRUCarry,
    hp: jax.Array,
    x: jax.Array,
) -> tuple[GRUCarry, jax.Array]:
    """The GRU step with the recurrent product's input ``hp`` (``[B, H]`` in
    ``lay``) apart from ``carry.h``, which the update ``z * h_{t-1}`` reads
    (:class:`~jaxseq._fused.ProductSplit`; ``hp = carry.h`` is the plain step):
    the input projection, then the form's equations (:func:`update_reset_after`
    or :func:`_update_seed`)."""
    a = _project(lay, params, x)
    if reset_after:
        u = lay.bias(lay.mm(hp, params.w_h), params.b_h)
        h, _ = update_reset_after(lay, a, u, carry.h)
    else:
        h, _ = _update_seed(lay, params, a, carry.h, hp)
    return GRUCarry(h=h), h


def update_reset_after(
    lay: Layout, a: jax.Array, u: jax.Array, h: jax.Array
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """The reset-after GRU's equations from the input side ``a = x_t W_x + b_x``
    and the recurrent side ``u = h_{t-1} W_h + b_h`` (``[B, 3H]`` or ``[3H, B]``
    in ``lay``, gates ``r z n``): the one place they are written, for the
    reference step, the fused forward and the LN-GRU.

    Returns:
        ``(h_t, (r, z, n, u_n))``: the new state and the fused backward's
        residuals.
    """
    a_r, a_z, a_n = lay.split(a, 3)
    u_r, u_z, u_n = lay.split(u, 3)
    r, z = sigmoid(a_r + u_r), sigmoid(a_z + u_z)
    n = jnp.tanh(a_n + r * u_n)
    return (1.0 - z) * n + z * h, (r, z, n, u_n)


def update_reset_after_vjp(
    lay: Layout, res: tuple[jax.Array, ...], h: jax.Array, dh: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The backward of :func:`update_reset_after` from its residuals ``res`` (``(r,
    z, n, u_n)``), the incoming state ``h`` and the new state's gradient ``dh``:
    ``dz = dh (h - n)``, ``dn = dh (1 - z)``, ``da_n = dn (1 - n^2)``, ``du_n =
    da_n r``, ``dr = da_n u_n``; the recurrent side's gradient differs from the
    input side's only in the candidate block (``r`` sits between).

    Returns:
        ``(da, du, dh_z)``: the gradients of ``a`` (gate blocks ``[da_r, da_z,
        da_n]``, a tuple) and of ``u`` (concatenated in ``lay``), and that of
        ``h`` through the update ``z * h``.
    """
    r, z, n, u_n = res
    da_n = dh * (1.0 - z) * (1.0 - n * n)
    da_r = da_n * u_n * r * (1.0 - r)
    da_z = dh * (h - n) * z * (1.0 - z)
    return (da_r, da_z, da_n), lay.concat([da_r, da_z, da_n * r]), dh * z


def _update_seed(
    lay: Layout, p: GRUParams, a: jax.Array, h: jax.Array, hp: jax.Array
) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    """The seed's GRU (reset before the recurrent product) from the input side
    ``a = x_t W_x + b_x``: the one place its equations are written. ``hp`` is
    the recurrent products' input (``h`` itself, or ``m * h`` under recurrent
    dropout: ``(r * m * h) W_{h,n}`` is ``(r * h)`` on rows of ``W_{h,n}``
    scaled by ``m``); the update reads ``h``.

    Returns:
        ``(h_t, (r, z, n))``: the new state and the fused backward's residuals.
    """
    hidden = p.b_h.shape[0] // 3
    a_r, a_z, a_n = lay.split(a, 3)
    w_rz = lay.cols(p.w_h, 0, 2 * hidden)
    w_n = lay.cols(p.w_h, 2 * hidden, 3 * hidden)
    u_r, u_z = lay.split(lay.bias(lay.mm(hp, w_rz), p.b_h[: 2 * hidden]), 2)
    r, z = sigmoid(a_r + u_r), sigmoid(a_z + u_z)
    n = jnp.tanh(a_n + lay.bias(lay.mm(r * hp, w_n), p.b_h[2 * hidden :]))
    return (1.0 - z) * n + z * h, (r, z, n)


def _project(lay: Layout, p: GRUParams, x: jax.Array) -> jax.Array:
    return lay.bias(lay.mm(x, p.w_x), p.b_x)


class _BothSides(NamedTuple):
    """Both sides' pre-activation gradients of the reset-after GRU, gates
    concatenated, stacked by the reverse loop: one matmul per weight gradient.
    The batch-one form, where the stacks are small and the split matmuls'
    overhead counts (B 1, T 1000, H 64, interleaved on one loaded core: 3.68
    ms, against 3.92 ms for the input side's stacks only)."""

    x: jax.Array  # [da_r, da_z, da_n]: [T, B, 3H] (feature-major [T, 3H, B])
    u: jax.Array  # [da_r, da_z, da_n r]

    def grads(self, lay: Layout, p: GRUParams, xs, prevs: GRUCarry):
        """``(dparams, dxs)`` from the stacks (``SequenceKernel.grads``)."""
        dparams = GRUParams(
            w_x=lay.gram(xs, self.x),
            w_h=lay.gram(prevs.h, self.u),
            b_x=lay.bsum(self.x),
            b_h=lay.bsum(self.u),
        )
        return dparams, lay.seq_mm_t(self.x, p.w_x)


def _gate_grads(lay: Layout, p: GRUParams, xs, prevs: GRUCarry, dpre):
    """``(dparams, dxs)`` (``SequenceKernel.grads``) of the reset-after GRU from
    its reverse loop's stacks ``dpre = (da_rz, da_n, du_n)``, ``[T, B, 2H]`` and
    ``[T, B, H]`` (feature-major ``[T, 2H, B]``, ``[T, H, B]``), written over
    the residuals ``(rz, n, u_n)``: the input side's gradient is ``[da_rz,
    da_n]``, the recurrent side's ``[da_rz, du_n]`` (``du_n = da_n r``).

    Two matmuls per weight, on the stacks as they lie (concatenating them
    would allocate a fresh ``[T, B, 3H]`` buffer).
    """
    da_rz, da_n, du_n = dpre
    hidden = p.b_x.shape[0] // 3
    cat = partial(jnp.concatenate, axis=-1)  # gate blocks of [K, 3H], [3H]
    dparams = GRUParams(
        w_x=cat([lay.gram(xs, da_rz), lay.gram(xs, da_n)]),
        w_h=cat([lay.gram(prevs.h, da_rz), lay.gram(prevs.h, du_n)]),
        b_x=cat([lay.bsum(da_rz), lay.bsum(da_n)]),
        b_h=cat([lay.bsum(da_rz), lay.bsum(du_n)]),
    )
    w_rz = lay.cols(p.w_x, 0, 2 * hidden)
    w_n = lay.cols(p.w_x, 2 * hidden, 3 * hidden)
    return dparams, lay.seq_mm_t(da_rz, w_rz) + lay.seq_mm_t(da_n, w_n)


def _kernel_reset_after(hidden: int) -> SequenceKernel:
    """The reset-after GRU with its hand-derived backward (see :mod:`jaxseq._fused`;
    the gates' in :func:`update_reset_after_vjp`).

    The reverse loop writes each step's pre-activation gradients ``([da_r,
    da_z], da_n, da_n r)`` over that step's residuals ``([r, z], n, u_n)``
    (:attr:`~jaxseq._fused.SequenceKernel.overwrite`): the backward allocates
    no ``[T, B, H]`` stacks of its own, which the CPU runtime would map afresh
    on every call; the weight gradients follow from the three stacks
    (:func:`_gate_grads`). B 128, T 200, F 128, H 256: 146 instead of 224 MB
    compiled scratch, fwd+bwd 0.90x the time of the previous kernel (which
    stacked the input side's gradients afresh) at that size, 0.98x at B 32, T
    100, F 64, H 128 (interleaved, one loaded core,
    benchmarks/results/gru_backward.md). At batch one the step stacks both
    sides' gradients instead (:class:`_BothSides`), compiling to the previous
    kernel's program.
    """

    def forward_split(lay: Layout, p: GRUParams, carry: GRUCarry, hp, ax):
        u = lay.bias(lay.mm(hp, p.w_h), p.b_h)
        h, res = update_reset_after(lay, ax, u, carry.h)
        if lay.batch(h) > 1:  # (rz, n, u_n): r and z in one stack
            res = (lay.concat(res[:2]), *res[2:])
        return GRUCarry(h=h), h, res

    def backward_split(lay: Layout, p: GRUParams, res, prev: GRUCarry, hp, d):
        if lay.batch(d.h) == 1:
            (da_r, da_z, da_n), dau, dh_z = update_reset_after_vjp(
                lay, res, prev.h, d.h
            )
            dpre = _BothSides(lay.concat([da_r, da_z, da_n]), dau)
        else:  # the residuals' structure, (da_rz, da_n, du_n): written over them
            r, z = lay.split(res[0], 2)
            (da_r, da_z, da_n), dau, dh_z = update_reset_after_vjp(
                lay, (r, z, *res[1:]), prev.h, d.h
            )
            dpre = (lay.concat([da_r, da_z]), da_n, da_n * r)
        return GRUCarry(h=dh_z), lay.mm_t(dau, p.w_h), dpre

    def grads(lay: Layout, p: GRUParams, xs, prevs: GRUCarry, res, dpre):
        if isinstance(dpre, _BothSides):
            return dpre.grads(lay, p, xs, prevs)
        return _gate_grads(lay, p, xs, prevs, dpre)

    return kernel_with_split(
        partial(_equations_split, True),
        _project,
        forward_split,
        backward_split,
        grads,
        TUNING,
        overwrite=True,
    )


def _kernel_seed(hidden: int) -> SequenceKernel:
    """The seed's GRU (reset before the recurrent product) with its backward.

    All biases add to the pre-activations, so the input- and recurrent-side
    pre-activation gradients coincide; the candidate's recurrent weight sees
    ``r * h_{t-1}`` instead of ``h_{t-1}``.
    """
    H = hidden

    def forward_split(lay: Layout, p: GRUParams, carry: GRUCarry, hp, ax):
        h, res = _update_seed(lay, p, ax, carry.h, hp)
        return GRUCarry(h=h), h, res

    def backward_split(lay: Layout, p: GRUParams, res, prev: GRUCarry, hp, d):
        r, z, n = res
        dh = d.h
        da_n = dh * (1.0 - z) * (1.0 - n * n)
        d_rh = lay.mm_t(da_n, lay.cols_t(p.w_h, 2 * H, 3 * H))
        d_rz = lay.concat(
            [d_rh * hp * r * (1.0 - r), dh * (prev.h - n) * z * (1.0 - z)]
        )
        dhp = lay.mm_t(d_rz, lay.cols_t(p.w_h, 0, 2 * H)) + d_rh * r
        return GRUCarry(h=dh * z), dhp, lay.concat([d_rz, da_n])

    def grads(lay: Layout, p: GRUParams, xs, prevs: GRUCarry, res, da):
        r = res[0]
        d_rz, d_n = lay.seq_split(da, [2 * H])
        dw_h = jnp.concatenate(
            [lay.gram(prevs.h, d_rz), lay.gram(r * prevs.h, d_n)], axis=-1
        )
        db = lay.bsum(da)
        dparams = GRUParams(w_x=lay.gram(xs, da), w_h=dw_h, b_x=db, b_h=db)
        return dparams, lay.seq_mm_t(da, p.w_x)

    return kernel_with_split(
        partial(_equations_split, False),
        _project,
        forward_split,
        backward_split,
        grads,
        TUNING,
    )


def kernel_with_split(
    equations_split,
    project,
    forward_split,
    backward_split,
    grads,
    tuning: Tuning,
    overwrite: bool = False,
) -> SequenceKernel:
    """A GRU-type kernel from its step with the recurrent product's input ``hp``
    apart from the carry (its :class:`~jaxseq._fused.ProductSplit`, which
    recurrent dropout runs; functions as there): the plain step and forward feed
    ``hp = h_{t-1}``, and the plain backward adds the gradient through the
    product to that through the update ``z * h_{t-1}``. ``grads`` read the
    carries the product read (the masked ones under dropout). Used by both GRU
    forms and the LayerNorm GRU. ``overwrite``: as
    :attr:`~jaxseq._fused.SequenceKernel.overwrite`."""

    def equations(lay: Layout, p, carry: GRUCarry, x: jax.Array):
        return equations_split(lay, p, carry, carry.h, x)

    def forward(lay: Layout, p, carry: GRUCarry, ax: jax.Array):
        return forward_split(lay, p, carry, carry.h, ax)

    def backward(lay: Layout, p, res, prev: GRUCarry, d: GRUCarry):
        dprev, dhp, dpre = backward_split(lay, p, res, prev, prev.h, d)
        return GRUCarry(h=dprev.h + dhp), dpre

    return SequenceKernel(
        equations,
        project,
        forward,
        backward,
        grads,
        tuning,
        split=ProductSplit(equations_split, forward_split, backward_split),
        overwrite=overwrite,
    )
