"""A jaxseq recurrent forecaster as a :class:`~jaxseq.forecast.Method`: one global
model over all series (per-series scaling), fitted on their training parts."""

from __future__ import annotations

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
from .predict import predict, train
from .scaling import Scaling, fit_scaling
from .windows import Windows, history_windows, seasonal, training_windows

__all__ = ["CELLS", "RecurrentConfig", "recurrent"]

CELLS = {"lstm": cells.lstm, "gru": cells.gru, "elman": cells.elman}
HEADS = {"gaussian": gaussian, "quantile": quantile, "student_t": student_t}


class RecurrentConfig(NamedTuple):
    """Settings of :func:`recurrent` (validated when the method is built).

    ``period`` adds ``sin/cos`` calendar covariates of that period (``None``:
    none); ``steps`` is the approximate number of Adam updates (whole epochs);
    ``ensemble`` trains that many networks from different seeds and averages
    their forecasts and interval bounds.

    Calibration (:mod:`.conformal`): the last ``holdout`` values of each
    training part (``None``: ``2 * horizon``; ``0``: no calibration) are held
    out; the nets train on the rest with early stopping on the held-out loss
    (``patience`` Adam steps without improvement), their interval bounds are
    stretched by the conformal factors measured on the held-out windows, and
    (``refit``) they are retrained on the whole training part for ``steps``
    (with ``patience``: as many steps as the best held-out epoch took),
    keeping the factors. The factors
    pool every series' held-out values, or (``per_series``) each series has
    its own.
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


def recurrent(
    config: RecurrentConfig, horizon: int, name: str | None = None, **fit_options: Any
) -> Method:
    """The method ``jaxseq-<cell>``; ``fit_options`` go to :func:`train` and
    :func:`jaxseq.train.fit` (``checkpoint_dir``, ``log_dir``: one subfolder
    ``member<k>`` per ensemble member, and ``<dir>_holdout`` for the run on the
    training part less its held-out values; ``progress``)."""
    _check(config)
    covariates = None if config.period is None else seasonal(config.period)
    model = forecaster(
        CELLS[config.cell](config.hidden),
        window=config.window,
        horizon=horizon,
        strategy=config.strategy,
        head=HEADS[config.head](),
        num_covariates=0 if covariates is None else 2,
        num_layers=config.num_layers,
        dropout=config.dropout,
    )
    cut = dict(
        window=config.window,
        horizon=horizon,
        covariates=covariates,
        relative=config.relative,
    )

    holdout = 2 * horizon if config.holdout is None else config.holdout

    def options(k, phase):
        """fit_options with one checkpoint/log folder per ensemble member
        (``<dir>/member<k>``) and phase (the held-out run: ``<dir>_holdout``)."""

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
        outs = [
            predict(model, p, windows, scaling, key=jax.random.key(config.seed + k))
            for k, p in enumerate(params)
        ]
        avg = lambda key: {
            p: np.mean([getattr(o, key)[p] for o in outs], axis=0)
            for p in outs[0].lower
        }
        return outs[0]._replace(
            mean=np.mean([o.mean for o in outs], axis=0),
            lower=avg("lower"),
            upper=avg("upper"),
            paths=None,
        )

    def fit(train_parts):
        scaling = fit_scaling(train_parts)
        windows = training_windows(train_parts, scaling, **cut)
        if not holdout:
            params = [
                run(windows, k, config.steps)[0].params for k in range(config.ensemble)
            ]
            return scaling, params, None
        ends = [len(y) - holdout for y in train_parts]
        for i, (y, e) in enumerate(zip(train_parts, ends, strict=True)):
            if e < config.window + horizon or holdout < horizon:
                raise ValueError(
                    f"holdout: expected between horizon = {horizon} and "
                    f"{len(y) - config.window - horizon} values (training part of "
                    f"series[{i}]: {len(y)} values, window + horizon = "
                    f"{config.window + horizon}), got {holdout}; set holdout=0 to "
                    "skip the calibration."
                )
        early = training_windows(train_parts, scaling, end=ends, **cut)
        held = windows.origin >= np.asarray(ends)[windows.series]
        valid = Windows(*(a[held] for a in windows))
        fitted, params = [], []
        for k in range(config.ensemble):
            result, per_epoch = run(early, k, config.steps, "holdout", valid)
            fitted.append(result.params)
            if config.refit:
                steps = (
                    result.best_epoch * per_epoch if result.best_epoch else config.steps
                )
                params.append(run(windows, k, steps)[0].params)
        truth = scaling.inverse(
            valid.series, valid.z[:, config.window :] + valid.offset[:, None]
        )
        held_out = predict_all(fitted, valid, scaling)
        try:
            if config.per_series:
                rows = lambda i: valid.series == i
                per = [
                    conformal_factors(_rows(held_out, rows(i)), truth[rows(i)])
                    for i in range(len(train_parts))
                ]
                factors = {p: np.array([f[p] for f in per]) for p in per[0]}
            else:
                factors = conformal_factors(held_out, truth)
        except ValueError as err:
            raise ValueError(
                f"holdout: expected enough held-out values to calibrate the "
                f"intervals, got {holdout} per series ({err}); hold out more or set "
                "holdout=0."
            ) from err
        return scaling, params if config.refit else fitted, factors

    def forecast(state, requests, horizon_):
        scaling, params, factors = state
        # one window per request, cut from its history with its series' scaling
        idx = [i for i, _ in requests]
        sub = Scaling(scaling.loc[idx], scaling.scale[idx])
        series = [h for _, h in requests]
        origins = [(n, len(h)) for n, h in enumerate(series)]
        windows = history_windows(series, sub, origins, **cut)
        out = predict_all(params, windows, sub)
        if factors is None:
            return out
        if config.per_series:
            factors = {p: c[np.asarray(idx)] for p, c in factors.items()}
        return stretch(out, factors)

    return Method(name or f"jaxseq-{config.cell}", fit, forecast)
