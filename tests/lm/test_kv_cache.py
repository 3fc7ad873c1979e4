"""The key/value cache gives the window transformer's logits and generations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq import lm

V = 17


def _model(context):
    model = lm.transformer_lm(V, dim=8, heads=2, ffn=12, blocks=2, context=context)
    return model, model.init(jax.random.key(0))


def test_chunked_logits_equal_the_window_model():
    model, params = _model(context=12)
    fast = lm.cached(model)
    rng = np.random.default_rng(0)
    ids = jnp.asarray(rng.integers(0, V, (2, 10)), jnp.int32)
    resets = np.zeros((2, 10), bool)
    resets[1, 5] = True  # a document starts inside the stream of row 1
    resets = jnp.asarray(resets)
    slow, quick = jax.jit(model.apply), jax.jit(fast.apply)
    slow_c, fast_c = model.init_carry(params, 2), fast.init_carry(params, 2)
    # at most C = 12 tokens before each call: nothing has left the window
    for a, b in ((0, 4), (4, 5), (5, 10)):
        slow_c, want = slow(params, slow_c, ids[:, a:b], resets=resets[:, a:b])
        fast_c, got = quick(params, fast_c, ids[:, a:b], resets=resets[:, a:b])
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)
        np.testing.assert_array_equal(fast_c.window.ids, slow_c.ids)
    # row 1 after its reset equals the document read alone
    _, alone = slow(params, model.init_carry(params, 1), ids[1:, 5:])
    np.testing.assert_allclose(got[1], alone[0], atol=2e-5, rtol=2e-5)


def test_no_context_each_call_stands_alone():
    model, params = _model(context=0)
    fast = lm.cached(model)
    ids = jnp.asarray(np.random.default_rng(1).integers(0, V, (1, 9)), jnp.int32)
    slow, quick = jax.jit(model.apply), jax.jit(fast.apply)
    c1, c2 = model.init_carry(params, 1), fast.init_carry(params, 1)
    for a in range(0, 9, 3):  # one compilation each: the chunks have one shape
        c1, want = slow(params, c1, ids[:, a : a + 3])
        c2, got = quick(params, c2, ids[:, a : a + 3])
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=2e-5)


def test_generation_equals_the_window_model():
    model, params = _model(context=16)
    fast = lm.cached(model)
    prompts = jnp.array([[3, 4, 5, 0], [6, 7, 8, 9]], jnp.int32)
    lengths = jnp.array([3, 4])
    args = dict(max_new_tokens=8, sampling=lm.sampling(top_k=4))  # 4 + 8 <= 16
    a = lm.generate(model, params, jax.random.key(2), prompts, lengths, **args)
    b = lm.generate(fast, params, jax.random.key(2), prompts, lengths, **args)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    np.testing.assert_allclose(a.log_probs, b.log_probs, atol=1e-4)


def test_bad_input():
    with pytest.raises(ValueError, match="lm: expected a jaxseq.lm.transformer_lm"):
        lm.cached(lm.rnn_lm(V, embed_dim=4, hidden=4, num_layers=1))
    model, params = _model(context=4)
    fast = lm.cached(model)
    ids = jnp.ones((1, 2), jnp.int32)
    with pytest.raises(ValueError, match="key: expected None"):
        fast.apply(params, fast.init_carry(params, 1), ids, key=jax.random.key(0))
    with pytest.raises(ValueError, match="carry: expected a KVCache"):
        fast.apply(params, model.init_carry(params, 1), ids)
