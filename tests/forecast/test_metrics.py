"""Metrics against their defining formulas, written out independently."""

from __future__ import annotations

import numpy as np
import pytest

from jaxseq.forecast import metrics, rolling_origins


def test_mase_smape_rmse():
    rng = np.random.default_rng(0)
    train = rng.normal(size=50).cumsum()
    y, f = rng.normal(size=(3, 6)), rng.normal(size=(3, 6))
    scale = sum(abs(train[t] - train[t - 4]) for t in range(4, 50)) / 46
    assert metrics.mase_scale(train, 4) == pytest.approx(scale)
    assert metrics.mase(y, f, scale) == pytest.approx(np.abs(y - f).mean() / scale)
    s = np.mean(
        [
            2 * abs(a - b) / (abs(a) + abs(b))
            for a, b in zip(y.ravel(), f.ravel(), strict=True)
        ]
    )
    assert metrics.smape(y, f) == pytest.approx(100 * s)
    assert metrics.rmse(y, f) == pytest.approx(np.sqrt(((y - f) ** 2).mean()))


def test_wis_is_the_mean_pinball_loss_of_its_quantiles():
    """Bracher et al. (2021): WIS = sum of pinball losses of the 2K+1 quantiles
    divided by K + 1/2 (a different formula for the same number)."""
    rng = np.random.default_rng(1)
    y, m = rng.normal(size=200), rng.normal(size=200)
    w = {0.8: (m - 1.0, m + 0.7), 0.5: (m - 0.3, m + 0.4)}
    pinball = lambda q, tau: np.where(y < q, 1 - tau, -tau) * (q - y)
    total = pinball(m, 0.5)
    for p, (lo, hi) in w.items():
        total = total + pinball(lo, (1 - p) / 2) + pinball(hi, (1 + p) / 2)
    assert metrics.wis(y, m, w, scale=2.0) == pytest.approx(np.mean(total) / 2.5 / 2.0)


def test_coverage():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    assert metrics.coverage(y, np.full(4, 0.5), np.full(4, 2.0)) == 0.5


def test_rolling_origins():
    assert rolling_origins(100, 10, 3) == [70, 80, 90]
    assert rolling_origins(100, 10, 3, step=1) == [88, 89, 90]
    with pytest.raises(
        ValueError, match=r"num_origins: expected at most 4 origins 10 apart .* got 5"
    ):
        rolling_origins(50, 10, 5)
    with pytest.raises(ValueError, match="horizon: expected a positive int, got 0"):
        rolling_origins(50, 0, 5)
    with pytest.raises(ValueError, match="season: expected a positive int"):
        metrics.mase_scale(np.arange(5.0), 0)
    with pytest.raises(ValueError, match="zero naive error"):
        metrics.mase_scale(np.tile([1.0, 2.0], 5), 2)
