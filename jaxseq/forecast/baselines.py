r"""Methods to hold the recurrent forecasters against, behind one interface.

A :class:`Method` is fitted once on the training parts of all series and then
forecasts from any history (the values before an origin), without refitting:

* :func:`naive` (``f_h = y_T``) and :func:`seasonal_naive` (``f_h =
  y_{T - m + (h-1) mod m}``) with normal intervals from the training residuals'
  standard deviation ``s``: ``s sqrt(h)`` and ``s sqrt(floor((h-1)/m) + 1)``
  (Hyndman and Athanasopoulos, *FPP3*, table 5.2); missing values (NaN) are
  filled by the last observed value (the first observed one before it);
* :func:`auto_arima` and :func:`auto_ets` (statsforecast, optional): selected
  and fitted on the training part, applied to each history by ``forward``
  (parameters kept, state filtered through the new values);
* :func:`bayes_nar`: :mod:`jaxseq.bayes`' non-linear autoregression, posterior
  predictive intervals from simulated paths (:func:`jaxseq.bayes.forecast`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import Any, NamedTuple

import jax
import numpy as np

from .predict import PROBS, Forecast

__all__ = [
    "Method",
    "auto_arima",
    "auto_ets",
    "bayes_nar",
    "naive",
    "seasonal_naive",
    "stack_forecasts",
]


class Method(NamedTuple):
    """A forecasting method as two functions.

    Attributes:
        name: the row label (``"naive"``, ``"autoarima"``, ``"jaxseq-lstm"``...).
        fit: ``fit(train: list[np.ndarray]) -> state`` from the training parts.
        forecast: ``forecast(state, requests, horizon) -> Forecast``, with
            ``requests`` a list of ``(series index, history)`` pairs; the
            :class:`~jaxseq.forecast.Forecast` has one row per request.
        probs: the interval probabilities it reports.
    """

    name: str
    fit: Callable[[list[np.ndarray]], Any]
    forecast: Callable[[Any, list[tuple[int, np.ndarray]], int], Forecast]
    probs: tuple[float, ...] = PROBS


def stack_forecasts(rows: Sequence[Forecast]) -> Forecast:
    """One :class:`Forecast` per request (``[1, H]`` each) -> one of ``[N, H]``."""
    probs = rows[0].lower.keys()
    cat = lambda key: {
        p: np.concatenate([getattr(r, key)[p] for r in rows]) for p in probs
    }
    return Forecast(
        np.concatenate([r.mean for r in rows]), cat("lower"), cat("upper"), None
    )


def _normal(mean: np.ndarray, sd: np.ndarray, probs) -> Forecast:
    z = {p: NormalDist().inv_cdf(0.5 + p / 2) for p in probs}
    return Forecast(
        mean[None],
        {p: (mean - z[p] * sd)[None] for p in probs},
        {p: (mean + z[p] * sd)[None] for p in probs},
        None,
    )


def _filled(y: np.ndarray) -> np.ndarray:
    """Missing values (NaN) filled by the last observed value before them, or
    the first observed one at the start."""
    seen = ~np.isnan(y)
    if seen.all():
        return y
    last = np.maximum.accumulate(np.where(seen, np.arange(len(y)), -1))
    first = int(np.argmax(seen))
    return y[np.where(last < 0, first, last)]


def _complete(y: np.ndarray, name: str, i: int) -> np.ndarray:
    bad = np.flatnonzero(np.isnan(y))
    if bad.size:
        raise ValueError(
            f"series[{i}]: {name} expected a complete history, got a missing value "
            f"at index {bad[0]} ({bad.size} in all); fill them first or leave "
            f"{name} out."
        )
    return y


def seasonal_naive(season: int | Sequence[int], name: str = "snaive") -> Method:
    """Seasonal naive with season ``m`` (one for all series or one per series);
    ``m = 1`` is the naive method."""

    def m_of(i):
        return int(season if np.ndim(season) == 0 else season[i])

    def fit(train):
        return [np.nanstd(y[m_of(i) :] - y[: -m_of(i)]) for i, y in enumerate(train)]

    def forecast(sd, requests, horizon):
        rows = []
        for i, history in requests:
            m, h = m_of(i), np.arange(horizon)
            mean = _filled(history)[len(history) - m + h % m]
            rows.append(_normal(mean, sd[i] * np.sqrt(h // m + 1.0), PROBS))
        return stack_forecasts(rows)

    return Method(name, fit, forecast)


def naive() -> Method:
    """The naive (random walk) method."""
    return seasonal_naive(1, "naive")


def _statsforecast(model_class, name, season):
    def fit(train):
        return [
            model_class(
                season_length=int(season if np.ndim(season) == 0 else season[i])
            ).fit(_complete(y, name, i))
            for i, y in enumerate(train)
        ]

    def forecast(models, requests, horizon):
        levels = [round(100 * p) for p in PROBS]
        rows = []
        for i, history in requests:
            out = models[i].forward(
                y=_complete(history, name, i), h=horizon, level=levels
            )
            get = lambda key, out=out: np.asarray(out[key], dtype=np.float64)[None]
            rows.append(
                Forecast(
                    get("mean"),
                    {p: get(f"lo-{lv}") for p, lv in zip(PROBS, levels, strict=True)},
                    {p: get(f"hi-{lv}") for p, lv in zip(PROBS, levels, strict=True)},
                    None,
                )
            )
        return stack_forecasts(rows)

    return Method(name, fit, forecast)


def auto_arima(season: int | Sequence[int] = 1) -> Method:
    """statsforecast's ``AutoARIMA(season_length=season)`` (needs statsforecast)."""
    from statsforecast.models import AutoARIMA

    return _statsforecast(AutoARIMA, "autoarima", season)


def auto_ets(season: int | Sequence[int] = 1) -> Method:
    """statsforecast's ``AutoETS(season_length=season)`` (needs statsforecast)."""
    from statsforecast.models import AutoETS

    return _statsforecast(AutoETS, "autoets", season)


def bayes_nar(
    order: int,
    hidden: int,
    *,
    key: jax.Array,
    sampler: str = "nuts",
    num_warmup: int = 300,
    num_samples: int = 300,
    num_chains: int = 2,
) -> Method:
    """The Bayesian non-linear AR(``order``) with ``hidden`` logistic units
    (:func:`jaxseq.bayes.fit` on :func:`jaxseq.bayes.lagged` inputs, one fit per
    series); point forecasts are the mean of the simulated paths."""
    from .. import bayes

    def fit(train):
        keys = jax.random.split(key, len(train))
        return [
            bayes.fit(
                k,
                *bayes.lagged(y, order),
                hidden=hidden,
                sampler=sampler,
                num_warmup=num_warmup,
                num_samples=num_samples,
                num_chains=num_chains,
            )
            for k, y in zip(
                keys,
                [_complete(y, "bayes-nar", i) for i, y in enumerate(train)],
                strict=True,
            )
        ]

    def forecast(fits, requests, horizon):
        rows = []
        for n, (i, history) in enumerate(requests):
            k = jax.random.fold_in(key, n)
            draws = bayes.forecast(
                k, fits[i], _complete(history, "bayes-nar", i), horizon
            ).draws
            tails = {
                p: np.quantile(draws, [(1 - p) / 2, (1 + p) / 2], axis=0) for p in PROBS
            }
            rows.append(
                Forecast(
                    draws.mean(0)[None],
                    {p: t[0][None] for p, t in tails.items()},
                    {p: t[1][None] for p, t in tails.items()},
                    None,
                )
            )
        return stack_forecasts(rows)

    return Method("bayes-nar", fit, forecast)
