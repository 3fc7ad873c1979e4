"""Length-bucketed batches: every batch full, examples of similar length, and
trimming a batch to its bucket changes neither the loss nor the gradient."""

from __future__ import annotations

import jax
import numpy as np

from jaxseq import models
from jaxseq.models._bucketed import bucket_lengths, num_batches, sortish_batches
from jaxseq.train import bucket_by_length


def test_sortish_batches_cover_the_epoch_in_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 400, 5000)
    batches = sortish_batches(lengths, 64, np.random.default_rng(1), pool=8)
    assert len(batches) == num_batches(5000, 64, pool=8) == 78
    flat = np.concatenate(batches)
    assert all(len(b) == 64 for b in batches) and len(set(flat)) == len(flat)
    assert 5000 - len(flat) < 64 * (5000 // (8 * 64) + 1)  # < one batch per pool
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.2 * np.ptp(lengths)  # a random batch spans almost all
    again = sortish_batches(lengths, 64, np.random.default_rng(1), pool=8)
    assert all((a == b).all() for a, b in zip(batches, again, strict=True))


def test_bucket_lengths():
    assert bucket_lengths(400) == (100, 200, 300, 400)
    assert bucket_lengths(3) == (1, 2, 3)


def test_trimming_to_the_bucket_keeps_loss_and_gradient():
    model = models.build("lab", vocab_size=30)
    params = model.init(jax.random.key(0))
    rng = np.random.default_rng(0)
    lengths = np.array([3, 17, 9, 12], np.int32)
    ids = rng.integers(2, 30, (4, 40)).astype(np.int32)
    ids[np.arange(40)[None, :] >= lengths[:, None]] = 0
    labels = np.array([1, 0, 1, 0], np.float32)
    batch = (ids, lengths, labels)
    trimmed = bucket_by_length(bucket_lengths(40))(batch)
    assert trimmed[0].shape == (4, 20)
    grad = jax.grad(lambda p, b: models.loss_function(model)(p, b, None)[0])
    full, short = grad(params, batch), grad(params, trimmed)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-7), full, short)
