"""Conformal factors that pool the horizon steps' scores after normalising each
step by its median (``pool_steps``): split and online (ACI) factors against
NumPy restatements, coverage of exchangeable scores within a binomial band,
and steadier factors than one quantile per step from few scores."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxseq.forecast import (
    RecurrentConfig,
    online_factors,
    recurrent,
    score_factors,
    step_scales,
)

from .test_online_conformal import _aci_reference, _rank_quantile


def _loo_divisors(s: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference: each member score's divisor is the median of its step's other
    members, every other score's the median of all its step's members."""
    member = member & np.isfinite(s)
    scale = np.array([np.median(s[member[:, h], h]) for h in range(s.shape[1])])
    div = np.tile(scale, (s.shape[0], 1))
    for h in range(s.shape[1]):
        rows = np.flatnonzero(member[:, h])
        for i in rows:
            div[i, h] = np.median(s[rows[rows != i], h])
    return div, scale


def _scores(rng, n: int, horizon: int, missing: float = 0.15) -> np.ndarray:
    """|t_5| scores whose scale grows with the step, some missing."""
    s = np.abs(rng.standard_t(5, size=(n, horizon))) * np.linspace(1, 4, horizon)
    s[rng.random(s.shape) < missing] = np.nan
    return s


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pooled_split_factors_against_a_numpy_reference(seed):
    rng = np.random.default_rng(seed)
    s = _scores(rng, 20, 5)
    got = score_factors({0.9: s, 0.8: s}, per_step=True, pool_steps=True)
    div, scale = _loo_divisors(s, np.ones(s.shape, bool))
    z = (s / div)[np.isfinite(s)]
    for p in (0.9, 0.8):
        k = math.ceil((z.size + 1) * p - 1e-9)
        want = np.sort(z)[k - 1] * scale
        np.testing.assert_allclose(got[p], want, rtol=1e-12)
    np.testing.assert_allclose(step_scales(s), scale, rtol=1e-12)


def test_step_scales_fall_back_to_the_median_over_steps():
    s = np.array([[1.0, np.nan, 0.0], [3.0, np.nan, 0.0], [2.0, np.nan, 5.0]])
    np.testing.assert_allclose(step_scales(s), [2.0, 1.5, 1.5])  # median(1,3,2,0,0,5)
    assert step_scales(np.zeros((3, 2))).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("gamma", [0.0, 0.05, 0.3])
@pytest.mark.parametrize("seed", [0, 1])
def test_pooled_online_factors_against_a_numpy_reference(gamma, seed):
    """40 held-out forecasts (the scales' members, not updating alpha) and 60
    realised ones whose scores grow (a shift): ACI on the pooled normalised
    scores with step gamma / H, restated as one sequence of (origin, step)
    scores."""
    rng = np.random.default_rng(seed)
    n, horizon = 100, 3
    origins = np.arange(n)
    online = origins >= 40
    s = _scores(rng, n, horizon) * np.where(online, 2.5, 1.0)[:, None]
    div, scale = _loo_divisors(s, np.broadcast_to(~online[:, None], s.shape))
    z = s / div
    ok = np.isfinite(s)
    steps = np.broadcast_to(np.arange(1, horizon + 1), s.shape)
    flat = (
        z[ok],
        np.broadcast_to(origins[:, None], s.shape)[ok],
        steps[ok],
        np.broadcast_to(online[:, None], s.shape)[ok],
    )
    for now in (40, 41, 57, 80, 100):
        got = online_factors(
            {0.9: s, 0.8: s},
            origins,
            now,
            online=online,
            gamma=gamma,
            pool_steps=True,
        )
        for p in (0.9, 0.8):
            q = _aci_reference(*flat, now, p, gamma / horizon)
            np.testing.assert_allclose(got[p], q * scale, rtol=1e-12)


def test_pooled_online_factors_without_realised_scores_are_the_split_ones():
    rng = np.random.default_rng(3)
    s = _scores(rng, 30, 4)
    origins = np.arange(30)
    got = online_factors(
        {0.9: s}, origins, 40, online=np.zeros(30, bool), gamma=0.05, pool_steps=True
    )
    want = score_factors({0.9: s}, per_step=True, pool_steps=True)
    np.testing.assert_allclose(got[0.9], want[0.9], rtol=1e-12)


@pytest.mark.parametrize("n", [12, 16])
def test_pooled_factors_cover_exchangeable_scores_within_a_binomial_band(n):
    """Scores of n calibration forecasts and one new forecast per draw, each
    step's a scaled draw of one distribution (exchangeable within a step):
    the pooled factors cover a fraction of the new values within 4 binomial
    standard errors of 0.9 (at most the conformal slack 1 / (n H + 1) and
    the leave-one-out scale's above), and their spread about the step's true
    90% quantile is well below that of one quantile per step."""
    rng = np.random.default_rng(n)
    horizon, draws, p = 5, 3000, 0.9
    sd = np.array([1.0, 1.5, 2.2, 3.0, 4.0])
    hits, pooled, separate = [], [], []
    for _ in range(draws):
        cal = np.abs(rng.standard_t(5, size=(n, horizon))) * sd
        new = np.abs(rng.standard_t(5, size=horizon)) * sd
        c = score_factors({p: cal}, per_step=True, pool_steps=True)[p]
        hits.append(new <= c)
        pooled.append(c / sd)
        separate.append(score_factors({p: cal}, per_step=True)[p] / sd)
    cover = np.mean(hits)
    se = math.sqrt(p * (1 - p) / (draws * horizon))
    slack = 1 / (n * horizon + 1) + 0.02
    assert p - 4 * se <= cover <= p + slack + 4 * se, cover
    assert np.std(pooled) < 0.75 * np.std(separate)


def test_recurrent_config_checks_pool_steps():
    with pytest.raises(TypeError, match="pool_steps: expected True or False"):
        recurrent(RecurrentConfig(pool_steps=1), 3)


def test_rank_quantile_reference_is_the_library_rank():
    """The reference quantile used above agrees with the split factors' rank
    on one step (a guard on the restatement itself)."""
    x = np.random.default_rng(4).exponential(size=(19, 1))
    assert score_factors({0.9: x})[0.9] == _rank_quantile(x.ravel(), 0.9)


def test_recurrent_pooled_factors_pool_the_steps_of_its_held_out_scores():
    """A small GRU's held-out factors with ``pool_steps=True`` are the pooled
    factors of its stored held-out scores, and differ from one quantile per
    step (the default's, from the same scores)."""
    rng = np.random.default_rng(0)
    y = np.zeros(120)
    for t in range(1, 120):
        y[t] = 0.5 * y[t - 1] + rng.normal()
    config = RecurrentConfig(
        cell="gru", hidden=4, window=6, steps=30, transform="level"
    )
    state = recurrent(config._replace(pool_steps=True), 3).fit([y[:90]])
    want = score_factors(state.scores, per_step=True, pool_steps=True)
    steps = score_factors(state.scores, per_step=True)
    for p in (0.8, 0.9):
        np.testing.assert_allclose(state.factors[p], want[p], rtol=1e-12)
        assert not np.allclose(state.factors[p], steps[p])
