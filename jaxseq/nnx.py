"""Flax NNX modules around jaxseq layers, so a jaxseq RNN drops into a Flax model.

:class:`RNN` holds its parameters as ``nnx.Param`` leaves in exactly the
structure :meth:`jaxseq.layers.RNNLayer.init` returns (a tuple with one
``LSTMParams``/``GRUParams``/``ElmanParams`` or :class:`~jaxseq.layers.BiParams`
per layer), so parameters move between the module and the functional API without
renaming: :meth:`RNN.functional` and :meth:`RNN.from_functional`. The computation
is :meth:`RNNLayer.apply` itself, so the module and the functional API give the
same outputs for the same parameters.

Dropout between layers follows NNX: an ``nnx.Dropout`` sub-module holds the rate,
the ``deterministic`` flag (set by ``model.train()`` / ``model.eval()`` or
``nnx.view``) and the ``dropout`` rng stream, whose next key becomes the
functional ``key``.

Examples:
    >>> import jax, jax.numpy as jnp
    >>> from flax import nnx
    >>> import jaxseq
    >>> from jaxseq.nnx import RNN
    >>> model = RNN(jaxseq.cells.lstm(8), 3, num_layers=2, bidirectional=True,
    ...             rngs=nnx.Rngs(0))
    >>> xs = jnp.ones((4, 10, 3))
    >>> model(xs, lengths=jnp.array([10, 7, 3, 0])).shape
    (4, 10, 16)
    >>> layer, params = model.functional()    # the same numbers, functionally
    >>> layer.apply(params, xs)[1].shape
    (4, 10, 16)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
from flax import nnx

from ._runner import Merge
from .cells import Cell
from .layers import RNNLayer, stack


def _is_variable(x: Any) -> bool:
    return isinstance(x, nnx.Variable)


def _check_params(layer: RNNLayer, params: Any, in_features: int) -> None:
    """Refuse parameters whose structure or shapes do not fit ``layer``."""
    expected = jax.eval_shape(lambda k: layer.init(k, in_features), jax.random.key(0))
    if jax.tree.structure(params) != jax.tree.structure(expected):
        raise ValueError(
            f"params: expected the structure of layer.init(key, {in_features}), "
            f"{jax.tree.structure(expected)}, got {jax.tree.structure(params)}."
        )
    got = jax.tree_util.tree_flatten_with_path(params)[0]
    for (path, a), e in zip(got, jax.tree.leaves(expected), strict=True):
        if tuple(a.shape) != tuple(e.shape):
            raise ValueError(
                f"params{jax.tree_util.keystr(path)}: expected shape "
                f"{tuple(e.shape)}, got {tuple(a.shape)}."
            )


class RNN(nnx.Module):
    """A stacked, optionally bidirectional jaxseq RNN as an ``nnx.Module``.

    Args:
        cell: a :class:`~jaxseq.cells.Cell` for every layer, or one per layer.
        in_features: input feature size ``F``.
        num_layers: number of layers (default 1, or ``len(cell)``).
        bidirectional, merge, dropout, reverse, unroll: as
            :func:`jaxseq.layers.stack`.
        return_carry: ``__call__`` returns ``(carries, ys)`` instead of ``ys``.
        params: optional initial parameters (the functional structure); drawn
            with ``layer.init(rngs.params(), in_features)`` when omitted.
        deterministic: initial dropout mode (``model.train()``/``model.eval()``
            change it).
        rngs: ``nnx.Rngs``; the ``params`` stream initialises, the ``dropout``
            stream (or ``default``) drives dropout. May be ``None`` only when
            ``params`` is given and the module is used without dropout.

    Attributes:
        layer: the functional :class:`~jaxseq.layers.RNNLayer` (static).
        params: the parameters, one entry per layer, with ``nnx.Param`` leaves.
        dropout: the ``nnx.Dropout`` between layers.
    """

    def __init__(
        self,
        cell: Cell | Sequence[Cell],
        in_features: int,
        *,
        num_layers: int | None = None,
        bidirectional: bool = False,
        merge: Merge = "concat",
        dropout: float = 0.0,
        reverse: bool = False,
        unroll: int | bool | None = None,
        return_carry: bool = False,
        params: Any = None,
        deterministic: bool = False,
        rngs: nnx.Rngs | None,
    ):
        self.layer = stack(
            cell,
            num_layers,
            bidirectional=bidirectional,
            merge=merge,
            dropout=dropout,
            reverse=reverse,
            unroll=unroll,
        )
        self.in_features = int(in_features)
        self.return_carry = bool(return_carry)
        if params is None:
            if rngs is None:
                raise ValueError(
                    "rngs: expected nnx.Rngs to initialise the parameters, got None "
                    "(pass rngs=nnx.Rngs(0), or params=...)."
                )
            params = self.layer.init(rngs.params(), self.in_features)
        else:
            _check_params(self.layer, params, self.in_features)
        self.params = nnx.data(jax.tree.map(nnx.Param, params))
        # without dropout no stream is taken (rngs may hold only "params")
        self.dropout = nnx.Dropout(
            self.layer.dropout,
            deterministic=deterministic,
            rngs=rngs if self.layer.dropout > 0.0 else None,
        )

    @classmethod
    def from_functional(
        cls,
        layer: RNNLayer,
        params: Any,
        *,
        return_carry: bool = False,
        deterministic: bool | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> RNN:
        """A module holding ``params`` for ``layer`` (e.g. from
        :func:`jaxseq.interop.torch.from_torch` or :func:`jaxseq.io.load_layer`).

        ``rngs`` is needed only for dropout in training mode; without it the
        module starts in eval mode (``deterministic`` defaults to
        ``rngs is None``).
        """
        first = params[0].fw if layer.bidirectional else params[0]
        return cls(
            layer.cells,
            int(first.w_x.shape[0]),
            bidirectional=layer.bidirectional,
            merge=layer.merge,  # type: ignore[arg-type]
            dropout=layer.dropout,
            reverse=layer.reverse,
            return_carry=return_carry,
            params=params,
            deterministic=rngs is None if deterministic is None else deterministic,
            rngs=rngs,
        )

    def functional(self) -> tuple[RNNLayer, Any]:
        """``(layer, params)`` with plain arrays, for :meth:`RNNLayer.apply`, the
        weight exporters and :func:`jaxseq.io.save`."""
        return self.layer, jax.tree.map(
            lambda v: v[...], self.params, is_leaf=_is_variable
        )

    def __call__(
        self,
        xs: jax.Array,
        *,
        lengths: jax.Array | None = None,
        carry0: Any = None,
        deterministic: bool | None = None,
        rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None,
    ) -> Any:
        """Run the layers over ``xs`` ``[B, T, F]``.

        Args:
            xs: inputs, batch-major and right-padded.
            lengths: optional ``[B]`` valid lengths (see :func:`jaxseq.rnn`).
            carry0: optional initial carries, one per layer.
            deterministic: overrides the module's flag for this call (``True``: no
                dropout).
            rngs: overrides the module's dropout stream for this call (an
                ``nnx.Rngs``, a stream, or a key).

        Returns:
            ``ys`` ``[B, T, output_size]``, or ``(carries, ys)`` with
            ``return_carry=True``.
        """
        key = self._dropout_key(deterministic, rngs)
        _, params = self.functional()
        carries, ys = self.layer.apply(
            params, xs, lengths=lengths, carry0=carry0, key=key
        )
        return (carries, ys) if self.return_carry else ys

    def _dropout_key(self, deterministic: bool | None, rngs: Any) -> jax.Array | None:
        if deterministic is None:
            deterministic = self.dropout.deterministic
        if self.layer.dropout == 0.0 or deterministic:
            return None
        source = rngs if rngs is not None else self.dropout.rngs
        if source is None:
            raise ValueError(
                "rngs: dropout > 0 in training mode needs a dropout rng stream; "
                "build the module with rngs=nnx.Rngs(...), pass rngs= to the call, "
                "or switch to eval mode (model.eval())."
            )
        if isinstance(source, nnx.Rngs):
            return source[self.dropout.rng_collection]()
        if isinstance(source, nnx.RngStream):
            return source()
        return source
