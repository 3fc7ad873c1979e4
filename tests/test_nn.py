"""Masking and pooling helpers (:mod:`jaxseq.nn`) against NumPy loops, and the
refusal of lengths they cannot pool with."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq import nn

B, T, H = 4, 5, 3
POOLS = {"masked_mean": nn.masked_mean, "masked_max": nn.masked_max,
         "last_valid": nn.last_valid}  # fmt: skip


def reference(name: str, ys: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Python loop over the valid prefix ``ys[b, :n]``, ``n`` clipped to
    ``[0, T]``; zeros for an empty sequence."""
    out = np.zeros((ys.shape[0], *ys.shape[2:]), dtype=np.float64)
    for b, n in enumerate(np.clip(lengths, 0, ys.shape[1])):
        valid = ys[b, :n].astype(np.float64)
        if n:
            out[b] = {"masked_mean": valid.mean(0), "masked_max": valid.max(0),
                      "last_valid": valid[-1]}[name]  # fmt: skip
    return out


def random_ys(shape=(B, T, H)) -> np.ndarray:
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("name", list(POOLS))
@pytest.mark.parametrize("shape", [(B, T), (B, T, H), (B, T, 2, H)])
def test_pools_match_a_loop(name, shape):
    ys = random_ys(shape)
    lengths = np.array([0, 1, 3, T], dtype=np.int32)
    got = POOLS[name](jnp.asarray(ys), jnp.asarray(lengths))
    assert got.shape == (B, *shape[2:])
    np.testing.assert_allclose(got, reference(name, ys, lengths), rtol=1e-5, atol=1e-6)
    # Python lists work too, and no lengths means every step.
    np.testing.assert_allclose(POOLS[name](ys, lengths.tolist()), got)
    full = reference(name, ys, np.full(B, T))
    np.testing.assert_allclose(POOLS[name](ys), full, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", list(POOLS))
def test_float_lengths_are_refused_at_trace_time(name):
    ys = random_ys()
    lengths = jnp.array([1.0, 2.5, 3.0, 5.0])
    with pytest.raises(TypeError, match="lengths: expected an integer dtype"):
        POOLS[name](ys, lengths)
    with pytest.raises(TypeError, match="got float32"):
        jax.jit(POOLS[name])(ys, lengths)


@pytest.mark.parametrize("name", list(POOLS))
@pytest.mark.parametrize("bad", [T + 1, -1])
def test_concrete_lengths_out_of_range_are_refused(name, bad):
    lengths = np.array([1, 2, bad, 3])
    with pytest.raises(
        ValueError,
        match=rf"lengths: expected every value in \[0, {T}\].*"
        rf"lengths\[2\] = {bad}",
    ):
        POOLS[name](random_ys(), lengths)


@pytest.mark.parametrize("name", list(POOLS))
def test_lengths_of_another_batch_are_refused(name):
    with pytest.raises(ValueError, match=r"lengths: expected shape \(4,\)"):
        POOLS[name](random_ys(), np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"ys: expected rank >= 2"):
        POOLS[name](jnp.zeros(T), np.array([1]))


@pytest.mark.parametrize("name", list(POOLS))
def test_traced_lengths_out_of_range_behave_as_clipped(name):
    """Values cannot be checked under jit; they act as clipped to [0, T], as in
    the runners (documented in the module docstring)."""
    ys = random_ys()
    lengths = np.array([T + 3, -2, 2, 100], dtype=np.int32)
    got = jax.jit(POOLS[name])(ys, lengths)
    np.testing.assert_allclose(got, reference(name, ys, lengths), rtol=1e-5, atol=1e-6)


def test_mask_from_lengths():
    mask = nn.mask_from_lengths(np.array([0, 2, 7, -1]), 3)
    expected = np.arange(3)[None, :] < np.clip([0, 2, 7, -1], 0, 3)[:, None]
    np.testing.assert_array_equal(mask, expected)
    with pytest.raises(TypeError, match="lengths: expected an integer dtype"):
        nn.mask_from_lengths(np.array([1.5, 2.0]), 3)
    with pytest.raises(ValueError, match=r"lengths: expected shape \(B,\)"):
        nn.mask_from_lengths(np.array([[1, 2]]), 3)
    for time in (-1, 2.0, True):
        with pytest.raises(ValueError, match="time: expected an int >= 0"):
            nn.mask_from_lengths(np.array([1]), time)  # type: ignore[arg-type]


def test_dropout_rate_is_checked(key):
    x = jnp.ones((1000,))
    kept = nn.dropout(key, 0.25, x)
    values = np.unique(kept)
    assert values[0] == 0.0 and np.allclose(values[1:], 1 / 0.75, rtol=1e-6)
    assert abs(float((kept == 0).mean()) - 0.25) < 0.06  # ~4.4 standard errors
    for rate in (1.0, -0.1, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match="rate: expected a dropout rate"):
            nn.dropout(key, rate, x)  # type: ignore[arg-type]
