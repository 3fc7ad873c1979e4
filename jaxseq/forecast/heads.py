r"""Probabilistic output heads: what a forecaster's readout predicts per step.

A :class:`Head` maps ``K`` raw outputs per forecast step to a predictive
distribution of the standardised value and scores it:

* :func:`gaussian`: ``K = 2``, mean ``mu`` and ``sigma = softplus(raw) + 1e-3``,
  trained by the negative log-likelihood
  ``log sigma + (y - mu)^2 / (2 sigma^2) + log(2 pi) / 2``; intervals are
  ``mu +- z_{(1+p)/2} sigma``; it can draw samples (recursive sample paths).
* :func:`quantile`: ``K = len(levels)`` quantiles trained by the pinball loss
  ``max(tau (y - q), (tau - 1)(y - q))`` averaged over levels; the outputs are
  sorted before use (monotone rearrangement, so quantiles never cross); the
  ``p`` interval is the ``(1-p)/2`` and ``(1+p)/2`` quantiles, which must be
  among ``levels``.

Everything works on trailing axis ``K`` with any leading axes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Head", "gaussian", "quantile"]

#: the lower bound of a Gaussian head's sigma (standardised units), which keeps
#: the likelihood bounded on a perfectly predictable training set
MIN_SIGMA = 1e-3


class Head(NamedTuple):
    """A predictive distribution per step, as pure functions of raw outputs ``o``.

    Attributes:
        name: ``"gaussian"`` or ``"quantile"``.
        size: ``K``, raw outputs per step.
        loss: ``loss(o [..., K], y [...]) -> [...]`` (to be averaged).
        point: ``point(o) -> [...]`` the point forecast (mean or median).
        interval: ``interval(o, prob) -> (lower, upper)`` central interval.
        sample: ``sample(key, o) -> [...]`` one draw, or ``None`` (cannot sample).
    """

    name: str
    size: int
    loss: Callable
    point: Callable
    interval: Callable
    sample: Callable | None


def _check_prob(prob: float) -> float:
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob: expected a probability in (0, 1), got {prob!r}.")
    return float(prob)


def gaussian() -> Head:
    """A Gaussian head (mean and standard deviation per step)."""

    def params(o):
        return o[..., 0], jax.nn.softplus(o[..., 1]) + MIN_SIGMA

    def loss(o, y):
        mu, sigma = params(o)
        r = (y - mu) / sigma
        return jnp.log(sigma) + 0.5 * r * r + 0.5 * jnp.log(2 * jnp.pi)

    def interval(o, prob):
        mu, sigma = params(o)
        z = NormalDist().inv_cdf(0.5 + _check_prob(prob) / 2)
        return mu - z * sigma, mu + z * sigma

    def sample(key, o):
        mu, sigma = params(o)
        return mu + sigma * jax.random.normal(key, mu.shape, mu.dtype)

    return Head("gaussian", 2, loss, lambda o: params(o)[0], interval, sample)


def quantile(levels: Sequence[float] = (0.05, 0.1, 0.5, 0.9, 0.95)) -> Head:
    """A quantile head trained by the pinball loss.

    Args:
        levels: increasing probabilities in (0, 1), including 0.5 (the point
            forecast); the default gives the 80% and 90% intervals.
    """
    taus = tuple(float(t) for t in levels)
    if not taus or any(not 0 < t < 1 for t in taus) or list(taus) != sorted(set(taus)):
        raise ValueError(
            f"levels: expected increasing probabilities in (0, 1), got {levels!r}."
        )
    if 0.5 not in taus:
        raise ValueError(f"levels: expected 0.5 among the levels, got {taus}.")
    tau = jnp.asarray(taus)

    def loss(o, y):
        d = y[..., None] - o
        return jnp.mean(jnp.maximum(tau * d, (tau - 1) * d), axis=-1)

    def at(o, level):
        return jnp.sort(o, axis=-1)[..., taus.index(level)]

    def interval(o, prob):
        lo, hi = 0.5 - _check_prob(prob) / 2, 0.5 + prob / 2
        found = (
            [t for t in taus if abs(t - lo) < 1e-9],
            [t for t in taus if abs(t - hi) < 1e-9],
        )
        if not (found[0] and found[1]):
            raise ValueError(
                f"prob: expected levels {lo:g} and {hi:g} in the quantile head for a "
                f"{prob:g} interval, got levels {taus}."
            )
        return at(o, found[0][0]), at(o, found[1][0])

    return Head("quantile", len(taus), loss, lambda o: at(o, 0.5), interval, None)
