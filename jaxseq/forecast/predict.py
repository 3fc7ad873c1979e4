"""Training a forecaster with :func:`jaxseq.train.fit`, and forecasts in original
units with prediction intervals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from ..train import FitResult, fit, optimizer
from ..train.config import KEYWORDS, from_keywords
from .models import Forecaster
from .scaling import Scaling
from .windows import Windows

__all__ = ["Forecast", "predict", "train"]

PROBS = (0.8, 0.9)


class Forecast(NamedTuple):
    """Forecasts of ``N`` windows over ``H`` steps, original units.

    Attributes:
        mean: ``[N, H]`` point forecasts (the head's mean or median; recursive:
            along the plug-in path).
        lower, upper: ``prob -> [N, H]`` central prediction intervals.
        paths: ``[N, S, H]`` sample paths, or ``None``.
    """

    mean: np.ndarray
    lower: dict[float, np.ndarray]
    upper: dict[float, np.ndarray]
    paths: np.ndarray | None


def train(
    model: Forecaster,
    windows: Windows,
    *,
    key: jax.Array,
    epochs: int,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    valid: Windows | None = None,
    patience: int | None = None,
    params: Any = None,
    **fit_options: Any,
) -> FitResult:
    """Fit ``model`` to training ``windows`` by Adam (gradient clipped at 1) with
    :func:`jaxseq.train.fit` (``fit_options``: ``checkpoint_dir``, ``log_dir``,
    ``progress``, ``seed``...). ``params`` defaults to ``model.init(key)``;
    ``valid`` windows (e.g. the training part's last windows) drive early
    stopping on their loss and the returned best parameters."""
    k_init, k_fit = jax.random.split(key)
    params = model.init(k_init) if params is None else params
    fit_options.setdefault("progress", False)
    flat = {k: fit_options.pop(k) for k in list(fit_options) if k in KEYWORDS}
    return fit(
        model.loss,
        optimizer("adam", learning_rate, clip_norm=1.0),
        params,
        windows.data(),
        key=k_fit,
        batch_size=min(batch_size, windows.z.shape[0]),
        epochs=epochs,
        valid_data=None if valid is None else valid.data(),
        **from_keywords({"patience": patience, **flat}),
        **fit_options,
    )


def _unscale(scaling: Scaling, windows: Windows, z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    shape = windows.offset.shape + (1,) * (z.ndim - 1)
    return scaling.inverse(windows.series, z + windows.offset.reshape(shape))


def predict(
    model: Forecaster,
    params: Any,
    windows: Windows,
    scaling: Scaling,
    *,
    key: jax.Array | None = None,
    num_samples: int = 500,
    probs: Sequence[float] = PROBS,
) -> Forecast:
    """Point forecasts, intervals and (with ``key``) sample paths.

    Direct and seq2seq intervals come from each step's head; a recursive
    forecaster's first step too, its later steps from the quantiles of
    ``num_samples`` sample paths (which need ``key``).

    Raises:
        ValueError: a recursive forecast over ``H > 1`` without ``key``.
    """
    z, cov = windows.z[:, : model.window], windows.cov
    o = model.outputs(params, z, cov)
    mean = _unscale(scaling, windows, model.head.point(o))
    paths = None
    if key is not None and model.paths is not None:
        paths = _unscale(
            scaling, windows, model.paths(params, z, cov, key, num_samples=num_samples)
        )
    if model.strategy == "recursive" and model.horizon > 1 and paths is None:
        raise ValueError(
            "key: expected a PRNG key for the sample paths that give a recursive "
            f"forecaster's intervals beyond step 1, got {key!r}."
        )
    lower, upper = {}, {}
    for p in probs:
        lo, hi = (_unscale(scaling, windows, b) for b in model.head.interval(o, p))
        if model.strategy == "recursive" and model.horizon > 1:
            tail = np.quantile(paths[:, :, 1:], [(1 - p) / 2, (1 + p) / 2], axis=1)
            lo[:, 1:], hi[:, 1:] = tail
        lower[p], upper[p] = lo, hi
    return Forecast(mean, lower, upper, paths)
