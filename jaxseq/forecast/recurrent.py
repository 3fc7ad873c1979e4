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
from .conformal import conformal_factors, stretch
from .heads import gaussian, quantile, student_t
from .models import STRATEGIES, forecaster
from .predict import Forecast, predict, train
from .scaling import Scaling, fit_scaling
from .transforms import TRANSFORMS, Transform
from .windows import (
    Windows,
    check_sizes,
    history_windows,
    seasonal,
    training_windows,
)

__all__ = ["CELLS", "RecurrentConfig", "RecurrentState", "recurrent"]

CELLS = {"lstm": cells.lstm, "gru": cells.gru, "elman": cells.elman}
HEADS = {"gaussian": gaussian, "quantile": quantile, "student_t": student_t}


class RecurrentConfig(NamedTuple):
    """Settings of :func:`recurrent` (validated when the method is built).

    ``period`` adds ``sin/cos`` calendar covariates of that period (``None``:
    none); ``steps`` is the approximate number of Adam updates (whole epochs);
    ``ensemble`` trains that many networks from different seeds and takes the
    median of their forecasts and interval bounds.

    ``transform`` (:mod:`.transforms`): the nets model the values
    (``"level"``, windows relative to their last value when ``relative``), their
    first differences (``"diff"``), or (``"auto"``, the default) one net of each
    is trained and each series uses the one with the smaller mean absolute
    error on its held-out windows (below; needs ``holdout > 0``).

    Calibration (:mod:`.conformal`): the last ``holdout`` values of each
    training part (``None``: ``max(2 * horizon, T // 4)`` with ``T`` the
    shortest training part, capped to leave ``window + horizon`` values before
    them; ``0``: no calibration) are held out: forecasts from every origin in
    them (rolling origins, ``holdout - horizon + 1`` per series) by nets
    trained on the rest, with early stopping on the held-out loss
    (``patience`` Adam steps without improvement), give the conformal factors
    (per horizon step with ``per_step``) that stretch the interval bounds;
    then (``refit``) the nets are retrained on the whole training part for
    ``steps`` (with ``patience``: as many steps as the best held-out epoch
    took), keeping the factors. The factors pool every series' held-out
    values, or (``per_series``) each series has its own.
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


class RecurrentState(NamedTuple):
    """What :func:`recurrent`'s ``fit`` returns.

    Attributes:
        transforms: the candidate :class:`~.transforms.Transform`\\ s.
        choice: ``[S]`` index into ``transforms`` of each series' transform.
        nets: per transform ``(scaling, [params of each ensemble member])``,
            ``None`` for a transform no series uses.
        factors: conformal factors (``p -> float``, ``[H]`` per step, or
            ``[S, H]`` per series), ``None`` without calibration.
    """

    transforms: tuple[Transform, ...]
    choice: np.ndarray
    nets: list[Any]
    factors: dict[float, Any] | None


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
    if config.transform == "auto" and h == 0:
        raise ValueError(
            "holdout: transform='auto' chooses on held-out values; expected "
            "holdout > 0 or None, got 0 (or choose transform='level' or 'diff')."
        )


@functools.lru_cache(maxsize=16)
def _model(cell, hidden, horizon, window, strategy, head, calendar, layers, dropout):
    """One forecaster per setting, so that methods built alike (the command
    line's evaluation and final fit) share its compiled functions."""
    return forecaster(
        CELLS[cell](hidden),
        window=window,
        horizon=horizon,
        strategy=strategy,
        head=HEADS[head](),
        num_covariates=2 if calendar else 0,
        num_layers=layers,
        dropout=dropout,
    )


def recurrent(
    config: RecurrentConfig, horizon: int, name: str | None = None, **fit_options: Any
) -> Method:
    """The method ``jaxseq-<cell>``; ``fit_options`` go to :func:`train` and
    :func:`jaxseq.train.fit` (``checkpoint_dir``, ``log_dir``: one subfolder
    ``member<k>`` per ensemble member, and ``<dir>_holdout`` for the run on the
    training part less its held-out values; with ``transform="auto"`` the
    transform's name is appended, ``<dir>_holdout_diff``, ``<dir>_level``;
    ``progress``)."""
    _check(config)
    check_sizes(config.window, horizon)
    covariates = None if config.period is None else seasonal(config.period)
    model = _model(
        config.cell,
        config.hidden,
        horizon,
        config.window,
        config.strategy,
        config.head,
        covariates is not None,
        config.num_layers,
        config.dropout,
    )
    def cut(tr: Transform) -> dict[str, Any]:
        return dict(
            window=config.window,
            horizon=horizon,
            covariates=covariates,
            relative=config.relative and tr.relative,
        )

    def options(k, phase):
        """fit_options with one checkpoint/log folder per ensemble member
        (``<dir>/member<k>``) and phase (``<dir>_<phase>``: the held-out run
        ``holdout``, and the transform when several are tried)."""

        def place(value):
            path = Path(value, *([f"member{k}"] if config.ensemble > 1 else []))
            return path.with_name(f"{path.name}_{phase}") if phase else path

        return {
            name: (
                place(value)
                if name in ("checkpoint_dir", "log_dir") and value is not None
                else value
            )
            for name, value in fit_options.items()
        }

    def epochs_for(windows, steps):
        per_epoch = max(1, windows.z.shape[0] // config.batch_size)
        return max(1, math.ceil(steps / per_epoch)), per_epoch

    def run(windows, k, steps, phase="", valid=None):
        epochs, per_epoch = epochs_for(windows, steps)
        return train(
            model,
            windows,
            key=jax.random.key(config.seed + k),
            epochs=epochs,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            seed=config.seed + k,
            valid=valid if config.patience else None,
            patience=-(-config.patience // per_epoch) if config.patience else None,
            **options(k, phase),
        ), per_epoch

    def predict_all(params, windows, scaling):
        # sample paths only where the intervals need them (recursive, H > 1)
        paths = model.strategy == "recursive" and horizon > 1
        key = lambda k: jax.random.key(config.seed + k) if paths else None
        # rows padded to a power of two: fewer shapes, fewer compilations
        n = windows.z.shape[0]
        rows = np.minimum(np.arange(1 << max(n - 1, 0).bit_length()), n - 1)
        padded = Windows(*(a[rows] for a in windows))
        outs = [
            _rows(predict(model, p, padded, scaling, key=key(k)), slice(0, n))
            for k, p in enumerate(params)
        ]
        med = lambda key: {
            p: np.median([getattr(o, key)[p] for o in outs], axis=0)
            for p in outs[0].lower
        }
        return outs[0]._replace(
            mean=np.median([o.mean for o in outs], axis=0),
            lower=med("lower"),
            upper=med("upper"),
            paths=None,
        )

    def forecast_with(tr, scaling, params, histories, series_index):
        """Forecasts in original units from the end of each history."""
        sub = Scaling(scaling.loc[series_index], scaling.scale[series_index])
        modelled = [tr.forward(h) for h in histories]
        origins = [(n, len(x)) for n, x in enumerate(modelled)]
        windows = history_windows(modelled, sub, origins, **cut(tr))
        last = np.array([h[-1] for h in histories])
        return tr.inverse(predict_all(params, windows, sub), last)

    def holdout_for(train_parts, lag):
        if config.holdout is not None:
            return config.holdout
        shortest = min(len(y) for y in train_parts)
        room = shortest - lag - config.window - horizon
        return max(horizon, min(max(2 * horizon, shortest // 4), room))

    def fit_one(tr, train_parts, holdout, phase):
        """Nets for one transform on the training part less its held-out values:
        ``(scaling, windows, params, steps, held)``; ``held`` holds the series,
        origin (in the original positions) and forecast (original units) of
        every held-out window, series by series (``None`` without a holdout:
        then ``params`` are trained on the whole training part)."""
        parts = [tr.forward(y) for y in train_parts]
        scaling = fit_scaling(parts)
        windows = training_windows(parts, scaling, **cut(tr))
        if not holdout:
            params = [
                run(windows, k, config.steps, phase)[0].params
                for k in range(config.ensemble)
            ]
            return scaling, windows, params, None, None
        ends = [len(x) - holdout for x in parts]
        early = training_windows(parts, scaling, end=ends, **cut(tr))
        held = windows.origin >= np.asarray(ends)[windows.series]
        valid = Windows(*(a[held] for a in windows))
        fitted, steps = [], []
        for k in range(config.ensemble):
            tag = "_".join(filter(None, ["holdout", phase]))
            result, per_epoch = run(early, k, config.steps, tag, valid)
            fitted.append(result.params)
            steps.append(
                result.best_epoch * per_epoch if result.best_epoch else config.steps
            )
        origins = valid.origin + tr.lag
        last = np.array(
            [train_parts[i][t - 1] for i, t in zip(valid.series, origins, strict=True)]
        )
        held_out = tr.inverse(predict_all(fitted, valid, scaling), last)
        held = (valid.series, origins, held_out)
        return scaling, windows, fitted, steps, held

    def refit(fitted, phase):
        """``fitted`` retrained on the whole training part (``refit``)."""
        scaling, windows, params, steps, held = fitted
        if held is None or not config.refit:
            return scaling, params
        return scaling, [
            run(windows, k, steps[k], phase)[0].params
            for k in range(config.ensemble)
        ]

    def fit(train_parts):
        candidates = TRANSFORMS[config.transform]
        if config.transform == "auto" and any(np.isnan(y).any() for y in train_parts):
            candidates = candidates[:1]  # differences of missing values are missing
        lag = max(tr.lag for tr in candidates)
        holdout = holdout_for(train_parts, lag)
        plus = ", plus 1 for the differences" if lag else ""
        for i, y in enumerate(train_parts):
            need = config.window + horizon
            if len(y) - lag < need:
                raise ValueError(
                    f"series[{i}]: expected at least window + horizon = "
                    f"{config.window} + {horizon} = {need} values (training "
                    f"part{plus}), got {len(y)}."
                )
            if holdout and (
                len(y) - holdout - lag < config.window + horizon or holdout < horizon
            ):
                raise ValueError(
                    f"holdout: expected between horizon = {horizon} and "
                    f"{len(y) - lag - config.window - horizon} values (training part "
                    f"of series[{i}]: {len(y)} values, window + horizon = "
                    f"{need}{plus}), got {holdout}; set holdout=0 to skip the "
                    "calibration."
                )
        several = len(candidates) > 1
        fits = [
            fit_one(tr, train_parts, holdout, tr.name if several else "")
            for tr in candidates
        ]
        if not holdout:
            choice = np.zeros(len(train_parts), int)
            return RecurrentState(candidates, choice, [refit(fits[0], "")], None)
        series, origins, _ = fits[0][4]
        truth = np.stack(
            [
                train_parts[i][t : t + horizon]
                for i, t in zip(series, origins, strict=True)
            ]
        )
        # each series' transform: the smaller mean absolute held-out error
        errors = np.array(
            [
                [np.nanmean(np.abs(f[4][2].mean - truth)[series == i]) for f in fits]
                for i in range(len(train_parts))
            ]
        )
        choice = np.argmin(errors, axis=1)
        # the held-out forecasts of each series' transform (same rows in each)
        pick = choice[series][None, :, None]
        held = [f[4][2] for f in fits]
        take = lambda arrays: np.take_along_axis(np.stack(arrays), pick, 0)[0]
        held_out = Forecast(
            take([f.mean for f in held]),
            {p: take([f.lower[p] for f in held]) for p in held[0].lower},
            {p: take([f.upper[p] for f in held]) for p in held[0].upper},
            None,
        )
        try:
            if config.per_series:
                per = [
                    conformal_factors(
                        _rows(held_out, series == i),
                        truth[series == i],
                        config.per_step,
                    )
                    for i in range(len(train_parts))
                ]
                factors = {
                    p: np.stack([np.broadcast_to(f[p], (horizon,)) for f in per])
                    for p in per[0]
                }
            else:
                factors = conformal_factors(held_out, truth, config.per_step)
        except ValueError as err:
            raise ValueError(
                f"holdout: expected enough held-out values to calibrate the "
                f"intervals, got {holdout} per series ({err}); hold out more or set "
                "holdout=0."
            ) from err
        nets = [
            refit(f, tr.name if several else "") if np.any(choice == c) else None
            for c, (tr, f) in enumerate(zip(candidates, fits, strict=True))
        ]
        return RecurrentState(candidates, choice, nets, factors)

    def forecast(state, requests, horizon_):
        candidates, choice, fits, factors = state
        factors = None if factors is None else dict(factors)
        idx = np.array([i for i, _ in requests])
        out = None
        for c, (tr, net) in enumerate(zip(candidates, fits, strict=True)):
            rows = np.flatnonzero(choice[idx] == c)
            if rows.size == 0:
                continue
            scaling, params = net
            part = forecast_with(
                tr, scaling, params, [requests[r][1] for r in rows], idx[rows]
            )
            if out is None:
                out = Forecast(
                    np.empty((len(requests), horizon)),
                    {p: np.empty((len(requests), horizon)) for p in part.lower},
                    {p: np.empty((len(requests), horizon)) for p in part.upper},
                    None,
                )
            out.mean[rows] = part.mean
            for p in part.lower:
                out.lower[p][rows], out.upper[p][rows] = part.lower[p], part.upper[p]
        if factors is None:
            return out
        if config.per_series:
            factors = {p: c[idx] for p, c in factors.items()}
        return stretch(out, factors)

    return Method(name or f"jaxseq-{config.cell}", fit, forecast)
