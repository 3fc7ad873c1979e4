"""A conformal factor belongs to the interval widths it was measured on: the
held-out errors are scored against the refitted nets' widths on the same
windows (:func:`~jaxseq.forecast.recentre`), against a NumPy restatement,
and coverage on exchangeable data within a binomial band, where the factor of
other (the held-out nets') widths under-covers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from jaxseq.forecast import (
    Forecast,
    RecurrentConfig,
    conformal_factors,
    recentre,
    recurrent,
    stretch,
)

Z90 = stats.norm.ppf(0.95)


def _forecast(mean, lo_width, hi_width):
    return Forecast(mean, {0.9: mean - lo_width}, {0.9: mean + hi_width}, None)


def test_recentre_keeps_each_sides_half_width():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(7, 3))
    lo_w, hi_w = rng.uniform(0.1, 2, mean.shape), rng.uniform(0.1, 2, mean.shape)
    points = rng.normal(size=mean.shape)
    got = recentre(_forecast(mean, lo_w, hi_w), points)
    np.testing.assert_array_equal(got.mean, points)
    np.testing.assert_allclose(got.lower[0.9], points - lo_w, rtol=1e-12)
    np.testing.assert_allclose(got.upper[0.9], points + hi_w, rtol=1e-12)
    with pytest.raises(ValueError, match=r"points: expected the forecasts' shape"):
        recentre(_forecast(mean, lo_w, hi_w), points[:, :2])


@pytest.mark.parametrize("seed", [0, 1])
def test_refitted_widths_scored_on_held_out_errors_cover_within_a_binomial_band(
    seed,
):
    """Exchangeable errors of sd 1.5. The held-out nets (A) claim sd 1 and
    have noisier points (error sd 0.3 more); the refitted net (B) has exact
    conditional means and claims sd 0.6 (it learned its spread on more,
    calmer, in-sample residuals). On 3,000 held-out values:

    * A's errors scored against B's widths give ``c``; B's intervals
      stretched by it cover ``2 Phi(0.6 c z / 1.5) - 1`` (closed form, >= 0.9
      up to the factor's sampling error), and 4,000 fresh values cover
      within 4 binomial sd of it;
    * A's errors scored against A's own widths give ``c_A``; B's intervals
      stretched by it cover ``2 Phi(0.6 c_A z / 1.5) - 1``, about 0.68."""
    rng = np.random.default_rng(seed)
    n_cal, n_test = 3000, 4000
    mu = rng.normal(size=(n_cal, 1))
    y = mu + 1.5 * rng.normal(size=mu.shape)
    a = mu + 0.3 * rng.normal(size=mu.shape)
    c = conformal_factors(recentre(_forecast(mu, 0.6 * Z90, 0.6 * Z90), a), y)[0.9]
    c_a = conformal_factors(_forecast(a, Z90, Z90), y)[0.9]
    # A's errors have sd sqrt(1.5^2 + 0.3^2)
    assert abs(c_a / np.hypot(1.5, 0.3) - 1) < 0.06, c_a
    assert abs(0.6 * c / np.hypot(1.5, 0.3) - 1) < 0.06, c

    mu = rng.normal(size=(n_test, 1))
    y = mu + 1.5 * rng.normal(size=mu.shape)
    b = _forecast(mu, 0.6 * Z90, 0.6 * Z90)
    for factor, lo, hi in ((c, 0.88, 0.96), (c_a, 0.6, 0.76)):
        got = stretch(b, {0.9: factor})
        cover = np.mean((got.lower[0.9] <= y) & (y <= got.upper[0.9]))
        want = 2 * stats.norm.cdf(0.6 * factor * Z90 / 1.5) - 1
        band = 4 * np.sqrt(want * (1 - want) / n_test)
        assert abs(cover - want) < band, (cover, want, band)
        assert lo < cover < hi, (factor, cover)


def _ar1(seed: int, length: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(length)
    for t in range(1, length):
        y[t] = 0.5 * y[t - 1] + rng.normal()
    return 5.0 + y


def _scores(m, lo, hi, y):
    """NumPy restatement of the conformal score."""
    return np.maximum((m - y) / (m - lo), (y - m) / (hi - m))


def test_recurrent_factors_score_held_out_errors_against_refitted_widths():
    """A small GRU fitted with and without refit (the held-out run is the
    same, so the refit=False nets are the held-out nets): the refitted
    method's held-out scores are the held-out nets' points against the
    refitted nets' widths on the held-out windows, and its per-step factors
    their conformal quantiles (NumPy restatement); the factors differ from
    those of the held-out nets' own widths (refit=False)."""
    y = _ar1(0, 120)
    config = RecurrentConfig(
        cell="gru", hidden=4, window=6, steps=30, transform="level"
    )
    train = [y[:90]]
    method, held = recurrent(config, 2), recurrent(config._replace(refit=False), 2)
    state, state_held = method.fit(train), held.fit(train)
    np.testing.assert_array_equal(state.score_origins, state_held.score_origins)
    windows = [(0, y[:t]) for t in state.score_origins]
    truth = np.stack([y[t : t + 2] for t in state.score_origins])
    refit = method.forecast(state._replace(factors=None), windows, 2)
    points = held.forecast(state_held._replace(factors=None), windows, 2).mean
    for p in (0.8, 0.9):
        lo = points - (refit.mean - refit.lower[p])
        hi = points + (refit.upper[p] - refit.mean)
        want = _scores(points, lo, hi, truth)
        np.testing.assert_allclose(state.scores[p], want, rtol=1e-5, atol=1e-9)
        k = math.ceil((want.shape[0] + 1) * p - 1e-9)
        factors = np.sort(want, axis=0)[k - 1]
        np.testing.assert_allclose(state.factors[p], factors, rtol=1e-5)
        assert not np.allclose(state.factors[p], state_held.factors[p], rtol=1e-3)
