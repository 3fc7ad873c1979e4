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

With ``pool_steps=True`` (beside ``per_step``; an option, off by default)
the steps share one quantile: a short series holds out few origins (16-24),
and the conformal 90% quantile of that many scores is their largest or
second largest, so separate per-step factors are noisy (and need not grow
with the step). Each step's scores are divided by
their own scale ``s_h`` (their median, a statistic that few scores estimate
well), the normalised scores of every step are pooled, and step ``h`` takes
``c_{p,h} = s_h q_p`` with ``q_p`` the conformal quantile of the pooled
normalised scores (``n`` = all steps' values). This assumes that the steps'
scores differ in scale only (the shape of the model's error distribution
about its interval is the same at each step). Each held-out score is
divided by the median of its step's other scores (leave one out), as a new
forecast's score is divided by a median that it did not enter; dividing by
a median that includes the score itself makes the pooled scores less
dispersed than new ones (on exchangeable |t5| scores, 16 per step over 5
steps, 90% intervals then covered 0.886; leaving one out, 0.906). It keeps the per-step
correction of a spread that grows too slowly with the horizon while the tail
quantile is estimated from ``H`` times more scores.

``c_p > 1`` widens over-confident intervals, ``c_p < 1`` narrows timid ones. The
guarantee needs exchangeable scores; a series' held-out values come from its
end, closest in time to the forecasts, which is the best available proxy.

Online calibration (:func:`online_factors`): scores stop being exchangeable
when the series changes after its training part (a recession, a variance
shift), and factors fitted once keep the old spread. A forecaster that keeps
forecasting from later origins observes its own realised errors, and may use
every one whose target lies before the current origin ``o``:

* *rolling conformal*: the factor at ``o`` is the conformal quantile of every
  score known at ``o`` (the held-out ones and those of earlier forecasts
  whose value at step ``h`` is observed, ``t + h <= o``);
* *adaptive conformal inference* (ACI, Gibbs and Candès 2021) on top: the
  level ``alpha = 1 - p`` is updated by each realised miss ``err`` of the
  interval the procedure issued, ``alpha_{t+1} = alpha_t + gamma (alpha -
  err_t)`` (a miss lowers it by ``gamma (1 - alpha)``, a hit raises it by
  ``gamma alpha``), and the factor at ``o`` is the quantile of the known scores
  at level ``1 - alpha_o``. Multi-step errors arrive with a delay: a score at
  step ``h`` of an origin ``t`` enters the update once observed (at ``t +
  h``), so ``alpha_o`` sums the updates of every score known at ``o``.

With ``pool_steps`` the online factors pool the steps as above, with step
scales from the held-out scores (those not flagged ``online``, known before
any realised forecast, so the scales stay fixed as the realised errors
arrive); ACI then runs on the pooled normalised scores, one level per
series updated by the misses of every step (``H`` times as many updates as
one level per step sees), each by ``gamma / H``: the level moves per origin
as fast as one level per step does with ``gamma``, its noise averaged over
``H`` steps' misses instead of one's (a step of ``gamma`` per score made the
level, and the intervals, jumpy: simulated mean WIS/scale 0.506 against
0.447 on AR(2), 0.726 against 0.596 on a non-linear AR, at equal coverage;
``benchmarks/results/forecast_simulated.md``).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

from .predict import Forecast

__all__ = [
    "conformal_factors",
    "conformal_scores",
    "online_factors",
    "recentre",
    "score_factors",
    "step_scales",
    "stretch",
]


def _sides(forecast: Forecast, p: float):
    m = np.asarray(forecast.mean, dtype=np.float64)
    lo = np.minimum(np.asarray(forecast.lower[p], dtype=np.float64), m)
    hi = np.maximum(np.asarray(forecast.upper[p], dtype=np.float64), m)
    return m, lo, hi


def conformal_scores(forecast: Forecast, truth: np.ndarray) -> dict[float, np.ndarray]:
    """Each value's score ``r = max((m - y) / (m - lo), (y - m) / (hi - m))`` per
    interval probability ``p``: ``p -> [N, H]`` (NaN where ``truth`` is NaN).

    Args:
        forecast: forecasts ``[N, H]`` (original units).
        truth: ``[N, H]`` the values they forecast, NaN where missing or not
            yet observed.

    Raises:
        ValueError: ``truth`` of another shape than ``forecast.mean``.
    """
    truth = _shaped_as_mean("truth", truth, forecast)
    out = {}
    for p in forecast.lower:
        m, lo, hi = _sides(forecast, p)
        tiny = 1e-12 * max(1.0, float(np.max(np.abs(m)))) if m.size else 1e-12
        with np.errstate(invalid="ignore"):
            below = (m - truth) / np.maximum(m - lo, tiny)
            above = (truth - m) / np.maximum(hi - m, tiny)
            out[p] = np.where(np.isfinite(truth), np.maximum(below, above), np.nan)
    return out


def conformal_factors(
    forecast: Forecast,
    truth: np.ndarray,
    per_step: bool = False,
    pool_steps: bool = False,
) -> dict[float, Any]:
    """The stretch ``c_p`` of each of ``forecast``'s interval probabilities.

    Args:
        forecast: held-out forecasts ``[N, H]`` (original units).
        truth: ``[N, H]`` the values they forecast; NaN entries (missing
            values) are left out.
        per_step: one factor per horizon step (``p -> [H]``) instead of one
            pooled over steps (``p -> float``).
        pool_steps: with ``per_step``, the steps' scores normalised by their
            scales and pooled (module docstring) instead of one quantile per
            step from that step's scores alone.

    Raises:
        ValueError: ``truth`` of another shape than ``forecast.mean``, or fewer
            held-out values than a ``p`` interval needs (``ceil((n + 1) p) <= n``).
    """
    return score_factors(conformal_scores(forecast, truth), per_step, pool_steps)


def score_factors(
    scores: dict[float, np.ndarray], per_step: bool = False, pool_steps: bool = False
) -> dict[float, Any]:
    """:func:`conformal_factors` from the scores ``p -> [N, H]`` of
    :func:`conformal_scores` (NaN entries left out).

    Raises:
        ValueError: fewer finite scores than a ``p`` interval needs.
    """
    factors = {}
    for p, s in scores.items():
        s = np.asarray(s, dtype=np.float64)
        seen = np.isfinite(s)
        n = int(seen.sum())
        rank = math.ceil((n + 1) * p - 1e-9)  # (9 + 1) * 0.9 is 9.000...02
        if rank > n:
            raise ValueError(
                f"truth: a {p:g} conformal interval needs at least "
                f"{math.ceil(p / (1 - p) - 1e-9)} held-out values, got {n}."
            )
        factors[p] = _quantile(s[seen], rank)
        if per_step and s.ndim == 2 and pool_steps:
            z, scale = _normalised(s, seen)
            factors[p] = _quantile(z[seen], rank) * scale
        elif per_step and s.ndim == 2:
            steps = [_quantile(s[:, h][seen[:, h]], None, p) for h in range(s.shape[1])]
            factors[p] = np.array([factors[p] if c is None else c for c in steps])
    return factors


def step_scales(scores: np.ndarray) -> np.ndarray:
    """``[H]`` each step's scale ``s_h``: the median of its finite scores
    ``[N, H]``; a step without scores, or whose median is not positive, takes
    the median over all steps (1 where that is not positive either)."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = scores[np.isfinite(scores)]
    overall = float(np.median(finite)) if finite.size else 1.0
    overall = overall if overall > 0 else 1.0
    out = np.full(scores.shape[1], overall)
    for h in range(scores.shape[1]):
        col = scores[:, h][np.isfinite(scores[:, h])]
        if col.size and np.median(col) > 0:
            out[h] = float(np.median(col))
    return out


def _normalised(scores: np.ndarray, member: np.ndarray):
    """``scores [n, H]`` divided by their steps' scales: ``(z [n, H], s [H])``
    with ``s`` the :func:`step_scales` of the ``member`` scores (``[n, H]``
    bool). A member is divided by the median of its step's other members
    (leave one out; its own step's scale where it is the only one, or where
    that median is not positive), every other score by ``s_h``: a new score is
    divided by a scale that it did not enter, so each member's must not have
    either (module docstring)."""
    scores = np.asarray(scores, dtype=np.float64)
    member = member & np.isfinite(scores)
    scale = step_scales(np.where(member, scores, np.nan))
    div = np.broadcast_to(scale, scores.shape).copy()
    for h in range(scores.shape[1]):
        rows = np.flatnonzero(member[:, h])
        m = rows.size
        if m < 2:
            continue
        order = np.argsort(scores[rows, h], kind="stable")
        col = scores[rows[order], h]
        j = np.arange(m)[:, None]  # leave out the j-th smallest
        k = np.array([(m - 2) // 2, (m - 1) // 2])[None, :]  # remaining middle
        loo = col[k + (k >= j)].mean(axis=1)
        div[rows[order], h] = np.where(loo > 0, loo, scale[h])
    return scores / div, scale


def _quantile(scores: np.ndarray, rank: int | None, p: float = 0.0):
    """The ``rank``-th smallest score (``None``: the conformal rank of ``p``
    among these scores, or ``None`` where they are too few), at least 0."""
    if rank is None:
        rank = math.ceil((scores.size + 1) * p - 1e-9)
        if rank > scores.size:
            return None
    return float(max(np.sort(scores)[rank - 1], 0.0))


def _level_quantile(scores: np.ndarray, level: float) -> float:
    """The conformal quantile of ``scores`` at ``level`` (rank ``ceil((n + 1)
    level)``), at least 0; a rank above ``n`` (ACI's ``alpha <= 0``, whose set
    is the whole line) is capped at the largest score, one below 1 gives 0."""
    rank = math.ceil((scores.size + 1) * level - 1e-9)
    if rank < 1:
        return 0.0
    return float(max(np.sort(scores)[min(rank, scores.size) - 1], 0.0))


def _online(scores, issued, ready, online, now, p, gamma):
    """One factor from 1-D scores (finite) issued at origins ``issued`` and
    known from origin ``ready`` on; ``None`` where fewer are known at ``now``
    than a ``p`` interval needs."""
    alpha = 1.0 - p
    enough = lambda n: math.ceil((n + 1) * p - 1e-9) <= n
    if not enough(int(np.sum(ready <= now))):
        return None
    drift = 0.0
    if gamma:
        # misses in the order they become known; each interval was issued
        # with the level that the misses known at its origin had set
        events = np.flatnonzero(online & (ready <= now))
        events = events[np.argsort(ready[events], kind="stable")]
        order = np.argsort(ready, kind="stable")
        known, known_ready = scores[order], ready[order]
        done_ready, sums = [], [0.0]  # sums[j]: the first j updates' total
        for k in events:
            base = known[: np.searchsorted(known_ready, issued[k], side="right")]
            if not enough(base.size):
                continue  # no interval issued from too few scores
            j = bisect.bisect_right(done_ready, issued[k])
            a = alpha + gamma * sums[j]
            err = float(scores[k] > _level_quantile(base, 1.0 - a))
            done_ready.append(ready[k])
            sums.append(sums[-1] + alpha - err)
        drift = gamma * sums[-1]
    return _level_quantile(scores[ready <= now], 1.0 - (alpha + drift))


def online_factors(
    scores: dict[float, np.ndarray],
    origins: np.ndarray,
    now: int,
    *,
    online: np.ndarray | None = None,
    gamma: float = 0.0,
    per_step: bool = True,
    pool_steps: bool = False,
) -> dict[float, Any] | None:
    """Conformal factors for a forecast from origin ``now`` from the scores of
    earlier forecasts known by then: rolling conformal, with ``gamma > 0``
    adaptive conformal inference (module docstring).

    Args:
        scores: ``p -> [n, H]`` scores (:func:`conformal_scores`) of ``n``
            earlier forecasts; NaN where the value is missing or unobserved.
        origins: ``[n]`` each forecast's origin (the index of its first
            forecast value): its step ``h`` (1-based) is known from origin
            ``origins + h`` on, so only scores with ``origins + h <= now`` count.
        now: the origin of the forecast being calibrated.
        online: ``[n]`` bool, the forecasts whose misses update ACI's level
            (the realised ones; default all); the others only enter the
            quantiles (e.g. held-out forecasts of the training part).
        gamma: ACI's step size (0: rolling conformal only).
        per_step: one factor per step ``p -> [H]`` (a step with too few known
            scores takes the factor pooled over steps) or ``p -> float``.
        pool_steps: with ``per_step``, the steps' scores divided by their
            scales (:func:`step_scales` of the scores not flagged ``online``,
            each of those by its step's others; of those known at ``now``
            where every one is flagged) and pooled, one quantile and one ACI
            level for all steps, ``c_h = s_h q``, each score moving the level
            by ``gamma / H``.

    Returns:
        The factors, or ``None`` where fewer scores are known than a ``p``
        interval needs (``ceil((n + 1) p) <= n``).

    Raises:
        ValueError: ``origins`` or ``online`` not ``[n]``, ``gamma`` < 0.
    """
    origins = np.asarray(origins)
    if isinstance(gamma, bool) or not isinstance(gamma, int | float) or gamma < 0:
        raise ValueError(f"gamma: expected a number >= 0, got {gamma!r}.")
    factors = {}
    for p, s in scores.items():
        s = np.asarray(s, dtype=np.float64)
        if s.ndim != 2 or origins.shape != (s.shape[0],):
            raise ValueError(
                f"origins: expected shape ({s.shape[0] if s.ndim else '?'},) "
                f"beside scores [n, H], got {origins.shape} and {s.shape}."
            )
        flag = np.ones(s.shape[0], bool) if online is None else np.asarray(online)
        if flag.shape != origins.shape or flag.dtype != bool:
            raise ValueError(
                f"online: expected a bool array of shape {origins.shape}, got "
                f"{flag.dtype} {flag.shape}."
            )
        steps = np.arange(1, s.shape[1] + 1)
        issued = np.broadcast_to(origins[:, None], s.shape)
        ready = issued + steps
        flags = np.broadcast_to(flag[:, None], s.shape)
        ok = np.isfinite(s)
        if per_step and pool_steps:
            z, scale = _normalised(s, ~flags if np.any(~flag) else ready <= now)
            step = gamma / s.shape[1]  # gamma per origin, as one level per step
            q = _online(z[ok], issued[ok], ready[ok], flags[ok], now, p, step)
            if q is None:
                return None
            factors[p] = q * scale
            continue
        pooled_args = (s[ok], issued[ok], ready[ok], flags[ok], now, p, gamma)
        if not per_step:
            factors[p] = _online(*pooled_args)
            if factors[p] is None:
                return None
            continue
        per = [
            _online(s[k, h], origins[k], ready[k, h], flag[k], now, p, gamma)
            for h, k in enumerate(ok.T)
        ]
        if any(c is None for c in per):
            pooled = _online(*pooled_args)  # the steps with too few scores take it
            if pooled is None:
                return None
            per = [pooled if c is None else c for c in per]
        factors[p] = np.array(per)
    return factors


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


def recentre(forecast: Forecast, points: np.ndarray) -> Forecast:
    """``forecast``'s interval half-widths laid about other ``points`` ``[N, H]``
    (each side's ``m - lo`` and ``hi - m`` kept). :func:`~.recurrent.recurrent`
    lays the refitted nets' widths on the held-out windows about the held-out
    nets' points, so that the held-out errors are scored against the widths
    that the factors will stretch (a factor is a property of the widths it
    normalised).

    Raises:
        ValueError: ``points`` of another shape than ``forecast.mean``.
    """
    points = _shaped_as_mean("points", points, forecast)
    lower, upper = {}, {}
    for p in forecast.lower:
        m, lo, hi = _sides(forecast, p)
        lower[p], upper[p] = points - (m - lo), points + (hi - m)
    return forecast._replace(mean=points, lower=lower, upper=upper)


def _shaped_as_mean(name: str, values, forecast) -> np.ndarray:
    """``values`` as float64, refused unless shaped as ``forecast.mean`` ``[N, H]``."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape != np.shape(forecast.mean):
        raise ValueError(
            f"{name}: expected the forecasts' shape {np.shape(forecast.mean)}, got "
            f"{values.shape}."
        )
    return values
