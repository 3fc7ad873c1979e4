r"""LSTM with peephole connections (Gers & Schmidhuber, 2000, "Recurrent nets
that time and count"; Gers, Schraudolph & Schmidhuber, 2002).

The gates look at the memory cell through diagonal ("peephole") weights: the
input and forget gates at ``C_{t-1}``, the output gate at the new ``C_t``.

The cell has a fused kernel (:class:`~jaxseq._fused.SequenceKernel`) built from
the LSTM's: the same input projection, the LSTM's backward step with the
peephole terms switched on (:func:`jaxseq.cells._lstm.backward_step`), and the
LSTM's weight gradients plus those of the peepholes, which, like the other
weights' gradients, are sums over all steps and examples taken after the reverse
loop (``dp_i = sum di C_{t-1}``, ``dp_f = sum df C_{t-1}``, ``dp_o = sum do C_t``).
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
    sigmoid,
)
from ._lstm import (
    TUNING,
    LSTMCarry,
    backward_step,
    grads,
    lstm_bias,
    preactivations,
    project,
)

#: Order of the peephole blocks in ``w_c``: input, forget, output gate.
PEEPHOLE_ORDER = "ifo"


class PeepholeLSTMParams(NamedTuple):
    """Parameters of :func:`peephole_lstm`; ``w_x``, ``w_h``, ``b`` as in
    :class:`~jaxseq.cells.LSTMParams` (gates ``i f g o``).

    Attributes:
        w_x: ``[F, 4H]`` input kernel.
        w_h: ``[H, 4H]`` recurrent kernel.
        b: ``[4H]`` bias.
        w_c: ``[3H]`` diagonal peephole weights in ``PEEPHOLE_ORDER`` (``i f o``):
            ``p_i``, ``p_f`` act on ``C_{t-1}``, ``p_o`` on ``C_t``.
    """

    w_x: jax.Array
    w_h: jax.Array
    b: jax.Array
    w_c: jax.Array


def peephole_lstm(
    hidden_size: int,
    *,
    forget_bias: float = 1.0,
    dtype: jnp.dtype = jnp.float32,
    kernel_init: Initializer = GLOROT_UNIFORM,
    recurrent_init: Initializer = ORTHOGONAL,
    bias_init: Initializer = ZEROS,
    peephole_init: Initializer = ZEROS,
) -> Cell:
    r"""An LSTM cell with diagonal peephole connections.

    .. math::

        [a_i, a_f, a_g, a_o] &= x_t W_x + h_{t-1} W_h + b \\
        i_t &= \sigma(a_i + p_i * C_{t-1}), \qquad
        f_t = \sigma(a_f + p_f * C_{t-1}) \\
        C_t &= f_t * C_{t-1} + i_t * \tanh(a_g) \\
        o_t &= \sigma(a_o + p_o * C_t), \qquad h_t = o_t * \tanh(C_t)

    Args:
        hidden_size: ``H``.
        forget_bias: added to the forget-gate slice of the initial ``b``.
        dtype: parameter dtype; the step computes in it.
        kernel_init, recurrent_init, bias_init: as for :func:`~jaxseq.cells.lstm`.
        peephole_init: initialiser of ``w_c`` ``[3H]``; zeros by default, so the
            cell starts as the plain LSTM (with the same ``w_x``, ``w_h``, ``b``).

    Returns:
        A :class:`~jaxseq.cells.Cell` named ``"peephole_lstm"``; parameters
        :class:`PeepholeLSTMParams`, carry :class:`~jaxseq.cells.LSTMCarry`,
        ``y = h_t``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxseq.cells import peephole_lstm
        >>> cell = peephole_lstm(8)
        >>> params = cell.init(jax.random.key(0), 3)
        >>> carry, y = cell.step(params, cell.init_carry(params), jnp.ones(3))
        >>> params.w_c.shape, y.shape
        ((24,), (8,))
    """
    hidden = check_hidden_size(hidden_size)

    def init(key: jax.Array, input_size: int) -> PeepholeLSTMParams:
        k_x, k_h, k_b, k_c = jax.random.split(key, 4)
        w_x, w_h = gate_kernels(
            k_x, k_h, input_size, 4 * hidden, hidden, dtype, kernel_init, recurrent_init
        )
        return PeepholeLSTMParams(
            w_x=w_x,
            w_h=w_h,
            b=lstm_bias(k_b, hidden, forget_bias, dtype, bias_init),
            w_c=initialize(peephole_init, k_c, (3 * hidden,), dtype),
        )

    return make_cell(
        "peephole_lstm", hidden, init, LSTMCarry, partial(_equations, BATCH_MAJOR),
        options=(("forget_bias", forget_bias),),
        kernel=_kernel(),
        h_only_in_product=True,  # the peepholes read C, not h
    )  # fmt: skip


def _equations(
    lay: Layout, p: PeepholeLSTMParams, carry: LSTMCarry, x: jax.Array
) -> tuple[LSTMCarry, jax.Array]:
    """The peephole LSTM step in either layout: the LSTM's pre-activations, then
    :func:`_update`."""
    return _update(lay, p.w_c, preactivations(lay, p, carry.h, x), carry.c)[:2]


def _peepholes(
    lay: Layout, w_c: jax.Array, like: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``p_i``, ``p_f``, ``p_o`` (``[H]`` each) broadcast over the batch axis of a
    carry leaf ``like`` in ``lay``, as the layout broadcasts a bias."""
    zero = jnp.zeros_like(like)
    p_i, p_f, p_o = (lay.bias(zero, w) for w in jnp.split(w_c, 3))
    return p_i, p_f, p_o


def _update(
    lay: Layout, w_c: jax.Array, z: jax.Array, c_prev: jax.Array
) -> tuple[LSTMCarry, jax.Array, tuple[jax.Array, ...]]:
    """The peephole LSTM's equations from the pre-activations ``z = [a_i, a_f,
    a_g, a_o]`` (``[B, 4H]`` or ``[4H, B]`` in ``lay``) and ``C_{t-1}``: the one
    place they are written, for the step and the fused forward.

    Returns:
        ``(carry, h_t, gates)``, ``gates`` the activated ``i, f, g, o`` (the fused
        backward's residuals, as the LSTM's).
    """
    p_i, p_f, p_o = _peepholes(lay, w_c, c_prev)
    a_i, a_f, a_g, a_o = lay.split(z, 4)
    i = sigmoid(a_i + p_i * c_prev)
    f = sigmoid(a_f + p_f * c_prev)
    g = jnp.tanh(a_g)
    c = f * c_prev + i * g
    o = sigmoid(a_o + p_o * c)
    h = o * jnp.tanh(c)
    return LSTMCarry(h=h, c=c), h, (i, f, g, o)


def _kernel() -> SequenceKernel:
    """The LSTM's kernel with peepholes (see the module docstring).

    ``impl="auto"`` uses the LSTM's :class:`~jaxseq._plan.Tuning`: the two
    kernels share every matmul and loop; the peepholes add only elementwise
    work to each step (benchmarks/results/cells_speed.md times the two). At the
    two sizes around its switch from autodiff to the hand-written backward,
    B=512, T=200, F=4, it picked this kernel's fastest gradient or one within 4%
    (median CPU ms of 9 interleaved calls on one core of an AMD EPYC, family 25
    model 17, load 6.7): at H=4 autodiff, feature-major (its pick) 13.4 against
    14.0 for the kernel; at H=8 the batch-major kernel (its pick) 43.7 against
    44.5 for autodiff and 50.9 for the feature-major kernel.
    """

    def forward(lay: Layout, p: PeepholeLSTMParams, carry: LSTMCarry, ax: jax.Array):
        return _update(lay, p.w_c, ax + lay.mm(carry.h, p.w_h), carry.c)

    def backward(lay: Layout, p: PeepholeLSTMParams, res, prev: LSTMCarry, d):
        peep = _peepholes(lay, p.w_c, prev.c)
        return backward_step(lay, p.w_h, res, prev.c, d, peep)

    def peephole_grads(lay: Layout, p: PeepholeLSTMParams, xs, prevs, res, dz):
        (dw_x, dw_h, db), dxs = grads(lay, p, xs, prevs, res, dz)
        i, f, g, _ = res
        di, df, _, do = lay.seq_split(dz, 4)
        c = f * prevs.c + i * g  # C_t, recomputed as in the backward loop
        dw_c = jnp.concatenate(
            [lay.bsum(di * prevs.c), lay.bsum(df * prevs.c), lay.bsum(do * c)]
        )
        return PeepholeLSTMParams(dw_x, dw_h, db, dw_c), dxs

    return SequenceKernel(
        _equations, project, forward, backward, peephole_grads, TUNING
    )
