"""The adjoint recursion behind :func:`~jaxseq.diagnostics.jacobian_norms`.

``P_k = ds_T/ds_{T-k}`` satisfies ``P_0 = I`` and ``P_k = P_{k-1} D_{T-k+1}`` with
the step Jacobians ``D_t = ds_t/ds_{t-1}``: the same recursion as the adjoint
(back-propagated) state of backpropagation through time, for all ``S`` output
directions at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._runner import unroll
from ..cells import Cell
from ._state import flat_step, matrix_norm, state_layout, trajectory


class Adjoint(NamedTuple):
    """``P_k = 10**log_scale * q``; ``q`` is kept at unit Frobenius norm so that
    products over hundreds of steps neither overflow nor underflow."""

    q: jax.Array
    log_scale: jax.Array


def _no_init(key: jax.Array, input_size: int) -> None:
    raise NotImplementedError("the adjoint recursion has no parameters of its own")


def adjoint_pass(
    cell: Cell,
    params: Any,
    xs: jax.Array,
    carry0: Any,
    emit: Callable[[Adjoint], jax.Array],
) -> jax.Array:
    """``emit(P_k)`` for ``k = 0 .. T`` along one sequence ``xs`` ``[T, F]``.

    The backward recursion is itself a recurrence over time, so it runs through
    :func:`jaxseq.unroll` (``reverse=True``) as a cell whose input at step ``t``
    is ``[s_{t-1}, x_t]``: each step pulls the rows of ``P_{k-1}`` back through
    ``D_t`` with one ``jax.vjp``.
    """
    layout = state_layout(cell, params)
    states = trajectory(cell, params, carry0, xs)  # [T + 1, S]
    f = flat_step(cell, layout)
    size, dtype = layout.size, states.dtype

    def step(p: Any, carry: Adjoint, sx: jax.Array) -> tuple[Adjoint, jax.Array]:
        s_prev, x = sx[:size], sx[size:]
        _, pullback = jax.vjp(lambda s: f(p, s, x), s_prev)
        r = jax.vmap(lambda row: pullback(row)[0])(carry.q)  # rows of P_{k-1} D_t
        m = matrix_norm(r, "fro")
        positive = m > 0
        safe = jnp.where(positive, m, jnp.ones_like(m))
        log_m = jnp.where(positive, jnp.log10(safe), jnp.full_like(m, -jnp.inf))
        new = Adjoint(r / safe, carry.log_scale + log_m)
        return new, emit(new)

    adjoint = Cell(
        _no_init,
        lambda p: Adjoint(jnp.zeros((size, size), dtype), jnp.zeros((), dtype)),
        step,
        hidden_size=size,
        name="adjoint",
    )
    start = Adjoint(jnp.eye(size, dtype=dtype), jnp.zeros((), dtype))
    inputs = jnp.concatenate([states[:-1], xs.astype(dtype)], axis=-1)
    _, out = unroll(adjoint, params, start, inputs, reverse=True)
    return jnp.concatenate([emit(start)[None], out[::-1]], axis=0)


def block(m: jax.Array, index: Any) -> jax.Array:
    """The ``index`` rows and columns of ``m`` (all of it for ``None``)."""
    return m if index is None else m[index][:, index]
