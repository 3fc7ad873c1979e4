r"""Forecast combination: several members' forecasts made into one.

Choosing one model per series on a few held-out values is fragile (a coin
flip when two are close); combining them is the robust alternative (M4:
combinations beat picks, Makridakis et al. 2020). :func:`combine` takes the
members' point forecasts' mean or median, and for each interval probability
``p`` the same statistic of the members' half-widths on each side about their
own points, laid about the combined point::

    m = agg_k m_k,   lo_p = m - agg_k (m_k - lo_k),   hi_p = m + agg_k (hi_k - m_k)

(:func:`~jaxseq.forecast.recurrent` then calibrates the combined intervals by
split conformal on the combined held-out forecasts, :mod:`.conformal`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .predict import Forecast

__all__ = ["COMBINE", "combine"]

#: the statistics :func:`combine` takes over members (``RecurrentConfig.combine``)
COMBINE: dict[str, Callable[..., np.ndarray]] = {"mean": np.mean, "median": np.median}


def combine(forecasts: Sequence[Forecast], how: str = "mean", weights=None) -> Forecast:
    """One forecast from ``K`` members' forecasts of the same ``[N, H]`` values.

    Args:
        forecasts: the members' forecasts (the same shapes and probabilities).
        how: ``"mean"`` or ``"median"`` over members.
        weights: ``None`` (equal), or for ``how="mean"`` non-negative weights
            ``[K]`` or ``[K, N]`` (one per member and forecast row), each
            column summing to 1: the weighted mean of points and half-widths.

    Returns:
        the combined :class:`~.predict.Forecast` (``paths=None``).

    Raises:
        ValueError: no member, an unknown ``how``, or members of other shapes.
    """
    if how not in COMBINE:
        raise ValueError(f"how: expected one of {sorted(COMBINE)}, got {how!r}.")
    if len(forecasts) == 0:
        raise ValueError("forecasts: expected at least one member, got none.")
    shape = np.shape(forecasts[0].mean)
    for k, f in enumerate(forecasts):
        if np.shape(f.mean) != shape or set(f.lower) != set(forecasts[0].lower):
            raise ValueError(
                f"forecasts[{k}]: expected means of shape {shape} and intervals "
                f"{sorted(forecasts[0].lower)}, got {np.shape(f.mean)} and "
                f"{sorted(f.lower)}."
            )
    if weights is None:
        agg = lambda arrays: COMBINE[how](np.stack(arrays), axis=0)
    else:
        w = np.asarray(weights, dtype=np.float64)
        w = w.reshape(w.shape + (1,) * (len(shape) + 1 - w.ndim))
        if how != "mean" or w.shape[0] != len(forecasts) or np.any(w < 0):
            raise ValueError(
                f"weights: expected {len(forecasts)} non-negative weights per row "
                f"with how='mean', got shape {np.shape(weights)} with how={how!r}."
            )
        # a member of weight 0 is left out, even where its forecast is not finite
        agg = lambda arrays: np.sum(np.where(w > 0, w * np.stack(arrays), 0.0), axis=0)
    means = [np.asarray(f.mean, dtype=np.float64) for f in forecasts]
    mean = agg(means)
    lower, upper = {}, {}
    for p in forecasts[0].lower:
        lower[p] = mean - agg(
            [m - f.lower[p] for m, f in zip(means, forecasts, strict=True)]
        )
        upper[p] = mean + agg(
            [f.upper[p] - m for m, f in zip(means, forecasts, strict=True)]
        )
    return Forecast(mean, lower, upper, None)
