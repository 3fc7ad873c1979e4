r"""Target transforms: what series a recurrent forecaster models, and how its
forecasts map back to the original units.

* :data:`LEVEL`: the values themselves, ``x_t = y_t`` (standardised per series
  and, with ``relative=True``, each window taken relative to its last value).
* :data:`DIFF`: first differences ``x_t = y_{t+1} - y_t`` (``t = 0..T-2``),
  standardised per series by the mean and sd of the training part's
  differences, so that a forecast of 0 continues the training part's average
  slope (a random walk with drift): a trend is extrapolated, not flattened to
  the training range. Forecasts of the differences ``d_1..d_H`` from the last
  value ``y_T`` map back to ``y_T + cumsum(d)``; an interval's half-widths
  ``w_h`` (each side) to ``sqrt(cumsum(w^2))``, as if the steps' errors were
  independent (the conformal calibration, :mod:`.conformal`, corrects the rest).

:func:`~jaxseq.forecast.recurrent` trains a net on each and weighs them per
series by their errors on held-out windows of the training part
(``transform="auto"``, ``combine``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .predict import Forecast

__all__ = ["DIFF", "LEVEL", "TRANSFORMS", "Transform"]


class Transform(NamedTuple):
    """A target transform.

    Attributes:
        name: ``"level"`` or ``"diff"``.
        lag: values lost at the start: the modelled series of ``y[:t]`` has
            ``t - lag`` values, and its position ``k`` ends at ``y[k + lag]``.
        forward: ``forward(y [T]) -> x [T - lag]``.
        inverse: ``inverse(forecast of x [N, H], last [N]) -> forecast of y``,
            ``last`` the value before each forecast's first step.
        relative: whether windows are taken relative to their last value.
    """

    name: str
    lag: int
    forward: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[Forecast, np.ndarray], Forecast]
    relative: bool


def _diff(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if np.isnan(y).any():
        raise ValueError(
            "transform: 'diff' needs series without missing values, got "
            f"{int(np.isnan(y).sum())} missing; use transform='level'."
        )
    return np.diff(y)


def _integrate(forecast: Forecast, last: np.ndarray) -> Forecast:
    last = np.asarray(last, dtype=np.float64)[:, None]
    mean = np.asarray(forecast.mean, dtype=np.float64)
    out = last + np.cumsum(mean, axis=1)
    width = lambda w: np.sqrt(np.cumsum(np.maximum(w, 0.0) ** 2, axis=1))
    lower = {p: out - width(mean - lo) for p, lo in forecast.lower.items()}
    upper = {p: out + width(hi - mean) for p, hi in forecast.upper.items()}
    paths = None
    if forecast.paths is not None:
        paths = last[:, None] + np.cumsum(forecast.paths, axis=2)
    return Forecast(out, lower, upper, paths)


LEVEL = Transform("level", 0, lambda y: np.asarray(y), lambda f, last: f, True)
DIFF = Transform("diff", 1, _diff, _integrate, False)

#: the candidates of each ``RecurrentConfig.transform`` setting
TRANSFORMS = {"level": (LEVEL,), "diff": (DIFF,), "auto": (LEVEL, DIFF)}
