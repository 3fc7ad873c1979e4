"""A one-dimensional convolutional classifier (Kim, 2014, "Convolutional Neural
Networks for Sentence Classification", EMNLP): parallel ``Conv1D`` filters of a
few widths over the embeddings, ReLU, max over the valid steps, dense head.

Embeddings at padded steps are zeroed before the convolution, and the
convolution pads with zeros (``"SAME"``), so a review's output is the same
whatever padding follows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from .. import nn as jnn
from .. import text
from ._base import Model, check_inputs, check_positive, check_rate, register
from ._head import GLOROT_UNIFORM, head_apply, head_init, maybe_dropout, split_key


class ConvPool(nn.Module):
    """``Conv1D(filters, k) -> relu -> max over valid steps`` for each width ``k``,
    concatenated: ``xs`` ``[B, T, D]`` -> ``[B, filters * len(widths)]``."""

    filters: int
    widths: Sequence[int]

    @nn.compact
    def __call__(self, xs: jax.Array, lengths: jax.Array) -> jax.Array:
        valid = jnn.mask_from_lengths(lengths, xs.shape[1])[..., None]
        xs = jnp.where(valid, xs, jnp.zeros_like(xs))
        pooled = []
        for k in self.widths:
            conv = nn.Conv(
                self.filters,
                (k,),
                padding="SAME",
                kernel_init=GLOROT_UNIFORM,
                name=f"conv_{k}",
            )
            pooled.append(jnn.masked_max(nn.relu(conv(xs)), lengths))
        return jnp.concatenate(pooled, axis=-1)


@register("conv1d", "Conv1D filters of widths 3 and 5, max over valid steps")
def conv1d(
    vocab_size: int,
    *,
    embed_dim: int = 64,
    filters: int = 128,
    widths: tuple[int, ...] = (3, 5),
    head: tuple[int, ...] = (),
    dropout: float = 0.3,
) -> Model:
    """Embedding -> :class:`ConvPool` -> dense head.

    Args:
        vocab_size: ``V``, rows of the embedding table.
        embed_dim: ``D``, embedding size.
        filters: filters per width.
        widths: convolution widths (tokens).
        head: hidden Dense(relu) sizes before the output unit.
        dropout: rate on the embeddings and on the pooled features (training).

    Returns:
        A :class:`~jaxseq.models.Model`.
    """
    for arg, value in (
        ("vocab_size", vocab_size),
        ("embed_dim", embed_dim),
        ("filters", filters),
    ):
        check_positive(arg, value)
    widths = tuple(check_positive("widths", w) for w in widths)
    if not widths:
        raise ValueError("widths: expected at least one convolution width, got ().")
    head = tuple(check_positive("head", h) for h in head)
    rate = check_rate("dropout", dropout)
    encoder = ConvPool(filters, widths)
    features = filters * len(widths)

    def init(key: jax.Array) -> dict[str, Any]:
        k_embed, k_conv, k_head = jax.random.split(key, 3)
        xs = jnp.zeros((1, max(widths), embed_dim))
        return {
            "embed": text.embedding_init(k_embed, vocab_size, embed_dim),
            "conv": encoder.init(k_conv, xs, jnp.ones((1,), jnp.int32))["params"],
            "head": head_init(k_head, head, features),
        }

    def apply(
        params: dict[str, Any],
        ids: jax.Array,
        lengths: jax.Array,
        *,
        key: jax.Array | None = None,
    ) -> jax.Array:
        check_inputs("conv1d", ids, lengths)
        k_in, k_out = split_key(key, 2)
        xs = maybe_dropout(k_in, rate, text.embed(params["embed"], ids))
        pooled = encoder.apply({"params": params["conv"]}, xs, lengths)
        return head_apply(head, params["head"], maybe_dropout(k_out, rate, pooled))

    return Model(init=init, apply=apply, config={"name": "conv1d"})
