"""Recurrent classifiers on the jaxseq runner: the seed's lab model, Elman, GRU,
LSTM, stacked and bidirectional.

Every model here is ``embedding -> jaxseq.stack(...) -> pooling over the valid
steps -> dense head``, with the lengths passed to the runner, so padding never
enters the recurrence (``reverse=True`` reads each review's valid prefix right
to left: Keras' ``go_backwards`` done right for padded batches).

The seed's lab model (:func:`lab`) is, layer for layer, the Keras model::

    Embedding(vocab, 4) -> LSTM(4, return_sequences=True, go_backwards=True)
    -> GlobalAveragePooling1D() -> Dense(4, relu) -> Dense(1, sigmoid)

with Keras' initialisers (embedding uniform +-0.05, Glorot-uniform kernels,
orthogonal recurrent kernel, forget-gate bias 1, zero biases) and the sigmoid
folded into the loss (the model returns logits).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

import jax

from .. import cells as _cells
from .. import text
from ..layers import stack
from ._base import Model, check_inputs, check_positive, check_rate, register
from ._head import head_apply, head_init, maybe_dropout, pool, pooled_size, split_key

CELLS = _cells.BY_NAME  # the built-in cells by name


def recurrent_classifier(
    vocab_size: int,
    *,
    cell: str = "lstm",
    embed_dim: int = 64,
    hidden: int = 64,
    layers: int = 1,
    bidirectional: bool = False,
    reverse: bool = False,
    pooling: str = "mean",
    head: tuple[int, ...] = (),
    dropout: float = 0.0,
    name: str = "recurrent",
) -> Model:
    """Embedding -> recurrent stack -> pooling -> dense head.

    Args:
        vocab_size: ``V``, rows of the embedding table (``len(vocab)``).
        cell: ``"lstm"``, ``"gru"`` or ``"elman"``.
        embed_dim: ``D``, embedding size.
        hidden: ``H``, units per cell (and direction).
        layers: stacked recurrent layers.
        bidirectional: each layer reads both ways (outputs concatenated).
        reverse: unidirectional layers read each sequence backwards.
        pooling: ``"mean"``, ``"max"``, ``"mean_max"`` over valid steps, or
            ``"last"`` (the last layer's final state; both directions'
            concatenated when bidirectional).
        head: hidden Dense(relu) sizes before the output unit.
        dropout: rate on the embeddings, between layers and on the pooled
            features (training only).
        name: the name used in error messages.

    Returns:
        A :class:`~jaxseq.models.Model`; ``apply(params, ids [B, T], lengths [B],
        *, key=None) -> logits [B]``.
    """
    if cell not in CELLS:
        raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {cell!r}.")
    for arg, value in (
        ("vocab_size", vocab_size),
        ("embed_dim", embed_dim),
        ("hidden", hidden),
        ("layers", layers),
    ):
        check_positive(arg, value)
    rate = check_rate("dropout", dropout)
    head = tuple(check_positive("head", h) for h in head)
    rnn = stack(
        CELLS[cell](hidden),
        layers,
        bidirectional=bidirectional,
        reverse=reverse,
        dropout=rate,
    )
    features = pooled_size(pooling, rnn.output_size)

    def init(key: jax.Array) -> dict[str, Any]:
        k_embed, k_rnn, k_head = jax.random.split(key, 3)
        return {
            "embed": text.embedding_init(k_embed, vocab_size, embed_dim),
            "rnn": rnn.init(k_rnn, embed_dim),
            "head": head_init(k_head, head, features),
        }

    def apply(
        params: dict[str, Any],
        ids: jax.Array,
        lengths: jax.Array,
        *,
        key: jax.Array | None = None,
    ) -> jax.Array:
        check_inputs(name, ids, lengths)
        k_in, k_rnn, k_out = split_key(key, 3)
        xs = maybe_dropout(k_in, rate, text.embed(params["embed"], ids))
        carries, ys = rnn.apply(params["rnn"], xs, lengths=lengths, key=k_rnn)
        last = None
        if pooling == "last":
            final = carries[-1]
            last = (
                jax.numpy.concatenate([final.fw.h, final.bw.h], axis=-1)
                if bidirectional
                else final.h
            )
        features = maybe_dropout(k_out, rate, pool(pooling, ys, lengths, last))
        return head_apply(head, params["head"], features)

    return Model(init=init, apply=apply, config={"name": name})


def _preset(name: str, summary: str, **defaults: Any) -> None:
    """Register ``name`` as :func:`recurrent_classifier` with other defaults
    (its signature lists every option, so ``build`` records them all)."""
    fixed = {k: v for k, v in defaults.items() if k == "cell"}
    factory = functools.partial(recurrent_classifier, **fixed, name=name)
    base = inspect.signature(recurrent_classifier).parameters
    params = [
        p.replace(default=defaults.get(k, p.default))
        for k, p in base.items()
        if k not in ("cell", "name")
    ]

    signature = inspect.Signature(params)

    def make(vocab_size: int, **kwargs: Any) -> Model:
        bound = signature.bind(vocab_size, **kwargs)
        bound.apply_defaults()  # the preset's defaults, not the generic ones
        return factory(**bound.arguments)

    make.__signature__ = signature  # type: ignore[attr-defined]
    make.__name__ = make.__qualname__ = name
    make.__doc__ = (
        f"{summary} (:func:`recurrent_classifier` with cell={fixed['cell']!r})."
    )
    register(name, summary)(make)


def lab(
    vocab_size: int, *, embed_dim: int = 4, hidden: int = 4, head_units: int = 4
) -> Model:
    """The seed's lab model: Embedding(V, 4) -> LSTM(4, backwards, all steps) ->
    mean over valid steps -> Dense(4, relu) -> Dense(1).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxseq import models
        >>> model = models.build("lab", vocab_size=50)
        >>> params = model.init(jax.random.key(0))
        >>> ids = jnp.array([[5, 7, 9, 0], [3, 0, 0, 0]])
        >>> model.apply(params, ids, jnp.array([3, 1])).shape
        (2,)
    """
    return recurrent_classifier(
        vocab_size,
        cell="lstm",
        embed_dim=embed_dim,
        hidden=hidden,
        reverse=True,
        pooling="mean",
        head=(head_units,),
        name="lab",
    )


register(
    "lab", "the seed's Keras lab model: Embedding 4, LSTM 4 backwards, mean, Dense 4"
)(lab)
_RNN = dict(embed_dim=32, hidden=32, pooling="mean_max", dropout=0.3)
_preset("elman", "Elman (simple) RNN classifier", cell="elman", **_RNN)
_preset("gru", "GRU classifier", cell="gru", **_RNN)
_preset("lstm", "LSTM classifier", cell="lstm", **_RNN)
_preset("stacked_lstm", "two stacked LSTM layers", cell="lstm", layers=2, **_RNN)
_preset("stacked_gru", "two stacked GRU layers", cell="gru", layers=2, **_RNN)
_preset("bilstm", "bidirectional LSTM", cell="lstm", bidirectional=True, **_RNN)
_preset("bigru", "bidirectional GRU", cell="gru", bidirectional=True, **_RNN)
