r"""Classical candidates beside the recurrent nets: direct linear autoregressions
fitted per series by least squares, on the values or on their first differences.

:func:`~jaxseq.forecast.recurrent` (``RecurrentConfig.classical``) weighs them
per series with its nets on the same held-out windows of the training part
(``combine``): where a series' held-out values say that no net beats a linear
model (a smooth trend, a short noisy series), the forecast falls back to it or
averages with it, instead of keeping a net that validation has already found
worse. Both are the direct strategy, one regression per horizon step ``h``
on the window ending at the origin ``t`` (the history ``y[:t]``):

* :data:`AR_LEVEL`: ``y_{t+h-1} = c_h + sum_{i=1..p} a_{h,i} y_{t-i}`` (a
  stationary AR(p); ``p = 0``: the training mean);
* :data:`AR_DIFF`: ``y_{t+h-1} - y_{t-1} = c_h + sum_{i=1..p} b_{h,i} d_{t-1-i}``
  with ``d_k = y_{k+1} - y_k`` (ARIMA(p, 1, 0) with drift; ``p = 0``: the
  random walk with drift).

:data:`AR` chooses between them per series as AutoARIMA chooses ``d``: on
the differences where the KPSS test (level stationarity, Kwiatkowski et al.
1992, :func:`kpss`) rejects at 5% (statistic above 0.463), else on the values.

The order ``p`` is chosen in ``0..max_order`` by AIC of the one-step
regression on common rows (``max_order``: the nets' window, capped at a
quarter of the modelled values). Intervals are normal with each step's
residual standard deviation (degrees-of-freedom corrected); the recurrent
forecaster's conformal calibration then rescales the combined intervals.
Series with missing values are refused (``ValueError`` naming the series).
"""

from __future__ import annotations

from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from .predict import PROBS, Forecast

__all__ = [
    "AR",
    "AR_DIFF",
    "AR_LEVEL",
    "CLASSICAL",
    "Classical",
    "KPSS_5PCT",
    "LinearAR",
    "fit_ar",
    "forecast_ar",
    "kpss",
]


class Classical(NamedTuple):
    """A classical candidate: its name and whether it models differences
    (``None``: chosen per series by :func:`kpss`)."""

    name: str
    diff: bool | None


AR_LEVEL = Classical("ar-level", False)
AR_DIFF = Classical("ar-diff", True)
AR = Classical("ar", None)
#: the candidates by name (``RecurrentConfig.classical``)
CLASSICAL = {c.name: c for c in (AR, AR_LEVEL, AR_DIFF)}
#: the KPSS test's 5% critical value for level stationarity (Kwiatkowski et
#: al. 1992, table 1)
KPSS_5PCT = 0.463


def kpss(y: np.ndarray) -> float:
    """The KPSS statistic of level stationarity of ``y [T]``: the partial sums
    ``S_t`` of ``y - mean(y)``, ``sum S_t^2 / (T^2 s^2)`` with ``s^2`` the
    Newey-West long-run variance (Bartlett weights, ``trunc(4 (T/100)^0.25)``
    lags)."""
    e = np.asarray(y, dtype=np.float64) - np.mean(y)
    n = len(e)
    lags = int(4 * (n / 100) ** 0.25)
    s2 = e @ e / n
    for lag in range(1, min(lags, n - 1) + 1):
        s2 += 2 * (1 - lag / (lags + 1)) * (e[lag:] @ e[:-lag]) / n
    s = np.cumsum(e)
    return float(s @ s / (n**2 * max(s2, 1e-300)))


class LinearAR(NamedTuple):
    """A fitted direct linear AR of one series.

    Attributes:
        diff: on first differences (forecasting ``y_{t+h-1} - y_{t-1}``).
        coef: ``[H, 1 + p]`` intercept then lags (most recent first), on the
            standardised inputs.
        sd: ``[H]`` residual standard deviation per step (original units).
        loc, scale: the inputs' standardisation (training part).
    """

    diff: bool
    coef: np.ndarray
    sd: np.ndarray
    loc: float
    scale: float


def _inputs(y: np.ndarray, diff: bool) -> np.ndarray:
    """The modelled series: ``y`` or its first differences."""
    return np.diff(y) if diff else y


def _features(x: np.ndarray, ends: np.ndarray, order: int, loc, scale) -> np.ndarray:
    """``[n, 1 + order]``: 1 and the ``order`` values of ``x`` before each
    end (``x[e-1], x[e-2], ...``), standardised."""
    lags = ends[:, None] - 1 - np.arange(order)[None, :]
    return np.concatenate([np.ones((len(ends), 1)), (x[lags] - loc) / scale], axis=1)


def _targets(y: np.ndarray, origins: np.ndarray, h: int, diff: bool) -> np.ndarray:
    """The value at step ``h`` (1-based) from each origin ``t``: ``y[t+h-1]``,
    less ``y[t-1]`` with ``diff``."""
    out = y[origins + h - 1]
    return out - y[origins - 1] if diff else out


def _aic_order(y, x, diff, max_order, loc, scale) -> int:
    """The order in ``0..max_order`` of least AIC for the one-step
    regression, on the rows every order can use."""
    lag = int(diff)
    origins = np.arange(max(max_order + lag, 1), len(y))
    target = _targets(y, origins, 1, diff)
    best, order = np.inf, 0
    for p in range(max_order + 1):
        a = _features(x, origins - lag, p, loc, scale)
        resid = target - a @ np.linalg.lstsq(a, target, rcond=None)[0]
        n = len(target)
        aic = n * np.log(max(float(resid @ resid) / n, 1e-300)) + 2 * (p + 1)
        if aic < best - 1e-9:
            best, order = aic, p
    return order


def fit_ar(
    candidate: Classical, y: np.ndarray, horizon: int, max_order: int
) -> LinearAR:
    """A direct linear AR of ``candidate``'s kind fitted on one series.

    Args:
        candidate: :data:`AR`, :data:`AR_LEVEL` or :data:`AR_DIFF`.
        y: ``[T]`` the training values (no missing values).
        horizon: ``H``, one regression per step.
        max_order: the largest order tried (capped at a quarter of the
            modelled values, and to leave ``2 + p`` rows at step ``H``).

    Returns:
        the fitted :class:`LinearAR`.
    """
    y = np.asarray(y, dtype=np.float64)
    if np.isnan(y).any():
        raise ValueError(
            f"series: {candidate.name} expected values without missing ones, got "
            f"{int(np.isnan(y).sum())} missing."
        )
    diff = candidate.diff
    if diff is None:
        diff = kpss(y) > KPSS_5PCT
    x = _inputs(y, diff)
    lag = int(diff)
    loc = 0.0 if diff else float(np.mean(x))
    scale = float(np.std(x)) or 1.0
    cap = min(max_order, len(x) // 4, (len(y) - horizon - lag - 3) // 2)
    if cap < 0:
        raise ValueError(
            f"series: {candidate.name} expected at least {horizon + lag + 3} "
            f"values for horizon {horizon}, got {len(y)}."
        )
    order = _aic_order(y, x, diff, cap, loc, scale)
    coef, sd = np.zeros((horizon, order + 1)), np.zeros(horizon)
    for h in range(1, horizon + 1):
        origins = np.arange(max(order + lag, 1), len(y) - h + 1)
        a = _features(x, origins - lag, order, loc, scale)
        target = _targets(y, origins, h, diff)
        coef[h - 1] = np.linalg.lstsq(a, target, rcond=None)[0]
        resid = target - a @ coef[h - 1]
        sd[h - 1] = np.sqrt(float(resid @ resid) / max(len(target) - order - 1, 1))
    return LinearAR(bool(diff), coef, sd, loc, scale)


def forecast_ar(fitted: LinearAR, histories) -> Forecast:
    """Forecasts ``[N, H]`` from the end of each of ``histories`` (each at
    least ``order + 1`` values, none missing), normal intervals at
    :data:`~.predict.PROBS`."""
    order = fitted.coef.shape[1] - 1
    rows = []
    for y in histories:
        y = np.asarray(y, dtype=np.float64)
        x = _inputs(y, fitted.diff)
        a = _features(x, np.array([len(x)]), order, fitted.loc, fitted.scale)
        rows.append(fitted.coef @ a[0] + (y[-1] if fitted.diff else 0.0))
    mean = np.stack(rows)
    z = {p: NormalDist().inv_cdf(0.5 + p / 2) for p in PROBS}
    return Forecast(
        mean,
        {p: mean - z[p] * fitted.sd for p in PROBS},
        {p: mean + z[p] * fitted.sd for p in PROBS},
        None,
    )
