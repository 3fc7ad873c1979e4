"""A jaxseq recurrent forecaster as a :class:`~jaxseq.forecast.Method`: one global
model over all series (per-series scaling), fitted on their training parts."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from .. import cells
from .baselines import Method
from .conformal import (
    conformal_factors,
    conformal_scores,
    online_factors,
    recentre,
    stretch,
)
from .ensemble import combine
from .heads import gaussian, quantile, student_t
from .models import STRATEGIES, forecaster, member, stacked
from .predict import PROBS, Forecast, predict, train
from .scaling import Scaling, fit_scaling
from .transforms import TRANSFORMS, Transform
from .windows import (
    Windows,
    check_sizes,
    history_windows,
    seasonal,
    series_onehot,
    training_windows,
)

__all__ = ["CELLS", "RecurrentConfig", "RecurrentState", "recurrent"]

CELLS = cells.BY_NAME  # the built-in cells by name
HEADS = {"gaussian": gaussian, "quantile": quantile, "student_t": student_t}


class RecurrentConfig(NamedTuple):
    """Settings of :func:`recurrent` (validated when the method is built).

    ``period`` adds ``sin/cos`` calendar covariates of that period (``None``:
    none); ``steps`` is the approximate number of Adam updates (whole epochs);
    ``ensemble`` trains that many networks from different seeds (as one
    vmapped program, :func:`~.models.stacked`: the same batches, each its own
    initial parameters and dropout) and takes the median of their forecasts
    and interval half-widths. ``series_input``: each window also reads the
    one-hot of its series (:func:`~.windows.series_onehot`), so that a global
    model can tell its series apart.

    ``transform`` (:mod:`.transforms`): the nets model the values
    (``"level"``, windows relative to their last value when ``relative``), their
    first differences (``"diff"``), or (``"auto"``, the default) one net of each
    is trained and each series' forecast combines them (:mod:`.ensemble`:
    the weighted mean of points and interval half-widths), weighted by
    ``combine``: ``"pool"`` (default) averages the transforms whose mean
    absolute error on the series' held-out windows (below) is within
    ``1 + pool`` times the smallest (forecast pooling: a choice where one is
    clearly better, an average where the held-out values cannot tell them
    apart), ``"choose"`` takes the smallest, ``"mean"`` averages all (the
    only one that needs no ``holdout``). An ``ensemble`` of seeds per
    transform is combined by the median.

    ``linear``: the last ``p`` inputs read by a linear autoregressive highway
    beside the net (:func:`~.models.forecaster`; direct strategy only); a
    tuple of orders, e.g. ``(0, window)``, makes each a candidate beside each
    transform (one global net per pair), weighed per series like the
    transforms by ``combine``.

    Calibration (:mod:`.conformal`): the last ``holdout`` values of each
    training part (``None``: ``max(2 * horizon, T // 4)`` with ``T`` the
    shortest training part, capped to leave ``window + horizon`` values before
    them; ``0``: no calibration) are held out: forecasts from every origin in
    them (rolling origins, ``holdout - horizon + 1`` per series) by nets
    trained on the rest, with early stopping on the held-out loss
    (``patience`` Adam steps without improvement), give the conformal factors
    (per horizon step with ``per_step``; with ``pool_steps`` the steps'
    scores are normalised by each step's median score and pooled into one
    quantile, ``c_h = s_h q``, and ACI into one level per series, instead of
    one quantile and level per step from that step's scores alone) that
    stretch the interval bounds;
    then (``refit``) the nets are retrained on the whole training part for
    ``steps`` (with ``patience``: as many steps as the best held-out epoch
    took), and the held-out errors are scored against the refitted nets'
    interval widths on the same held-out windows (the held-out points with
    the refitted widths, :func:`~.conformal.recentre`): the factors then
    stretch the widths they were measured on. (A refitted net has learned its
    spread on the held-out values too; the held-out nets' widths would
    understate or overstate its own.) The factors pool every series' held-out
    values, or (``per_series``) each series has its own.

    ``calibration``: how the factors follow the forecasts (:mod:`.conformal`).
    ``"split"``: the held-out factors, fixed. ``"rolling"``: a forecast from
    origin ``o`` of series ``i`` (its history ``y[:o]``, ``o`` at or after its
    training part's end ``L``) also scores the forecasts that the fitted nets
    give from every origin ``t`` in ``[L, o)`` (from ``y[:t]``), wherever the
    value at step ``h`` is observed (``t + h <= o``), and takes the conformal
    quantile of those and the held-out scores (the group's, aligned on the
    training parts' ends, or the series' own with ``per_series``) per step.
    ``"aci"`` (default): rolling, plus adaptive conformal inference per series
    with step ``gamma`` (its level ``alpha = 1 - p`` moved by each realised
    miss or hit of the interval it issued). Nothing at or after ``o`` is read;
    no net is refitted. A request from inside the training part takes the
    split factors.
    """

    cell: str = "lstm"
    hidden: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    strategy: str = "direct"
    head: str = "gaussian"
    window: int = 24
    relative: bool = True
    period: float | None = None
    steps: int = 1500
    batch_size: int = 64
    learning_rate: float = 3e-3
    ensemble: int = 1
    seed: int = 0
    holdout: int | None = None
    patience: int | None = None
    refit: bool = True
    per_series: bool = False
    transform: str = "auto"
    per_step: bool = True
    pool_steps: bool = False
    combine: str = "pool"
    pool: float = 0.1
    linear: int | tuple[int, ...] = 0
    series_input: bool = False
    calibration: str = "aci"
    gamma: float = 0.05


class RecurrentState(NamedTuple):
    """What :func:`recurrent`'s ``fit`` returns.

    Attributes:
        transforms: the candidates' :class:`~.transforms.Transform`\\ s (one
            per candidate: each transform crossed with each ``linear`` order).
        weights: ``[S, len(transforms)]`` each series' weight of each
            candidate's nets in its combined forecast (rows sum to 1; one-hot
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


#: how ``recurrent`` weighs its transforms' nets per series (:func:`_weights`)
COMBINATIONS = ("pool", "mean", "choose")
#: how ``recurrent`` calibrates its intervals (``RecurrentConfig.calibration``)
CALIBRATIONS = ("split", "rolling", "aci")


def _weights(how: str, errors: np.ndarray, pool: float) -> np.ndarray:
    """``[S, T]`` weights of ``T`` candidates from their held-out mean absolute
    errors ``[S, T]``: ``"choose"`` the smallest, ``"mean"`` all alike,
    ``"pool"`` all alike among those within ``(1 + pool)`` times the smallest
    (forecast pooling, Kourentzes et al. 2019)."""
    errors = np.where(np.isnan(errors), np.inf, errors)
    best = np.min(errors, axis=1, keepdims=True)
    if how == "choose":
        keep = np.arange(errors.shape[1]) == np.argmin(errors, axis=1)[:, None]
    elif how == "mean":
        keep = np.ones(errors.shape, bool)
    else:
        keep = errors <= (1 + pool) * best
    # a series without a finite held-out error (all its held-out values
    # missing) weighs its candidates alike
    keep = keep | ~np.any(keep, axis=1, keepdims=True)
    return keep / keep.sum(axis=1, keepdims=True)


def _rows(forecast, sel):
    """The rows ``sel`` of a forecast."""
    return forecast._replace(
        mean=forecast.mean[sel],
        lower={p: v[sel] for p, v in forecast.lower.items()},
        upper={p: v[sel] for p, v in forecast.upper.items()},
    )


def _check(config: RecurrentConfig) -> None:
    if config.cell not in CELLS:
        raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {config.cell!r}.")
    if config.head not in HEADS:
        raise ValueError(f"head: expected one of {sorted(HEADS)}, got {config.head!r}.")
    if config.strategy not in STRATEGIES:
        raise ValueError(
            f"strategy: expected one of {STRATEGIES}, got {config.strategy!r}."
        )
    for name in ("hidden", "steps", "batch_size", "ensemble", "window"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}.")
    if config.patience is not None and (
        isinstance(config.patience, bool)
        or not isinstance(config.patience, int)
        or config.patience < 1
    ):
        raise ValueError(
            f"patience: expected None or a positive int, got {config.patience!r}."
        )
    h = config.holdout
    if h is not None and (isinstance(h, bool) or not isinstance(h, int) or h < 0):
        raise ValueError(f"holdout: expected None or an int >= 0, got {h!r}.")
    if config.transform not in TRANSFORMS:
        raise ValueError(
            f"transform: expected one of {sorted(TRANSFORMS)}, got "
            f"{config.transform!r}."
        )
    if config.combine not in COMBINATIONS:
        raise ValueError(
            f"combine: expected one of {list(COMBINATIONS)}, got {config.combine!r}."
        )
    if config.calibration not in CALIBRATIONS:
        raise ValueError(
            f"calibration: expected one of {list(CALIBRATIONS)}, got "
            f"{config.calibration!r}."
        )
    g = config.gamma
    if isinstance(g, bool) or not isinstance(g, int | float) or not 0 <= g < 1:
        raise ValueError(f"gamma: expected a number in [0, 1), got {g!r}.")
    if not (isinstance(config.pool, int | float) and config.pool >= 0):
        raise ValueError(f"pool: expected a number >= 0, got {config.pool!r}.")
    for name in (
        "relative",
        "refit",
        "per_series",
        "per_step",
        "pool_steps",
        "series_input",
    ):
        if not isinstance(getattr(config, name), bool):
            raise TypeError(
                f"{name}: expected True or False, got {getattr(config, name)!r}."
            )
    linears = _linears(config)
    if any(linears) and config.strategy != "direct":
        raise ValueError(
            f"linear: the autoregressive highway serves the direct strategy; "
            f"expected linear=0 with strategy={config.strategy!r}, got "
            f"{config.linear!r}."
        )
    several = config.transform == "auto" or len(linears) > 1
    if several and config.combine != "mean" and h == 0:
        raise ValueError(
            f"holdout: several candidates (transform={config.transform!r}, "
            f"linear={config.linear!r}) with combine={config.combine!r} are "
            "weighed on held-out values; expected holdout > 0 or None, got 0 "
            "(or combine='mean', or one transform and one linear order)."
        )


def _linears(config: RecurrentConfig) -> tuple[int, ...]:
    """The candidate highway orders of ``config.linear`` (an int or a tuple of
    distinct ints, each in ``[0, window]``)."""
    linear = config.linear
    orders = tuple(linear) if isinstance(linear, tuple | list) else (linear,)
    if (
        not orders
        or len(set(orders)) != len(orders)
        or any(
            isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= config.window
            for p in orders
        )
    ):
        raise ValueError(
            f"linear: expected an int in [0, window] = [0, {config.window}] or a "
            f"tuple of distinct such ints, got {linear!r}."
        )
    return orders


#: stacked ensembles per model, so that their training steps compile once
_stacked = functools.lru_cache(maxsize=16)(stacked)


@functools.lru_cache(maxsize=16)
def _model(
    cell,
    hidden,
    horizon,
    window,
    strategy,
    head,
    calendar,
    layers,
    dropout,
    linear,
    num_series=0,
):
    """One forecaster per setting, so that methods built alike (the command
    line's evaluation and final fit) share its compiled functions."""
    return forecaster(
        CELLS[cell](hidden),
        window=window,
        horizon=horizon,
        strategy=strategy,
        head=HEADS[head](),
        num_covariates=(2 if calendar else 0) + num_series,
        num_layers=layers,
        dropout=dropout,
        linear=linear,
    )


class _Setup(NamedTuple):
    """What every step of :func:`recurrent`'s fit and forecast reads: the
    validated ``config``, the ``horizon``, the calendar covariates
    (``None``: none), the candidate highway orders and the ``fit_options``
    passed on to :func:`~.predict.train`."""

    config: RecurrentConfig
    horizon: int
    calendar: Any
    linears: tuple[int, ...]
    fit_options: dict[str, Any]


def recurrent(
    config: RecurrentConfig, horizon: int, name: str | None = None, **fit_options: Any
) -> Method:
    """The method ``jaxseq-<cell>``; ``fit_options`` go to :func:`train` and
    :func:`jaxseq.train.fit` (``checkpoint_dir``, ``log_dir``: ``<dir>_holdout``
    for the run on the training part less its held-out values; with several
    candidates the transform's name and/or the highway order is appended,
    ``<dir>_holdout_diff``, ``<dir>_level``, ``<dir>_diff_linear4``; an
    ensemble trains in one run; ``progress``)."""
    _check(config)
    check_sizes(config.window, horizon)
    calendar = None if config.period is None else seasonal(config.period)
    setup = _Setup(config, horizon, calendar, _linears(config), fit_options)
    return Method(
        name or f"jaxseq-{config.cell}",
        functools.partial(_fit, setup),
        functools.partial(_forecast, setup),
    )


def _models_for(setup: _Setup, num_series: int) -> dict[int, Any]:
    """The forecaster of each highway order for ``num_series`` series."""
    c = setup.config
    return {
        p: _model(
            c.cell,
            c.hidden,
            setup.horizon,
            c.window,
            c.strategy,
            c.head,
            setup.calendar is not None,
            c.num_layers,
            c.dropout,
            p,
            num_series if c.series_input else 0,
        )
        for p in setup.linears
    }


def _covariates_for(setup: _Setup, num_series: int, index=None):
    """Calendar inputs, then (``series_input``) the one-hot of the window's
    series: ``index[i]`` for the ``i``-th series passed (all of them when
    ``index`` is ``None``)."""
    if not setup.config.series_input:
        return setup.calendar
    return series_onehot(num_series, setup.calendar, index)


def _cut(setup: _Setup, tr: Transform, num_series: int, index=None) -> dict[str, Any]:
    """The window options of :func:`~.windows.training_windows` and
    :func:`~.windows.history_windows` for transform ``tr``."""
    return dict(
        window=setup.config.window,
        horizon=setup.horizon,
        covariates=_covariates_for(setup, num_series, index),
        relative=setup.config.relative and tr.relative,
    )


def _options(fit_options: dict[str, Any], phase: str) -> dict[str, Any]:
    """``fit_options`` with one checkpoint/log folder per phase
    (``<dir>_<phase>``: the held-out run ``holdout``, and the candidate when
    several are tried)."""

    def place(value):
        path = Path(value)
        return path.with_name(f"{path.name}_{phase}") if phase else path

    return {
        name: (
            place(value)
            if name in ("checkpoint_dir", "log_dir") and value is not None
            else value
        )
        for name, value in fit_options.items()
    }


def _epochs_for(config: RecurrentConfig, windows: Windows, steps: int):
    """``(epochs, steps per epoch)`` for about ``steps`` Adam steps."""
    per_epoch = max(1, windows.z.shape[0] // config.batch_size)
    return max(1, math.ceil(steps / per_epoch)), per_epoch


def _run(setup: _Setup, model, windows: Windows, steps: int, phase="", valid=None):
    """The ensemble's parameters (one per member) trained on ``windows`` for
    about ``steps`` Adam steps, and the steps to the best held-out epoch
    (``steps`` without early stopping). Several members train as one vmapped
    program (:func:`~.models.stacked`)."""
    config = setup.config
    epochs, per_epoch = _epochs_for(config, windows, steps)
    k = config.ensemble
    result = train(
        model if k == 1 else _stacked(model, k),
        windows,
        key=jax.random.key(config.seed),
        epochs=epochs,
        batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        seed=config.seed,
        valid=valid if config.patience else None,
        patience=-(-config.patience // per_epoch) if config.patience else None,
        **_options(setup.fit_options, phase),
    )
    params = result.params
    params = [params] if k == 1 else [member(params, i) for i in range(k)]
    return params, result.best_epoch * per_epoch if result.best_epoch else steps


def _predict_all(setup: _Setup, model, params, windows: Windows, scaling: Scaling):
    """Each member's forecast of ``windows`` (standardised model units)."""
    seed = setup.config.seed
    # sample paths only where the intervals need them (recursive, H > 1)
    paths = model.strategy == "recursive" and setup.horizon > 1
    key = lambda k: jax.random.key(seed + k) if paths else None
    # rows padded to a power of two: fewer shapes, fewer compilations
    n = windows.z.shape[0]
    rows = np.minimum(np.arange(1 << max(n - 1, 0).bit_length()), n - 1)
    padded = Windows(*(a[rows] for a in windows))
    return [
        _rows(predict(model, p, padded, scaling, key=key(k)), slice(0, n))._replace(
            paths=None
        )
        for k, p in enumerate(params)
    ]


def _forecast_with(setup: _Setup, tr, model, scaling, params, histories, index, count):
    """Each member's forecasts in original units from the end of each of
    ``histories`` (of the series ``index``, of ``count``)."""
    sub = Scaling(scaling.loc[index], scaling.scale[index])
    modelled = [tr.forward(h) for h in histories]
    origins = [(n, len(x)) for n, x in enumerate(modelled)]
    windows = history_windows(modelled, sub, origins, **_cut(setup, tr, count, index))
    last = np.array([h[-1] for h in histories])
    return [
        tr.inverse(f, last) for f in _predict_all(setup, model, params, windows, sub)
    ]


def _holdout_for(setup: _Setup, train_parts, lag: int) -> int:
    """The held-out values per training part (``RecurrentConfig.holdout``)."""
    config = setup.config
    if config.holdout is not None:
        return config.holdout
    shortest = min(len(y) for y in train_parts)
    room = shortest - lag - config.window - setup.horizon
    return max(setup.horizon, min(max(2 * setup.horizon, shortest // 4), room))


def _fit_one(setup: _Setup, tr, model, train_parts, holdout: int, phase: str):
    """Nets for one transform on the training part less its held-out values:
    ``(scaling, windows, params, steps, held)``; ``held`` holds the series,
    origin (in the original positions) and forecast (original units) of every
    held-out window, series by series (``None`` without a holdout: then
    ``params`` are trained on the whole training part)."""
    parts = [tr.forward(y) for y in train_parts]
    scaling = fit_scaling(parts)
    cut = _cut(setup, tr, len(parts))
    windows = training_windows(parts, scaling, **cut)
    if not holdout:
        params, _ = _run(setup, model, windows, setup.config.steps, phase)
        return scaling, windows, params, None, None
    ends = [len(x) - holdout for x in parts]
    early = training_windows(parts, scaling, end=ends, **cut)
    held = windows.origin >= np.asarray(ends)[windows.series]
    valid = Windows(*(a[held] for a in windows))
    tag = "_".join(filter(None, ["holdout", phase]))
    fitted, steps = _run(setup, model, early, setup.config.steps, tag, valid)
    origins = valid.origin + tr.lag
    last = np.array(
        [train_parts[i][t - 1] for i, t in zip(valid.series, origins, strict=True)]
    )
    held_out = [
        tr.inverse(f, last) for f in _predict_all(setup, model, fitted, valid, scaling)
    ]
    return scaling, windows, fitted, steps, (valid.series, origins, held_out)


def _refit(setup: _Setup, model, fitted, phase: str):
    """``fitted`` (:func:`_fit_one`) retrained on the whole training part
    (``refit``): ``(scaling, params)``."""
    scaling, windows, params, steps, held = fitted
    if held is None or not setup.config.refit:
        return scaling, params
    return scaling, _run(setup, model, windows, steps, phase)[0]


def _candidates(setup: _Setup, transforms) -> tuple[list, list[str]]:
    """Each transform crossed with each highway order, and its phase (folder
    suffix): the transform's name where there are several, the order too."""
    linears = setup.linears
    candidates = [(tr, p) for tr in transforms for p in linears]
    phases = [
        "_".join(
            filter(
                None,
                [
                    tr.name if len(transforms) > 1 else "",
                    f"linear{p}" if len(linears) > 1 else "",
                ],
            )
        )
        for tr, p in candidates
    ]
    return candidates, phases


def _check_lengths(setup: _Setup, train_parts, holdout: int, lag: int) -> None:
    """Refuse training parts too short for a window, a horizon and the
    held-out values (naming the series)."""
    config, horizon = setup.config, setup.horizon
    plus = ", plus 1 for the differences" if lag else ""
    need = config.window + horizon
    for i, y in enumerate(train_parts):
        if len(y) - lag < need:
            raise ValueError(
                f"series[{i}]: expected at least window + horizon = "
                f"{config.window} + {horizon} = {need} values (training "
                f"part{plus}), got {len(y)}."
            )
        if holdout and (len(y) - holdout - lag < need or holdout < horizon):
            raise ValueError(
                f"holdout: expected between horizon = {horizon} and "
                f"{len(y) - lag - need} values (training part "
                f"of series[{i}]: {len(y)} values, window + horizon = "
                f"{need}{plus}), got {holdout}; set holdout=0 to skip the "
                "calibration."
            )


def _held_out_factors(setup: _Setup, held_out, truth, series, num_series, holdout):
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
                _rows(held_out, series == i),
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


def _fit(setup: _Setup, train_parts) -> RecurrentState:
    """:func:`recurrent`'s ``fit``: every candidate's nets on the training
    parts less their held-out values, the candidates' weights and the
    conformal factors from the held-out forecasts, then the refits."""
    config, horizon = setup.config, setup.horizon
    transforms = TRANSFORMS[config.transform]
    if config.transform == "auto" and any(np.isnan(y).any() for y in train_parts):
        transforms = transforms[:1]  # differences of missing values are missing
    candidates, phases = _candidates(setup, transforms)
    lag = max(tr.lag for tr in transforms)
    models = _models_for(setup, len(train_parts))
    holdout = _holdout_for(setup, train_parts, lag)
    _check_lengths(setup, train_parts, holdout, lag)
    fits = [
        _fit_one(setup, tr, models[p], train_parts, holdout, phase)
        for (tr, p), phase in zip(candidates, phases, strict=True)
    ]
    uniform = np.full((len(train_parts), len(candidates)), 1 / len(candidates))
    names = tuple(tr for tr, _ in candidates)
    orders = tuple(p for _, p in candidates)
    if not holdout:
        nets = [
            _refit(setup, models[p], f, phase)
            for (_, p), f, phase in zip(candidates, fits, phases, strict=True)
        ]
        return RecurrentState(names, uniform, nets, None, orders)
    series, origins, _ = fits[0][4]
    truth = np.stack(
        [train_parts[i][t : t + horizon] for i, t in zip(series, origins, strict=True)]
    )
    # each transform's held-out forecasts (its seeds combined by the median)
    held = [combine(f[4][2], "median") for f in fits]
    errors = np.array(
        [
            [np.nanmean(np.abs(f.mean - truth)[series == i]) for f in held]
            for i in range(len(train_parts))
        ]
    )
    weights = _weights(config.combine, errors, config.pool)
    held_out = combine(held, "mean", weights[series].T)
    count = len(train_parts)
    factors = _held_out_factors(setup, held_out, truth, series, count, holdout)
    nets = [
        _refit(setup, models[p], f, phase) if np.any(weights[:, c] > 0) else None
        for c, ((_, p), f, phase) in enumerate(
            zip(candidates, fits, phases, strict=True)
        )
    ]
    if config.refit:  # the refitted nets' widths on the held-out windows
        refitted = RecurrentState(names, weights, nets, None, orders)
        windows = [
            (i, train_parts[i][:t]) for i, t in zip(series, origins, strict=True)
        ]
        held_out = recentre(_raw(setup, refitted, windows), held_out.mean)
        factors = _held_out_factors(setup, held_out, truth, series, count, holdout)
    return RecurrentState(
        names,
        weights,
        nets,
        factors,
        orders,
        conformal_scores(held_out, truth),
        np.asarray(series),
        np.asarray(origins),
        np.array([len(y) for y in train_parts]),
    )


def _raw(setup: _Setup, state: RecurrentState, requests) -> Forecast:
    """The combined, uncalibrated forecasts of ``requests``."""
    horizon, weights, fits = setup.horizon, state.weights, state.nets
    models = _models_for(setup, weights.shape[0])
    idx = np.array([i for i, _ in requests])
    w = weights[idx].T  # [transforms, rows]
    parts = []
    for c, (tr, net, order) in enumerate(
        zip(state.transforms, fits, state.linear, strict=True)
    ):
        rows = np.flatnonzero(w[c] > 0)
        part = Forecast(
            np.zeros((len(requests), horizon)),
            {p: np.zeros((len(requests), horizon)) for p in PROBS},
            {p: np.zeros((len(requests), horizon)) for p in PROBS},
            None,
        )
        if rows.size:
            scaling, params = net
            got = combine(
                _forecast_with(
                    setup,
                    tr,
                    models[order],
                    scaling,
                    params,
                    [requests[r][1] for r in rows],
                    idx[rows],
                    weights.shape[0],
                ),
                "median",
            )
            part.mean[rows] = got.mean
            for p in PROBS:
                part.lower[p][rows] = got.lower[p]
                part.upper[p][rows] = got.upper[p]
        parts.append(part)
    return combine(parts, "mean", w)


def _split(config: RecurrentConfig, state: RecurrentState, idx) -> dict[float, Any]:
    """The held-out factors of the series ``idx`` (their rows with
    ``per_series``)."""
    factors = dict(state.factors)
    if config.per_series:
        factors = {p: c[idx] for p, c in factors.items()}
    return factors


def _earlier(state: RecurrentState, requests, horizon: int):
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


def _online_row(setup: _Setup, state: RecurrentState, i, history, mine, earlier):
    """The online factors of one request of series ``i`` (``None`` where
    too few scores are known): the held-out scores (the group's aligned on
    the training parts' ends, or the series' own) and those of its earlier
    origins ``mine``."""
    config = setup.config
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
        new = conformal_scores(_rows(earlier, rows), np.stack([t for _, _, t in mine]))
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


def _forecast(setup: _Setup, state: RecurrentState, requests, horizon_) -> Forecast:
    """:func:`recurrent`'s ``forecast``: the combined forecasts of
    ``requests``, their intervals calibrated (``RecurrentConfig.calibration``)."""
    config, horizon = setup.config, setup.horizon
    idx = np.array([i for i, _ in requests])
    if state.factors is None:
        return _raw(setup, state, requests)
    if config.calibration == "split" or state.scores is None:
        return stretch(_raw(setup, state, requests), _split(config, state, idx))
    past, wants = _earlier(state, requests, horizon)
    # two batches, so that the requests' points are those of "split"
    # (XLA's results may differ in the last bits between batch shapes)
    out = _raw(setup, state, requests)
    earlier = _raw(setup, state, past) if past else None
    factors = {p: np.zeros((len(requests), horizon)) for p in state.scores}
    fallback = _split(config, state, idx)
    for r, ((i, history), mine) in enumerate(zip(requests, wants, strict=True)):
        got = _online_row(setup, state, i, history, mine, earlier)
        for p in factors:
            c = fallback[p] if got is None else got[p]
            factors[p][r] = np.asarray(c)[r] if np.ndim(c) == 2 else c
    return stretch(out, factors)
