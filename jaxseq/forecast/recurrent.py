"""A jaxseq recurrent forecaster as a :class:`~jaxseq.forecast.Method`: one global
model over all series (per-series scaling), fitted on their training parts."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from .baselines import Method
from .candidates import classical_fits, classical_forecast, fallback, pool_weights
from .classical import CLASSICAL, Classical, LinearAR
from .config import (
    CELLS,
    HEADS,
    RecurrentConfig,
    Setup,
    check_config,
    linear_orders,
)
from .conformal import conformal_factors, conformal_scores, recentre, stretch
from .ensemble import combine
from .nets import (
    check_lengths,
    fit_one,
    forecast_with,
    holdout_for,
    models_for,
    net_candidates,
    refit,
)
from .online import earlier_origins, online_row, rows_of, split_factors
from .predict import PROBS, Forecast
from .transforms import TRANSFORMS, Transform
from .windows import (
    check_sizes,
    seasonal,
)

__all__ = ["CELLS", "HEADS", "RecurrentConfig", "RecurrentState", "recurrent"]


class RecurrentState(NamedTuple):
    """What :func:`recurrent`'s ``fit`` returns.

    Attributes:
        transforms: the candidates' :class:`~.transforms.Transform`\\ s (one
            per candidate: each transform crossed with each ``linear`` order).
        weights: ``[S, K]`` each series' weight of each candidate (the
            ``len(transforms)`` nets, then the classical models) in its
            combined forecast (rows sum to 1; one-hot
            with ``combine="choose"``).
        nets: per candidate ``(scaling, [params of each ensemble member])``,
            ``None`` for a candidate no series uses.
        factors: conformal factors (``p -> float``, ``[H]`` per step, or
            ``[S, H]`` per series), ``None`` without calibration.
        linear: each candidate's linear highway order (``p``, 0: none).
        scores: ``p -> [n, H]`` the conformal scores of the ``n`` held-out
            forecasts (``None`` without calibration), for online calibration:
            the held-out nets' errors against the refitted nets' interval
            widths on the same windows (with ``refit``).
        score_series, score_origins: ``[n]`` their series and origins.
        lengths: ``[S]`` each series' training part length.
        classical: the classical candidates (``RecurrentConfig.classical``),
            weighed in the columns of ``weights`` after the nets'.
        fitted: per classical candidate, each series'
            :class:`~.classical.LinearAR` (``None`` where no series uses it).
        errors: ``[S, K]`` each series' held-out mean absolute error of each
            candidate (nets, then classical), ``None`` without a holdout.
    """

    transforms: tuple[Transform, ...]
    weights: np.ndarray
    nets: list[Any]
    factors: dict[float, Any] | None
    linear: tuple[int, ...] = ()
    scores: dict[float, np.ndarray] | None = None
    score_series: np.ndarray | None = None
    score_origins: np.ndarray | None = None
    lengths: np.ndarray | None = None
    classical: tuple[Classical, ...] = ()
    fitted: list[list[LinearAR] | None] = []
    errors: np.ndarray | None = None


def recurrent(
    config: RecurrentConfig, horizon: int, name: str | None = None, **fit_options: Any
) -> Method:
    """The method ``jaxseq-<cell>``; ``fit_options`` go to :func:`train` and
    :func:`jaxseq.train.fit` (``checkpoint_dir``, ``log_dir``: ``<dir>_holdout``
    for the run on the training part less its held-out values; with several
    candidates the transform's name and/or the highway order is appended,
    ``<dir>_holdout_diff``, ``<dir>_level``, ``<dir>_diff_linear4``; an
    ensemble trains in one run; ``progress``)."""
    check_config(config)
    check_sizes(config.window, horizon)
    calendar = None if config.period is None else seasonal(config.period)
    setup = Setup(config, horizon, calendar, linear_orders(config), fit_options)
    return Method(
        name or f"jaxseq-{config.cell}",
        functools.partial(_fit, setup),
        functools.partial(_forecast, setup),
    )


def _held_out_factors(setup: Setup, held_out, truth, series, num_series, holdout):
    """The split conformal factors of the combined held-out forecasts: pooled
    over the series, or one set per series (``per_series``)."""
    config = setup.config
    try:
        if not config.per_series:
            return conformal_factors(
                held_out, truth, config.per_step, config.pool_steps
            )
        per = [
            conformal_factors(
                rows_of(held_out, series == i),
                truth[series == i],
                config.per_step,
                config.pool_steps,
            )
            for i in range(num_series)
        ]
        return {
            p: np.stack([np.broadcast_to(f[p], (setup.horizon,)) for f in per])
            for p in per[0]
        }
    except ValueError as err:
        raise ValueError(
            f"holdout: expected enough held-out values to calibrate the "
            f"intervals, got {holdout} per series ({err}); hold out more or set "
            "holdout=0."
        ) from err


def _fit(setup: Setup, train_parts) -> RecurrentState:
    """:func:`recurrent`'s ``fit``: every candidate's nets on the training
    parts less their held-out values, the candidates' weights and the
    conformal factors from the held-out forecasts, then the refits."""
    config, horizon = setup.config, setup.horizon
    transforms = TRANSFORMS[config.transform]
    if config.transform == "auto" and any(np.isnan(y).any() for y in train_parts):
        transforms = transforms[:1]  # differences of missing values are missing
    candidates, phases = net_candidates(setup, transforms)
    lag = max(tr.lag for tr in transforms)
    models = models_for(setup, len(train_parts))
    holdout = holdout_for(setup, train_parts, lag)
    check_lengths(setup, train_parts, holdout, lag)
    fits = [
        fit_one(setup, tr, models[p], train_parts, holdout, phase)
        for (tr, p), phase in zip(candidates, phases, strict=True)
    ]
    names = tuple(tr for tr, _ in candidates)
    orders = tuple(p for _, p in candidates)
    extra = _classical_for(setup, train_parts)
    if not holdout:
        nets = [
            refit(setup, models[p], f, phase)
            for (_, p), f, phase in zip(candidates, fits, phases, strict=True)
        ]
        ar = [classical_fits(c, train_parts, horizon, config.window) for c in extra]
        k = len(candidates) + len(extra)
        uniform = np.full((len(train_parts), k), 1 / k)
        return RecurrentState(
            names, uniform, nets, None, orders, classical=extra, fitted=ar
        )
    series, origins, _ = fits[0][4]
    truth = np.stack(
        [train_parts[i][t : t + horizon] for i, t in zip(series, origins, strict=True)]
    )
    requests = [(i, train_parts[i][:t]) for i, t in zip(series, origins, strict=True)]
    # each net's held-out forecasts (its seeds combined by the median), then
    # each classical model's, fitted on the training part less the holdout
    held = [combine(f[4][2], "median") for f in fits]
    held += [
        classical_forecast(
            classical_fits(c, train_parts, horizon, config.window, holdout), requests
        )
        for c in extra
    ]
    errors = _held_out_errors(held, truth, series, len(train_parts))
    weights = _weigh(config, errors, len(candidates))
    held_out = combine(held, "mean", weights[series].T)
    count = len(train_parts)
    factors = _held_out_factors(setup, held_out, truth, series, count, holdout)
    used = np.any(weights > 0, axis=0)
    nets = [
        refit(setup, models[p], f, phase) if used[c] else None
        for c, ((_, p), f, phase) in enumerate(
            zip(candidates, fits, phases, strict=True)
        )
    ]
    ar = _classical_refits(setup, extra, train_parts, used[len(candidates) :], holdout)
    state = RecurrentState(
        names, weights, nets, None, orders, classical=extra, fitted=ar, errors=errors
    )
    if config.refit:  # the refitted nets' widths on the held-out windows
        held_out = recentre(_raw(setup, state, requests), held_out.mean)
        factors = _held_out_factors(setup, held_out, truth, series, count, holdout)
    return state._replace(
        factors=factors,
        scores=conformal_scores(held_out, truth),
        score_series=np.asarray(series),
        score_origins=np.asarray(origins),
        lengths=np.array([len(y) for y in train_parts]),
    )


def _weigh(config: RecurrentConfig, errors: np.ndarray, num_nets: int):
    """``[S, K]`` the candidates' weights from their held-out errors (the
    first ``num_nets`` columns nets, the rest classical): ``combine``, then
    the ``fallback`` to the classical models where they tie the best net."""
    weights = pool_weights(config.combine, errors, config.pool)
    if config.fallback:
        simple = np.arange(errors.shape[1]) >= num_nets
        weights = fallback(weights, errors, simple, config.pool)
    return weights


def _classical_refits(setup: Setup, extra, train_parts, used, holdout: int):
    """Each classical candidate with weight refitted on the whole training
    parts (``refit``; else kept on the parts less the held-out values),
    ``None`` for one no series uses."""
    config = setup.config
    keep = 0 if config.refit else holdout
    return [
        classical_fits(c, train_parts, setup.horizon, config.window, keep)
        if u
        else None
        for c, u in zip(extra, used, strict=True)
    ]


def _classical_for(setup: Setup, train_parts) -> tuple[Classical, ...]:
    """The classical candidates (``RecurrentConfig.classical``); none where a
    training part has missing values."""
    if any(np.isnan(y).any() for y in train_parts):
        return ()
    return tuple(CLASSICAL[name] for name in setup.config.classical)


def _held_out_errors(held, truth, series, num_series: int) -> np.ndarray:
    """``[S, K]`` each series' mean absolute error of each candidate's
    held-out forecasts."""
    return np.array(
        [
            [np.nanmean(np.abs(f.mean - truth)[series == i]) for f in held]
            for i in range(num_series)
        ]
    )


def _blank(rows: int, horizon: int) -> Forecast:
    """A zero forecast of ``rows`` requests (a candidate's unused rows)."""
    zeros = lambda: np.zeros((rows, horizon))
    return Forecast(
        zeros(), {p: zeros() for p in PROBS}, {p: zeros() for p in PROBS}, None
    )


def _fill(part: Forecast, rows, got: Forecast) -> None:
    """Write ``got`` into the rows ``rows`` of ``part`` (in place)."""
    part.mean[rows] = got.mean
    for p in PROBS:
        part.lower[p][rows] = got.lower[p]
        part.upper[p][rows] = got.upper[p]


def _raw(setup: Setup, state: RecurrentState, requests) -> Forecast:
    """The combined, uncalibrated forecasts of ``requests``: each candidate's
    (nets, then classical models) on the rows of the series that weigh it."""
    horizon, weights = setup.horizon, state.weights
    models = models_for(setup, weights.shape[0])
    idx = np.array([i for i, _ in requests])
    w = weights[idx].T  # [candidates, rows]
    parts = []
    for c, (tr, net, order) in enumerate(
        zip(state.transforms, state.nets, state.linear, strict=True)
    ):
        rows = np.flatnonzero(w[c] > 0)
        parts.append(_blank(len(requests), horizon))
        if rows.size:
            scaling, params = net
            histories = [requests[r][1] for r in rows]
            each = forecast_with(
                setup,
                tr,
                models[order],
                scaling,
                params,
                histories,
                idx[rows],
                weights.shape[0],
            )
            _fill(parts[-1], rows, combine(each, "median"))
    for k, fitted in enumerate(state.fitted):
        rows = np.flatnonzero(w[len(state.nets) + k] > 0)
        parts.append(_blank(len(requests), horizon))
        if rows.size:
            got = classical_forecast(fitted, [requests[r] for r in rows])
            _fill(parts[-1], rows, got)
    return combine(parts, "mean", w)


def _forecast(setup: Setup, state: RecurrentState, requests, horizon_) -> Forecast:
    """:func:`recurrent`'s ``forecast``: the combined forecasts of
    ``requests``, their intervals calibrated (``RecurrentConfig.calibration``)."""
    config, horizon = setup.config, setup.horizon
    idx = np.array([i for i, _ in requests])
    if state.factors is None:
        return _raw(setup, state, requests)
    if config.calibration == "split" or state.scores is None:
        return stretch(_raw(setup, state, requests), split_factors(config, state, idx))
    past, wants = earlier_origins(state, requests, horizon)
    # two batches, so that the requests' points are those of "split"
    # (XLA's results may differ in the last bits between batch shapes)
    out = _raw(setup, state, requests)
    earlier = _raw(setup, state, past) if past else None
    factors = {p: np.zeros((len(requests), horizon)) for p in state.scores}
    fallback = split_factors(config, state, idx)
    for r, ((i, history), mine) in enumerate(zip(requests, wants, strict=True)):
        got = online_row(config, state, i, history, mine, earlier)
        for p in factors:
            c = fallback[p] if got is None else got[p]
            factors[p][r] = np.asarray(c)[r] if np.ndim(c) == 2 else c
    return stretch(out, factors)
