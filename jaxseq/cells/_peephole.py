r"""LSTM with peephole connections (Gers & Schmidhuber, 2000, "Recurrent nets
that time and count"; Gers, Schraudolph & Schmidhuber, 2002).

The gates look at the memory cell through diagonal ("peephole") weights: the
input and forget gates at ``C_{t-1}``, the output gate at the new ``C_t``.
``kernel=None``: the runners take the cell through ``cell.step`` and autodiff.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._base import (
    GLOROT_UNIFORM,
    ORTHOGONAL,
    ZEROS,
    Cell,
    Initializer,
    add_bias,
    check_hidden_size,
    gate_kernels,
    initialize,
    make_cell,
    sigmoid,
)
from ._lstm import LSTMCarry, lstm_bias

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
        "peephole_lstm", hidden, init, LSTMCarry, _equations,
        options=(("forget_bias", forget_bias),),
        h_only_in_product=True,  # the peepholes read C, not h
    )  # fmt: skip


def _equations(
    p: PeepholeLSTMParams, carry: LSTMCarry, x: jax.Array
) -> tuple[LSTMCarry, jax.Array]:
    """The peephole LSTM step (trailing feature axis; leading batch axes allowed)."""
    a_i, a_f, a_g, a_o = jnp.split(add_bias(x @ p.w_x + carry.h @ p.w_h, p.b), 4, -1)
    lead = (1,) * (carry.c.ndim - 1)
    p_i, p_f, p_o = (w.reshape(lead + w.shape) for w in jnp.split(p.w_c, 3))
    i = sigmoid(a_i + p_i * carry.c)
    f = sigmoid(a_f + p_f * carry.c)
    c = f * carry.c + i * jnp.tanh(a_g)
    h = sigmoid(a_o + p_o * c) * jnp.tanh(c)
    return LSTMCarry(h=h, c=c), h
