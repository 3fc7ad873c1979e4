"""The sequence loss against a NumPy implementation of the lecture's
``L = -sum_t log p(y_t | x_1..x_t)``, with padding and masks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq import lm


def np_log_softmax(o):
    o = o - o.max(-1, keepdims=True)
    return o - np.log(np.exp(o).sum(-1, keepdims=True))


def np_sequence_loss(logits, ids, lengths):
    """Sum over rows b and steps t < lengths[b] - 1 of -log softmax(o_t)[x_{t+1}]."""
    total, count = 0.0, 0
    for b in range(ids.shape[0]):
        for t in range(lengths[b] - 1):
            total -= np_log_softmax(logits[b, t].astype(np.float64))[ids[b, t + 1]]
            count += 1
    return total, count


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 11, size=(3, 6)).astype(np.int32)
    lengths = np.array([6, 4, 1], np.int32)
    ids[1, 4:] = 0
    ids[2, 1:] = 0
    logits = rng.normal(size=(3, 5, 11)).astype(np.float32) * 3
    return ids, lengths, logits


def test_sum_and_mean_match_numpy(batch):
    ids, lengths, logits = batch
    _, targets, mask = lm.shift_targets(jnp.asarray(ids), jnp.asarray(lengths))
    want, count = np_sequence_loss(logits, ids, lengths)
    got_sum = lm.sequence_cross_entropy(logits, targets, mask=mask, reduction="sum")
    got_mean = lm.sequence_cross_entropy(logits, targets, mask=mask)
    np.testing.assert_allclose(float(got_sum), want, rtol=1e-5)
    np.testing.assert_allclose(float(got_mean), want / count, rtol=1e-5)
    total, n = lm.sequence_nll(logits, targets, mask)
    assert float(n) == count == 5 + 3 + 0


def test_lengths_equal_mask(batch):
    ids, lengths, logits = batch
    _, targets, mask = lm.shift_targets(jnp.asarray(ids), jnp.asarray(lengths))
    by_len = lm.sequence_cross_entropy(logits, targets, lengths=lengths - 1)
    by_mask = lm.sequence_cross_entropy(logits, targets, mask=mask)
    np.testing.assert_allclose(float(by_len), float(by_mask), rtol=1e-6)


def test_padding_invariance(batch):
    """Changing the padded ids and logits, or adding padded steps, changes nothing."""
    ids, lengths, logits = batch
    _, targets, mask = lm.shift_targets(jnp.asarray(ids), jnp.asarray(lengths))
    base = lm.sequence_cross_entropy(logits, targets, mask=mask, reduction="sum")
    rng = np.random.default_rng(1)
    ids2 = np.where(np.arange(6) < lengths[:, None], ids, rng.integers(0, 11, (3, 6)))
    ids2 = np.pad(ids2, [(0, 0), (0, 3)], constant_values=7).astype(np.int32)
    logits2 = rng.normal(size=(3, 8, 11)).astype(np.float32) * 5
    logits2[:, :5] = np.where(np.asarray(mask)[..., None], logits, logits2[:, :5])
    _, targets2, mask2 = lm.shift_targets(jnp.asarray(ids2), jnp.asarray(lengths))
    other = lm.sequence_cross_entropy(logits2, targets2, mask=mask2, reduction="sum")
    np.testing.assert_allclose(float(other), float(base), rtol=1e-6)


def test_empty_mask_mean_is_zero():
    logits = jnp.zeros((1, 2, 4))
    loss = lm.sequence_cross_entropy(
        logits, jnp.array([[1, 2]]), mask=jnp.zeros((1, 2), bool)
    )
    assert float(loss) == 0.0


def test_perplexity_and_bits():
    # uniform over V tokens: perplexity V, log2(V) bits
    logits = jnp.zeros((2, 3, 16))
    mean = lm.sequence_cross_entropy(logits, jnp.ones((2, 3), jnp.int32))
    np.testing.assert_allclose(float(lm.perplexity(mean)), 16.0, rtol=1e-5)
    np.testing.assert_allclose(float(lm.bits_per_token(mean)), 4.0, rtol=1e-5)
    assert lm.perplexity(np.log(3.0)) == pytest.approx(3.0)


def test_readout_untied_and_tied():
    rng = np.random.default_rng(2)
    hs = rng.normal(size=(2, 3, 4)).astype(np.float32)
    table = rng.normal(size=(7, 4)).astype(np.float32)
    params = lm.readout_init(jax.random.key(0), 4, 7)
    params = params._replace(b=jnp.asarray(rng.normal(size=7), jnp.float32))
    want = hs @ np.asarray(params.w) + np.asarray(params.b)
    np.testing.assert_allclose(lm.readout(params, hs), want, rtol=1e-5, atol=1e-6)
    tied = lm.readout_init(jax.random.key(0), 4, 7, tied=True)
    assert tied.w is None
    want = hs @ table.T
    np.testing.assert_allclose(lm.readout(tied, hs, table), want, rtol=1e-5, atol=1e-6)


def test_errors():
    logits = jnp.zeros((1, 2, 4))
    with pytest.raises(ValueError, match=r"targets: expected token ids in \[0, 4\)"):
        lm.sequence_cross_entropy(logits, jnp.array([[1, 4]]))
    with pytest.raises(ValueError, match="targets: expected shape"):
        lm.sequence_cross_entropy(logits, jnp.array([[1, 2, 3]]))
    with pytest.raises(ValueError, match="reduction"):
        lm.sequence_cross_entropy(logits, jnp.array([[1, 2]]), reduction="avg")
    with pytest.raises(ValueError, match="table: expected"):
        lm.readout(lm.readout_init(jax.random.key(0), 4, 7, tied=True), jnp.zeros(4))
    with pytest.raises(ValueError, match="ids: expected"):
        lm.shift_targets(jnp.zeros((2, 1), jnp.int32))
