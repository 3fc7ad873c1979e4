"""The global recurrent nets of :func:`~jaxseq.forecast.recurrent`: one per
candidate (a target transform crossed with a highway order), built once per
setting, trained on the training parts less their held-out values (to weigh
the candidates and calibrate), refitted on the whole training parts, and
applied to histories in original units."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import jax
import numpy as np

from .config import CELLS, HEADS, RecurrentConfig, Setup
from .models import forecaster, member, stacked
from .online import rows_of
from .predict import predict, train
from .scaling import Scaling, fit_scaling
from .transforms import Transform
from .windows import Windows, history_windows, series_onehot, training_windows

__all__ = [
    "check_lengths",
    "fit_one",
    "forecast_with",
    "holdout_for",
    "models_for",
    "net_candidates",
    "refit",
]


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


def models_for(setup: Setup, num_series: int) -> dict[int, Any]:
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


def _covariates_for(setup: Setup, num_series: int, index=None):
    """Calendar inputs, then (``series_input``) the one-hot of the window's
    series: ``index[i]`` for the ``i``-th series passed (all of them when
    ``index`` is ``None``)."""
    if not setup.config.series_input:
        return setup.calendar
    return series_onehot(num_series, setup.calendar, index)


def _cut(setup: Setup, tr: Transform, num_series: int, index=None) -> dict[str, Any]:
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


def _run(setup: Setup, model, windows: Windows, steps: int, phase="", valid=None):
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


def _predict_all(setup: Setup, model, params, windows: Windows, scaling: Scaling):
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
        rows_of(predict(model, p, padded, scaling, key=key(k)), slice(0, n))._replace(
            paths=None
        )
        for k, p in enumerate(params)
    ]


def forecast_with(setup: Setup, tr, model, scaling, params, histories, index, count):
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


def holdout_for(setup: Setup, train_parts, lag: int) -> int:
    """The held-out values per training part (``RecurrentConfig.holdout``)."""
    config = setup.config
    if config.holdout is not None:
        return config.holdout
    shortest = min(len(y) for y in train_parts)
    room = shortest - lag - config.window - setup.horizon
    return max(setup.horizon, min(max(2 * setup.horizon, shortest // 4), room))


def fit_one(setup: Setup, tr, model, train_parts, holdout: int, phase: str):
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


def refit(setup: Setup, model, fitted, phase: str):
    """``fitted`` (:func:`_fit_one`) retrained on the whole training part
    (``refit``): ``(scaling, params)``."""
    scaling, windows, params, steps, held = fitted
    if held is None or not setup.config.refit:
        return scaling, params
    return scaling, _run(setup, model, windows, steps, phase)[0]


def net_candidates(setup: Setup, transforms) -> tuple[list, list[str]]:
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


def check_lengths(setup: Setup, train_parts, holdout: int, lag: int) -> None:
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
