"""Target transforms against NumPy references; a linear trend extrapolated by
the differenced net; the per-series choice and the calibration read nothing
after the first forecast origin."""

from __future__ import annotations

import numpy as np
import pytest

from jaxseq.forecast import (
    DIFF,
    LEVEL,
    Forecast,
    RecurrentConfig,
    evaluate,
    recurrent,
)


def test_diff_and_its_inverse_against_numpy():
    rng = np.random.default_rng(0)
    y = rng.normal(size=12).cumsum()
    x = DIFF.forward(y)
    np.testing.assert_allclose(x, [y[t + 1] - y[t] for t in range(11)])
    assert DIFF.lag == 1 and LEVEL.lag == 0
    np.testing.assert_array_equal(LEVEL.forward(y), y)
    # forecasts of the differences d_1..d_H from the last value: a loop
    mean = rng.normal(size=(3, 4))
    lo = {0.9: mean - rng.uniform(0.5, 1.0, size=mean.shape)}
    hi = {0.9: mean + rng.uniform(0.5, 1.0, size=mean.shape)}
    last = rng.normal(size=3)
    out = DIFF.inverse(Forecast(mean, lo, hi, None), last)
    for n in range(3):
        level, below, above = last[n], 0.0, 0.0
        for h in range(4):
            level += mean[n, h]
            below += (mean[n, h] - lo[0.9][n, h]) ** 2
            above += (hi[0.9][n, h] - mean[n, h]) ** 2
            assert out.mean[n, h] == pytest.approx(level)
            assert out.lower[0.9][n, h] == pytest.approx(level - np.sqrt(below))
            assert out.upper[0.9][n, h] == pytest.approx(level + np.sqrt(above))
    # the true differences map back to the true values
    back = DIFF.inverse(Forecast(x[None, 5:9], {}, {}, None), y[None, 5])
    np.testing.assert_allclose(back.mean[0], y[6:10])
    with pytest.raises(ValueError, match=r"transform: 'diff' needs series without"):
        DIFF.forward(np.array([1.0, np.nan, 2.0]))


def _trend(seed: int, length: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 3.0 + 0.5 * np.arange(length) + 0.1 * rng.normal(size=length)


def test_a_linear_trend_is_extrapolated_beyond_the_training_range():
    """The differenced net forecasts a rising line past every training value
    (a level net on standardised values would have to output values it never
    saw); MASE against the one-step naive scale ~0.5 per step."""
    y = _trend(0, 100)
    config = RecurrentConfig(
        cell="gru", hidden=8, window=8, steps=40, transform="diff", holdout=0
    )
    (row,) = evaluate(
        [recurrent(config, 5)],
        {"trend": y},
        horizon=5,
        num_origins=4,
        keep_forecasts=True,
    )
    assert row["forecast"].mean.max() > y[:80].max() + 5
    # naive forecasts score (1 + ... + 5) / 5 = 3 here; drift gets ~0.2
    assert row["mase"] < 0.6, row


def test_auto_chooses_per_series_and_reads_nothing_after_the_first_origin():
    """One global net per transform and highway order (0 or 2), each a stacked
    ensemble of 2 seeds, over a trend and an AR(1) series: the trend takes the
    differences (with the default ``combine="pool"``: a differenced net has
    the most weight; the weighting rules are tested in test_ensemble.py).
    Changing every value after the first forecast origin changes neither the
    weights, nor the first origin's forecast and intervals (so neither the fit,
    the choice, the combination nor the conformal calibration read them)."""
    rng = np.random.default_rng(1)
    ar = np.zeros(100)
    for t in range(1, 100):
        ar[t] = 0.5 * ar[t - 1] + rng.normal()
    series = {"trend": _trend(1, 100), "ar": 10 + ar}
    config = RecurrentConfig(
        cell="gru",
        hidden=8,
        window=8,
        steps=40,
        refit=False,
        linear=(0, 2),
        ensemble=2,
    )
    states = []
    method = recurrent(config, 4)
    keep = method._replace(
        fit=lambda parts: states.append(method.fit(parts)) or states[-1]
    )
    first = evaluate([keep], series, horizon=4, num_origins=3, keep_forecasts=True)
    changed = {n: y.copy() for n, y in series.items()}
    for y in changed.values():
        y[88:] = 1e3 * (1 + np.arange(12))  # the first origin is 100 - 4 - 8 = 88
    second = evaluate([keep], changed, horizon=4, num_origins=3, keep_forecasts=True)
    weights = states[0].weights
    assert states[0].transforms == (LEVEL, LEVEL, DIFF, DIFF)
    assert states[0].linear == (0, 2, 0, 2)
    assert weights.shape == (2, 4)
    assert states[0].transforms[int(np.argmax(weights[0]))] == DIFF
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    np.testing.assert_array_equal(weights, states[1].weights)
    for a, b in zip(first, second, strict=True):
        assert a["origins"] == b["origins"] == [88, 92, 96]
        np.testing.assert_array_equal(a["forecast"].mean[0], b["forecast"].mean[0])
        for p in (0.8, 0.9):
            np.testing.assert_array_equal(
                a["forecast"].lower[p][0], b["forecast"].lower[p][0]
            )
            np.testing.assert_array_equal(
                a["forecast"].upper[p][0], b["forecast"].upper[p][0]
            )
        # the later origins read the changed values in their histories
        assert not np.allclose(a["forecast"].mean[2], b["forecast"].mean[2])


def test_transform_errors():
    with pytest.raises(ValueError, match=r"transform: expected one of .*'diff'"):
        recurrent(RecurrentConfig(transform="log"), 2)
    for combine in ("choose", "pool"):
        with pytest.raises(
            ValueError,
            match=rf"holdout: several candidates \(transform='auto', "
            rf"linear=0\) with combine='{combine}'",
        ):
            recurrent(RecurrentConfig(holdout=0, combine=combine), 2)
