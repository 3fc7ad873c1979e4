r"""Layer-normalised LSTM and GRU (Ba, Kiros & Hinton, 2016, "Layer normalization").

Layer normalisation of a pre-activation vector ``a`` of one example,

.. math:: \mathrm{LN}(a; \alpha, \beta) = \alpha \odot
    \frac{a - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta, \qquad
    \mu = \mathrm{mean}(a), \; \sigma^2 = \mathrm{mean}((a - \mu)^2),

is applied *separately* to the input projection ``x_t W_x`` and the recurrent
projection ``h_{t-1} W_h`` (each normalised over all its gates at once, as in the
paper's LN-LSTM equations), and, in the LSTM, to the cell state before the
output ``tanh``. The statistics are per example and per step: no batch
statistics, nothing to track at inference.

The gate equations after the normalised projections are the LSTM's and the
reset-after GRU's own (:func:`jaxseq.cells._lstm.update`,
:func:`jaxseq.cells._gru.update_reset_after`), not a copy.

The LN-LSTM has a fused kernel (:class:`~jaxseq._fused.SequenceKernel`), its
equations written once against a :class:`~jaxseq._layout.Layout`. Its
pre-activation gradient is the triple ``(dz, du_h, dn_c)``: ``dz`` of the gates'
pre-activations, ``du_h`` of the recurrent product ``h_{t-1} W_h`` (``dz g_h``
through the layer norm's derivative) and ``dn_c`` of the cell's layer norm
output. The forward stores the normalised recurrent product and its ``1/sigma``
per step; the reverse loop differentiates the layer norms of the cell state
(recomputed from the gates) and of the recurrent product; the input
projection's layer norm does not depend on the carry, so ``grads``
differentiates it for all steps at once, after the loop, with the weight
gradients.

The LN-GRU's fused kernel is built the same way from the reset-after GRU's
pieces (:func:`~jaxseq.cells._gru.update_reset_after` and its backward
:func:`~jaxseq.cells._gru.update_reset_after_vjp`,
:func:`~jaxseq.cells._gru.kernel_with_split`): its pre-activation gradient is
``(da, du, dv_h)``, of the input side ``a``, of the recurrent side ``u`` and of
the recurrent product ``v = h_{t-1} W_h`` (``LN'(du g_h)``); the input
projection's layer norm is differentiated after the loop. It states its
:class:`~jaxseq._fused.ProductSplit` (the update reads ``z * h_{t-1}``), so a
recurrent-dropout LN-GRU runs it too.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._fused import SequenceKernel
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
)
from ._gru import TUNING as GRU_TUNING
from ._gru import GRUCarry, kernel_with_split
from ._gru import update_reset_after as gru_update
from ._gru import update_reset_after_vjp as gru_update_vjp
from ._lstm import TUNING, LSTMCarry, cell_backward, lstm_bias
from ._lstm import update as lstm_update


class LayerNormLSTMParams(NamedTuple):
    """Parameters of :func:`layernorm_lstm`, gates fused in the LSTM's ``i f g o``.

    Attributes:
        w_x: ``[F, 4H]`` input kernel.
        w_h: ``[H, 4H]`` recurrent kernel.
        b: ``[4H]`` bias: the paper's ``b`` plus the two pre-activation LN biases
            ``beta_1 + beta_2``, which only ever appear summed with it.
        g_x: ``[4H]`` gain of the LN of ``x_t W_x`` (the paper's ``alpha_2``).
        g_h: ``[4H]`` gain of the LN of ``h_{t-1} W_h`` (``alpha_1``).
        g_c: ``[H]`` gain of the LN of the cell state (``alpha_3``).
        b_c: ``[H]`` bias of the LN of the cell state (``beta_3``).
    """

    w_x: jax.Array
    w_h: jax.Array
    b: jax.Array
    g_x: jax.Array
    g_h: jax.Array
    g_c: jax.Array
    b_c: jax.Array


class LayerNormGRUParams(NamedTuple):
    """Parameters of :func:`layernorm_gru`, gates fused in the GRU's ``r z n``.

    Attributes:
        w_x: ``[F, 3H]`` input kernel.
        w_h: ``[H, 3H]`` recurrent kernel.
        b_x: ``[3H]`` bias of the LN of ``x_t W_x``.
        b_h: ``[3H]`` bias of the LN of ``h_{t-1} W_h``; its candidate slice sits
            inside the reset gate (the ``reset_after`` form).
        g_x: ``[3H]`` gain of the LN of ``x_t W_x``.
        g_h: ``[3H]`` gain of the LN of ``h_{t-1} W_h``.
    """

    w_x: jax.Array
    w_h: jax.Array
    b_x: jax.Array
    b_h: jax.Array
    g_x: jax.Array
    g_h: jax.Array


def layer_norm(
    a: jax.Array,
    gain: jax.Array,
    bias: jax.Array,
    eps: float,
    lay: Layout = BATCH_MAJOR,
) -> jax.Array:
    """``LN(a; gain, bias)`` over the feature axis of ``a`` in ``lay`` (the last
    axis of ``[..., G]`` by default); ``gain`` and ``bias`` ``[G]``. Statistics in
    at least float32 (bfloat16 ``a`` is upcast for the mean and variance), the
    result in ``a``'s dtype."""
    return lay.bias(lay.scale(_normalise(lay, a, eps)[0], gain), bias)


def _normalise(lay: Layout, a: jax.Array, eps: float) -> tuple[jax.Array, jax.Array]:
    """``((a - mu) / sigma, 1 / sigma)`` over the feature axis of ``a`` in ``lay``,
    ``sigma = sqrt(var + eps)``; the first in ``a``'s dtype, the second ``[.., B,
    1]`` (``[.., 1, B]`` feature-major) in at least float32."""
    dtype = a.dtype
    if jnp.finfo(dtype).bits < 32:
        a = a.astype(jnp.float32)
    centred = a - lay.feature_mean(a)
    rsig = jax.lax.rsqrt(lay.feature_mean(centred * centred) + eps)
    return (centred * rsig).astype(dtype), rsig


def _normalise_vjp(
    lay: Layout, dn: jax.Array, n: jax.Array, rsig: jax.Array
) -> jax.Array:
    """The gradient of ``a`` from that of ``n = (a - mu) / sigma`` (:func:`_normalise`,
    whose outputs ``n``, ``rsig`` it takes): ``(dn - mean(dn) - n mean(dn n)) /
    sigma``, in ``dn``'s dtype (computed in ``rsig``'s)."""
    dtype = dn.dtype
    dn, n = dn.astype(rsig.dtype), n.astype(rsig.dtype)
    centred = dn - lay.feature_mean(dn) - n * lay.feature_mean(dn * n)
    return (centred * rsig).astype(dtype)


def _check_eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not eps > 0:
        raise ValueError(f"eps: expected a positive float, got {eps!r}.")
    return float(eps)


def layernorm_lstm(
    hidden_size: int,
    *,
    forget_bias: float = 1.0,
    eps: float = 1e-5,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: Initializer = GLOROT_UNIFORM,
    recurrent_init: Initializer = ORTHOGONAL,
    bias_init: Initializer = ZEROS,
) -> Cell:
    r"""A layer-normalised LSTM cell (Ba, Kiros & Hinton 2016, LN-LSTM).

    .. math::

        [i, f, g, o] &= \mathrm{LN}(x_t W_x; g_x, 0)
            + \mathrm{LN}(h_{t-1} W_h; g_h, 0) + b \\
        C_t &= \sigma(f) * C_{t-1} + \sigma(i) * \tanh(g) \\
        h_t &= \sigma(o) * \tanh(\mathrm{LN}(C_t; g_c, b_c))

    Each ``LN`` normalises its whole ``4H`` (or ``H``) vector. The carry holds the
    un-normalised ``C_t``.

    Args:
        hidden_size: ``H``.
        forget_bias: added to the forget-gate slice of the initial ``b``.
        eps: added to the variance inside the square root.
        dtype: parameter dtype; the step computes in it (LN statistics in at
            least float32).
        kernel_init, recurrent_init, bias_init: initialisers ``(key, shape,
            dtype)`` of ``w_x``, ``w_h`` and ``b``; the gains start at one and
            ``b_c`` at zero.

    Returns:
        A :class:`~jaxseq.cells.Cell` named ``"layernorm_lstm"``; parameters
        :class:`LayerNormLSTMParams`, carry :class:`~jaxseq.cells.LSTMCarry`,
        ``y = h_t``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxseq.cells import layernorm_lstm
        >>> cell = layernorm_lstm(8)
        >>> params = cell.init(jax.random.key(0), 3)
        >>> carry, y = cell.step(params, cell.init_carry(params), jnp.ones(3))
        >>> y.shape, carry.c.shape, params.g_c.shape
        ((8,), (8,), (8,))
    """
    hidden = check_hidden_size(hidden_size)
    eps = _check_eps(eps)

    def init(key: jax.Array, input_size: int) -> LayerNormLSTMParams:
        k_x, k_h, k_b = jax.random.split(key, 3)
        w_x, w_h = gate_kernels(
            k_x, k_h, input_size, 4 * hidden, hidden, dtype, kernel_init, recurrent_init
        )
        return LayerNormLSTMParams(
            w_x=w_x,
            w_h=w_h,
            b=lstm_bias(k_b, hidden, forget_bias, dtype, bias_init),
            g_x=jnp.ones((4 * hidden,), dtype),
            g_h=jnp.ones((4 * hidden,), dtype),
            g_c=jnp.ones((hidden,), dtype),
            b_c=jnp.zeros((hidden,), dtype),
        )

    return make_cell(
        "layernorm_lstm",
        hidden,
        init,
        LSTMCarry,
        partial(_lstm_equations, eps, BATCH_MAJOR),
        options=(("forget_bias", forget_bias), ("eps", eps)),
        kernel=_lstm_kernel(eps),
        h_only_in_product=True,  # LN acts on the product h W_h
    )


def _lstm_project(
    eps: float, lay: Layout, p: LayerNormLSTMParams, x: jax.Array
) -> jax.Array:
    """The input side of the pre-activations, ``LN(x W_x; g_x, 0) + b`` (one step or
    stacked over time)."""
    return lay.bias(lay.scale(_normalise(lay, lay.mm(x, p.w_x), eps)[0], p.g_x), p.b)


def _lstm_forward(
    eps: float, lay: Layout, p: LayerNormLSTMParams, carry: LSTMCarry, ax: jax.Array
) -> tuple[LSTMCarry, jax.Array, tuple]:
    """The LN-LSTM's equations from the projected input ``ax``: the one place they
    are written, for the step and the fused forward. Returns ``(carry, h_t, res)``,
    ``res = (gates, n_h, rsig_h)``: the LSTM's activated gates, the normalised
    recurrent product and its ``1/sigma``."""
    n_h, rsig_h = _normalise(lay, lay.mm(carry.h, p.w_h), eps)
    z = ax + lay.scale(n_h, p.g_h)
    new, h, gates = lstm_update(
        lay, z, carry.c, lambda c: layer_norm(c, p.g_c, p.b_c, eps, lay)
    )
    return new, h, (gates, n_h, rsig_h)


def _lstm_equations(
    eps: float, lay: Layout, p: LayerNormLSTMParams, carry: LSTMCarry, x: jax.Array
) -> tuple[LSTMCarry, jax.Array]:
    """The LN-LSTM step in either layout (batch-major: trailing feature axis,
    leading batch axes allowed)."""
    return _lstm_forward(eps, lay, p, carry, _lstm_project(eps, lay, p, x))[:2]


def _lstm_backward(eps: float, lay: Layout, p: LayerNormLSTMParams, res, prev, d):
    """One reverse step: ``(dcarry_prev, (dz, du_h, dn_c))`` (module docstring).

    With ``n_c = LN(C_t)`` and ``tn = tanh(n_c)``: ``do = dh tn o (1 - o)``,
    ``dn_c = dh o (1 - tn^2)``, ``dC = dc + LN'(dn_c)``; the gates below ``C_t``
    as the LSTM's (:func:`~jaxseq.cells._lstm.cell_backward`); ``du_h =
    LN'(dz g_h)`` and ``dh_{t-1} = du_h W_h^T``.
    """
    gates, n_h, rsig_h = res
    i, f, g, o = gates
    n_c, rsig_c = _normalise(lay, f * prev.c + i * g, eps)  # C_t, recomputed
    tn = jnp.tanh(lay.bias(lay.scale(n_c, p.g_c), p.b_c))
    do = d.h * tn * o * (1.0 - o)
    dn_c = d.h * o * (1.0 - tn * tn)
    dc = d.c + _normalise_vjp(lay, lay.scale(dn_c, p.g_c), n_c, rsig_c)
    dz, dc_prev = cell_backward(lay, gates, prev.c, dc, do)
    du_h = _normalise_vjp(lay, lay.scale(dz, p.g_h), n_h, rsig_h)
    return LSTMCarry(h=lay.mm_t(du_h, p.w_h), c=dc_prev), (dz, du_h, dn_c)


def _lstm_grads(eps: float, lay: Layout, p: LayerNormLSTMParams, xs, prevs, res, dpre):
    """Parameter and input gradients from all steps at once (arrays stacked over
    time); the input projection's layer norm is recomputed and differentiated
    here, ``du_x = LN'(dz g_x)``."""
    dz, du_h, dn_c = dpre
    (i, f, g, _), n_h, _ = res
    n_x, rsig_x = _normalise(lay, lay.mm(xs, p.w_x), eps)
    du_x = _normalise_vjp(lay, lay.scale(dz, p.g_x), n_x, rsig_x)
    n_c, _ = _normalise(lay, f * prevs.c + i * g, eps)
    dparams = LayerNormLSTMParams(
        w_x=lay.gram(xs, du_x),
        w_h=lay.gram(prevs.h, du_h),
        b=lay.bsum(dz),
        g_x=lay.bsum(dz * n_x),
        g_h=lay.bsum(dz * n_h),
        g_c=lay.bsum(dn_c * n_c),
        b_c=lay.bsum(dn_c),
    )
    return dparams, lay.seq_mm_t(du_x, p.w_x)


def _lstm_kernel(eps: float) -> SequenceKernel:
    """The LN-LSTM's fused kernel (module docstring).

    ``impl="auto"`` uses the LSTM's :class:`~jaxseq._plan.Tuning` (the same
    matmuls and loops, plus per-step layer norms). Measured fwd+bwd, median CPU
    ms of 9 interleaved calls on one core of an AMD EPYC (family 25 model 17,
    load 5-7), two runs: at B=512, T=200, F=4, H=4 its pick (autodiff of the
    reference loop) 57.4-59.6 against 55.1-56.9 for the feature-major kernel,
    the fastest, and 61.3-61.8 for ``impl="scan"``; at H=8 its pick (the
    batch-major kernel) 110.1-112.8 against 107.4-112.8 for autodiff, 108.0-112.2
    feature-major and 108.2-111.4 scan, all within 5%; at B=32, T=100, F=64,
    H=128 the kernel 58.9-61.0 against 66.5-66.9 for scan
    (benchmarks/results/cells_speed.md).
    """
    return SequenceKernel(
        partial(_lstm_equations, eps),
        partial(_lstm_project, eps),
        partial(_lstm_forward, eps),
        partial(_lstm_backward, eps),
        partial(_lstm_grads, eps),
        TUNING,
    )


def layernorm_gru(
    hidden_size: int,
    *,
    eps: float = 1e-5,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: Initializer = GLOROT_UNIFORM,
    recurrent_init: Initializer = ORTHOGONAL,
    bias_init: Initializer = ZEROS,
) -> Cell:
    r"""A layer-normalised GRU cell (the GRU's ``reset_after`` form, cuDNN/PyTorch).

    With ``a = LN(x_t W_x; g_x, b_x)`` and ``u = LN(h_{t-1} W_h; g_h, b_h)``, each
    normalised over its whole ``3H`` vector and split in ``r z n`` order:

    .. math::

        r_t &= \sigma(a_r + u_r), \qquad z_t = \sigma(a_z + u_z) \\
        n_t &= \tanh(a_n + r_t * u_n) \\
        h_t &= (1 - z_t) * n_t + z_t * h_{t-1}

    (:func:`~jaxseq.cells.gru` with ``reset_after=True`` and its two projections
    layer-normalised; the LN biases take the places of ``b_x`` and ``b_h``).

    Args:
        hidden_size: ``H``.
        eps: added to the variance inside the square root.
        dtype: parameter dtype (LN statistics in at least float32).
        kernel_init, recurrent_init, bias_init: initialisers of ``w_x``, ``w_h``
            and the biases ``b_x``, ``b_h``; the gains start at one.

    Returns:
        A :class:`~jaxseq.cells.Cell` named ``"layernorm_gru"``; parameters
        :class:`LayerNormGRUParams`, carry :class:`~jaxseq.cells.GRUCarry`,
        ``y = h_t``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxseq.cells import layernorm_gru
        >>> cell = layernorm_gru(4)
        >>> params = cell.init(jax.random.key(0), 2)
        >>> cell.step(params, cell.init_carry(params), jnp.ones(2))[1].shape
        (4,)
    """
    hidden = check_hidden_size(hidden_size)
    eps = _check_eps(eps)

    def init(key: jax.Array, input_size: int) -> LayerNormGRUParams:
        k_x, k_h, k_bx, k_bh = jax.random.split(key, 4)
        w_x, w_h = gate_kernels(
            k_x, k_h, input_size, 3 * hidden, hidden, dtype, kernel_init, recurrent_init
        )
        return LayerNormGRUParams(
            w_x=w_x,
            w_h=w_h,
            b_x=initialize(bias_init, k_bx, (3 * hidden,), dtype),
            b_h=initialize(bias_init, k_bh, (3 * hidden,), dtype),
            g_x=jnp.ones((3 * hidden,), dtype),
            g_h=jnp.ones((3 * hidden,), dtype),
        )

    return make_cell(
        "layernorm_gru",
        hidden,
        init,
        GRUCarry,
        partial(_gru_equations, eps, BATCH_MAJOR),
        options=(("eps", eps),),
        kernel=_gru_kernel(eps),
    )


def _gru_project(
    eps: float, lay: Layout, p: LayerNormGRUParams, x: jax.Array
) -> jax.Array:
    """The input side ``a = LN(x W_x; g_x, b_x)`` (one step or stacked over time)."""
    return layer_norm(lay.mm(x, p.w_x), p.g_x, p.b_x, eps, lay)


def _gru_forward(
    eps: float,
    lay: Layout,
    p: LayerNormGRUParams,
    carry: GRUCarry,
    hp: jax.Array,
    ax: jax.Array,
) -> tuple[GRUCarry, jax.Array, tuple]:
    """The LN-GRU's equations from the projected input ``ax``, the recurrent
    product reading ``hp`` (``carry.h``, or the masked state under recurrent
    dropout) and the update ``carry.h``: the one place they are written, for the
    step and the fused forward. Returns ``(carry, h_t, res)``, ``res = (gates,
    n_h, rsig_h)``: the GRU's residuals, the normalised recurrent product and its
    ``1/sigma``."""
    n_h, rsig_h = _normalise(lay, lay.mm(hp, p.w_h), eps)
    u = lay.bias(lay.scale(n_h, p.g_h), p.b_h)
    h, gates = gru_update(lay, ax, u, carry.h)
    return GRUCarry(h=h), h, (gates, n_h, rsig_h)


def _gru_equations_split(
    eps: float,
    lay: Layout,
    p: LayerNormGRUParams,
    carry: GRUCarry,
    hp: jax.Array,
    x: jax.Array,
) -> tuple[GRUCarry, jax.Array]:
    """The LN-GRU step with the recurrent product reading ``hp``."""
    return _gru_forward(eps, lay, p, carry, hp, _gru_project(eps, lay, p, x))[:2]


def _gru_equations(
    eps: float, lay: Layout, p: LayerNormGRUParams, carry: GRUCarry, x: jax.Array
) -> tuple[GRUCarry, jax.Array]:
    """The LN-GRU step in either layout (batch-major: trailing feature axis,
    leading batch axes allowed)."""
    return _gru_equations_split(eps, lay, p, carry, carry.h, x)


def _gru_backward(
    eps: float, lay: Layout, p: LayerNormGRUParams, res, prev, hp, d
) -> tuple[GRUCarry, jax.Array, tuple]:
    """One reverse step: ``(dprev, dhp, (da, du, dv_h))`` (module docstring):
    the gates' backward as the GRU's, ``dv_h = LN'(du g_h)``, ``dhp = dv_h
    W_h^T`` and ``dh_{t-1} = dh z`` apart from the product."""
    gates, n_h, rsig_h = res
    da, du, dh_z = gru_update_vjp(lay, gates, prev.h, d.h)
    dv_h = _normalise_vjp(lay, lay.scale(du, p.g_h), n_h, rsig_h)
    return GRUCarry(h=dh_z), lay.mm_t(dv_h, p.w_h), (lay.concat(da), du, dv_h)


def _gru_grads(eps: float, lay: Layout, p: LayerNormGRUParams, xs, prevs, res, dpre):
    """Parameter and input gradients from all steps at once (arrays stacked over
    time); the input projection's layer norm is recomputed and differentiated
    here, ``dv_x = LN'(da g_x)``."""
    da, du, dv_h = dpre
    _, n_h, _ = res
    n_x, rsig_x = _normalise(lay, lay.mm(xs, p.w_x), eps)
    dv_x = _normalise_vjp(lay, lay.scale(da, p.g_x), n_x, rsig_x)
    dparams = LayerNormGRUParams(
        w_x=lay.gram(xs, dv_x),
        w_h=lay.gram(prevs.h, dv_h),
        b_x=lay.bsum(da),
        b_h=lay.bsum(du),
        g_x=lay.bsum(da * n_x),
        g_h=lay.bsum(du * n_h),
    )
    return dparams, lay.seq_mm_t(dv_x, p.w_x)


def _gru_kernel(eps: float) -> SequenceKernel:
    """The LN-GRU's fused kernel (module docstring), with the GRU's
    :class:`~jaxseq._plan.Tuning` for ``impl="auto"``. Measured fwd+bwd, median
    CPU ms of 7 interleaved rounds on one pinned core of an AMD EPYC (family 25
    model 17, load 1.3-2.0), one run each: in the tuning's autodiff range its
    pick (autodiff of the reference loop) 94.3 against 101.4 for the batch-major
    kernel and 91.3 feature-major at B=512, T=200, F=4, H=8, and 10.3 against
    11.0 and 10.8 at B=64, T=100, F=16, H=32; outside it, on a quiet machine
    (``benchmarks/results/cells_speed.md``, ``cells_speed_lm_size.md``), the
    batch-major kernel 47.48 against 47.48 for ``impl="scan"`` at B=32, T=100,
    F=64, H=128 and 15.67 against 18.25 at B=20, T=35, F=H=200.
    """
    return kernel_with_split(
        partial(_gru_equations_split, eps),
        partial(_gru_project, eps),
        partial(_gru_forward, eps),
        partial(_gru_backward, eps),
        partial(_gru_grads, eps),
        GRU_TUNING,
    )
