"""Windows cut from one or many series, for training and for forecasting.

A window at *origin* ``t`` of series ``i`` holds the ``W`` observed values before
``t`` and (for training) the ``H`` values to forecast::

    z[n] = (y_i[t-W : t+H] - loc_i) / scale_i - offset[n]       # [W + H]
    cov[n, k] = covariates of the time of z[n, k + 1]            # [W + H - 1, C]

A model reads position ``k`` as ``[z_k, cov_k]`` and predicts ``z_{k+1}``: the
covariates that go with an input are those of the step being predicted (known
future inputs such as the calendar; :func:`seasonal`). ``offset`` is ``0``, or
with ``relative=True`` the last observed standardised value ``z_{W-1}``, so that
a window is modelled relative to its last value (what lets a net forecast a
trend beyond the training range; with missing values, the window's last
observed value).

Missing values (NaN, kept by ``missing=True`` in :mod:`.data`) stay NaN in
``z``: the forecasters read a missing input as 0 and leave missing targets out
of the loss. A forecast window with no observed value is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from .scaling import Scaling

__all__ = [
    "Covariates",
    "Windows",
    "check_sizes",
    "history_windows",
    "seasonal",
    "series_onehot",
    "training_windows",
]

#: ``covariates(i, times) -> [len(times), C]`` for series ``i`` (``times`` are
#: 0-based integer positions, possibly past the series' end), or one array
#: ``[T_i + H, C]`` per series covering the forecast steps too
#: (a series' last origin ``t`` reads rows up to ``t + H - 1``).
Covariates = Callable[[int, np.ndarray], np.ndarray] | Sequence[np.ndarray] | None


class Windows(NamedTuple):
    """Windows of standardised values (float32 arrays, ready for a model).

    Attributes:
        z: ``[N, W + H]`` for training, ``[N, W]`` for forecasting.
        cov: ``[N, W + H - 1, C]`` covariates (``C = 0`` without any).
        offset: ``[N]`` standardised level subtracted from ``z``.
        series: ``[N]`` series index. origin: ``[N]`` index of the first
            forecast step in its series.
    """

    z: np.ndarray
    cov: np.ndarray
    offset: np.ndarray
    series: np.ndarray
    origin: np.ndarray

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        """``(z, cov)``, the batch a forecaster's ``loss`` reads."""
        return self.z, self.cov


def check_sizes(window: int, horizon: int) -> tuple[int, int]:
    """Refuse a window or horizon that is not a positive int."""
    for name, value in (("window", window), ("horizon", horizon)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"{name}: expected a positive int, got {value!r}.")
        if value <= 0:
            raise ValueError(f"{name}: expected a positive int, got {value}.")
    return int(window), int(horizon)


def seasonal(
    period: float, harmonics: int = 1
) -> Callable[[int, np.ndarray], np.ndarray]:
    """Calendar covariates ``sin/cos(2 pi k t / period)``, ``k = 1..harmonics``."""
    if not period > 1:
        raise ValueError(f"period: expected a number > 1, got {period!r}.")

    def features(i: int, times: np.ndarray) -> np.ndarray:
        angle = 2 * np.pi * np.outer(times, np.arange(1, harmonics + 1)) / period
        return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)

    return features


def series_onehot(
    num_series: int,
    covariates: Covariates = None,
    index: Sequence[int] | None = None,
) -> Callable[[int, np.ndarray], np.ndarray]:
    """Covariates that add the one-hot of each window's series (``num_series``
    columns after those of ``covariates``): a global model can then tell its
    series apart (the item inputs of DeepAR, Salinas et al. 2020).

    ``index[i]`` is the series of the ``i``-th series passed to the windowing
    function (``None``: ``i`` itself), for forecasts of a subset of the series.
    """

    def features(i: int, times: np.ndarray) -> np.ndarray:
        one = np.zeros((len(times), num_series))
        one[:, i if index is None else int(index[i])] = 1.0
        if covariates is None:
            return one
        return np.hstack([_covariates(covariates, i, times), one])

    return features


def _covariates(covariates: Covariates, i: int, times: np.ndarray) -> np.ndarray:
    if covariates is None:
        return np.zeros((times.shape[0], 0))
    if callable(covariates):
        return np.asarray(covariates(i, times), dtype=np.float64).reshape(
            len(times), -1
        )
    table = np.asarray(covariates[i], dtype=np.float64)
    table = table[:, None] if table.ndim == 1 else table
    if times[-1] >= table.shape[0] or not np.all(np.isfinite(table[times])):
        raise ValueError(
            f"covariates[{i}]: expected finite rows up to index {times[-1]} (known "
            f"future values), got {table.shape[0]} rows."
        )
    return table[times]


def _cut(series, scaling, covariates, i, t, window, horizon, relative, future):
    y = series[i]
    z = scaling.forward(i, y[t - window : t + (horizon if future else 0)])
    seen = np.flatnonzero(~np.isnan(z[:window]))
    if not future and seen.size == 0:
        raise ValueError(
            f"origins: expected an observed value among the window = {window} values "
            f"before origin {t} of series[{i}], got only missing ones."
        )
    offset = z[seen[-1]] if relative and seen.size else 0.0
    cov = _covariates(covariates, i, np.arange(t - window + 1, t + horizon))
    return z - offset, cov, offset


def _stack(cuts, index, origins) -> Windows:
    z, cov, offset = zip(*cuts, strict=True)
    return Windows(
        np.stack(z).astype(np.float32),
        np.stack(cov).astype(np.float32),
        np.asarray(offset, dtype=np.float32),
        np.asarray(index, dtype=np.int32),
        np.asarray(origins, dtype=np.int32),
    )


def training_windows(
    series: Sequence[np.ndarray],
    scaling: Scaling,
    *,
    window: int,
    horizon: int,
    end: int | Sequence[int] | None = None,
    stride: int = 1,
    covariates: Covariates = None,
    relative: bool = False,
) -> Windows:
    """Every window whose values all lie in ``series[i][:end[i]]`` (every
    ``stride``-th origin, counted back from the last).

    Raises:
        ValueError: a training part shorter than ``window + horizon`` (naming the
            series and both numbers), or a bad ``window``/``horizon``/``stride``.
    """
    window, horizon = check_sizes(window, horizon)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride: expected a positive int, got {stride!r}.")
    ends = [len(y) for y in series] if end is None else end
    ends = [ends] * len(series) if np.ndim(ends) == 0 else list(ends)
    cuts, index, origins = [], [], []
    for i, (y, stop) in enumerate(zip(series, ends, strict=True)):
        stop = min(int(stop), len(y))
        if stop < window + horizon:
            raise ValueError(
                f"series[{i}]: expected at least window + horizon = {window} + "
                f"{horizon} = {window + horizon} values (training part), got {stop}."
            )
        for t in range(stop - horizon, window - 1, -stride)[::-1]:
            cuts.append(
                _cut(series, scaling, covariates, i, t, window, horizon, relative, True)
            )
            index.append(i)
            origins.append(t)
    return _stack(cuts, index, origins)


def history_windows(
    series: Sequence[np.ndarray],
    scaling: Scaling,
    origins: Sequence[tuple[int, int]],
    *,
    window: int,
    horizon: int,
    covariates: Covariates = None,
    relative: bool = False,
) -> Windows:
    """Windows to forecast from: ``origins`` lists ``(series index, origin t)``;
    ``z`` holds ``y_i[t-W:t]`` only (nothing at or after ``t`` is read).

    Raises:
        ValueError: an origin with fewer than ``window`` values before it.
    """
    window, horizon = check_sizes(window, horizon)
    cuts, index, starts = [], [], []
    for i, t in origins:
        if not window <= t <= len(series[i]):
            raise ValueError(
                f"origins: expected an origin in [window, len(series[{i}])] = "
                f"[{window}, {len(series[i])}], got {t}."
            )
        cuts.append(
            _cut(series, scaling, covariates, i, t, window, horizon, relative, False)
        )
        index.append(i)
        starts.append(t)
    return _stack(cuts, index, starts)
