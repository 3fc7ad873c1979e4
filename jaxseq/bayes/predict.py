"""Posterior predictions of a :class:`~jaxseq.bayes.Fit` in original units.

* :func:`function_draws` and :func:`noise_sd`: draws of ``f(x*)`` and ``sigma``;
* :func:`predict`: credible band of ``f`` and predictive interval of a new ``y``;
* :func:`forecast`: multi-step-ahead paths of a non-linear autoregression.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import ArrayLike, Float

from .._typing import Key
from ._validate import check_x
from .driver import host_generator
from .infer import Fit
from .models import network_mean

__all__ = ["Prediction", "forecast", "function_draws", "noise_sd", "predict"]


class Prediction(NamedTuple):
    """Posterior summaries at new inputs, in original units.

    Attributes:
        mean: ``[n*]`` posterior mean of ``f(x*)``.
        f_lower, f_upper: ``[n*]`` equal-tailed credible band of ``f(x*)``.
        lower, upper: ``[n*]`` posterior predictive interval of a new ``y*``.
        draws: ``[D, n*]`` draws of ``f(x*)`` (or, from :func:`forecast`, of the
            simulated path ``y*``).
        prob: the probability of the band and interval (e.g. 0.9).
    """

    mean: np.ndarray
    f_lower: np.ndarray
    f_upper: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    draws: np.ndarray
    prob: float = float("nan")


def function_draws(fit: Fit, x_new: Float[ArrayLike, "n p"]) -> np.ndarray:
    """Draws of ``f(x_new)`` in original units, ``[chains, draws, n*]``."""
    xa = check_x(x_new, "x_new", num_inputs=fit.x.shape[1])
    s = fit.samples
    b0 = np.asarray(s["b0"], float) if fit.bias else 0.0
    f = _network_mean_np(fit.scaler.x(xa), s["beta"], s["gamma"], b0)
    return np.asarray(fit.scaler.y_inverse(f))


def _network_mean_np(x, beta, gamma, b0) -> np.ndarray:
    """:func:`~jaxseq.bayes.models.network_mean` in NumPy (float64): the draws
    are on the host already, and eager ``jax.numpy`` calls would each compile a
    small program (a cold fit's diagnostics compiled about 40 of them).
    ``x`` ``[n, p]``, ``beta`` ``[..., m]``, ``gamma`` ``[..., m, d]`` ->
    ``[..., n]``."""
    x1 = np.concatenate([np.ones((x.shape[0], 1)), np.asarray(x, float)], axis=1)
    t = np.asarray(gamma, float) @ x1.T  # [..., m, n]
    hidden = 0.5 * (1.0 + np.tanh(0.5 * t))  # the logistic function, overflow-free
    out = (np.asarray(beta, float)[..., None, :] @ hidden)[..., 0, :]
    return out + np.asarray(b0, float)[..., None]


def noise_sd(fit: Fit) -> np.ndarray:
    """Draws of the noise standard deviation sigma in original units ``[C, S]``."""
    return fit.scaler.y_scale / np.sqrt(fit.samples["prec"])


def predict(
    key: Key, fit: Fit, x_new: Float[ArrayLike, "n p"], *, prob: float = 0.9
) -> Prediction:
    """Credible band of ``f`` and posterior predictive interval of ``y`` at ``x_new``.

    Both are equal-tailed with probability ``prob``; the predictive draws are
    ``f(x*) + sigma * eps`` with one ``eps ~ N(0, 1)`` per draw and input, drawn
    on the host from ``key`` (:func:`~jaxseq.bayes.driver.host_generator`: the
    draws of ``f`` are NumPy arrays already, and nothing is compiled).
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob: expected a value in (0, 1), got {prob}.")
    f = function_draws(fit, x_new).reshape(-1, np.shape(x_new)[0])
    sigma = noise_sd(fit).reshape(-1, 1)
    y_draws = f + sigma * host_generator(key).standard_normal(f.shape)
    return _summarise(f, y_draws, prob, f)


def _summarise(f, y_draws, prob, draws) -> Prediction:
    tail = (1.0 - prob) / 2
    f_lo, f_hi = np.quantile(f, [tail, 1 - tail], axis=0)
    lo, hi = np.quantile(y_draws, [tail, 1 - tail], axis=0)
    return Prediction(f.mean(axis=0), f_lo, f_hi, lo, hi, draws, float(prob))


def forecast(
    key: Key,
    fit: Fit,
    history: Float[ArrayLike, " T"],
    steps: int,
    *,
    prob: float = 0.9,
) -> Prediction:
    """Multi-step-ahead predictive of a non-linear autoregression.

    ``fit`` must come from inputs built by :func:`~jaxseq.bayes.lagged` (``p`` lags,
    most recent first). For each posterior draw, a path is simulated forward
    ``y_t = f(y_{t-1}, ..., y_{t-p}) + sigma * eps_t``, feeding simulated values
    back, so the bands carry both parameter and propagated noise uncertainty.

    Args:
        key: PRNG key. fit: a fitted autoregression.
        history: at least ``p`` past values (original units), the last is the most
            recent.
        steps: horizon ``H >= 1``. prob: band probability.

    Returns:
        A :class:`Prediction` over the ``H`` future steps; ``mean``/``f_*`` summarise
        the noise-free one-step means along the simulated paths, ``lower``/``upper``
        the paths themselves; ``draws`` holds the ``[D, H]`` paths.
    """
    order = fit.x.shape[1]
    hist = np.asarray(history, dtype=float)
    if hist.ndim != 1 or hist.shape[0] < order or not np.all(np.isfinite(hist)):
        raise ValueError(
            f"history: expected at least {order} finite values (the AR order), got "
            f"shape {hist.shape}."
        )
    if not isinstance(steps, int | np.integer) or steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps!r}.")
    s = jax.tree.map(lambda v: jnp.asarray(v).reshape((-1,) + v.shape[2:]), fit.samples)
    b0 = s["b0"] if fit.bias else jnp.zeros_like(s["prec"])
    sigma = jnp.asarray(noise_sd(fit).reshape(-1))
    sc = fit.scaler
    lags0 = jnp.asarray(hist[::-1][:order].copy())

    def path(k, beta, gamma, b0, sigma):
        def one(lags, eps):
            xs = (lags - sc.x_mean) / sc.x_scale
            f = sc.y_inverse(network_mean(xs[None, :], beta, gamma, b0)[0])
            y = f + sigma * eps
            return jnp.concatenate([y[None], lags[:-1]]), (f, y)

        eps = jax.random.normal(k, (steps,))
        return jax.lax.scan(one, lags0, eps)[1]

    keys = jax.random.split(key, sigma.shape[0])
    f, y = jax.jit(jax.vmap(path))(keys, s["beta"], s["gamma"], b0, sigma)
    f, y = np.asarray(f), np.asarray(y)
    return _summarise(f, y, prob, y)
