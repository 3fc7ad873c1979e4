"""The "simple transformer" of the seed's IMDb table: a small encoder built from
Flax Linen's attention modules.

``ids -> embedding * sqrt(D) + positions -> blocks x [LayerNorm ->
MultiHeadDotProductAttention (padding masked) -> residual -> LayerNorm ->
Dense(ffn, relu) -> Dense(D) -> residual] -> LayerNorm -> mean over valid steps
-> Dense(head, relu) -> Dense(1)`` (pre-norm blocks: Xiong et al., 2020, "On
Layer Normalization in the Transformer Architecture", train stably without
learning-rate warm-up).

Padding mask: a key position ``t >= length`` receives no attention from any
query, and pooling averages the valid positions only, so a review's output does
not depend on the padding after it. Positions are sinusoidal (Vaswani et al.,
2017, section 3.5: no length limit, no parameters) or learned (``max_len``
rows).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from .. import nn as jnn
from .. import text
from ._base import Model, check_inputs, check_positive, check_rate, register
from ._head import GLOROT_UNIFORM, head_apply, head_init, maybe_dropout, split_key

POSITIONS = ("sinusoidal", "learned")


def sinusoidal_positions(length: int, dim: int) -> jax.Array:
    """``[length, dim]`` encodings ``sin(t / 10000^(2i/dim))`` (even columns) and
    ``cos(...)`` (odd columns), Vaswani et al. (2017), eq. in section 3.5."""
    t = np.arange(length)[:, None]
    rates = 1.0 / 10000 ** (np.arange(0, dim, 2) / dim)
    table = np.zeros((length, dim), np.float32)
    table[:, 0::2] = np.sin(t * rates)
    table[:, 1::2] = np.cos(t * rates[: dim // 2])
    return jnp.asarray(table)


class Block(nn.Module):
    """One pre-norm encoder block; ``mask`` ``[B, 1, T, T]`` from
    ``nn.make_attention_mask``."""

    heads: int
    ffn: int
    dropout: float

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, deterministic: bool) -> jax.Array:
        drop = nn.Dropout(self.dropout, deterministic=deterministic)
        y = nn.LayerNorm()(x)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.heads,
            dropout_rate=self.dropout,
            deterministic=deterministic,
            kernel_init=GLOROT_UNIFORM,
        )(y, y, mask=mask)
        x = x + drop(y)
        y = nn.LayerNorm()(x)
        y = nn.relu(nn.Dense(self.ffn, kernel_init=GLOROT_UNIFORM)(y))
        y = nn.Dense(x.shape[-1], kernel_init=GLOROT_UNIFORM)(drop(y))
        return x + drop(y)


class Encoder(nn.Module):
    """Blocks over embedded inputs ``[B, T, D]`` -> pooled ``[B, D]``."""

    blocks: int
    heads: int
    ffn: int
    dropout: float

    @nn.compact
    def __call__(
        self, x: jax.Array, lengths: jax.Array, deterministic: bool
    ) -> jax.Array:
        valid = jnn.mask_from_lengths(lengths, x.shape[1])
        mask = nn.make_attention_mask(valid, valid)
        for i in range(self.blocks):
            block = Block(self.heads, self.ffn, self.dropout, name=f"block_{i}")
            x = block(x, mask, deterministic)
        return jnn.masked_mean(nn.LayerNorm()(x), lengths)


@register("transformer", "simple transformer: 1 pre-norm encoder block, 2 heads")
def transformer(
    vocab_size: int,
    *,
    dim: int = 32,
    heads: int = 2,
    ffn: int = 64,
    blocks: int = 1,
    head: tuple[int, ...] = (32,),
    dropout: float = 0.2,
    positions: str = "sinusoidal",
    max_len: int = 512,
) -> Model:
    """A small transformer encoder classifier.

    Args:
        vocab_size: ``V``, rows of the embedding table.
        dim: ``D``, model width (a multiple of ``heads``).
        heads: attention heads.
        ffn: hidden units of each block's feed-forward layer.
        blocks: encoder blocks.
        head: hidden Dense(relu) sizes of the readout.
        dropout: rate on embeddings, attention weights, residual branches and
            the pooled features (training only).
        positions: ``"sinusoidal"`` or ``"learned"``.
        max_len: rows of the learned position table (inputs may not be longer);
            unused with sinusoidal positions.

    Returns:
        A :class:`~jaxseq.models.Model`.
    """
    for arg, value in (
        ("vocab_size", vocab_size),
        ("dim", dim),
        ("heads", heads),
        ("ffn", ffn),
        ("blocks", blocks),
        ("max_len", max_len),
    ):
        check_positive(arg, value)
    if dim % heads:
        raise ValueError(f"dim: expected a multiple of heads={heads}, got {dim}.")
    if positions not in POSITIONS:
        raise ValueError(f"positions: expected one of {POSITIONS}, got {positions!r}.")
    rate = check_rate("dropout", dropout)
    head = tuple(check_positive("head", h) for h in head)
    encoder = Encoder(blocks, heads, ffn, rate)

    def init(key: jax.Array) -> dict[str, Any]:
        k_embed, k_pos, k_enc, k_head = jax.random.split(key, 4)
        x = jnp.zeros((1, 2, dim))
        params = {
            "embed": text.embedding_init(k_embed, vocab_size, dim),
            "encoder": encoder.init(k_enc, x, jnp.ones((1,), jnp.int32), True)[
                "params"
            ],
            "head": head_init(k_head, head, dim),
        }
        if positions == "learned":
            params["positions"] = text.embedding_init(k_pos, max_len, dim)
        return params

    def embed(params: dict[str, Any], ids: jax.Array) -> jax.Array:
        time = ids.shape[1]
        x = text.embed(params["embed"], ids) * np.sqrt(dim).astype(np.float32)
        if positions == "sinusoidal":
            return x + sinusoidal_positions(time, dim)
        if time > max_len:
            raise ValueError(
                f"ids: expected at most max_len={max_len} steps (learned positions), "
                f"got {time}. Truncate the inputs or build with a larger max_len."
            )
        return x + params["positions"][:time]

    def apply(
        params: dict[str, Any],
        ids: jax.Array,
        lengths: jax.Array,
        *,
        key: jax.Array | None = None,
    ) -> jax.Array:
        check_inputs("transformer", ids, lengths)
        k_in, k_enc, k_out = split_key(key, 3)
        x = maybe_dropout(k_in, rate, embed(params, ids))
        rngs = None if k_enc is None else {"dropout": k_enc}
        pooled = encoder.apply(
            {"params": params["encoder"]}, x, lengths, k_enc is None, rngs=rngs
        )
        return head_apply(head, params["head"], maybe_dropout(k_out, rate, pooled))

    return Model(init=init, apply=apply, config={"name": "transformer"})
