"""Batch orders: sortish batches cover an epoch in batches of similar lengths,
and ``fit(batch_order=...)`` trains on exactly those batches, epoch after epoch,
including after a resume in the middle of an epoch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseq.train import (
    Checkpointing,
    CheckpointMismatchError,
    Logging,
    NonFiniteError,
    bucket_lengths,
    fit,
    sortish_batches,
    sortish_order,
)

KEY = jax.random.key(0)


def test_sortish_batches_cover_the_epoch_in_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 400, 5000)
    batches = sortish_batches(lengths, 64, np.random.default_rng(1), pool=8)
    assert len(batches) == 5000 // 64 == 78
    flat = np.concatenate(batches)
    assert all(len(b) == 64 for b in batches) and len(set(flat)) == len(flat)
    assert len(flat) == 5000 // 64 * 64  # only the last pool leaves some out
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < 0.2 * np.ptp(lengths)  # a random batch spans almost all
    again = sortish_batches(lengths, 64, np.random.default_rng(1), pool=8)
    assert all((a == b).all() for a, b in zip(batches, again, strict=True))


def test_sortish_order_is_a_function_of_the_epoch():
    lengths = np.random.default_rng(0).integers(1, 50, 300)
    order = sortish_order(lengths, 8, seed=4, pool=4)
    first, second = order(0), order(1)
    assert len(first) == len(second) == 300 // 8
    assert all((a == b).all() for a, b in zip(first, order(0), strict=True))
    assert any((a != b).any() for a, b in zip(first, second, strict=True))


def test_bucket_lengths():
    assert bucket_lengths(400) == (100, 200, 300, 400)
    assert bucket_lengths(3) == (1, 2, 3)
    with pytest.raises(ValueError, match=r"maxlen: expected a positive int, got 0"):
        bucket_lengths(0)


@pytest.mark.parametrize(
    "args, message",
    [
        ((np.ones((4, 2)), 2), r"lengths: expected a 1-D array \[N\], got shape"),
        ((np.ones(4), 0), r"batch_size: expected a positive int, got 0"),
        ((np.ones(4), 5), r"batch_size: expected at most the number of examples"),
    ],
)
def test_sortish_order_errors(args, message):
    with pytest.raises(ValueError, match=message):
        sortish_order(*args)


N, BATCH, EPOCHS = 40, 4, 3


def _recorder(fail_at=None):
    """SGD(1.0) on this loss writes step ``t``'s batch (example indices) into row
    ``t`` of ``log`` and counts ``t`` up; NaN from update ``fail_at`` on."""

    def loss_fn(params, batch, key):
        t = params["t"]
        row = jax.nn.one_hot(
            jax.lax.stop_gradient(t).astype(jnp.int32), len(params["log"])
        )
        loss = -t - jnp.sum(row[:, None] * params["log"] * batch[0][None, :])
        if fail_at is not None:
            loss = loss + jnp.where(t >= fail_at, jnp.nan, 0.0)
        return loss, None

    return loss_fn


def _params(order):
    steps = EPOCHS * len(order(0))
    return {"t": jnp.zeros(()), "log": jnp.zeros((steps, BATCH))}


def test_fit_trains_on_the_batch_order_and_resumes_mid_epoch(tmp_path):
    lengths = np.random.default_rng(0).integers(1, 30, N)
    order = sortish_order(lengths, BATCH, seed=2, pool=3)
    data = (np.arange(N, dtype=np.float32),)
    expected = np.concatenate([np.stack(order(e)) for e in range(EPOCHS)])
    common = dict(
        key=KEY,
        batch_size=BATCH,
        epochs=EPOCHS,
        batch_order=order,
        logging=Logging(progress=False),
    )
    full = fit(_recorder(), optax.sgd(1.0), _params(order), data, **common)
    np.testing.assert_array_equal(full.params["log"], expected)
    assert int(full.state.step) == len(expected)

    # stopped by a NaN mid-epoch 2 with a checkpoint every 5 steps, then resumed
    # from that checkpoint: the same batches, in the same order, to the end
    fail_at = len(order(0)) + 3
    ckpt = dict(checkpoint=Checkpointing(tmp_path, every=5))
    with pytest.raises(NonFiniteError) as info:
        fit(_recorder(fail_at), optax.sgd(1.0), _params(order), data, **common, **ckpt)
    assert info.value.checkpoint_step == fail_at // 5 * 5
    rest = fit(_recorder(), optax.sgd(1.0), _params(order), data, **common, **ckpt)
    np.testing.assert_array_equal(rest.params["log"], expected)

    # a checkpoint of one batch order does not resume with another one
    def other(epoch):
        return order(epoch)[:-1]

    with pytest.raises(
        CheckpointMismatchError,
        match=r"batches_per_epoch: 10 in the checkpoint, 9 now",
    ):
        fit(
            _recorder(),
            optax.sgd(1.0),
            _params(order),
            data,
            **{**common, "batch_order": other, "epochs": EPOCHS + 1},
            **ckpt,
        )
    # nor without one
    with pytest.raises(
        CheckpointMismatchError,
        match=r"batches_per_epoch: 10 in the checkpoint, None now",
    ):
        fit(
            _recorder(),
            optax.sgd(1.0),
            _params(order),
            data,
            **{**common, "batch_order": None, "epochs": EPOCHS + 1},
            **ckpt,
        )


def test_batch_order_must_keep_its_shape():
    data = (np.arange(N, dtype=np.float32),)

    def shrinking(epoch):
        return [np.arange(b * BATCH, (b + 1) * BATCH) for b in range(5 - epoch)]

    def ragged(epoch):
        return [np.arange(BATCH), np.arange(BATCH + 1)]

    args = dict(key=KEY, batch_size=BATCH, epochs=2, logging=Logging(progress=False))
    params = {"t": jnp.zeros(()), "log": jnp.zeros((10, BATCH))}
    with pytest.raises(
        ValueError, match=r"batch_order: expected 5 batches .* for epoch 2, got 4"
    ):
        fit(_recorder(), optax.sgd(1.0), params, data, batch_order=shrinking, **args)
    with pytest.raises(
        ValueError, match=r"of 4 indices each .* shapes \[\(4,\), \(5,\)\]"
    ):
        fit(_recorder(), optax.sgd(1.0), params, data, batch_order=ragged, **args)
    with pytest.raises(ValueError, match=r"batch_order: expected at least one batch"):
        fit(_recorder(), optax.sgd(1.0), params, data, batch_order=lambda e: [], **args)
