"""A Flax Linen module around a jaxseq layer.

:class:`RNN` declares one parameter, ``"layers"``, whose value is exactly what
:meth:`jaxseq.layers.RNNLayer.init` returns, so ``variables["params"]["layers"]``
is the functional parameter tuple (and any functional parameters can be placed
there). Dropout between layers draws from the ``"dropout"`` rng collection unless
``deterministic`` (Linen's convention, through ``nn.merge_param``).

Examples:
    >>> import jax, jax.numpy as jnp
    >>> import jaxseq
    >>> from jaxseq.linen import RNN
    >>> model = RNN(jaxseq.cells.gru(4), num_layers=2)
    >>> xs = jnp.ones((2, 5, 3))
    >>> variables = model.init(jax.random.key(0), xs)
    >>> model.apply(variables, xs, lengths=jnp.array([5, 2])).shape
    (2, 5, 4)
    >>> len(variables["params"]["layers"])    # one entry per layer
    2
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax

from .cells import Cell
from .layers import RNNLayer, stack


class RNN(nn.Module):
    """A stacked, optionally bidirectional jaxseq RNN as a Linen module.

    Attributes:
        cell: a :class:`~jaxseq.cells.Cell`, or a tuple with one per layer.
        num_layers, bidirectional, merge, dropout, reverse, unroll: as
            :func:`jaxseq.layers.stack`.
        return_carry: return ``(carries, ys)`` instead of ``ys``.
        deterministic: default dropout mode (``None``: must be given at call time
            when ``dropout > 0``).
    """

    cell: Cell | Sequence[Cell]
    num_layers: int | None = None
    bidirectional: bool = False
    merge: str = "concat"
    dropout: float = 0.0
    reverse: bool = False
    unroll: int | None = None
    return_carry: bool = False
    deterministic: bool | None = None

    def rnn_layer(self) -> RNNLayer:
        """The functional layer this module applies."""
        return stack(
            self.cell,
            self.num_layers,
            bidirectional=self.bidirectional,
            merge=self.merge,  # type: ignore[arg-type]
            dropout=self.dropout,
            reverse=self.reverse,
            unroll=self.unroll,
        )

    @nn.compact
    def __call__(
        self,
        xs: jax.Array,
        *,
        lengths: jax.Array | None = None,
        carry0: Any = None,
        deterministic: bool | None = None,
    ) -> Any:
        """Run over ``xs`` ``[B, T, F]``; see :meth:`jaxseq.layers.RNNLayer.apply`."""
        layer = self.rnn_layer()
        params = self.param("layers", lambda key: layer.init(key, xs.shape[-1]))
        key = None
        if layer.dropout > 0.0:
            det = nn.merge_param("deterministic", self.deterministic, deterministic)
            key = None if det else self.make_rng("dropout")
        carries, ys = layer.apply(params, xs, lengths=lengths, carry0=carry0, key=key)
        return (carries, ys) if self.return_carry else ys
