"""Long short-term memory (Hochreiter & Schmidhuber, 1997)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._fused import SequenceKernel
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

#: Order of the gate blocks along the fused axis; the same as ``torch.nn.LSTM``,
#: so PyTorch weights copy across without permutation.
GATE_ORDER = "ifgo"

#: ``impl="auto"`` on CPU (one core, benchmarks/results/layouts.md): the gradient
#: is autodiff of the reference loop at ``H <= 4`` (B=512, T=200: 7.74 against
#: 8.16-8.33 ms), except when reading masked sequences backwards, as the seed's
#: IMDb lab model does (layouts_masked_reverse.md, B=512, H=4, fwd+bwd
#: feature-major kernel against autodiff 7.42 / 9.15 ms at T=200, 31.3 / 38.2 ms
#: at T=400). At batch 1 (B=1, T=1000, H=64) the gradient unrolls 2 (3.00 ->
#: 2.88 ms; 4 gave 2.63 ms but compile time 1.8x Flax's, over the 1.5x the speed
#: goals allow) and the forward-only call projects the inputs first (1.06 ->
#: 0.86 ms).
TUNING = Tuning(
    autodiff_hidden=(1, 4),
    autodiff_masked_reverse=False,
    batch1_unroll=(1, 2),
    batch1_primal_hoist=True,
)


class LSTMParams(NamedTuple):
    """LSTM parameters, gates fused along the last axis in ``GATE_ORDER``.

    Attributes:
        w_x: ``[F, 4H]`` input kernel (the seed's ``W_{i,f,C,o}`` acting on ``x_t``).
        w_h: ``[H, 4H]`` recurrent kernel (acting on ``h_{t-1}``).
        b: ``[4H]`` bias (PyTorch's ``b_ih + b_hh``).
    """

    w_x: jax.Array
    w_h: jax.Array
    b: jax.Array


class LSTMCarry(NamedTuple):
    """LSTM state: ``h`` the output-bearing hidden state, ``c`` the memory cell."""

    h: jax.Array
    c: jax.Array


def lstm(
    hidden_size: int,
    *,
    forget_bias: float = 1.0,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: Initializer = GLOROT_UNIFORM,
    recurrent_init: Initializer = ORTHOGONAL,
    bias_init: Initializer = ZEROS,
) -> Cell:
    r"""An LSTM cell as pure functions.

    .. math::

        [i, f, \tilde C, o] &= x_t W_x + h_{t-1} W_h + b \\
        i_t = \sigma(i),\; f_t &= \sigma(f),\; o_t = \sigma(o),\;
        \tilde C_t = \tanh(\tilde C) \\
        C_t &= f_t * C_{t-1} + i_t * \tilde C_t \\
        h_t &= o_t * \tanh(C_t)

    which is the seed's ``f_t = sigma(W_f [h_{t-1}, x_t] + b_f)`` etc. with the
    concatenated weight split into its ``h`` and ``x`` blocks.

    Args:
        hidden_size: ``H``.
        forget_bias: added to the forget-gate slice of the *initial* bias (Keras'
            ``unit_forget_bias``; Jozefowicz et al. 2015). It is a parameter value,
            not a constant in the step, so PyTorch/Keras weights import exactly. Use
            ``0.0`` to switch it off.
        dtype: parameter dtype (``float32`` or ``bfloat16``); the step computes in it.
        kernel_init, recurrent_init, bias_init: ``jax.nn.initializers``-style
            functions ``(key, shape, dtype)``. Defaults match Keras: Glorot-uniform
            ``[F, 4H]`` input kernel, orthogonal ``[H, 4H]`` recurrent kernel, zeros.

    Returns:
        A :class:`~jaxseq.cells.Cell`; ``carry`` is :class:`LSTMCarry` of two ``[H]``
        arrays, ``y = h_t``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxseq.cells import lstm
        >>> cell = lstm(8)
        >>> params = cell.init(jax.random.key(0), 3)
        >>> carry, y = cell.step(params, cell.init_carry(params), jnp.ones(3))
        >>> y.shape, carry.c.shape
        ((8,), (8,))
    """
    hidden = check_hidden_size(hidden_size)

    def init(key: jax.Array, input_size: int) -> LSTMParams:
        k_x, k_h, k_b = jax.random.split(key, 3)
        w_x, w_h = gate_kernels(
            k_x, k_h, input_size, 4 * hidden, hidden, dtype, kernel_init, recurrent_init
        )
        b = lstm_bias(k_b, hidden, forget_bias, dtype, bias_init)
        return LSTMParams(w_x, w_h, b)

    return make_cell(
        "lstm",
        hidden,
        init,
        LSTMCarry,
        partial(_equations, BATCH_MAJOR),
        options=(("forget_bias", forget_bias),),
        kernel=_kernel(),
        h_only_in_product=True,
    )


def lstm_bias(
    key: jax.Array, hidden: int, forget_bias: float, dtype: Any, bias_init: Initializer
) -> jax.Array:
    """The ``[4H]`` bias of an LSTM-type cell: ``bias_init`` plus ``forget_bias``
    on the forget gate's slice."""
    b = initialize(bias_init, key, (4 * hidden,), dtype)
    return b.at[hidden : 2 * hidden].add(jnp.asarray(forget_bias, dtype))


def _equations(
    lay: Layout, params: LSTMParams, carry: LSTMCarry, x: jax.Array
) -> tuple[LSTMCarry, jax.Array]:
    """The LSTM step in either layout (see :class:`~jaxseq.cells._base.Layout`):
    the pre-activations, then :func:`update`."""
    return update(lay, preactivations(lay, params, carry.h, x), carry.c)[:2]


def preactivations(lay: Layout, params: Any, h: jax.Array, x: jax.Array) -> jax.Array:
    """``z = x_t W_x + h_{t-1} W_h + b`` (``[B, 4H]`` or ``[4H, B]`` in ``lay``) for
    any parameters with the LSTM's ``w_x``, ``w_h`` and ``b`` (the peephole LSTM's
    too)."""
    return lay.bias(lay.mm(x, params.w_x) + lay.mm(h, params.w_h), params.b)


def update(
    lay: Layout,
    z: jax.Array,
    c_prev: jax.Array,
    norm: Callable[[jax.Array], jax.Array] | None = None,
) -> tuple[LSTMCarry, jax.Array, tuple[jax.Array, ...]]:
    """The LSTM's equations from the pre-activations ``z = [i, f, g, o]``
    (``[B, 4H]`` or ``[4H, B]`` in ``lay``) and ``C_{t-1}``: the one place they
    are written, for the reference step, the fused forward and the LN-LSTM.

    ``C_t = sigma(f) C_{t-1} + sigma(i) tanh(g)``, ``h_t = sigma(o) tanh(C_t)``
    (``tanh(norm(C_t))`` with ``norm``, the LN-LSTM's layer norm of the cell).

    Returns:
        ``(carry, h_t, gates)``, ``gates`` the four activated gates (the fused
        backward's residuals).
    """
    i, f, g, o = _gates(lay, z)
    c = f * c_prev + i * g
    h = o * jnp.tanh(c if norm is None else norm(c))
    return LSTMCarry(h=h, c=c), h, (i, f, g, o)


def _gates(lay: Layout, z: jax.Array) -> list[jax.Array]:
    """``sigma(i), sigma(f), tanh(g), sigma(o)`` from the pre-activations ``z``.

    Per gate for a batch (XLA fuses each nonlinearity into its consumer instead of
    materialising a ``[B, 4H]`` array; sigmoid and tanh over the whole block made
    the S1 forward 1.6x and the S3 forward 3x slower on CPU). For a single
    sequence the step is latency-bound and one fused pass over the whole block is
    faster: ``tanh`` of ``z`` scaled by 1/2 on the sigmoid gates, then
    ``sigma(x) = (1 + tanh(x / 2)) / 2`` (an identity; in float32 the two agree
    to about 1e-7 absolutely). Measured at B=1, T=1000, H=64, with the input
    projection out of the loop: forward 1.32 -> 0.86 ms per call.
    """
    i, f, g, o = lay.split(z, 4)
    if lay.batch(z) != 1:
        return [sigmoid(i), sigmoid(f), jnp.tanh(g), sigmoid(o)]
    half, one = jnp.full_like(i, 0.5), jnp.ones_like(g)
    scale = lay.concat([half, half, one, half])  # a constant XLA folds
    t = jnp.tanh(z * scale)
    return lay.split(t * scale + (1 - scale), 4)  # (1 + t) / 2 on sigmoid gates


def _kernel() -> SequenceKernel:
    """The LSTM step with its hand-derived backward (see :mod:`jaxseq._fused`):
    :func:`backward_step` in the reverse loop, :func:`grads` after it.

    The residuals are the four activated gates; ``tanh(C_t)`` is recomputed in
    the backward loop from them and ``C_{t-1}`` rather than stored (one
    ``[T, B, H]`` array less: fwd+bwd 2% faster at S1 and S2, 1-4% on the IMDb
    lab model, measured on one CPU core).
    """

    def forward(lay: Layout, p: LSTMParams, carry: LSTMCarry, ax: jax.Array):
        return update(lay, ax + lay.mm(carry.h, p.w_h), carry.c)

    def backward(lay: Layout, p: LSTMParams, res, prev: LSTMCarry, d: LSTMCarry):
        return backward_step(lay, p.w_h, res, prev.c, d)

    return SequenceKernel(_equations, project, forward, backward, grads, TUNING)


def project(lay: Layout, p: Any, x: jax.Array) -> jax.Array:
    """The input side of :func:`preactivations`, ``x W_x + b`` (the kernels'
    ``project``, for any parameters with ``w_x`` and ``b``)."""
    return lay.bias(lay.mm(x, p.w_x), p.b)


def backward_step(
    lay: Layout,
    w_h: jax.Array,
    res: tuple[jax.Array, ...],
    c_prev: jax.Array,
    d: LSTMCarry,
    peepholes: tuple[jax.Array, jax.Array, jax.Array] | None = None,
) -> tuple[LSTMCarry, jax.Array]:
    """One step of the LSTM's backward pass (:class:`~jaxseq._fused.SequenceKernel`'s
    ``backward``): ``(dcarry_prev, dz)`` from the activated gates ``res``,
    ``C_{t-1}`` and the gradients ``d`` of the step's outputs.

    With ``z = [i, f, g, o]`` the pre-activations: ``do = dh tanh(C_t)``,
    ``dC = dc + dh o (1 - tanh^2 C_t)``, ``di = dC g``, ``df = dC C_{t-1}``,
    ``dg = dC i``, ``dC_{t-1} = dC f``, each through its nonlinearity's
    derivative, and ``dh_{t-1} = dz W_h^T``.

    ``peepholes``: ``(p_i, p_f, p_o)`` broadcast against ``C_{t-1}`` in ``lay``,
    for the peephole LSTM, whose gates add ``p_i C_{t-1}``, ``p_f C_{t-1}`` and
    ``p_o C_t`` to their pre-activations: ``C_t`` then also reaches the loss
    through ``o`` (``dC += do p_o``) and ``C_{t-1}`` through ``i`` and ``f``
    (``dC_{t-1} += di p_i + df p_f``).
    """
    i, f, g, o = res
    tc = jnp.tanh(f * c_prev + i * g)  # tanh(C_t), recomputed
    do = d.h * tc * o * (1.0 - o)
    dc = d.c + d.h * o * (1.0 - tc * tc)
    if peepholes is not None:
        dc = dc + do * peepholes[2]
    dz, dc_prev = cell_backward(lay, res, c_prev, dc, do, peepholes)
    return LSTMCarry(h=lay.mm_t(dz, w_h), c=dc_prev), dz


def cell_backward(
    lay: Layout,
    res: tuple[jax.Array, ...],
    c_prev: jax.Array,
    dc: jax.Array,
    do: jax.Array,
    peepholes: tuple[jax.Array, jax.Array, jax.Array] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """The part of :func:`backward_step` below ``C_t``: ``(dz, dC_{t-1})`` from the
    activated gates ``res``, ``C_{t-1}``, the total gradient ``dc`` of ``C_t`` and
    that of the output gate's pre-activation ``do`` (shared with the LN-LSTM,
    whose path from ``C_t`` to ``h_t`` differs)."""
    i, f, g, _ = res
    di = dc * g * i * (1.0 - i)
    df = dc * c_prev * f * (1.0 - f)
    dc_prev = dc * f
    if peepholes is not None:
        dc_prev = dc_prev + di * peepholes[0] + df * peepholes[1]
    return lay.concat([di, df, dc * i * (1.0 - g * g), do]), dc_prev


def grads(
    lay: Layout, p: Any, xs: jax.Array, prevs: LSTMCarry, res: Any, dz: jax.Array
) -> tuple[LSTMParams, jax.Array]:
    """The kernels' ``grads``: ``w_x``, ``w_h``, ``b`` (an :class:`LSTMParams`)
    and the inputs' gradients from the stacked pre-activation gradients ``dz``."""
    dparams = LSTMParams(
        w_x=lay.gram(xs, dz), w_h=lay.gram(prevs.h, dz), b=lay.bsum(dz)
    )
    return dparams, lay.seq_mm_t(dz, p.w_x)
