"""Elman's simple recurrent network (Elman, 1990)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

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
)

_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "identity": lambda a: a,
}


#: ``impl="auto"`` on CPU (one core, benchmarks/results/layouts.md): the
#: backward's loops run feature-major up to ``H = 32`` (B=256, T=100, H=32:
#: 3.62 against 3.82 ms batch-major), and at batch 1 the forward-only call
#: projects the inputs first (B=1, T=1000, H=64: 0.26 -> 0.21 ms). A large
#: forward-only state stays batch-major (no ``fm_primal_min_cells`` switch): at
#: B=128, T=200, H=256 batch-major steps were 7% faster on an AMD Zen 4
#: (57.6 vs 61.9 ms, benchmarks/results/speed_zen4.md) and 5% on a Zen 3, 3.5% slower
#: on the earlier AVX-512 CPU (layouts_earlier_cpu.md).
TUNING = Tuning(
    fm_hidden_grad=32, batch1_primal_hoist=True, fm_primal_min_cells=1 << 62
)


class ElmanParams(NamedTuple):
    """Elman parameters in the seed's notation ``a_t = b + W h_{t-1} + U x_t``.

    Attributes:
        w_x: ``[F, H]``, the seed's ``U`` transposed (jaxseq multiplies on the right).
        w_h: ``[H, H]``, the seed's ``W`` transposed.
        b: ``[H]``, the seed's ``b`` (PyTorch's ``b_ih + b_hh``).
    """

    w_x: jax.Array
    w_h: jax.Array
    b: jax.Array


class ElmanCarry(NamedTuple):
    """Elman state: the hidden vector ``h``."""

    h: jax.Array


def elman(
    hidden_size: int,
    *,
    activation: str | Callable[[jax.Array], jax.Array] = "tanh",
    dtype: jnp.dtype = jnp.float32,
    kernel_init: Initializer = GLOROT_UNIFORM,
    recurrent_init: Initializer = ORTHOGONAL,
    bias_init: Initializer = ZEROS,
) -> Cell:
    r"""An Elman cell as pure functions: the seed's

    .. math:: h_t = \tanh(b + W h_{t-1} + U x_t)

    written ``h_t = act(x_t w_x + h_{t-1} w_h + b)`` with ``w_x = U^T``, ``w_h = W^T``.
    The seed's readout ``o_t = c + V h_t`` is a separate dense layer (see
    :mod:`jaxseq.nn`).

    Args:
        hidden_size: ``H``.
        activation: ``"tanh"`` (default, PyTorch ``nn.RNN`` and Keras ``SimpleRNN``),
            ``"relu"``, ``"sigmoid"``, ``"identity"`` (a linear RNN, handy for
            gradient-flow analysis) or any elementwise callable.
        dtype: parameter dtype (``float32`` or ``bfloat16``).
        kernel_init, recurrent_init, bias_init: initialisers ``(key, shape, dtype)``;
            defaults match Keras (Glorot-uniform, orthogonal, zeros).

    Returns:
        A :class:`~jaxseq.cells.Cell`; ``carry`` is :class:`ElmanCarry`, ``y = h_t``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxseq.cells import elman
        >>> cell = elman(5, activation="relu")
        >>> params = cell.init(jax.random.key(0), 3)
        >>> params.w_h.shape
        (5, 5)
    """
    hidden = check_hidden_size(hidden_size)
    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation: expected one of {sorted(_ACTIVATIONS)} or a callable, "
                f"got {activation!r}."
            )
        act_name, act = activation, _ACTIVATIONS[activation]
    elif callable(activation):
        act_name, act = getattr(activation, "__name__", "custom"), activation
    else:
        raise TypeError(
            "activation: expected a name or a callable, got "
            f"{type(activation).__name__}."
        )

    def init(key: jax.Array, input_size: int) -> ElmanParams:
        k_x, k_h, k_b = jax.random.split(key, 3)
        w_x, w_h = gate_kernels(
            k_x, k_h, input_size, hidden, hidden, dtype, kernel_init, recurrent_init
        )
        return ElmanParams(w_x, w_h, initialize(bias_init, k_b, (hidden,), dtype))

    return make_cell(
        "elman",
        hidden,
        init,
        ElmanCarry,
        partial(_equations, act, BATCH_MAJOR),
        options=(("activation", act_name),),
        kernel=_kernel(act),
        h_only_in_product=True,
    )


def _equations(
    act: Callable[[jax.Array], jax.Array],
    lay: Layout,
    params: ElmanParams,
    carry: ElmanCarry,
    x: jax.Array,
) -> tuple[ElmanCarry, jax.Array]:
    """The Elman step in either layout (see :class:`~jaxseq.cells._base.Layout`)."""
    h = act(lay.bias(lay.mm(x, params.w_x) + lay.mm(carry.h, params.w_h), params.b))
    return ElmanCarry(h=h), h


def _kernel(act: Callable[[jax.Array], jax.Array]) -> SequenceKernel:
    """The Elman step with its backward: ``da = act'(a_t) dh``, ``dh_{t-1} = da W^T``.

    The pre-activation ``a_t`` is kept and ``act'`` applied through ``jax.vjp``, so
    any elementwise activation works.
    """

    def project(lay: Layout, p: ElmanParams, x: jax.Array) -> jax.Array:
        return lay.bias(lay.mm(x, p.w_x), p.b)

    def forward(lay: Layout, p: ElmanParams, carry: ElmanCarry, ax: jax.Array):
        a = ax + lay.mm(carry.h, p.w_h)
        h = act(a)
        return ElmanCarry(h=h), h, a

    def backward(lay: Layout, p: ElmanParams, a, prev: ElmanCarry, d: ElmanCarry):
        da = jax.vjp(act, a)[1](d.h)[0]
        return ElmanCarry(h=lay.mm_t(da, p.w_h)), da

    def grads(lay: Layout, p: ElmanParams, xs, prevs: ElmanCarry, a, da):
        dparams = ElmanParams(
            w_x=lay.gram(xs, da), w_h=lay.gram(prevs.h, da), b=lay.bsum(da)
        )
        return dparams, lay.seq_mm_t(da, p.w_x)

    return SequenceKernel(
        partial(_equations, act), project, forward, backward, grads, TUNING
    )
