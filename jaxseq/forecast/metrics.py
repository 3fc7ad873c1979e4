r"""Forecast accuracy and calibration metrics (NumPy, host side).

For truth ``y [..., H]``, point forecast ``f`` and, per interval probability
``p``, bounds ``l_p, u_p``:

* ``mase = mean|y - f| / s``, with ``s = mean_t |x_t - x_{t-m}|`` over the
  training part ``x`` (the in-sample seasonal-naive error, ``m`` the season;
  Hyndman and Koehler, 2006);
* ``smape = 200 * mean(|y - f| / (|y| + |f|))`` in percent (the M4 definition);
* ``rmse = sqrt(mean((y - f)^2))``;
* ``coverage = mean(l_p <= y <= u_p)``;
* the weighted interval score (Bracher et al., 2021, eq. 3) with ``K``
  intervals of level ``alpha_k = 1 - p_k`` and the point forecast as median,
  ``WIS = (|y - f| / 2 + sum_k alpha_k / 2 * IS_k) / (K + 1/2)``,
  ``IS = (u - l) + 2/alpha (l - y)^+ + 2/alpha (y - u)^+``, divided by ``s``
  like MASE so that it compares across series.

Missing truth values (NaN, :mod:`.data`'s ``missing=True``) are left out of
every mean.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from jaxtyping import ArrayLike

__all__ = ["coverage", "interval_score", "mase", "mase_scale", "rmse", "smape", "wis"]


def mase_scale(train: ArrayLike, season: int = 1) -> float:
    """``mean |x_t - x_{t-m}|`` over the training part ``x``.

    Raises:
        ValueError: ``season`` not a positive int, a training part of at most
            ``season`` values, or a zero scale (a series that repeats exactly).
    """
    x = np.asarray(train, dtype=np.float64)
    if (
        isinstance(season, bool)
        or not isinstance(season, int | np.integer)
        or (season < 1)
    ):
        raise ValueError(f"season: expected a positive int, got {season!r}.")
    if x.shape[0] <= season:
        raise ValueError(
            f"train: expected more than season = {season} values, got {x.shape[0]}."
        )
    diffs = np.abs(x[season:] - x[:-season])
    if not np.any(np.isfinite(diffs)):
        raise ValueError(
            f"train: expected at least one pair of observed values a season of "
            f"{season} apart, got none."
        )
    scale = float(np.nanmean(diffs))
    if scale == 0:
        raise ValueError(
            f"train: expected a series that changes over a season of {season}, got "
            "a zero naive error (MASE undefined)."
        )
    return scale


def _mean(values: np.ndarray, y: np.ndarray) -> float:
    """The mean of ``values`` where the truth ``y`` was observed."""
    seen = np.broadcast_to(~np.isnan(y), values.shape)
    return float(np.mean(values[seen])) if seen.any() else float("nan")


def mase(y: ArrayLike, f: ArrayLike, scale: float) -> float:
    y = np.asarray(y, dtype=np.float64)
    return _mean(np.abs(y - np.asarray(f)), y) / scale


def smape(y: ArrayLike, f: ArrayLike) -> float:
    y, f = np.asarray(y, dtype=np.float64), np.asarray(f, dtype=np.float64)
    den = np.abs(y) + np.abs(f)
    ratio = np.divide(np.abs(y - f), den, out=np.zeros_like(den), where=den > 0)
    return 200.0 * _mean(ratio, y)


def rmse(y: ArrayLike, f: ArrayLike) -> float:
    y = np.asarray(y, dtype=np.float64)
    return float(np.sqrt(_mean((y - np.asarray(f)) ** 2, y)))


def coverage(y: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    y = np.asarray(y, dtype=np.float64)
    return _mean(((np.asarray(lower) <= y) & (y <= np.asarray(upper))) * 1.0, y)


def interval_score(y, lower, upper, alpha: float) -> np.ndarray:
    """Elementwise interval score of a central ``1 - alpha`` interval."""
    y, lo, hi = (np.asarray(a, dtype=np.float64) for a in (y, lower, upper))
    below, above = np.maximum(lo - y, 0.0), np.maximum(y - hi, 0.0)
    return (hi - lo) + 2.0 / alpha * (below + above)


def wis(
    y: ArrayLike,
    f: ArrayLike,
    intervals: Mapping[float, tuple[ArrayLike, ArrayLike]],
    scale: float = 1.0,
) -> float:
    """Mean weighted interval score, ``intervals``: ``prob -> (lower, upper)``."""
    y = np.asarray(y, dtype=np.float64)
    total = 0.5 * np.abs(y - np.asarray(f))
    for p, (lo, hi) in intervals.items():
        alpha = 1.0 - p
        total = total + alpha / 2 * interval_score(y, lo, hi, alpha)
    return _mean(total / (len(intervals) + 0.5), y) / scale
