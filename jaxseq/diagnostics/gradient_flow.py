r"""Gradient flow through time: how much gradient reaches each step, and why.

Backpropagation through time multiplies the gradient by one state Jacobian per
step. With ``s_t`` the model's state after reading ``x_t`` (``s_0`` the initial
carry) and ``D_t = \partial s_t / \partial s_{t-1}``,

.. math::

    \frac{\partial L}{\partial s_t}
        = \frac{\partial L}{\partial s_T} \, D_T D_{T-1} \cdots D_{t+1},
    \qquad
    P_k = \frac{\partial s_T}{\partial s_{T-k}} = D_T \cdots D_{T-k+1}.

For a linear Elman net ``h_t = W h_{t-1}`` every ``D_t`` is ``W``, so
``P_k = W^k = V \operatorname{diag}(\lambda)^k V^{-1}``: ``\|P_k\|`` grows like
``\rho(W)^k`` when the spectral radius ``\rho > 1`` (exploding gradients, cured by
clipping) and decays like ``\rho^k`` when ``\rho < 1`` (vanishing gradients, the
reason for LSTM and GRU gates). For ``tanh`` the factor is
``D_t = \operatorname{diag}(1 - h_t^2) W``, whose extra factor is at most 1.

Everything here is exact autodiff (``jax.vjp``), never finite differences:

- :func:`hidden_grad_norms`: ``\|\partial L / \partial h_t\|`` for every step of a
  batch, for any cell or layer and any loss on the outputs.
- :func:`jacobian_norms` and :func:`jacobian_products`: ``\|P_k\|`` (Frobenius or
  spectral) and ``P_k`` itself as functions of the lag ``k = T - t``.
- :func:`by_lag`: re-index per-step values by lag from each sequence's last
  valid step.

Indexing convention: arrays "by time" have ``T`` entries, entry ``t`` (0-based)
being the state after reading ``xs[t]``; arrays "by lag" count back from the last
state, entry ``k`` being ``T - 1 - t``. :func:`jacobian_norms` has ``T + 1`` lags,
the last one (``k = T``) being the initial carry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._checks import check_rank
from .._runner import merge_outputs, rnn
from ..cells import Cell
from ..layers import BiCarry, RNNLayer
from ._adjoint import Adjoint, adjoint_pass, block
from ._state import (
    Ord,
    StateLayout,
    Wrt,
    as_cell,
    batched,
    block_index,
    check_choice,
    matrix_norm,
    state_layout,
    with_step,
)

LossFn = Callable[[Any, jax.Array], jax.Array]


# --------------------------------------------------------------------------
# dL/dh_t: a zero perturbation added to every state, differentiated
# --------------------------------------------------------------------------


def _perturbed(cell: Cell, layout: StateLayout, wrt: Wrt, size: int) -> Cell:
    """``cell`` reading ``[x_t, eps_t]``: ``eps_t`` is added to the new state (the
    whole carry, or its ``h``) and to the output ``y_t = h_t``. At ``eps = 0`` the
    run is unchanged and ``dL/d eps_t`` is the total derivative ``dL/ds_t``."""

    def step(params: Any, carry: Any, x_eps: jax.Array) -> tuple[Any, jax.Array]:
        x, eps = x_eps[..., :-size], x_eps[..., -size:]
        carry, y = cell.step(params, carry, x)
        if wrt == "h":
            eps_h = eps
            carry = carry._replace(h=carry.h + eps.astype(carry.h.dtype))
        else:
            delta = layout.unravel(eps)
            carry = jax.tree.map(lambda a, e: a + e.astype(a.dtype), carry, delta)
            eps_h = delta.h
        return carry, y + eps_h.astype(y.dtype)

    return with_step(cell, step)


def _state_size(cell: Cell, params: Any, wrt: Wrt) -> tuple[StateLayout, int]:
    layout = state_layout(cell, params)
    index = block_index(layout, wrt)
    return layout, layout.size if index is None else int(index.size)


def _scalar(loss: jax.Array) -> jax.Array:
    if jnp.shape(loss) != ():
        raise ValueError(
            f"loss_fn: expected a scalar loss, got shape {jnp.shape(loss)}. Reduce "
            "over the batch and time (e.g. .mean())."
        )
    return loss


def _norm(g: jax.Array) -> jax.Array:
    """Euclidean norm over the last axis, scaled by the largest entry first so
    that squaring entries below ``1e-19`` does not underflow float32 to zero."""
    scale = jnp.max(jnp.abs(g), axis=-1, keepdims=True)
    safe = jnp.where(scale > 0, scale, jnp.ones_like(scale))
    return safe[..., 0] * jnp.sqrt(jnp.sum(jnp.square(g / safe), axis=-1))


def _with_eps(xs: jax.Array, eps: jax.Array) -> jax.Array:
    return jnp.concatenate([xs, eps.astype(xs.dtype)], axis=-1)


def _cell_grad_norms(
    cell: Cell,
    params: Any,
    xs: jax.Array,
    loss_fn: LossFn,
    lengths: Any,
    carry0: Any,
    wrt: Wrt,
) -> jax.Array:
    layout, size = _state_size(cell, params, wrt)
    wrapped = _perturbed(cell, layout, wrt, size)

    def loss(eps: jax.Array) -> jax.Array:
        xe = _with_eps(xs, eps)
        carry, ys = rnn(wrapped, params, xe, lengths=lengths, carry0=carry0)
        return _scalar(loss_fn(carry, ys))

    grads = jax.grad(loss)(jnp.zeros((*xs.shape[:2], size), xs.dtype))
    return _norm(grads)


def _layer_grad_norms(
    layer: RNNLayer,
    params: Any,
    xs: jax.Array,
    loss_fn: LossFn,
    lengths: Any,
    carry0: Any,
    wrt: Wrt,
) -> jax.Array:
    if len(params) != len(layer.cells):
        raise ValueError(
            f"params: expected {len(layer.cells)} layers, got {len(params)}."
        )
    dirs = 2 if layer.bidirectional else 1
    first = [p.fw if layer.bidirectional else p for p in params]
    shapes = [_state_size(c, p, wrt) for c, p in zip(layer.cells, first, strict=True)]
    cells = [
        _perturbed(c, lay, wrt, n)
        for c, (lay, n) in zip(layer.cells, shapes, strict=True)
    ]

    def loss(eps: list[jax.Array]) -> jax.Array:
        carries, ys = [], xs
        for i, (c, p, e) in enumerate(zip(cells, params, eps, strict=True)):
            c0 = None if carry0 is None else carry0[i]
            if layer.bidirectional:
                c0_fw, c0_bw = (None, None) if c0 is None else c0
                x_fw, x_bw = _with_eps(ys, e[0]), _with_eps(ys, e[1])
                k_fw, y_fw = rnn(c, p.fw, x_fw, lengths=lengths, carry0=c0_fw)
                k_bw, y_bw = rnn(
                    c, p.bw, x_bw, lengths=lengths, carry0=c0_bw, reverse=True
                )
                carries.append(BiCarry(k_fw, k_bw))
                ys = merge_outputs(y_fw, y_bw, layer.merge)  # type: ignore[arg-type]
            else:
                x_e = _with_eps(ys, e[0])
                k, ys = rnn(
                    c, p, x_e, lengths=lengths, carry0=c0, reverse=layer.reverse
                )
                carries.append(k)
        return _scalar(loss_fn(tuple(carries), ys))

    zeros = [jnp.zeros((dirs, *xs.shape[:2], n), xs.dtype) for _, n in shapes]
    grads = jax.grad(loss)(zeros)
    norms = jnp.stack([_norm(g) for g in grads])  # [L, D, B, T]
    return norms if layer.bidirectional else norms[:, 0]


def hidden_grad_norms(
    model: Cell | RNNLayer,
    params: Any,
    xs: Float[Array, "B T F"],
    loss_fn: LossFn,
    *,
    lengths: ArrayLike | None = None,
    carry0: Any | None = None,
    wrt: Wrt = "h",
) -> Float[Array, "... B T"]:
    r"""The gradient reaching each time step, ``\|\partial L/\partial h_t\|``.

    A zero perturbation ``eps_t`` is added to every new state and to the output
    (``h_t + eps_t``); the run is unchanged and
    ``\partial L / \partial eps_t = \partial L / \partial h_t`` is the *total*
    derivative, through the outputs and through every later step (one
    reverse-mode pass, ``jax.grad``).

    Args:
        model: a :class:`~jaxseq.cells.Cell` or an :class:`~jaxseq.layers.RNNLayer`
            (stacked, bidirectional or reversed; dropout is not applied).
        params: its parameters.
        xs: ``[B, T, F]`` inputs.
        loss_fn: ``loss_fn(carry, ys) -> scalar`` on the model's final carry (a tuple
            of per-layer carries for a layer) and outputs ``ys`` ``[B, T, H]``;
            close over readout parameters and targets.
        lengths: optional ``[B]`` valid lengths (the gradient is zero at padding).
        carry0: optional initial carry, as for :func:`jaxseq.rnn` (per layer for a
            layer).
        wrt: ``"h"`` (default) for the output-bearing state ``h_t``; ``"carry"``
            for the whole carry (``[h_t, c_t]`` for an LSTM).

    Returns:
        Norms by time: ``[B, T]`` for a cell, ``[L, B, T]`` for a layer of ``L``
        layers, ``[L, 2, B, T]`` (forward, backward) for a bidirectional one.
        :func:`by_lag` re-indexes them by lag.

    Raises:
        ValueError: for a non-scalar loss, a wrong ``xs`` rank or ``wrt``.
        TypeError: for a ``model`` that is neither a ``Cell`` nor an ``RNNLayer``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import jaxseq
        >>> from jaxseq.diagnostics import hidden_grad_norms
        >>> cell = jaxseq.cells.elman(3)
        >>> params = cell.init(jax.random.key(0), 2)
        >>> xs = jax.random.normal(jax.random.key(1), (4, 6, 2))
        >>> norms = hidden_grad_norms(cell, params, xs,
        ...                           lambda carry, ys: ys[:, -1].sum())
        >>> norms.shape
        (4, 6)
    """
    check_rank("xs", xs, 3, "[B, T, F]: batch, time, features")
    check_choice("wrt", wrt, ("carry", "h"))
    if isinstance(model, Cell):
        return _cell_grad_norms(model, params, xs, loss_fn, lengths, carry0, wrt)
    if isinstance(model, RNNLayer):
        return _layer_grad_norms(model, params, xs, loss_fn, lengths, carry0, wrt)
    raise TypeError(
        f"model: expected a jaxseq Cell or RNNLayer, got {type(model).__name__}."
    )


def by_lag(
    norms: Float[ArrayLike, "... B T"], lengths: ArrayLike | None = None
) -> Float[Array, "... B T"]:
    """Re-index per-step values by lag from each sequence's last valid step.

    Entry ``k`` of the result is the value at ``t = length - 1 - k``; lags beyond
    a sequence's length are NaN (use ``jnp.nanmean`` to average).

    Args:
        norms: ``[..., B, T]`` values by time (e.g. from :func:`hidden_grad_norms`),
            or ``[..., T]`` when ``lengths`` is ``None``.
        lengths: optional ``[B]`` valid lengths; ``None`` means all are ``T``.

    Returns:
        The same shape, by lag.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxseq.diagnostics import by_lag
        >>> by_lag(jnp.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), jnp.array([3, 2]))
        Array([[ 3.,  2.,  1.],
               [ 5.,  4., nan]], dtype=float32)
    """
    norms = jnp.asarray(norms)
    if lengths is None:
        return norms[..., ::-1]
    check_rank("norms", norms, tuple(range(2, 8)), "[..., B, T]")
    lengths = jnp.asarray(lengths)
    time = norms.shape[-1]
    if lengths.shape != norms.shape[-2:-1]:
        raise ValueError(
            f"lengths: expected shape {norms.shape[-2:-1]} (the batch axis of norms), "
            f"got {lengths.shape}."
        )
    index = lengths[:, None] - 1 - jnp.arange(time)[None, :]  # [B, T]
    index = jnp.broadcast_to(index, norms.shape)
    picked = jnp.take_along_axis(norms, jnp.clip(index, 0, time - 1), axis=-1)
    return jnp.where(index >= 0, picked, jnp.full_like(picked, jnp.nan))


# --------------------------------------------------------------------------
# ds_T/ds_{T-k}: the adjoint recursion P_k = P_{k-1} D_{T-k+1} (see _adjoint.py)
# --------------------------------------------------------------------------


def jacobian_products(
    model: Cell | RNNLayer,
    params: Any,
    xs: Float[Array, "T F"],
    *,
    carry0: Any | None = None,
    wrt: Wrt = "carry",
) -> Float[Array, "T+1 S S"]:
    r"""The Jacobian products ``P_k = \partial s_T / \partial s_{T-k}`` along one
    sequence, for every lag ``k = 0 .. T``.

    ``P_0 = I`` and ``P_k = P_{k-1} D_{T-k+1}`` with the step Jacobians
    ``D_t = \partial s_t / \partial s_{t-1}`` (numerator layout: row ``i``,
    column ``j`` is ``\partial s_T[i] / \partial s_{T-k}[j]``), accumulated with
    ``jax.vjp``. For a linear Elman net with recurrent matrix ``W = w_h^T``,
    ``P_k = W^k``. Entries may overflow to ``inf`` over long exploding runs; use
    :func:`jacobian_norms` (``log10=True``) for norms over any range.

    Args:
        model: a cell or a forward (not bidirectional, not reversed) layer.
        params: its parameters.
        xs: ``[T, F]`` one sequence (``jax.vmap`` for a batch).
        carry0: optional initial carry for one example (zeros by default).
        wrt: ``"carry"`` (default) for the whole state (``[h, c]`` for an LSTM, all
            layers for a stack); ``"h"`` for the ``h`` rows and columns of ``P_k``:
            the sensitivity of ``h_T`` to ``h_{T-k}`` with the rest of the state
            at ``T - k`` (an LSTM's ``c``) held fixed.

    Returns:
        ``[T + 1, S, S]``, ``S`` the size of the selected state.

    Examples:
        >>> import jax.numpy as jnp
        >>> import jaxseq
        >>> from jaxseq.cells import ElmanParams
        >>> from jaxseq.diagnostics import jacobian_products
        >>> cell = jaxseq.cells.elman(2, activation="identity")
        >>> w = jnp.array([[0.5, 1.0], [0.0, 2.0]])   # the seed's W
        >>> params = ElmanParams(jnp.zeros((1, 2)), w.T, jnp.zeros(2))
        >>> jacobian_products(cell, params, jnp.zeros((3, 1)))[3].round(4)   # W^3
        Array([[0.125, 5.25 ],
               [0.   , 8.   ]], dtype=float32)
    """
    cell = as_cell(model, params)
    check_rank("xs", xs, 2, "[T, F]: one sequence; jax.vmap for a batch")
    index = block_index(state_layout(cell, params), wrt)

    def emit(a: Adjoint) -> jax.Array:
        return block(a.q, index) * jnp.power(jnp.asarray(10.0, a.q.dtype), a.log_scale)

    c0 = cell.init_carry(params) if carry0 is None else carry0
    return adjoint_pass(cell, params, xs, c0, emit)


def jacobian_norms(
    model: Cell | RNNLayer,
    params: Any,
    xs: Float[Array, "*B T F"],
    *,
    carry0: Any | None = None,
    ord: Ord = "fro",
    wrt: Wrt = "carry",
    log10: bool = False,
) -> Float[Array, "*B T+1"]:
    r"""``\|\partial s_T / \partial s_{T-k}\|`` as a function of the lag ``k``.

    The products of :func:`jacobian_products`, normalised as they accumulate so
    that the norm is exact over any range (``log10=True`` returns
    ``\log_{10}\|P_k\|``, finite even where ``\|P_k\|`` leaves the float range).
    For ``h_t = W h_{t-1}`` the norm behaves like ``c \rho(W)^k`` for large ``k``.

    Args:
        model: a cell or a forward (not bidirectional, not reversed) layer.
        params: its parameters.
        xs: ``[T, F]`` one sequence or ``[B, T, F]`` a batch.
        carry0: optional initial carry (leaves ``[B, ...]`` for a batch).
        ord: ``"fro"`` (Frobenius, default) or ``"spectral"`` (largest singular
            value; one SVD per step).
        wrt: ``"carry"`` or ``"h"`` (see :func:`jacobian_products`).
        log10: return ``log10`` of the norms.

    Returns:
        ``[T + 1]`` (or ``[B, T + 1]``), entry ``k`` for lag ``k``; entry 0 is the
        norm of the identity (``sqrt(S)`` Frobenius, 1 spectral).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import jaxseq
        >>> from jaxseq.diagnostics import jacobian_norms
        >>> cell = jaxseq.cells.lstm(4)
        >>> params = cell.init(jax.random.key(0), 2)
        >>> xs = jax.random.normal(jax.random.key(1), (3, 10, 2))
        >>> jacobian_norms(cell, params, xs).shape
        (3, 11)
    """
    cell = as_cell(model, params)
    check_choice("ord", ord, ("fro", "spectral"))
    index = block_index(state_layout(cell, params), wrt)

    def emit(a: Adjoint) -> jax.Array:
        return a.log_scale + jnp.log10(matrix_norm(block(a.q, index), ord))

    def one(x: jax.Array, c0: Any) -> jax.Array:
        return adjoint_pass(cell, params, x, c0, emit)

    out = batched(one, cell, params, xs, carry0)
    return out if log10 else jnp.power(jnp.asarray(10.0, out.dtype), out)


__all__ = [
    "by_lag",
    "hidden_grad_norms",
    "jacobian_norms",
    "jacobian_products",
]
