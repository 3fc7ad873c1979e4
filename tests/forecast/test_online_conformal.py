"""Online calibration (rolling conformal, adaptive conformal inference): the
factors against a NumPy reference of Gibbs and Candès' update rule, no score
read before it is observed, coverage restored after a variance shift where
split conformal under-covers, and a recurrent forecaster whose intervals read
nothing at or after their origin."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from jaxseq.forecast import (
    RecurrentConfig,
    conformal_factors,
    conformal_scores,
    evaluate,
    online_factors,
    recurrent,
)
from jaxseq.forecast.predict import Forecast


def _rank_quantile(x: np.ndarray, level: float) -> float:
    """The ceil((n + 1) level)-th smallest of x, capped at the largest, 0 for a
    rank below 1 (the reference's own spelling of the conformal quantile)."""
    k = int(np.ceil((x.size + 1) * level - 1e-9))
    if k < 1:
        return 0.0
    return max(float(np.sort(x)[min(k, x.size) - 1]), 0.0)


def _aci_reference(s, origins, step, online, now, p, gamma):
    """ACI stepped through time: at each origin t the misses that became known
    at t update alpha first, then the intervals issued at t are scored against
    the quantile of the scores known at t (those of step ``step`` known from
    origin ``origin + step`` on)."""
    ready = origins + step
    alpha = a = 1.0 - p
    err = {}
    for t in range(int(origins.min()), now + 1):
        for k in np.flatnonzero(online & (ready == t)):
            if k in err:
                a += gamma * (alpha - err[k])
        if t == now:
            break
        for k in np.flatnonzero(online & (origins == t) & (ready <= now)):
            base = s[ready <= t]
            if math.ceil((base.size + 1) * p - 1e-9) <= base.size:
                err[k] = float(s[k] > _rank_quantile(base, 1.0 - a))
    return _rank_quantile(s[ready <= now], 1.0 - a)


@pytest.mark.parametrize("gamma", [0.0, 0.05, 0.3])
@pytest.mark.parametrize("seed", [0, 1])
def test_aci_factors_against_a_numpy_reference(gamma, seed):
    """40 held-out forecasts (not updating alpha) and 60 realised ones at
    origins 40-99, horizon 3, 15% of the values missing; the scores of the
    realised forecasts grow (a shift), so alpha moves. Per step, at several
    forecast origins."""
    rng = np.random.default_rng(seed)
    n, horizon = 100, 3
    origins = np.arange(n)
    online = origins >= 40
    scale = np.where(online, 2.5, 1.0)[:, None]
    s = np.abs(scale * rng.normal(size=(n, horizon)))
    s[rng.random(s.shape) < 0.15] = np.nan
    for now in (40, 41, 57, 80, 100):
        got = online_factors({0.9: s, 0.8: s}, origins, now, online=online, gamma=gamma)
        for p in (0.9, 0.8):
            for h in range(horizon):
                ok = np.isfinite(s[:, h])
                want = _aci_reference(
                    s[ok, h], origins[ok], h + 1, online[ok], now, p, gamma
                )
                assert got[p][h] == pytest.approx(want, rel=1e-12), (now, p, h)


def test_aci_moves_alpha_by_the_realised_misses():
    """By hand, step 1, p 0.9: held-out scores 1..19 at origins 0-18, realised
    50 at origin 19 and 0.5 at origin 20, a forecast from origin 21.
    Rolling: rank ceil(22 * 0.9) = 20 of (0.5, 1..19, 50): 19. ACI, gamma 0.1:
    the interval issued at 19 is rank ceil(20 * 0.9) = 18 of 1..19 (18), 50 is
    a miss: alpha 0.1 + 0.1 (0.1 - 1) = 0.01; the one issued at 20 is rank
    ceil(21 * 0.99) = 21 > 20, capped at 50: 0.5 is a hit, alpha 0.02; at 21
    rank ceil(22 * 0.98) = 22 > 21: capped at 50."""
    s = np.array([[v] for v in range(1, 20)] + [[50.0], [0.5]])
    origins = np.arange(21)
    online = origins >= 19
    got = lambda g: online_factors({0.9: s}, origins, 21, online=online, gamma=g)
    assert got(0.0)[0.9][0] == 19.0
    assert got(0.1)[0.9][0] == 50.0
    # gamma 0.01: alpha 0.1 + 0.01 (-0.9 + 0.1) = 0.092, rank ceil(22 * 0.908) = 20
    assert got(0.01)[0.9][0] == 19.0
    # the held-out forecasts alone never move alpha
    assert online_factors({0.9: s}, origins, 21, gamma=0.1)[0.9][0] == 50.0
    none = online_factors({0.9: s}, origins, 21, online=origins < 0, gamma=0.1)
    assert none[0.9][0] == 19.0


def test_rolling_factors_are_split_conformal_on_the_known_scores():
    """With gamma 0 and every score known, the factors are conformal_factors'
    (per step and pooled); scores not yet observed at ``now`` (origin + h >
    now) are not read, and changing a known one changes the factor."""
    rng = np.random.default_rng(3)
    mean = rng.normal(size=(50, 4))
    sd = np.exp(rng.normal(size=mean.shape))
    z = stats.norm.ppf(0.95)
    f = Forecast(mean, {0.9: mean - z * sd}, {0.9: mean + z * sd}, None)
    truth = mean + 2 * sd * rng.normal(size=mean.shape)
    scores = conformal_scores(f, truth)
    origins = np.arange(50)
    for per_step in (True, False):
        got = online_factors(scores, origins, 54, per_step=per_step)[0.9]
        want = conformal_factors(f, truth, per_step)[0.9]
        np.testing.assert_allclose(got, want, rtol=1e-12)
    now = 30
    before = online_factors(scores, origins, now)[0.9]
    later = scores[0.9].copy()
    unknown = origins[:, None] + np.arange(1, 5) > now
    later[unknown] = 1e6  # what the future would show
    np.testing.assert_array_equal(
        online_factors({0.9: later}, origins, now, gamma=0.1)[0.9],
        online_factors(scores, origins, now, gamma=0.1)[0.9],
    )
    np.testing.assert_array_equal(
        online_factors({0.9: later}, origins, now)[0.9], before
    )
    known = scores[0.9].copy()
    known[~unknown] *= 3
    assert not np.allclose(online_factors({0.9: known}, origins, now)[0.9], before)


def test_online_calibration_restores_coverage_after_a_variance_shift():
    """A forecaster with mean 0 and a N(0, 1) 90% interval, right on 200
    held-out origins; from origin 200 on the values' sd is 2.5 (300 origins,
    horizon 2). Each origin's factors come from the scores known there. Split
    conformal (the held-out factors) covers P(|Z| < 1.645 / 2.5) = 0.49;
    rolling conformal only catches up as realised scores outnumber the old
    ones; ACI (gamma 0.05) holds 0.85-0.95 (Gibbs and Candès' bound on its
    long-run miss rate: |miss - 0.1| <= (0.9 + gamma) / (gamma T) = 0.063)."""
    rng = np.random.default_rng(7)
    held, live, horizon = 200, 300, 2
    n = held + live
    sd = np.where(np.arange(n + horizon) < held, 1.0, 2.5)
    y = sd * rng.normal(size=n + horizon)
    origins = np.arange(n)
    truth = np.stack([y[t : t + horizon] for t in origins])
    z = stats.norm.ppf(0.95)
    mean = np.zeros_like(truth)
    f = Forecast(mean, {0.9: mean - z}, {0.9: mean + z}, None)
    scores = conformal_scores(f, truth)
    online = origins >= held
    split = conformal_factors(
        Forecast(mean[:held], {0.9: mean[:held] - z}, {0.9: mean[:held] + z}, None),
        truth[:held],
        per_step=True,
    )[0.9]
    covered = {"split": [], "rolling": [], "aci": []}
    for t in range(held, n):
        past = origins < t
        for name, gamma in (("rolling", 0.0), ("aci", 0.05)):
            c = online_factors(
                {0.9: scores[0.9][past]},
                origins[past],
                t,
                online=online[past],
                gamma=gamma,
            )[0.9]
            covered[name].append(np.abs(truth[t]) <= c * z)
        covered["split"].append(np.abs(truth[t]) <= split * z)
    cover = {k: float(np.mean(v)) for k, v in covered.items()}
    assert cover["split"] < 0.6, cover
    assert cover["split"] < cover["rolling"] < 0.88, cover
    assert 0.85 <= cover["aci"] <= 0.95, cover


def test_online_factors_errors():
    s = {0.9: np.ones((20, 2))}
    with pytest.raises(ValueError, match=r"gamma: expected a number >= 0, got -0.1"):
        online_factors(s, np.arange(20), 30, gamma=-0.1)
    with pytest.raises(ValueError, match=r"origins: expected shape \(20,\)"):
        online_factors(s, np.arange(19), 30)
    with pytest.raises(ValueError, match=r"online: expected a bool array of shape"):
        online_factors(s, np.arange(20), 30, online=np.ones(20))
    # too few known scores: None (the caller falls back)
    assert online_factors(s, np.arange(20), 4) is None  # 4 + 3 scores known
    with pytest.raises(ValueError, match=r"calibration: expected one of"):
        recurrent(RecurrentConfig(calibration="online"), 2)
    with pytest.raises(ValueError, match=r"gamma: expected a number in \[0, 1\)"):
        recurrent(RecurrentConfig(gamma=1.5), 2)


def _shifted_ar1(seed: int, length: int, shift: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(length)
    for t in range(1, length):
        y[t] = 0.5 * y[t - 1] + (1.0 if t < shift else 3.0) * rng.normal()
    return 10.0 + y


def test_net_intervals_read_nothing_at_or_after_their_origin():
    """A GRU on an AR(1) series whose noise sd triples at the first forecast
    origin (value 160), 40 rolling origins of horizon 2. With ACI: changing
    every value from origin 180 on leaves the forecasts and intervals of
    origins 160-180 bit-identical and changes the later ones' intervals;
    the point forecasts equal split conformal's (calibration only stretches
    intervals), split conformal under-covers the shift and ACI covers more."""
    y = _shifted_ar1(0, 240, 160)
    series = {"s": y}
    rows = {}
    for calibration in ("split", "aci"):
        config = RecurrentConfig(
            cell="gru",
            hidden=8,
            window=8,
            steps=40,
            transform="level",
            calibration=calibration,
        )
        method = recurrent(config, 2)
        (rows[calibration],) = evaluate(
            [method], series, horizon=2, num_origins=40, keep_forecasts=True
        )
    a, split = rows["aci"], rows["split"]
    assert a["origins"][0] == 160 and a["origins"][10] == 180
    np.testing.assert_array_equal(a["forecast"].mean, split["forecast"].mean)
    assert split["coverage90"] < 0.75, split
    assert a["coverage90"] > split["coverage90"] + 0.1, (a, split)
    # the first origin has no realised error yet: the split intervals
    for p in (0.8, 0.9):
        np.testing.assert_allclose(
            a["forecast"].lower[p][0], split["forecast"].lower[p][0]
        )

    changed = y.copy()
    changed[180:] = 1e3 * (1 + np.arange(60))
    config = RecurrentConfig(
        cell="gru", hidden=8, window=8, steps=40, transform="level", calibration="aci"
    )
    (b,) = evaluate(
        [recurrent(config, 2)],
        {"s": changed},
        horizon=2,
        num_origins=40,
        keep_forecasts=True,
    )
    upto = np.array(a["origins"]) <= 180
    np.testing.assert_array_equal(a["forecast"].mean[upto], b["forecast"].mean[upto])
    for p in (0.8, 0.9):
        for side in ("lower", "upper"):
            x, z = getattr(a["forecast"], side)[p], getattr(b["forecast"], side)[p]
            np.testing.assert_array_equal(x[upto], z[upto])
            # from origin 181 the realised errors (and histories) differ
            assert not np.allclose(x[~upto], z[~upto])
