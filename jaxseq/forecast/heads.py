r"""Probabilistic output heads: what a forecaster's readout predicts per step.

A :class:`Head` maps ``K`` raw outputs per forecast step to a predictive
distribution of the standardised value and scores it:

* :func:`gaussian`: ``K = 2``, mean ``mu`` and ``sigma = softplus(raw) + 1e-3``,
  trained by the negative log-likelihood
  ``log sigma + (y - mu)^2 / (2 sigma^2) + log(2 pi) / 2``; intervals are
  ``mu +- z_{(1+p)/2} sigma``; it can draw samples (recursive sample paths).
* :func:`student_t`: ``K = 3``, location ``mu``, scale
  ``s = softplus(raw) + 1e-3`` and degrees of freedom
  ``nu = 2 + softplus(raw)`` (> 2: a finite variance), trained by the negative
  log-likelihood of ``t_nu((y - mu) / s) / s``; intervals ``mu +- t_nu^{-1}((1+p)/2) s``
  (the quantile found by bisection on the regularised incomplete beta function:
  ``P(|T| < x) = I_{x^2 / (nu + x^2)}(1/2, nu/2)``); heavy tails for series with
  outliers.
* :func:`quantile`: ``K = len(levels)`` quantiles trained by the pinball loss
  ``max(tau (y - q), (tau - 1)(y - q))`` averaged over levels; the outputs are
  sorted before use (monotone rearrangement, so quantiles never cross); the
  ``p`` interval is the ``(1-p)/2`` and ``(1+p)/2`` quantiles, which must be
  among ``levels``.

Everything works on trailing axis ``K`` with any leading axes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["Head", "gaussian", "quantile", "student_t"]

#: the lower bound of a Gaussian head's sigma (standardised units), which keeps
#: the likelihood bounded on a perfectly predictable training set
MIN_SIGMA = 1e-3
#: the lower bound of a Student-t head's degrees of freedom (a finite variance)
MIN_DF = 2.0


class Head(NamedTuple):
    """A predictive distribution per step, as pure functions of raw outputs ``o``.

    Attributes:
        name: ``"gaussian"``, ``"student_t"`` or ``"quantile"``.
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


@functools.partial(jax.jit, static_argnames="iterations")
def t_quantile(prob: jax.Array, df: jax.Array, iterations: int = 60) -> jax.Array:
    """The ``prob`` quantile (``prob`` in ``[0.5, 1)``) of the standard Student-t
    with ``df`` degrees of freedom (broadcast), by bisection on
    ``v = x^2 / (df + x^2)`` in ``(0, 1)``, where
    ``I_v(1/2, df/2) = 1 - 2 (1 - prob) = 2 prob - 1`` (small ``v`` for large
    ``df`` keeps float32 precise there too)."""
    df = jnp.asarray(df)
    target = jnp.broadcast_to(2.0 * jnp.asarray(prob, df.dtype) - 1.0, df.shape)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        low = jax.scipy.special.betainc(0.5, df / 2, mid) < target
        return jnp.where(low, mid, lo), jnp.where(low, hi, mid)

    lo, hi = jax.lax.fori_loop(
        0, iterations, body, (jnp.zeros_like(df), jnp.ones_like(df))
    )
    v = 0.5 * (lo + hi)
    return jnp.sqrt(df * v / (1.0 - v))


def student_t() -> Head:
    """A Student-t head (location, scale and degrees of freedom per step)."""

    def params(o):
        scale = jax.nn.softplus(o[..., 1]) + MIN_SIGMA
        return o[..., 0], scale, jax.nn.softplus(o[..., 2]) + MIN_DF

    def loss(o, y):
        mu, scale, df = params(o)
        return -jax.scipy.stats.t.logpdf(y, df, mu, scale)

    def interval(o, prob):
        mu, scale, df = params(o)
        x = t_quantile(0.5 + _check_prob(prob) / 2, df)
        return mu - x * scale, mu + x * scale

    def sample(key, o):
        mu, scale, df = params(o)
        return mu + scale * jax.random.t(key, df, mu.shape, mu.dtype)

    return Head("student_t", 3, loss, lambda o: params(o)[0], interval, sample)


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
