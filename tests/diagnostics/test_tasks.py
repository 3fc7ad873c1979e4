"""The long-range task generators: layout, statistics and baselines."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxseq.tasks import (
    ADDING_BASELINE_MSE,
    adding_problem,
    copy_baseline_cross_entropy,
    copy_chance_accuracy,
    copy_task,
)


@pytest.mark.parametrize("length", [2, 7, 50])
def test_adding_layout_and_targets(length):
    xs, ys = adding_problem(jax.random.key(length), 500, length)
    xs, ys = np.asarray(xs), np.asarray(ys)
    assert xs.shape == (500, length, 2) and ys.shape == (500,)
    assert xs.dtype == np.float32 and ys.dtype == np.float32
    values, markers = xs[..., 0], xs[..., 1]
    assert ((values >= 0) & (values < 1)).all()
    assert set(np.unique(markers)) <= {0.0, 1.0}
    np.testing.assert_array_equal(markers.sum(axis=1), 2.0)  # exactly two markers
    half = length // 2
    np.testing.assert_array_equal(markers[:, :half].sum(axis=1), 1.0)  # one per half
    pos = np.argwhere(markers == 1)[:, 1].reshape(500, 2)
    want = values[np.arange(500), pos[:, 0]] + values[np.arange(500), pos[:, 1]]
    np.testing.assert_allclose(ys, want, rtol=1e-6)


def test_adding_statistics_and_baseline():
    """Targets have mean 1 and variance 1/6, so predicting 1.0 scores MSE 1/6;
    marker positions are uniform within each half."""
    xs, ys = adding_problem(jax.random.key(0), 40_000, 20)
    ys = np.asarray(ys, np.float64)
    se = np.sqrt(2 / 40_000) * ADDING_BASELINE_MSE  # s.e. of a sample variance
    assert ys.mean() == pytest.approx(
        1.0, abs=4 * np.sqrt(ADDING_BASELINE_MSE / 40_000)
    )
    assert np.mean((ys - 1.0) ** 2) == pytest.approx(ADDING_BASELINE_MSE, abs=5 * se)
    counts = np.asarray(xs[..., 1]).sum(axis=0)
    np.testing.assert_allclose(counts / 4000, np.ones(20), atol=0.15)  # 4000 per step


def test_generators_are_deterministic_in_the_key_and_jit():
    a = adding_problem(jax.random.key(1), 4, 9)
    adding = jax.jit(adding_problem, static_argnums=(1, 2))
    np.testing.assert_array_equal(a[0], adding(jax.random.key(1), 4, 9)[0])
    assert not np.array_equal(a[0], adding(jax.random.key(2), 4, 9)[0])
    copy = jax.jit(copy_task, static_argnums=(1, 2))
    np.testing.assert_array_equal(
        copy(jax.random.key(1), 3, 5)[1], copy(jax.random.key(1), 3, 5)[1]
    )


@pytest.mark.parametrize("delay", [1, 30])
def test_copy_layout(delay):
    A, K, N = 6, 4, 300
    xs, ys = copy_task(jax.random.key(delay), N, delay, num_symbols=A, copy_length=K)
    xs, ys = np.asarray(xs), np.asarray(ys)
    L = delay + 2 * K
    assert xs.shape == (N, L, A + 2) and ys.shape == (N, L) and ys.dtype == np.int32
    np.testing.assert_array_equal(xs.sum(axis=-1), 1.0)  # one-hot
    tokens = xs.argmax(-1)
    symbols = tokens[:, :K]
    assert ((symbols >= 1) & (symbols <= A)).all()
    assert set(np.unique(symbols)) == set(range(1, A + 1))
    np.testing.assert_array_equal(tokens[:, K : K + delay - 1], 0)
    np.testing.assert_array_equal(tokens[:, K + delay - 1], A + 1)  # the delimiter
    np.testing.assert_array_equal(tokens[:, K + delay :], 0)
    np.testing.assert_array_equal(ys[:, : K + delay], 0)
    np.testing.assert_array_equal(ys[:, -K:], symbols)  # recall, in order


def test_copy_baselines():
    assert copy_chance_accuracy(8) == 0.125
    assert copy_baseline_cross_entropy(100) == pytest.approx(10 * np.log(8) / 120)
    assert copy_baseline_cross_entropy(5, num_symbols=4, copy_length=2) == (
        pytest.approx(2 * np.log(4) / 9)
    )


def test_task_errors():
    with pytest.raises(ValueError, match="length: expected an int >= 2, got 1"):
        adding_problem(jax.random.key(0), 3, 1)
    with pytest.raises(ValueError, match="num_examples: expected an int >= 1, got 0"):
        adding_problem(jax.random.key(0), 0, 5)
    with pytest.raises(ValueError, match="delay: expected an int >= 1, got 0"):
        copy_task(jax.random.key(0), 2, 0)
    with pytest.raises(ValueError, match="copy_length: expected an int >= 1"):
        copy_task(jax.random.key(0), 2, 3, copy_length=0)
