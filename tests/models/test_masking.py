"""The lab model's length-aware backward reading on a small learnable task.

Keras' ``go_backwards`` on right-padded data reads the padding first; with a
mask it froze the state there and lost accuracy on IMDb. jaxseq's
``reverse=True`` with lengths reads each valid prefix backwards. Trained from
the same initialisation on the same batches, the length-aware model must be at
least as accurate as the same model reading the padding (lengths = T)."""

from __future__ import annotations

import jax
import numpy as np
import optax

from jaxseq import models
from jaxseq.train import init_state, make_train_step

V, T = 16, 32
POSITIVE, NEGATIVE = np.arange(2, 6), np.arange(6, 10)


def make_task(seed: int, n: int):
    """Token sequences of lengths 4..24 padded to 32; label: more 'positive'
    tokens (2..5) than 'negative' ones (6..9); ties dropped."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, 25, n).astype(np.int32)
    ids = rng.integers(2, V, (n, T)).astype(np.int32)
    ids[np.arange(T)[None, :] >= lengths[:, None]] = 0
    pos = np.isin(ids, POSITIVE).sum(1)
    neg = np.isin(ids, NEGATIVE).sum(1)
    keep = pos != neg
    return ids[keep], lengths[keep], (pos > neg)[keep].astype(np.float32)


def train_accuracy(model, read_padding: bool, data, test) -> float:
    loss_fn = models.loss_function(model)
    opt = optax.adam(1e-2)
    state = init_state(model.init(jax.random.key(0)), opt, jax.random.key(1))
    step = make_train_step(loss_fn, opt)
    ids, lengths, labels = data
    if read_padding:
        lengths = np.full_like(lengths, T)
    rng = np.random.default_rng(0)
    for _ in range(600):
        idx = rng.choice(len(labels), 64, replace=False)
        state, _ = step(state, (ids[idx], lengths[idx], labels[idx]))
    t_ids, t_lengths, t_labels = test
    if read_padding:
        t_lengths = np.full_like(t_lengths, T)
    logits = jax.jit(model.apply)(state.params, t_ids, t_lengths)
    return float(((np.asarray(logits) > 0) == (t_labels > 0.5)).mean())


def test_length_aware_reverse_loses_no_accuracy():
    model = models.build("lab", vocab_size=V)
    data, test = make_task(0, 3000), make_task(1, 1000)
    aware = train_accuracy(model, False, data, test)
    padded = train_accuracy(model, True, data, test)
    assert aware >= 0.85, aware  # the task is learnt
    assert aware >= padded - 0.01, (aware, padded)
