"""The causal transformer LM: no logit depends on a later token; reading in
chunks with the window carry equals one call; a reset equals running the
documents separately; the attention mask against a NumPy construction."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq import lm

V = 11


@pytest.fixture(scope="module")
def tr():
    model = lm.transformer_lm(V, dim=8, heads=2, ffn=16, blocks=2, context=12,
                              tied=True)  # fmt: skip
    return model, model.init(jax.random.key(0)), jax.jit(model.apply)


def test_causal(tr):
    model, params, apply = tr
    ids = np.random.default_rng(0).integers(2, V, size=(1, 8)).astype(np.int32)
    _, base = apply(params, model.init_carry(params, 1), ids)
    changed = ids.copy()
    changed[0, 5] = (ids[0, 5] + 1) % V
    _, other = apply(params, model.init_carry(params, 1), changed)
    np.testing.assert_allclose(other[:, :5], base[:, :5], atol=1e-6)
    assert not np.allclose(other[:, 5:], base[:, 5:], atol=1e-4)


def test_chunks_equal_one_call_and_reset_separates(tr):
    model, params, apply = tr
    rng = np.random.default_rng(1)
    ids = rng.integers(2, V, size=(2, 12)).astype(np.int32)
    resets = np.zeros((2, 12), bool)
    resets[1, 7] = True
    carry0 = model.init_carry(params, 2)
    _, whole = apply(params, carry0, ids, resets=resets)
    c, parts = carry0, []
    for s in range(0, 12, 4):
        c, logits = apply(params, c, ids[:, s : s + 4], resets=resets[:, s : s + 4])
        parts.append(logits)
    np.testing.assert_allclose(jnp.concatenate(parts, 1), whole, atol=1e-5)
    # row 1's second document alone, from a fresh carry
    _, alone = apply(params, model.init_carry(params, 1), ids[1:, 7:11])
    np.testing.assert_allclose(whole[1:, 7:11], alone, atol=1e-5)


def test_sinusoid_matches_the_classifier_table():
    from jaxseq.models.transformer import sinusoidal_positions

    got = lm.sinusoid(jnp.arange(20), 8)
    np.testing.assert_allclose(got, sinusoidal_positions(20, 8), atol=1e-5)


def test_errors(tr):
    model, params, _ = tr
    with pytest.raises(
        ValueError, match=r"carry: expected a Window of shape \(2, 12\)"
    ):
        model.apply(params, model.init_carry(params, 1), jnp.ones((2, 3), jnp.int32))
    with pytest.raises(ValueError, match="dim: expected a multiple of heads"):
        lm.transformer_lm(V, dim=6, heads=4)
    with pytest.raises(ValueError, match="context: expected an int >= 0"):
        lm.transformer_lm(V, context=-1)


def test_stream_train_step_runs_and_keeps_window():
    import optax

    model = lm.transformer_lm(V, dim=8, heads=2, ffn=16, blocks=1, context=4)
    opt = optax.sgd(0.1)
    params = model.init(jax.random.key(0))
    state = lm.init_stream_state(model, params, opt, jax.random.key(1), 2)
    step = lm.make_stream_train_step(model, opt)  # donates the state
    ids = np.arange(1, 11, dtype=np.int32).reshape(2, 5)
    batch = lm.Chunks(ids[:, :4], ids[:, 1:], np.zeros((2, 4), bool))
    for _ in range(2):
        state, metrics = step(state, batch)
    assert bool(metrics["finite"]) and int(state.train.step) == 2
    np.testing.assert_array_equal(state.carry.ids, ids[:, :4])
