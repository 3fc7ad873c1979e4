"""Recurrent layers built from the runner: stacked, bidirectional, with dropout.

A layer is a bundle of pure functions like a cell:

>>> import jax, jax.numpy as jnp
>>> import jaxseq
>>> layer = jaxseq.layers.stack(jaxseq.cells.lstm(8), num_layers=2,
...                             bidirectional=True)
>>> params = layer.init(jax.random.key(0), 3)
>>> xs = jax.random.normal(jax.random.key(1), (4, 10, 3))
>>> carries, ys = layer.apply(params, xs, lengths=jnp.array([10, 7, 3, 0]))
>>> ys.shape, len(carries)
((4, 10, 16), 2)

Many-to-many use reads ``ys``; many-to-one use reads the last layer's final carry
(``carries[-1]``, a :class:`BiCarry` when bidirectional) or pools ``ys`` over the
valid steps with :func:`jaxseq.nn.masked_mean`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax

from ._checks import check_params, check_rank
from ._runner import Impl, Merge, rnn
from ._runner import bidirectional as _bidirectional
from .cells import Cell
from .nn import dropout as _dropout


class BiParams(NamedTuple):
    """Parameters of one bidirectional layer: forward and backward cells."""

    fw: Any
    bw: Any


class BiCarry(NamedTuple):
    """Final state of one bidirectional layer (each leaf ``[B, ...]``)."""

    fw: Any
    bw: Any


class RNNLayer(NamedTuple):
    """A (stacked, optionally bidirectional) recurrent layer as pure functions.

    Attributes:
        init: ``init(key, input_size) -> params``, a tuple with one entry per layer
            (the cell's params, or :class:`BiParams`).
        apply: ``apply(params, xs, *, lengths=None, carry0=None, key=None,
            resets=None) -> (carries, ys)``: ``xs`` ``[B, T, F]``; ``carries`` a
            tuple with one final carry per layer; ``ys`` ``[B, T, output_size]``.
            ``key`` turns on dropout between layers (training); ``None`` means
            inference (no dropout). ``resets`` ``[B, T]``: segment starts, where
            every layer restarts its carry (as for :func:`jaxseq.rnn`).
        cells: the cell of each layer.
        bidirectional: whether each layer runs both ways.
        merge: ``"concat"`` or ``"sum"`` for bidirectional outputs.
        dropout: rate applied to each layer's outputs except the last's (PyTorch's
            ``dropout`` argument of ``nn.LSTM``).
        reverse: run every (unidirectional) layer backwards within each sequence's
            length (Keras ``go_backwards``; outputs stay aligned with the input).
        output_size: feature size of ``ys``.
    """

    init: Callable[[jax.Array, int], tuple[Any, ...]]
    apply: Callable[..., tuple[tuple[Any, ...], jax.Array]]
    cells: tuple[Cell, ...]
    bidirectional: bool
    merge: str
    dropout: float
    reverse: bool
    output_size: int


def _layer_output_size(cell: Cell, bidirectional: bool, merge: str) -> int:
    return cell.hidden_size * (2 if bidirectional and merge == "concat" else 1)


def stack(
    cell: Cell | Sequence[Cell],
    num_layers: int | None = None,
    *,
    bidirectional: bool = False,
    merge: Merge = "concat",
    dropout: float = 0.0,
    reverse: bool = False,
    unroll: int | bool | None = None,
    impl: Impl = "auto",
    remat: int | None = None,
) -> RNNLayer:
    """Stack recurrent layers.

    Args:
        cell: one cell used for every layer, or a sequence with one cell per layer.
        num_layers: number of layers (default 1, or ``len(cell)``).
        bidirectional: run each layer forwards and (length-aware) backwards.
        merge: ``"concat"`` or ``"sum"`` of the two directions' outputs.
        dropout: dropout rate between layers, in ``[0, 1)``.
        reverse: unidirectional layers run backwards (not with ``bidirectional``).
        unroll, impl, remat: as for :func:`jaxseq.rnn` (``remat`` checkpoints
            every layer's time loop).

    Returns:
        An :class:`RNNLayer`.
    """
    cells = _cells(cell, num_layers)
    if merge not in ("concat", "sum"):
        raise ValueError(f"merge: expected 'concat' or 'sum', got {merge!r}.")
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout: expected a rate in [0, 1), got {dropout!r}.")
    if reverse and bidirectional:
        raise ValueError(
            "reverse: expected False with bidirectional=True (a bidirectional layer "
            "already runs both ways), got True."
        )
    if bidirectional and merge == "sum":
        sizes = {c.hidden_size for c in cells}
        if len(sizes) > 1:
            raise ValueError(
                f"cell: merge='sum' needs equal hidden sizes, got {sizes}."
            )
    rate = float(dropout)

    def init(key: jax.Array, input_size: int) -> tuple[Any, ...]:
        params = []
        size = input_size
        for c, k in zip(cells, jax.random.split(key, len(cells)), strict=True):
            if bidirectional:
                k_fw, k_bw = jax.random.split(k)
                params.append(BiParams(c.init(k_fw, size), c.init(k_bw, size)))
            else:
                params.append(c.init(k, size))
            size = _layer_output_size(c, bidirectional, merge)
        return tuple(params)

    def apply(
        params: tuple[Any, ...],
        xs: jax.Array,
        *,
        lengths: jax.Array | None = None,
        carry0: tuple[Any, ...] | None = None,
        key: jax.Array | None = None,
        resets: jax.Array | None = None,
    ) -> tuple[tuple[Any, ...], jax.Array]:
        if len(params) != len(cells):
            raise ValueError(
                f"params: expected {len(cells)} layers, got {len(params)}."
            )
        if carry0 is not None and len(carry0) != len(cells):
            raise ValueError(
                f"carry0: expected {len(cells)} layers, got {len(carry0)}."
            )
        check_rank("xs", xs, 3, "[B, T, F]: batch, time, features")
        keys = None if key is None else jax.random.split(key, len(cells))
        carries = []
        ys = xs
        opts = dict(
            lengths=lengths, unroll=unroll, impl=impl, remat=remat, resets=resets
        )
        for i, (c, p) in enumerate(zip(cells, params, strict=True)):
            _check_layer_params(i, c, p, ys.shape[2], bidirectional)
            c0 = None if carry0 is None else carry0[i]
            if bidirectional:
                carry, ys = _bidirectional(
                    c, c, p.fw, p.bw, ys, carry0=c0, merge=merge, **opts
                )
                carries.append(BiCarry(*carry))
            else:
                carry, ys = rnn(c, p, ys, carry0=c0, reverse=reverse, **opts)
                carries.append(carry)
            if keys is not None and rate > 0.0 and i < len(cells) - 1:
                ys = _dropout(keys[i], rate, ys)
        return tuple(carries), ys

    return RNNLayer(
        init=init,
        apply=apply,
        cells=cells,
        bidirectional=bool(bidirectional),
        merge=merge,
        dropout=rate,
        reverse=bool(reverse),
        output_size=_layer_output_size(cells[-1], bidirectional, merge),
    )


def _check_layer_params(
    i: int, cell: Cell, params: Any, input_size: int, bidirectional: bool
) -> None:
    """Layer ``i``'s parameters against ``cell.init`` at its input size. The
    first layer's input size is ``xs``'s (a mismatch there is the step's to
    report, naming ``xs``); a later layer's is fixed by the layer below, so a
    mismatch there is one of ``params``."""
    input_axes = i > 0
    if not bidirectional:
        check_params(f"params[{i}]", cell, params, input_size, input_axes=input_axes)
        return
    if not isinstance(params, BiParams):
        raise ValueError(
            f"params[{i}]: expected BiParams(fw, bw) (a bidirectional layer), got "
            f"{type(params).__name__}."
        )
    for name in ("fw", "bw"):
        check_params(
            f"params[{i}].{name}",
            cell,
            getattr(params, name),
            input_size,
            input_axes=input_axes,
        )


def _cells(cell: Cell | Sequence[Cell], num_layers: int | None) -> tuple[Cell, ...]:
    if isinstance(cell, Cell):
        n = 1 if num_layers is None else num_layers
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(
                f"num_layers: expected a positive int, got {num_layers!r}."
            )
        return (cell,) * n
    cells = tuple(cell)
    if not cells or not all(isinstance(c, Cell) for c in cells):
        raise TypeError("cell: expected a Cell or a non-empty sequence of Cells.")
    if num_layers is not None and num_layers != len(cells):
        raise ValueError(
            f"num_layers: expected {len(cells)} (one per cell given), got {num_layers}."
        )
    return cells
