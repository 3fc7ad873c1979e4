"""Heads against scipy: the Gaussian likelihood and quantiles, the pinball loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxseq.forecast import gaussian, quantile, student_t
from jaxseq.forecast.heads import MIN_DF, MIN_SIGMA, t_quantile


def test_gaussian_likelihood_and_interval_match_scipy():
    rng = np.random.default_rng(0)
    o = rng.normal(size=(5, 3, 2)).astype(np.float32)
    y = rng.normal(size=(5, 3)).astype(np.float32)
    head = gaussian()
    sigma = np.log1p(np.exp(o[..., 1].astype(np.float64))) + MIN_SIGMA
    ref = -stats.norm.logpdf(y, loc=o[..., 0], scale=sigma)
    np.testing.assert_allclose(
        head.loss(jnp.asarray(o), jnp.asarray(y)), ref, rtol=1e-5
    )
    lo, hi = head.interval(jnp.asarray(o), 0.9)
    np.testing.assert_allclose(
        lo, stats.norm.ppf(0.05, o[..., 0], sigma), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        hi, stats.norm.ppf(0.95, o[..., 0], sigma), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(head.point(jnp.asarray(o)), o[..., 0])


def test_gaussian_samples_have_the_heads_moments():
    o = jnp.broadcast_to(jnp.array([1.5, 0.3]), (20000, 2))
    draws = np.asarray(gaussian().sample(jax.random.key(0), o))
    sigma = np.log1p(np.exp(0.3)) + MIN_SIGMA
    se = sigma / np.sqrt(draws.size)
    assert abs(draws.mean() - 1.5) < 5 * se
    assert abs(draws.std() / sigma - 1) < 5 / np.sqrt(2 * draws.size)


def _t_params(o):
    o = o.astype(np.float64)
    return (
        o[..., 0],
        np.log1p(np.exp(o[..., 1])) + MIN_SIGMA,
        np.log1p(np.exp(o[..., 2])) + MIN_DF,
    )


def test_student_t_likelihood_and_interval_match_scipy():
    rng = np.random.default_rng(3)
    o = rng.normal(size=(5, 4, 3)).astype(np.float32) * [1, 1, 3]
    o = o.astype(np.float32)
    y = (3 * rng.standard_t(3, size=(5, 4))).astype(np.float32)
    head = student_t()
    assert (head.name, head.size) == ("student_t", 3)
    mu, scale, df = _t_params(o)
    ref = -stats.t.logpdf(y, df, loc=mu, scale=scale)
    np.testing.assert_allclose(
        head.loss(jnp.asarray(o), jnp.asarray(y)), ref, rtol=1e-5, atol=1e-5
    )
    for p in (0.8, 0.9):
        lo, hi = head.interval(jnp.asarray(o), p)
        want = stats.t.ppf(
            [(1 - p) / 2, (1 + p) / 2], df[..., None], mu[..., None], scale[..., None]
        )
        np.testing.assert_allclose(lo, want[..., 0], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(hi, want[..., 1], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(head.point(jnp.asarray(o)), o[..., 0])


def test_t_quantile_matches_scipy_and_nears_the_normal():
    df = np.array([2.0, 2.5, 4.0, 10.0, 300.0], np.float32)
    for p in (0.6, 0.9, 0.975):
        np.testing.assert_allclose(
            t_quantile(p, jnp.asarray(df)), stats.t.ppf(p, df), rtol=1e-4, atol=1e-4
        )
        # float32's incomplete beta function loses digits for very large df
        big = float(t_quantile(p, jnp.asarray(1e4)))
        np.testing.assert_allclose(big, stats.t.ppf(p, 1e4), rtol=2e-3)
        assert abs(big - stats.norm.ppf(p)) < 2e-3


def test_student_t_samples_follow_the_head():
    o = jnp.broadcast_to(jnp.array([-0.5, 0.2, 1.0]), (20000, 3))
    draws = np.asarray(student_t().sample(jax.random.key(1), o))
    mu, scale, df = _t_params(np.array([-0.5, 0.2, 1.0]))
    # Kolmogorov-Smirnov against the head's own distribution
    assert stats.kstest(draws, stats.t(df, mu, scale).cdf).pvalue > 1e-3


def test_pinball_loss_and_sorted_quantiles():
    levels = (0.1, 0.25, 0.5, 0.75, 0.9)
    head = quantile(levels)
    rng = np.random.default_rng(2)
    o = rng.normal(size=(4, 5)).astype(np.float32)
    y = rng.normal(size=4).astype(np.float32)
    ref = np.mean(
        [
            [
                max(t * (y[n] - o[n, k]), (t - 1) * (y[n] - o[n, k]))
                for k, t in enumerate(levels)
            ]
            for n in range(4)
        ],
        axis=1,
    )
    np.testing.assert_allclose(
        head.loss(jnp.asarray(o), jnp.asarray(y)), ref, rtol=1e-5
    )
    s = np.sort(o, axis=1)
    lo, hi = head.interval(jnp.asarray(o), 0.8)
    np.testing.assert_allclose(lo, s[:, 0])
    np.testing.assert_allclose(hi, s[:, 4])
    np.testing.assert_allclose(head.point(jnp.asarray(o)), s[:, 2])


def test_quantile_head_errors():
    with pytest.raises(
        ValueError,
        match=r"prob: expected levels 0.05 and 0.95 .* got levels \(0.1, 0.5, 0.9\)",
    ):
        quantile((0.1, 0.5, 0.9)).interval(jnp.zeros((2, 3)), 0.9)
    with pytest.raises(ValueError, match="levels: expected 0.5 among the levels"):
        quantile((0.1, 0.9))
    with pytest.raises(ValueError, match="levels: expected increasing probabilities"):
        quantile((0.5, 0.1))
    with pytest.raises(
        ValueError, match=r"prob: expected a probability in \(0, 1\), got 1.5"
    ):
        gaussian().interval(jnp.zeros((2, 2)), 1.5)
