"""A key/value cache for :func:`jaxseq.lm.transformer_lm`: generation that runs
each new token through the blocks once.

:func:`~jaxseq.lm.transformer_lm`'s carry is a :class:`~jaxseq.lm.Window` of the
last ``C`` token ids, and each call recomputes every block over the window and
the new tokens: a generated token costs ``C + 1`` token passes (and attention
``(C + 1)^2``). :func:`cached` returns the same model (same parameters, same
``init``) whose carry also holds each block's attention keys and values of the
last ``C`` tokens (:class:`KVCache`), so a call runs only its ``T`` new tokens
through the blocks and attends over ``C + T`` cached and new keys.

Same numbers: while nothing has left the window (at most ``C`` tokens read
before the call) both give the same logits (float32 rounding; the tests check
it), so generation from a prompt of ``P`` tokens for ``N`` new ones is unchanged
when ``P + N <= C + 1``. Beyond, the two differ by design: the window model
recomputes the kept tokens with only the window as context, the cached one keeps
the keys computed when each token was read (sliding-window attention).

The cached model is for inference: ``apply`` takes no dropout ``key``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np

from .. import text
from ._checks import check_positive
from .loss import readout
from .models import LanguageModel, Window, _extend, check_ids_batch, sinusoid


class KVCache(NamedTuple):
    """The cached transformer's carry.

    Attributes:
        window: the :class:`~jaxseq.lm.Window` of the last ``C`` tokens (ids,
            valid slots, document counters, positions) ``[B, C]``.
        keys: float32 ``[L, B, C, heads, D / heads]``, each block's keys.
        values: float32, the same shape, each block's values.
    """

    window: Window
    keys: jax.Array
    values: jax.Array


def _layer_norm(p: Any, x: jax.Array) -> jax.Array:
    return fnn.LayerNorm().apply({"params": p}, x)


def _project(p: Any, y: jax.Array, heads: int) -> jax.Array:
    dense = fnn.DenseGeneral(features=(heads, y.shape[-1] // heads))
    return dense.apply({"params": p}, y)


def cached(lm: LanguageModel) -> LanguageModel:
    """The transformer ``lm`` with a key/value cache as its carry.

    Args:
        lm: a :func:`~jaxseq.lm.transformer_lm`.

    Returns:
        A :class:`~jaxseq.lm.LanguageModel` with ``lm``'s ``init`` and parameters:
        ``init_carry(params, B) -> KVCache``; ``apply(params, carry, ids [B, T],
        *, resets=None) -> (carry, logits [B, T, V])``. It plugs into
        :func:`~jaxseq.lm.generate` and :func:`~jaxseq.lm.make_generator`.

    Raises:
        ValueError: when ``lm`` is not a transformer LM.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from jaxseq import lm
        >>> model = lm.transformer_lm(20, dim=8, heads=2, ffn=16, blocks=1, context=8)
        >>> params = model.init(jax.random.key(0))
        >>> fast = lm.cached(model)
        >>> ids = jnp.array([[3, 4, 5]])
        >>> _, slow_logits = model.apply(params, model.init_carry(params, 1), ids)
        >>> cache, logits = fast.apply(params, fast.init_carry(params, 1), ids)
        >>> bool(jnp.allclose(logits, slow_logits, atol=1e-5)), cache.keys.shape
        (True, (1, 1, 8, 2, 4))
    """
    config = getattr(lm, "config", None)
    if not isinstance(config, dict) or config.get("name") != "transformer_lm":
        got = config.get("name") if isinstance(config, dict) else type(lm).__name__
        raise ValueError(f"lm: expected a jaxseq.lm.transformer_lm model, got {got!r}.")
    vocab, dim, heads = config["vocab_size"], config["dim"], config["heads"]
    blocks, context, tied = config["blocks"], config["context"], config["tied"]
    head_dim = dim // heads

    def init_carry(params: Any, batch_size: int) -> KVCache:
        check_positive("batch_size", batch_size)
        window = lm.init_carry(params, batch_size)
        shape = (blocks, batch_size, context, heads, head_dim)
        return KVCache(window, jnp.zeros(shape), jnp.zeros(shape))

    def apply(
        params: Any,
        carry: KVCache,
        ids: jax.Array,
        *,
        resets: jax.Array | None = None,
        key: jax.Array | None = None,
    ) -> tuple[KVCache, jax.Array]:
        check_ids_batch("ids", ids, vocab)
        if key is not None:
            raise ValueError(
                "key: expected None (the cached transformer is for inference, "
                "without dropout), got a key."
            )
        batch, time = ids.shape
        if not isinstance(carry, KVCache) or carry.window.ids.shape != (batch, context):
            raise ValueError(
                f"carry: expected a KVCache of a ({batch}, {context}) window "
                f"(cached(lm).init_carry(params, batch_size)), got "
                f"{type(carry).__name__}."
            )
        if resets is not None and jnp.shape(resets) != ids.shape:
            raise ValueError(
                f"resets: expected shape {ids.shape} (as ids), got {jnp.shape(resets)}."
            )
        full = _extend(carry.window, ids, resets)
        x = text.embed(params["embed"], ids) * np.float32(np.sqrt(dim))
        x = x + sinusoid(full.pos[:, context:], dim)
        # queries: the T new tokens (slots C + i); keys: all C + T slots
        q_slot = context + jnp.arange(time)[:, None]
        k_slot = jnp.arange(context + time)[None, :]
        same = full.doc[:, context:, None] == full.doc[:, None, :]
        mask = (k_slot <= q_slot) & same & full.valid[:, None, :]
        mask = mask | (k_slot == q_slot)
        new_k, new_v = [], []
        for i in range(blocks):
            p = params["decoder"][f"block_{i}"]
            att = p["MultiHeadDotProductAttention_0"]
            y = _layer_norm(p["LayerNorm_0"], x)
            q = _project(att["query"], y, heads)
            k = jnp.concatenate([carry.keys[i], _project(att["key"], y, heads)], 1)
            v = jnp.concatenate([carry.values[i], _project(att["value"], y, heads)], 1)
            new_k.append(k[:, time:])
            new_v.append(v[:, time:])
            o = fnn.dot_product_attention(q, k, v, mask=mask[:, None])
            out = fnn.DenseGeneral(features=dim, axis=(-2, -1))
            x = x + out.apply({"params": att["out"]}, o)
            y = _layer_norm(p["LayerNorm_1"], x)
            y = jax.nn.relu(fnn.Dense(config["ffn"]).apply({"params": p["Dense_0"]}, y))
            x = x + fnn.Dense(dim).apply({"params": p["Dense_1"]}, y)
        hs = _layer_norm(params["decoder"]["LayerNorm_0"], x)
        logits = readout(params["out"], hs, params["embed"] if tied else None)
        window = Window(*(a[:, a.shape[1] - context :] for a in full))
        return KVCache(window, jnp.stack(new_k), jnp.stack(new_v)), logits

    return LanguageModel(lm.init, init_carry, apply, dict(config))


__all__ = ["KVCache", "cached"]
