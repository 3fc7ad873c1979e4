"""Shared plumbing for the diagnostics: a model seen as one cell, its state as a
flat vector, and the trajectory of states along a sequence.

The *state* ``s_t`` of a model is its whole carry after reading ``x_t``, raveled
into one vector (``jax.flatten_util.ravel_pytree``): ``h`` for Elman and GRU,
``[h, c]`` for an LSTM, and the layers' carries one after another for a stack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._checks import check_rank
from .._runner import unroll
from ..cells import Cell
from ..layers import RNNLayer

Wrt = Literal["carry", "h"]
Ord = Literal["fro", "spectral"]


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(
            f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}."
        )


def with_step(cell: Cell, step: Callable[..., tuple[Any, jax.Array]]) -> Cell:
    """``cell`` with another ``step`` and nothing else: a cell's optional fused
    kernel (a hand-differentiated copy of its step) is dropped on purpose, so the
    runners call ``step`` itself."""
    return Cell(
        cell.init, cell.init_carry, step, cell.hidden_size, cell.name, cell.options
    )


def stacked_cell(cells: Sequence[Cell]) -> Cell:
    """Stacked cells as one cell: the carry is a tuple with one carry per layer and
    layer ``i`` reads layer ``i - 1``'s output at the same time step (what a
    forward :func:`jaxseq.stack` computes, without dropout)."""
    cells = tuple(cells)

    def init(key: jax.Array, input_size: int) -> tuple[Any, ...]:
        params, size = [], input_size
        for c, k in zip(cells, jax.random.split(key, len(cells)), strict=True):
            params.append(c.init(k, size))
            size = c.hidden_size
        return tuple(params)

    def init_carry(params: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(c.init_carry(p) for c, p in zip(cells, params, strict=True))

    def step(
        params: tuple[Any, ...], carry: tuple[Any, ...], x: jax.Array
    ) -> tuple[tuple[Any, ...], jax.Array]:
        new, y = [], x
        for c, p, k in zip(cells, params, carry, strict=True):
            k, y = c.step(p, k, y)
            new.append(k)
        return tuple(new), y

    return Cell(init, init_carry, step, cells[-1].hidden_size, name="stack")


def as_cell(model: Cell | RNNLayer, params: Any) -> Cell:
    """``model`` as a single :class:`~jaxseq.cells.Cell` over time.

    Raises:
        ValueError: for a bidirectional or reversed layer (its state at time ``t``
            is not a function of the past alone), or a layer whose ``params`` do
            not have one entry per layer.
        TypeError: for anything but a ``Cell`` or an ``RNNLayer``.
    """
    if isinstance(model, Cell):
        return model
    if isinstance(model, RNNLayer):
        if model.bidirectional or model.reverse:
            raise ValueError(
                "model: expected a Cell or a forward RNNLayer (state Jacobians follow "
                "one time direction), got an RNNLayer with "
                f"bidirectional={model.bidirectional}, reverse={model.reverse}. "
                "Analyse each direction's cell separately."
            )
        if len(params) != len(model.cells):
            raise ValueError(
                f"params: expected {len(model.cells)} layers, got {len(params)}."
            )
        return stacked_cell(model.cells)
    raise TypeError(
        f"model: expected a jaxseq Cell or RNNLayer, got {type(model).__name__}."
    )


class StateLayout(NamedTuple):
    """How a carry maps to the flat state vector.

    Attributes:
        size: ``S``, the length of the flat state.
        h_index: integer positions of every ``h`` field (all layers) in the flat
            state, for ``wrt="h"``.
        unravel: flat ``[S]`` vector -> carry for one example.
    """

    size: int
    h_index: np.ndarray
    unravel: Callable[[jax.Array], Any]


def state_layout(cell: Cell, params: Any) -> StateLayout:
    """The flat-state layout of ``cell``'s carry (shapes only, trace-safe)."""
    template = cell.init_carry(params)
    flat, unravel = ravel_pytree(template)
    index, offset = [], 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(template)[0]:
        size = int(np.prod(np.shape(leaf)))
        last = path[-1] if path else None
        if isinstance(last, jax.tree_util.GetAttrKey) and last.name == "h":
            index.extend(range(offset, offset + size))
        offset += size
    return StateLayout(int(flat.shape[0]), np.asarray(index, dtype=np.int64), unravel)


def block_index(layout: StateLayout, wrt: Wrt) -> np.ndarray | None:
    """Positions of the ``wrt`` block in the flat state (``None``: all of it).

    Raises:
        ValueError: for an unknown ``wrt``, or ``wrt="h"`` on a carry without ``h``.
    """
    check_choice("wrt", wrt, ("carry", "h"))
    if wrt == "carry":
        return None
    if layout.h_index.size == 0:
        raise ValueError(
            "wrt: 'h' needs a carry with an 'h' field, got a carry without one; "
            "use wrt='carry'."
        )
    return layout.h_index


def flat_step(cell: Cell, layout: StateLayout) -> Callable[..., jax.Array]:
    """``(params, s_{t-1} [S], x_t [F]) -> s_t [S]``: one step on flat states."""

    def step(params: Any, state: jax.Array, x: jax.Array) -> jax.Array:
        carry, _ = cell.step(params, layout.unravel(state), x)
        return ravel_pytree(carry)[0]

    return step


def trajectory(cell: Cell, params: Any, carry0: Any, xs: jax.Array) -> jax.Array:
    """States ``s_0 .. s_T`` ``[T + 1, S]`` of one sequence ``xs`` ``[T, F]``
    (``s_0`` is ``carry0``), run with :func:`jaxseq.unroll`."""

    def step(p: Any, carry: Any, x: jax.Array) -> tuple[Any, jax.Array]:
        carry, _ = cell.step(p, carry, x)
        return carry, ravel_pytree(carry)[0]

    _, states = unroll(with_step(cell, step), params, carry0, xs)
    s0 = ravel_pytree(carry0)[0].astype(states.dtype)
    return jnp.concatenate([s0[None], states], axis=0)


def batched(
    fn: Callable[[jax.Array, Any], jax.Array],
    cell: Cell,
    params: Any,
    xs: jax.Array,
    carry0: Any | None,
) -> jax.Array:
    """Apply ``fn(xs_one [T, F], carry0_one)`` to one sequence ``[T, F]`` or
    to each sequence of a batch ``[B, T, F]`` (vmapped)."""
    check_rank("xs", xs, (2, 3), "[T, F] one sequence or [B, T, F] a batch")
    if xs.ndim == 2:
        return fn(xs, cell.init_carry(params) if carry0 is None else carry0)
    if carry0 is None:
        return jax.vmap(lambda x: fn(x, cell.init_carry(params)))(xs)
    return jax.vmap(fn)(xs, carry0)


def matrix_norm(m: jax.Array, ord: Ord) -> jax.Array:
    """Frobenius or spectral (largest singular value) norm of ``m`` ``[S, S]``."""
    if ord == "fro":  # scaled first: squares of entries below 1e-19 underflow
        scale = jnp.max(jnp.abs(m))
        safe = jnp.where(scale > 0, scale, jnp.ones_like(scale))
        return safe * jnp.sqrt(jnp.sum(jnp.square(m / safe)))
    return jnp.linalg.norm(m, ord=2)
