r"""Split-conformal calibration of prediction intervals on held-out windows.

A net trained to convergence on a short series underestimates its own error:
its training residuals are smaller than its forecast errors, so its intervals
are too narrow (on air passengers, 90% intervals covered 27% of the held-out
values). The remedy here is split conformal prediction (Vovk et al. 2005;
Romano et al. 2019 for quantile heads), applied to whatever intervals a model
gives (Gaussian or Student-t head, quantile head, quantiles of sample paths):

* on ``n`` held-out forecasts (windows whose targets the calibrated model never
  trained on) with point ``m``, interval ``[lo, hi]`` and truth ``y``, the score
  of each value is the stretch of its interval about the point that just covers
  it, ``r = max((m - y) / (m - lo), (y - m) / (hi - m))``;
* the factor ``c_p`` is the ``ceil((n + 1) p)``-th smallest score (pooled over
  windows and steps): stretching every interval by ``c_p`` about its point
  covers a fraction ``>= p`` of exchangeable new values;
* :func:`stretch` applies ``lo' = m - c_p (m - lo)``, ``hi' = m + c_p (hi - m)``.

With ``per_step=True`` each horizon step ``h`` gets its own factor ``c_{p,h}``
from its own scores (a model whose intervals widen too slowly with the horizon
is corrected step by step); a step with too few held-out values for a ``p``
interval falls back to the factor pooled over steps. The scores are normalised
by the model's own interval half-widths (its predicted spread), so one factor
serves forecasts of calm and volatile windows alike.

``c_p > 1`` widens over-confident intervals, ``c_p < 1`` narrows timid ones. The
guarantee needs exchangeable scores; a series' held-out values come from its
end, closest in time to the forecasts, which is the best available proxy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .predict import Forecast

__all__ = ["conformal_factors", "stretch"]


def _sides(forecast: Forecast, p: float):
    m = np.asarray(forecast.mean, dtype=np.float64)
    lo = np.minimum(np.asarray(forecast.lower[p], dtype=np.float64), m)
    hi = np.maximum(np.asarray(forecast.upper[p], dtype=np.float64), m)
    return m, lo, hi


def conformal_factors(
    forecast: Forecast, truth: np.ndarray, per_step: bool = False
) -> dict[float, Any]:
    """The stretch ``c_p`` of each of ``forecast``'s interval probabilities.

    Args:
        forecast: held-out forecasts ``[N, H]`` (original units).
        truth: ``[N, H]`` the values they forecast; NaN entries (missing
            values) are left out.
        per_step: one factor per horizon step (``p -> [H]``) instead of one
            pooled over steps (``p -> float``).

    Raises:
        ValueError: ``truth`` of another shape than ``forecast.mean``, or fewer
            held-out values than a ``p`` interval needs (``ceil((n + 1) p) <= n``).
    """
    truth = np.asarray(truth, dtype=np.float64)
    if truth.shape != np.shape(forecast.mean):
        raise ValueError(
            f"truth: expected the forecasts' shape {np.shape(forecast.mean)}, got "
            f"{truth.shape}."
        )
    seen = np.isfinite(truth)
    n = int(seen.sum())
    factors = {}
    for p in forecast.lower:
        rank = math.ceil((n + 1) * p - 1e-9)  # (9 + 1) * 0.9 is 9.000...02
        if rank > n:
            raise ValueError(
                f"truth: a {p:g} conformal interval needs at least "
                f"{math.ceil(p / (1 - p) - 1e-9)} held-out values, got {n}."
            )
        m, lo, hi = _sides(forecast, p)
        tiny = 1e-12 * max(1.0, float(np.max(np.abs(m))))
        below = (m - truth) / np.maximum(m - lo, tiny)
        above = (truth - m) / np.maximum(hi - m, tiny)
        scores = np.maximum(below, above)
        factors[p] = _quantile(scores[seen], rank)
        if per_step and truth.ndim == 2:
            steps = [
                _quantile(scores[:, h][seen[:, h]], None, p)
                for h in range(truth.shape[1])
            ]
            factors[p] = np.array([factors[p] if c is None else c for c in steps])
    return factors


def _quantile(scores: np.ndarray, rank: int | None, p: float = 0.0):
    """The ``rank``-th smallest score (``None``: the conformal rank of ``p``
    among these scores, or ``None`` where they are too few), at least 0."""
    if rank is None:
        rank = math.ceil((scores.size + 1) * p - 1e-9)
        if rank > scores.size:
            return None
    return float(max(np.sort(scores)[rank - 1], 0.0))


def stretch(forecast: Forecast, factors: dict[float, Any]) -> Forecast:
    """``forecast`` with each ``p`` interval stretched by ``factors[p]`` about its
    point forecast: one number, ``[H]`` one per step, or ``[N, H]`` / ``[N, 1]``
    one per forecast row and step (broadcast against the ``[N, H]`` forecasts;
    probabilities without a factor are left as they are)."""
    lower, upper = dict(forecast.lower), dict(forecast.upper)
    for p, c in factors.items():
        m, lo, hi = _sides(forecast, p)
        c = np.asarray(c, dtype=np.float64)
        lower[p], upper[p] = m - c * (m - lo), m + c * (hi - m)
    return forecast._replace(lower=lower, upper=upper)
