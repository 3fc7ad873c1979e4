"""Online calibration of :func:`~jaxseq.forecast.recurrent`'s intervals at
forecast time (``RecurrentConfig.calibration``): the held-out scores and the
realised errors of the forecasts from every earlier origin."""

from __future__ import annotations

from typing import Any

import numpy as np

from .conformal import conformal_scores, online_factors

__all__ = ["earlier_origins", "online_row", "rows_of", "split_factors"]


def rows_of(forecast, sel):
    """The rows ``sel`` of a forecast."""
    return forecast._replace(
        mean=forecast.mean[sel],
        lower={p: v[sel] for p, v in forecast.lower.items()},
        upper={p: v[sel] for p, v in forecast.upper.items()},
    )


def split_factors(config, state, idx) -> dict[float, Any]:
    """The held-out factors of the series ``idx`` (their rows with
    ``per_series``)."""
    factors = dict(state.factors)
    if config.per_series:
        factors = {p: c[idx] for p, c in factors.items()}
    return factors


def earlier_origins(state, requests, horizon: int):
    """Every earlier origin ``t`` in ``[L, o)`` of each request, from
    ``y[:t]``: the distinct ``(series, prefix)`` pairs to forecast, and per
    request ``(pair's row, t, truth [H] observed before o)``."""
    past, keys, wants = [], {}, []
    for i, history in requests:
        history = np.asarray(history, dtype=np.float64)
        mine = []
        for t in range(int(state.lengths[i]), len(history)):
            key = (i, t, history[:t].tobytes())
            if key not in keys:
                keys[key] = len(past)
                past.append((i, history[:t]))
            truth = np.full(horizon, np.nan)
            seen = history[t : t + horizon]
            truth[: seen.size] = seen
            mine.append((keys[key], t, truth))
        wants.append(mine)
    return past, wants


def online_row(config, state, i, history, mine, earlier):
    """The online factors of one request of series ``i`` (``None`` where
    too few scores are known): the held-out scores (the group's aligned on
    the training parts' ends, or the series' own) and those of its earlier
    origins ``mine``."""
    ends = np.asarray(state.lengths)[state.score_series]
    held = (
        state.score_series == i
        if config.per_series
        else np.ones(state.score_series.shape, bool)
    )
    origins = state.score_origins[held] - ends[held] + state.lengths[i]
    scores = {p: s[held] for p, s in state.scores.items()}
    online = np.zeros(origins.shape, bool)
    if mine:
        rows = np.array([k for k, _, _ in mine])
        new = conformal_scores(
            rows_of(earlier, rows), np.stack([t for _, _, t in mine])
        )
        scores = {p: np.concatenate([s, new[p]]) for p, s in scores.items()}
        origins = np.concatenate([origins, [t for _, t, _ in mine]])
        online = np.concatenate([online, np.ones(len(mine), bool)])
    return online_factors(
        scores,
        origins,
        len(history),
        online=online,
        gamma=config.gamma if config.calibration == "aci" else 0.0,
        per_step=config.per_step,
        pool_steps=config.pool_steps,
    )
