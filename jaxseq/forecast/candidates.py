r"""How :func:`~jaxseq.forecast.recurrent` weighs its candidates per series, and
its classical candidates (:mod:`.classical`) fitted and applied beside the nets.

Every candidate (each net: a transform crossed with a highway order; each
classical model) forecasts the same held-out windows of the training part
(the origins in its last ``holdout`` values) from a fit that never saw them;
:func:`pool_weights` turns each series' mean absolute errors there into its
weights. The classical models are then refitted on the whole training part
(``refit``), like the nets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .baselines import stack_forecasts
from .classical import Classical, LinearAR, fit_ar, forecast_ar
from .predict import Forecast

__all__ = ["classical_fits", "classical_forecast", "fallback", "pool_weights"]


def pool_weights(how: str, errors: np.ndarray, pool: float) -> np.ndarray:
    """``[S, K]`` weights of ``K`` candidates from their held-out mean absolute
    errors ``[S, K]``: ``"choose"`` the smallest, ``"mean"`` all alike,
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


def fallback(weights: np.ndarray, errors: np.ndarray, simple, pool: float):
    """``weights [S, K]`` with each series whose best simple candidate
    (``simple [K]`` True) has a held-out error within ``1 + pool`` times the
    best net's taking the simple candidates alone, weighted as among
    themselves (``pool_weights`` on their columns, ``"pool"``): a net is kept
    only where validation says it beats the simple models by more than the
    margin that pooling treats as a tie (shrinkage to the simpler model,
    the one-standard-error rule's spirit)."""
    simple = np.asarray(simple, bool)
    if not simple.any() or simple.all():
        return weights
    errors = np.where(np.isnan(errors), np.inf, errors)
    best_net = np.min(errors[:, ~simple], axis=1)
    best_simple = np.min(errors[:, simple], axis=1)
    falls = np.isfinite(best_simple) & (best_simple <= (1 + pool) * best_net)
    out = np.array(weights, dtype=np.float64)
    if falls.any():
        own = pool_weights("pool", errors[falls][:, simple], pool)
        out[falls] = 0.0
        out[np.ix_(falls, simple)] = own
    return out


def classical_fits(
    candidate: Classical,
    train_parts: Sequence[np.ndarray],
    horizon: int,
    max_order: int,
    holdout: int = 0,
) -> list[LinearAR]:
    """``candidate`` fitted on each training part less its last ``holdout``
    values (one model per series)."""
    return [
        fit_ar(candidate, np.asarray(y)[: len(y) - holdout], horizon, max_order)
        for y in train_parts
    ]


def classical_forecast(fits: Sequence[LinearAR], requests) -> Forecast:
    """The forecasts ``[N, H]`` of ``requests`` (``(series, history)`` pairs)
    by each series' fitted model, in the requests' order."""
    if not len(requests):
        raise ValueError("requests: expected at least one, got none.")
    return stack_forecasts([forecast_ar(fits[i], [history]) for i, history in requests])
