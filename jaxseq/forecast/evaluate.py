"""Rolling-origin evaluation of :class:`~jaxseq.forecast.Method`\\ s.

For a series of length ``T``, horizon ``H``, ``k`` origins and a step ``s``
(default ``H``), the origins are ``T - H - j s`` for ``j = k-1, ..., 0``: the
last forecast ends at the series' end, and the first origin ``o_1`` ends the
*training part* ``y[:o_1]``. Each method is fitted once on the training parts
(all series at once, so a global model sees them together) and forecasts from
every origin ``o`` using the history ``y[:o]`` without refitting; nothing after
``o_1`` enters any fit. Metrics (:mod:`.metrics`) pool all origins and steps of
a series; MASE and the WIS are scaled by the training part's seasonal-naive
error.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import metrics
from .baselines import Method
from .data import check_series
from .windows import check_sizes

__all__ = ["evaluate", "rolling_origins"]


def rolling_origins(
    length: int, horizon: int, num_origins: int, step: int | None = None
) -> list[int]:
    """The ``num_origins`` origins of a series of ``length`` values.

    Raises:
        ValueError: a bad count or step, or origins that would leave fewer than 2
            training values (naming ``num_origins`` with the most that fit).
    """
    _, horizon = check_sizes(1, horizon)
    step = horizon if step is None else step
    _, step = check_sizes(1, step)
    _, num_origins = check_sizes(1, num_origins)
    first = length - horizon - (num_origins - 1) * step
    if first < 2:
        most = max(0, (length - horizon - 2) // step + 1)
        raise ValueError(
            f"num_origins: expected at most {most} origins {step} apart for a series "
            f"of {length} values and horizon {horizon}, got {num_origins}."
        )
    return [first + j * step for j in range(num_origins)]


def evaluate(
    methods: Sequence[Method],
    series: Mapping[str, Any],
    *,
    horizon: int,
    num_origins: int,
    season: int | Mapping[str, int] = 1,
    step: int | None = None,
    keep_forecasts: bool = False,
    missing: bool = False,
) -> list[dict[str, Any]]:
    """One row of metrics per series and method.

    Args:
        methods: the methods compared.
        series: name -> 1-D values.
        horizon, num_origins, step: as :func:`rolling_origins`.
        season: the seasonal period ``m`` of MASE's scale (one, or per name).
        missing: accept missing values (NaN) in the series (refused by
            default, naming the first); they are left out of the metrics, and
            each method must cope with them (the recurrent nets mask them, the
            naive methods carry the last observed value forward, AutoARIMA and
            AutoETS refuse them).
        keep_forecasts: add each row's ``forecast`` (a ``Forecast``, one row per
            origin), ``origins`` and ``truth`` ``[k, H]`` (for plots).

    Returns:
        Dicts with ``series, method, horizon, origins, mase, smape, rmse,
        coverage80, coverage90, wis, fit_seconds`` (a global fit's time is
        divided evenly among its series).
    """
    names = list(series)
    values = [check_series(series[n], f"series[{n!r}]", missing=missing) for n in names]
    seasons = [
        int(season[n]) if isinstance(season, Mapping) else int(season) for n in names
    ]
    origins = [rolling_origins(len(y), horizon, num_origins, step) for y in values]
    train = [y[: o[0]] for y, o in zip(values, origins, strict=True)]
    scales = [metrics.mase_scale(x, m) for x, m in zip(train, seasons, strict=True)]
    requests = [(i, values[i][:o]) for i in range(len(names)) for o in origins[i]]
    rows = []
    for method in methods:
        start = time.perf_counter()
        state = method.fit(train)
        fit_seconds = (time.perf_counter() - start) / len(names)
        forecast = method.forecast(state, requests, horizon)
        for i, name in enumerate(names):
            sel = np.array([r[0] == i for r in requests])
            truth = np.stack([values[i][o : o + horizon] for o in origins[i]])
            part = forecast._replace(
                mean=forecast.mean[sel],
                lower={p: v[sel] for p, v in forecast.lower.items()},
                upper={p: v[sel] for p, v in forecast.upper.items()},
            )
            row = _row(name, method.name, horizon, truth, part, scales[i])
            row["fit_seconds"] = fit_seconds
            if keep_forecasts:
                row.update(forecast=part, origins=origins[i], truth=truth)
            rows.append(row)
    return rows


def _row(name, method, horizon, truth, fc, scale) -> dict[str, Any]:
    intervals = {p: (fc.lower[p], fc.upper[p]) for p in fc.lower}
    cover = {p: metrics.coverage(truth, *b) for p, b in intervals.items()}
    return {
        "series": name,
        "method": method,
        "horizon": horizon,
        "origins": truth.shape[0],
        "mase": metrics.mase(truth, fc.mean, scale),
        "smape": metrics.smape(truth, fc.mean),
        "rmse": metrics.rmse(truth, fc.mean),
        "coverage80": cover.get(0.8),
        "coverage90": cover.get(0.9),
        "wis": metrics.wis(truth, fc.mean, intervals, scale) if intervals else None,
    }
