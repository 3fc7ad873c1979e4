"""Trimming a batch of the lab model to its length bucket changes neither the
loss nor the gradient (the batch orders are tested in tests/train)."""

from __future__ import annotations

import jax
import numpy as np

from jaxseq import models
from jaxseq.train import bucket_by_length, bucket_lengths


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
