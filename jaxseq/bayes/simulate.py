"""Draws from the hierarchical prior and starting points for the Gibbs sampler.

Used for chain initialisation (:func:`initial_position`) and for simulation-based
calibration (:func:`sample_prior`, which must match the NumPyro model's prior
exactly; a test compares the two).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._typing import Key
from . import _linalg as la
from . import conditionals as cond
from .gibbs import NetParams
from .models import Prior

__all__ = ["initial_position", "sample_prior"]


def initial_position(
    key: Key, prior: Prior, hidden: int, dtype=jnp.float32
) -> NetParams:
    """A dispersed starting point: ``gamma_j ~ N(a_gamma, C_gamma)`` independently,
    hyperparameters at their prior guesses, ``beta = mu_beta``, ``b0 = a_0`` (the
    first sweep redraws ``beta`` from its conditional)."""
    a_gamma = jnp.asarray(prior.a_gamma, dtype)
    C_gamma = jnp.asarray(prior.C_gamma, dtype)
    d = a_gamma.shape[0]
    eps = jax.random.normal(key, (hidden, d), dtype)
    gamma = a_gamma + eps @ la.cholesky(C_gamma).T
    scalar = lambda v: jnp.asarray(v, dtype)
    return NetParams(
        beta=jnp.full((hidden,), prior.a_beta, dtype),
        b0=scalar(prior.a_0),
        gamma=gamma,
        mu_beta=scalar(prior.a_beta),
        prec_beta=scalar(1.0 / prior.C_b),
        mu_gamma=a_gamma,
        prec_gamma=la.inv_spd(C_gamma),
        prec=scalar(1.0 / prior.S),
    )


def sample_prior(
    key: Key, prior: Prior, hidden: int, *, bias: bool = True, dtype=jnp.float32
) -> NetParams:
    """One draw of every parameter from the hierarchical prior (used for simulation-
    based calibration); ``b0 = 0`` when ``bias`` is False."""
    ks = jax.random.split(key, 8)
    a_gamma = jnp.asarray(prior.a_gamma, dtype)
    d = a_gamma.shape[0]
    mu_beta = prior.a_beta + prior.A_beta**0.5 * jax.random.normal(ks[0], (), dtype)
    prec_beta = jax.random.gamma(ks[1], prior.c_b / 2, dtype=dtype) / (
        prior.c_b * prior.C_b / 2
    )
    chol_a = la.cholesky(jnp.asarray(prior.A_gamma, dtype))
    mu_gamma = a_gamma + chol_a @ jax.random.normal(ks[2], (d,), dtype)
    scale = la.inv_spd(prior.c_gamma * jnp.asarray(prior.C_gamma, dtype))
    prec_gamma = cond.wishart(ks[3], prior.c_gamma, la.cholesky(scale))
    prec = jax.random.gamma(ks[4], prior.s / 2, dtype=dtype) / (prior.s * prior.S / 2)
    beta = mu_beta + jax.random.normal(ks[5], (hidden,), dtype) / jnp.sqrt(prec_beta)
    chol_s = la.cholesky(prec_gamma)
    eps = jax.random.normal(ks[6], (hidden, d), dtype)
    gamma = mu_gamma + la.solve_triangular(chol_s, eps.T, lower=True, transpose=True).T
    b0 = prior.a_0 + prior.A_0**0.5 * jax.random.normal(ks[7], (), dtype)
    b0 = b0 if bias else jnp.zeros((), dtype)
    return NetParams(beta, b0, gamma, mu_beta, prec_beta, mu_gamma, prec_gamma, prec)
