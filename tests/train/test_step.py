"""The jitted train/eval steps: one compile per shape (and per bucket), the
fold_in key, metric sums, and refusal to apply a non-finite update."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxseq.train import (
    accumulate,
    bucket_by_length,
    init_state,
    make_eval_step,
    make_train_step,
    summarize,
)

from . import _task


def _counting(loss_fn):
    traces = []

    def wrapped(params, batch, key):
        traces.append(jax.tree.map(jnp.shape, batch))
        return loss_fn(params, batch, key)

    return wrapped, traces


def _state(opt, seed=0):
    return init_state(_task.init_params(jax.random.key(seed)), opt, jax.random.key(1))


def test_second_call_does_not_recompile():
    opt = optax.adam(1e-2)
    loss_fn, traces = _counting(_task.loss_fn)
    step = make_train_step(loss_fn, opt)
    ids, lengths, labels = _task.make_data(0, 64)
    state = _state(opt)
    state, _ = step(state, (ids[:32], lengths[:32], labels[:32]))
    state, _ = step(state, (ids[32:], lengths[32:], labels[32:]))
    assert len(traces) == 1
    assert step._cache_size() == 1
    assert int(state.step) == 2


def test_bucketed_lengths_compile_once_per_bucket():
    opt = optax.sgd(0.1)
    loss_fn, traces = _counting(_task.loss_fn)
    step = make_train_step(loss_fn, opt)
    collate = bucket_by_length((6, 16))
    state = _state(opt)
    rng = np.random.default_rng(0)
    seen = set()
    for i in range(12):  # max lengths vary batch to batch
        ids, lengths, labels = _task.make_data(i, 8, max_len=16, min_len=2)
        lengths = np.minimum(lengths, rng.integers(3, 12))
        batch = collate((ids, lengths, labels))
        seen.add(batch[0].shape[1])
        state, _ = step(state, batch)
    assert seen == {6, 16}
    assert len(traces) == 2 == step._cache_size()


def test_bucket_by_length_pads_trims_and_refuses_overlong():
    collate = bucket_by_length((4, 8))
    ids = np.arange(1, 13, dtype=np.int32).reshape(2, 6)
    out = collate((ids, np.array([2, 3]), np.array([0.0, 1.0])))
    np.testing.assert_array_equal(out[0], ids[:, :4])
    out = collate((ids, np.array([7, 3]), np.array([0.0, 1.0])))
    np.testing.assert_array_equal(out[0], np.pad(ids, ((0, 0), (0, 2))))
    with pytest.raises(
        ValueError,
        match=r"lengths: expected every length <= the largest bucket 8, got 9",
    ):
        collate((np.zeros((2, 9)), np.array([9, 1]), np.zeros(2)))
    with pytest.raises(ValueError, match=r"buckets: expected strictly increasing"):
        bucket_by_length((8, 4))


def test_step_matches_manual_update_and_key_is_fold_in_of_step():
    opt = optax.sgd(0.1)
    keys = []

    def loss_fn(w, batch, key):
        keys.append(key)
        x, y = batch
        noise = jax.random.normal(key, ())
        return jnp.mean((x @ w - y) ** 2) + 0.0 * noise, {"noise": noise}

    x = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], np.float32)
    y = np.array([1.0, 0.0, -1.0], np.float32)
    w0 = jnp.array([0.2, -0.1])
    step = make_train_step(loss_fn, opt, donate=False)
    state = init_state(w0, opt, jax.random.key(7))
    state, m = step(state, (x, y))
    state, m2 = step(state, (x, y))
    # reference: two plain gradient steps in NumPy
    w = np.asarray(w0, np.float64)
    for _ in range(2):
        grad = 2 * x.T @ (x @ w - y) / len(y)
        w = w - 0.1 * grad
    np.testing.assert_allclose(state.params, w, rtol=1e-5)
    # metrics are sums over the batch plus a count
    assert float(m2["count"]) == 3.0
    expected_noise = jax.random.normal(jax.random.fold_in(jax.random.key(7), 1), ())
    np.testing.assert_allclose(
        float(m2["noise"]), 3.0 * float(expected_noise), rtol=1e-6
    )
    totals = accumulate(accumulate({}, jax.device_get(m)), jax.device_get(m2))
    means = summarize(totals)
    np.testing.assert_allclose(
        means["loss"], (float(m["loss"]) + float(m2["loss"])) / 6
    )
    assert set(means) == {"loss", "noise", "grad_norm"}


def test_non_finite_update_is_not_applied():
    opt = optax.sgd(0.1)

    def loss_fn(w, batch, key):
        return jnp.mean((batch[0] @ w) ** 2) * batch[1][0], None

    step = make_train_step(loss_fn, opt)
    state = init_state(jnp.array([1.0, 2.0]), opt, jax.random.key(0))
    x = np.ones((2, 2), np.float32)
    state, m = step(state, (x, np.array([1.0, 1.0], np.float32)))
    good = np.asarray(state.params)
    state, m = step(state, (x, np.array([np.nan, 1.0], np.float32)))
    assert not bool(m["finite"])
    assert int(state.step) == 1
    np.testing.assert_array_equal(state.params, good)


def test_eval_step_sums_and_aux_errors():
    params = _task.init_params(jax.random.key(0))
    batch = _task.make_data(3, 10)
    m = make_eval_step(_task.loss_fn)(params, batch)
    loss, aux = _task.loss_fn(params, batch, None)
    np.testing.assert_allclose(float(m["loss"]), 10 * float(loss), rtol=1e-6)
    np.testing.assert_allclose(
        float(m["accuracy"]), 10 * float(aux["accuracy"]), rtol=1e-6
    )
    bad = make_eval_step(lambda p, b, k: (jnp.zeros(()), {"v": jnp.zeros(3)}))
    with pytest.raises(
        ValueError, match=r"aux\['v'\] to be a scalar batch mean, got shape \(3,\)"
    ):
        bad(params, batch)
    with pytest.raises(TypeError, match=r"key: expected a typed PRNG key"):
        init_state(params, optax.sgd(0.1), jax.random.PRNGKey(0))


FORM = r"loss_fn\(params, batch, key\) -> \(scalar loss, aux dict or None\)"


@pytest.mark.parametrize(
    "loss_fn,error,match",
    [
        (
            lambda p, b, k: jnp.mean(b[0] @ p),
            TypeError,
            rf"^loss_fn: expected {FORM}, got one array of shape \(\) \(no aux\)\.",
        ),
        (
            lambda p, b, k: (b[0] @ p, None),
            ValueError,
            rf"^loss_fn: expected {FORM}, got a loss of shape \(3,\) \(reduce it",
        ),
        (
            lambda p, b, k: (jnp.mean(b[0] @ p), None, None),
            TypeError,
            rf"^loss_fn: expected {FORM}, got a tuple of 3 values\.",
        ),
        (
            lambda p, b, k: (jnp.mean(b[0] @ p), [1.0]),
            TypeError,
            rf"^loss_fn: expected {FORM}, got aux of type list\.",
        ),
        (
            lambda p, b, k: (1.0, None),
            TypeError,
            rf"^loss_fn: expected {FORM}, got a loss of type float\.",
        ),
        (
            lambda p, b, k: (jnp.sum(b[0] @ p > 0), None),
            TypeError,
            rf"^loss_fn: expected {FORM} with a floating loss, got dtype int32\.",
        ),
    ],
    ids=["no-aux", "not-scalar", "three", "aux-list", "python-float", "int-loss"],
)
def test_malformed_loss_fn_fails_at_trace_time_naming_it(loss_fn, error, match):
    opt = optax.sgd(0.1)
    state = init_state(jnp.ones(2), opt, jax.random.key(0))
    batch = (np.ones((3, 2), np.float32),)
    with pytest.raises(error, match=match):
        make_train_step(loss_fn, opt)(state, batch)
    with pytest.raises(error, match=match):
        make_eval_step(loss_fn)(state.params, batch)


@pytest.mark.parametrize(
    "key,error,match",
    [
        (
            0,
            TypeError,
            r"^key: expected a typed PRNG key from jax\.random\.key\(seed\), "
            r"got int 0\.",
        ),
        (
            np.zeros(3, np.uint32),
            TypeError,
            r"got an array of dtype uint32 and shape "
            r"\(3,\) \(raw key data: wrap it",
        ),
        (jnp.zeros(2), TypeError, r"got an array of dtype float32 and shape \(2,\)\."),
        (
            jax.random.split(jax.random.key(0)),
            ValueError,
            r"^key: expected a typed PRNG key .* \(shape \(\)\), got a key array of "
            r"shape \(2,\)\.",
        ),
    ],
    ids=["int", "raw-uint32", "float-array", "key-array"],
)
def test_non_key_is_refused_naming_key(key, error, match):
    with pytest.raises(error, match=match):
        init_state(jnp.ones(2), optax.sgd(0.1), key)
