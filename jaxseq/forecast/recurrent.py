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
from .heads import gaussian, quantile
from .models import STRATEGIES, forecaster
from .predict import predict, train
from .scaling import Scaling, fit_scaling
from .windows import history_windows, seasonal, training_windows

__all__ = ["CELLS", "RecurrentConfig", "recurrent"]

CELLS = {"lstm": cells.lstm, "gru": cells.gru, "elman": cells.elman}
HEADS = {"gaussian": gaussian, "quantile": quantile}


class RecurrentConfig(NamedTuple):
    """Settings of :func:`recurrent` (validated when the method is built).

    ``period`` adds ``sin/cos`` calendar covariates of that period (``None``:
    none); ``steps`` is the approximate number of Adam updates (whole epochs);
    ``ensemble`` trains that many networks from different seeds and averages
    their forecasts and interval bounds.
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


def recurrent(
    config: RecurrentConfig, horizon: int, name: str | None = None, **fit_options: Any
) -> Method:
    """The method ``jaxseq-<cell>``; ``fit_options`` go to :func:`train` and
    :func:`jaxseq.train.fit` (``checkpoint_dir``, ``log_dir``: one subfolder
    ``member<k>`` per ensemble member; ``progress``)."""
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

    def fit(train_parts):
        scaling = fit_scaling(train_parts)
        windows = training_windows(train_parts, scaling, **cut)
        per_epoch = max(1, windows.z.shape[0] // config.batch_size)
        epochs = max(1, math.ceil(config.steps / per_epoch))
        params = []
        for k in range(config.ensemble):
            options = {  # one checkpoint/log folder per ensemble member
                name: (
                    value
                    if value is None or config.ensemble == 1
                    else Path(value) / f"member{k}"
                )
                if name in ("checkpoint_dir", "log_dir")
                else value
                for name, value in fit_options.items()
            }
            result = train(
                model,
                windows,
                key=jax.random.key(config.seed + k),
                epochs=epochs,
                batch_size=config.batch_size,
                learning_rate=config.learning_rate,
                seed=config.seed + k,
                **options,
            )
            params.append(result.params)
        return train_parts, scaling, params

    def forecast(state, requests, horizon_):
        _, scaling, params = state
        # one window per request, cut from its history with its series' scaling
        idx = [i for i, _ in requests]
        sub = Scaling(scaling.loc[idx], scaling.scale[idx])
        series = [h for _, h in requests]
        origins = [(n, len(h)) for n, h in enumerate(series)]
        windows = history_windows(series, sub, origins, **cut)
        outs = [
            predict(model, p, windows, sub, key=jax.random.key(config.seed + k))
            for k, p in enumerate(params)
        ]
        mean = np.mean([o.mean for o in outs], axis=0)
        avg = lambda key: {
            p: np.mean([getattr(o, key)[p] for o in outs], axis=0)
            for p in outs[0].lower
        }
        return outs[0]._replace(
            mean=mean, lower=avg("lower"), upper=avg("upper"), paths=None
        )

    return Method(name or f"jaxseq-{config.cell}", fit, forecast)
