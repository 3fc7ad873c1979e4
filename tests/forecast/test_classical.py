"""The classical candidates beside the recurrent nets: direct linear ARs against
NumPy least squares and closed forms, the KPSS statistic against statsmodels,
and their place in :func:`recurrent`'s held-out weighing (fitted on the
training part less its held-out values only; nothing after the first origin
read)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from jaxseq.forecast import RecurrentConfig, evaluate, recurrent
from jaxseq.forecast.candidates import (
    classical_fits,
    classical_forecast,
    fallback,
    pool_weights,
)
from jaxseq.forecast.classical import (
    AR,
    AR_DIFF,
    AR_LEVEL,
    KPSS_5PCT,
    fit_ar,
    forecast_ar,
    kpss,
)


def _ar2(n, seed, phi=(0.6, -0.3), mean=0.0):
    rng = np.random.default_rng(seed)
    y, e = np.zeros(n + 100), rng.normal(size=n + 100)
    for t in range(2, n + 100):
        y[t] = phi[0] * y[t - 1] + phi[1] * y[t - 2] + e[t]
    return mean + y[100:]


def test_direct_ar_recovers_ar2_one_and_two_steps():
    """On a long AR(2), y_t = 0.6 y_{t-1} - 0.3 y_{t-2} + e_t, the one-step
    regression's lags are (0.6, -0.3) and the direct two-step regression's
    are the closed form E[y_{t+1} | y_{t-1}, y_{t-2}] = (0.6^2 - 0.3) y_{t-1}
    - 0.18 y_{t-2}; the residual sds are 1 and sqrt(1 + 0.6^2)."""
    y = _ar2(20_000, 0)
    fitted = fit_ar(AR_LEVEL, y, 2, 6)
    lags = fitted.coef[:, 1:] / fitted.scale  # original units
    assert fitted.coef.shape[1] - 1 >= 2
    np.testing.assert_allclose(lags[0, :2], [0.6, -0.3], atol=0.03)
    np.testing.assert_allclose(lags[1, :2], [0.6**2 - 0.3, -0.18], atol=0.03)
    np.testing.assert_allclose(lags[:, 2:], 0.0, atol=0.04)
    np.testing.assert_allclose(fitted.sd, [1.0, np.sqrt(1.36)], rtol=0.03)


@pytest.mark.parametrize("candidate", [AR_LEVEL, AR_DIFF])
def test_fit_and_forecast_against_numpy_least_squares(candidate):
    """Each step's coefficients are those of ``np.linalg.lstsq`` on a design
    written out row by row (the order the fit chose), and the forecast from a
    history is that regression applied to its last values."""
    y = np.cumsum(np.random.default_rng(3).normal(size=90)) + _ar2(90, 4)
    horizon = 3
    fitted = fit_ar(candidate, y, horizon, 5)
    p = fitted.coef.shape[1] - 1
    x = np.diff(y) if candidate.diff else y
    lag = int(candidate.diff)
    for h in range(1, horizon + 1):
        rows, target = [], []
        for t in range(max(p + lag, 1), len(y) - h + 1):
            past = [x[t - lag - 1 - i] for i in range(p)]
            rows.append([1.0] + [(v - fitted.loc) / fitted.scale for v in past])
            target.append(y[t + h - 1] - (y[t - 1] if candidate.diff else 0.0))
        a, b = np.array(rows), np.array(target)
        coef = np.linalg.lstsq(a, b, rcond=None)[0]
        np.testing.assert_allclose(fitted.coef[h - 1], coef, rtol=1e-8, atol=1e-10)
        resid = b - a @ coef
        sd = np.sqrt(resid @ resid / (len(b) - p - 1))
        np.testing.assert_allclose(fitted.sd[h - 1], sd, rtol=1e-8)
    history = y[:70]
    got = forecast_ar(fitted, [history])
    xs = np.diff(history) if candidate.diff else history
    feats = [1.0] + [(xs[-1 - i] - fitted.loc) / fitted.scale for i in range(p)]
    want = fitted.coef @ np.array(feats) + (history[-1] if candidate.diff else 0.0)
    np.testing.assert_allclose(got.mean[0], want, rtol=1e-10)
    # normal intervals: 90% half-width 1.645 sd, wider than the 80% one
    np.testing.assert_allclose(
        got.upper[0.9][0] - got.mean[0], 1.6448536 * fitted.sd, rtol=1e-6
    )
    assert np.all(got.upper[0.8] < got.upper[0.9])


def test_ar_diff_continues_a_random_walk_with_drift():
    """A random walk with drift 0.5 and unit steps: the h-step forecast is
    the last value plus about 0.5 h, with residual sd about sqrt(h)."""
    rng = np.random.default_rng(5)
    y = np.cumsum(0.5 + rng.normal(size=4000))
    fitted = fit_ar(AR_DIFF, y, 6, 4)
    got = forecast_ar(fitted, [y])
    h = np.arange(1, 7)
    assert np.all(np.abs(got.mean[0] - y[-1] - 0.5 * h) < 0.15 * np.sqrt(h))
    np.testing.assert_allclose(fitted.sd, np.sqrt(h), rtol=0.1)


def test_kpss_against_statsmodels_and_the_choice_of_differences():
    """The KPSS statistic equals statsmodels' (level, the same Bartlett
    lags); AR takes the differences of a random walk and the values of a
    stationary AR(2)."""
    stattools = pytest.importorskip("statsmodels.tsa.stattools")
    rng = np.random.default_rng(6)
    walk = np.cumsum(rng.normal(size=300))
    stationary = _ar2(300, 7, mean=5.0)
    for y in (walk, stationary):
        lags = int(4 * (len(y) / 100) ** 0.25)
        with warnings.catch_warnings():  # p-value outside statsmodels' table
            warnings.simplefilter("ignore")
            want = stattools.kpss(y, regression="c", nlags=lags)[0]
        np.testing.assert_allclose(kpss(y), want, rtol=1e-10)
    assert kpss(walk) > KPSS_5PCT > kpss(stationary)
    assert fit_ar(AR, walk, 3, 4).diff
    assert not fit_ar(AR, stationary, 3, 4).diff


def test_held_out_fits_never_read_the_held_out_values():
    """Classical fits for validation use each training part less its last
    ``holdout`` values: overwriting those values changes nothing; a
    forecast from origin t reads only the history before t."""
    parts = [_ar2(80, 8, mean=3.0), np.cumsum(1.0 + _ar2(80, 9))]
    changed = [y.copy() for y in parts]
    for y in changed:
        y[60:] = 1e6
    for candidate in (AR, AR_LEVEL, AR_DIFF):
        a = classical_fits(candidate, parts, 4, 6, holdout=20)
        b = classical_fits(candidate, changed, 4, 6, holdout=20)
        for fa, fb in zip(a, b, strict=True):
            np.testing.assert_array_equal(fa.coef, fb.coef)
            np.testing.assert_array_equal(fa.sd, fb.sd)
        requests = [(i, parts[i][:t]) for i in (0, 1) for t in (60, 64)]
        got = classical_forecast(a, requests)
        for r, (i, history) in enumerate(requests):
            alone = forecast_ar(a[i], [history])
            np.testing.assert_array_equal(got.mean[r], alone.mean[0])


def test_recurrent_weighs_classical_candidates_on_held_out_values_only():
    """A tiny net and the classical AR on a trend and an AR(2): the state's
    held-out error of the AR column is that of a NumPy restatement (AR fitted
    on the training part less its held-out values, forecasts from each held-out
    origin); the weights follow the fallback and pooling rules; changing every value after
    the first origin changes neither the weights nor the first forecast."""
    rng = np.random.default_rng(10)
    series = {
        "trend": np.cumsum(0.3 + 0.1 * rng.normal(size=120)),
        "ar": _ar2(120, 11, mean=10.0),
    }
    config = RecurrentConfig(
        cell="gru",
        hidden=4,
        window=8,
        steps=30,
        transform="level",
        classical=("ar",),
        holdout=16,
    )
    states = []
    method = recurrent(config, 4)
    keep = method._replace(
        fit=lambda parts: states.append(method.fit(parts)) or states[-1]
    )
    first = evaluate([keep], series, horizon=4, num_origins=3, keep_forecasts=True)
    state = states[0]
    assert state.weights.shape == (2, 2) and state.errors.shape == (2, 2)
    np.testing.assert_allclose(state.weights.sum(axis=1), 1.0)
    for i, y in enumerate(series.values()):
        train = y[:108]  # the first origin is 120 - 4 - 8 = 108
        fitted = fit_ar(AR, train[:92], 4, 8)
        origins = range(92, 108 - 4 + 1)
        means = forecast_ar(fitted, [train[:t] for t in origins]).mean
        truth = np.stack([train[t : t + 4] for t in origins])
        np.testing.assert_allclose(
            state.errors[i, 1], np.mean(np.abs(means - truth)), rtol=1e-9
        )
        net, ar = state.errors[i]
        if ar <= 1.1 * net:  # fallback: the AR alone
            np.testing.assert_array_equal(state.weights[i], [0.0, 1.0])
        else:  # pooling: the net, and the AR too where within 10%
            np.testing.assert_array_equal(
                state.weights[i] > 0, state.errors[i] <= 1.1 * min(net, ar)
            )
    changed = {n: y.copy() for n, y in series.items()}
    for y in changed.values():
        y[108:] = -1e3
    second = evaluate([keep], changed, horizon=4, num_origins=3, keep_forecasts=True)
    np.testing.assert_array_equal(states[0].weights, states[1].weights)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a["forecast"].mean[0], b["forecast"].mean[0])
        np.testing.assert_array_equal(
            a["forecast"].upper[0.9][0], b["forecast"].upper[0.9][0]
        )


def test_classical_errors():
    with pytest.raises(ValueError, match=r"classical: expected a tuple of distinct"):
        recurrent(RecurrentConfig(classical=("arima",)), 2)
    with pytest.raises(ValueError, match=r"classical: expected a tuple"):
        recurrent(RecurrentConfig(classical=("ar", "ar")), 2)
    with pytest.raises(ValueError, match=r"classical=\('ar',\)\) with combine"):
        recurrent(RecurrentConfig(transform="level", classical=("ar",), holdout=0), 2)
    with pytest.raises(ValueError, match=r"series: ar-diff expected values without"):
        fit_ar(AR_DIFF, np.array([1.0, np.nan] + [2.0] * 20), 2, 3)
    with pytest.raises(
        ValueError, match=r"series: ar expected at least 5 values for horizon 2, got 4"
    ):
        fit_ar(AR, np.arange(4.0), 2, 3)


def test_fallback_keeps_a_net_only_where_it_beats_the_simple_models():
    """Columns 0-1 nets, 2-3 simple: a series whose best simple error is within
    10% of its best net's takes the simple columns alone (pooled among
    themselves); the others keep their weights; rows sum to 1."""
    errors = np.array(
        [
            [1.0, 1.05, 1.08, 2.0],  # tie: simple 2 only
            [1.0, 1.3, 1.2, 1.25],  # net clearly better: unchanged
            [1.0, 1.0, 0.5, 0.52],  # simple better: both simple pooled
            [np.nan, np.nan, 1.0, np.nan],  # only a simple error is known
        ]
    )
    simple = [False, False, True, True]
    weights = pool_weights("pool", errors, 0.1)
    got = fallback(weights, errors, simple, 0.1)
    np.testing.assert_array_equal(got[0], [0, 0, 1, 0])
    np.testing.assert_array_equal(got[1], weights[1])
    np.testing.assert_array_equal(got[2], [0, 0, 0.5, 0.5])
    np.testing.assert_array_equal(got[3], [0, 0, 1, 0])
    # without simple columns, or all simple, nothing changes
    np.testing.assert_array_equal(fallback(weights, errors, [False] * 4, 0.1), weights)
    np.testing.assert_array_equal(fallback(weights, errors, [True] * 4, 0.1), weights)
