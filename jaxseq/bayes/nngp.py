r"""The network prior's own infinite-width kernel (Neal 1996, Williams 1997).

Scale the output weights of the shallow network by :math:`1/\sqrt m`,

.. math::

    f(x) = \frac{1}{\sqrt m}\sum_{j=1}^m \beta_j\,\psi(\tilde x'\gamma_j),\qquad
    \beta_j \sim N(0, \sigma_\beta^2),\quad \gamma_j \stackrel{iid}{\sim} G,

with :math:`\tilde x = (1, x)`. Every term has mean zero, so for any ``m``

.. math::

    \operatorname{Cov}(f(x), f(x')) = \sigma_\beta^2\, K(x, x'),\qquad
    K(x, x') = E_{\gamma \sim G}
    \left[\psi(\tilde x'\gamma)\,\psi(\tilde x''\gamma)\right],

and as ``m`` grows the central limit theorem makes ``f`` a Gaussian process with
that covariance (Neal 1996): the excess kurtosis of ``f(x)`` falls like ``1/m``.
For :math:`\psi = \mathrm{erf}` and :math:`G = N(0, \Sigma)` the expectation has
Williams' (1997) closed form, the arcsine kernel

.. math::

    K(x, x') = \frac{2}{\pi}\arcsin\frac{2\tilde x'\Sigma\tilde x'}
    {\sqrt{(1 + 2\tilde x'\Sigma\tilde x)(1 + 2\tilde x''\Sigma\tilde x')}}
    \qquad(:class:`ErfKernel`).

For the lecture's own unit (logistic, or any :math:`\psi`) and its hierarchical
prior on :math:`\gamma` (:func:`prior_weights`: :math:`\mu_\gamma`,
:math:`S_\gamma` and then :math:`\gamma` drawn for every draw), the expectation
is a Monte Carlo average over ``S`` draws (:class:`MonteCarloKernel`, a
random-feature kernel). Both are kernels for :mod:`jaxseq.bayes.gp` with no
length scale (``uses_length_scale = False``): the prior fixes the shape, ML-II
or NUTS fits only the amplitude :math:`\sigma_\beta` and the noise.

References:
    R. M. Neal (1996), *Bayesian Learning for Neural Networks*, Springer, ch. 2.
    C. K. I. Williams (1997), "Computing with infinite networks", *NIPS* 9.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jaxtyping import Array, ArrayLike, Float

from .._typing import Key
from .models import Prior, augment, check_prior

__all__ = [
    "ErfKernel",
    "MonteCarloKernel",
    "arcsine_kernel",
    "gaussian_weights",
    "nngp_kernel",
    "prior_functions",
    "prior_weights",
]


def arcsine_kernel(
    x1: Float[ArrayLike, "n1 p"],
    x2: Float[ArrayLike, "n2 p"],
    cov: Float[ArrayLike, "d d"],
) -> Float[Array, "n1 n2"]:
    r"""Williams' (1997) :math:`E[\mathrm{erf}(\tilde x_1'\gamma)\,
    \mathrm{erf}(\tilde x_2'\gamma)]` for :math:`\gamma \sim N(0, \Sigma)`,
    ``cov`` = :math:`\Sigma` ``[d, d]``, ``d = p + 1`` (intercept first)."""
    a1, a2, cov = augment(jnp.asarray(x1)), augment(jnp.asarray(x2)), jnp.asarray(cov)
    if cov.shape != (a1.shape[1], a1.shape[1]):
        raise ValueError(
            f"cov: expected shape ({a1.shape[1]}, {a1.shape[1]}) (inputs + "
            f"intercept), got {cov.shape}."
        )
    cross = 2.0 * a1 @ cov @ a2.T
    d1 = 1.0 + 2.0 * jnp.einsum("nd,de,ne->n", a1, cov, a1)
    d2 = 1.0 + 2.0 * jnp.einsum("nd,de,ne->n", a2, cov, a2)
    return 2.0 / math.pi * jnp.arcsin(cross / jnp.sqrt(d1[:, None] * d2[None, :]))


@functools.partial(
    jax.tree_util.register_dataclass, data_fields=["cov"], meta_fields=[]
)
@dataclasses.dataclass(frozen=True, eq=False)
class ErfKernel:
    """The arcsine kernel as a GP kernel (no length scale).

    Attributes:
        cov: ``[d, d]`` covariance :math:`\\Sigma` of the unit weights (intercept
            first), e.g. ``numpy.eye(p + 1)``.
    """

    cov: Array
    uses_length_scale: ClassVar[bool] = False

    def __call__(self, x1, x2, length_scale=None) -> Array:
        return arcsine_kernel(x1, x2, self.cov)


@functools.partial(
    jax.tree_util.register_dataclass, data_fields=["weights"], meta_fields=["psi"]
)
@dataclasses.dataclass(frozen=True, eq=False)
class MonteCarloKernel:
    r"""The Monte Carlo kernel :math:`\frac1S\sum_s \psi(\tilde x_1'\gamma_s)
    \psi(\tilde x_2'\gamma_s)` (no length scale).

    Attributes:
        weights: ``[S, d]`` draws :math:`\gamma_s` (intercept first), e.g. from
            :func:`prior_weights` or :func:`gaussian_weights`.
        psi: the unit's activation (default logistic, the lecture's).
    """

    weights: Array
    psi: Callable[[Array], Array] = jax.nn.sigmoid
    uses_length_scale: ClassVar[bool] = False

    def features(self, x: Float[ArrayLike, "n p"]) -> Float[Array, "n S"]:
        """``psi(x~ gamma_s)`` for every draw, scaled by ``1/sqrt(S)``."""
        w = jnp.asarray(self.weights)
        return self.psi(augment(jnp.asarray(x)) @ w.T) / math.sqrt(w.shape[0])

    def __call__(self, x1, x2, length_scale=None) -> Array:
        return self.features(x1) @ self.features(x2).T


def gaussian_weights(
    key: Key, num: int, cov: Float[ArrayLike, "d d"], mean: ArrayLike | None = None
) -> Float[Array, "num d"]:
    """``num`` draws of :math:`\\gamma \\sim N(\\text{mean}, \\text{cov})` (mean 0
    by default)."""
    cov = jnp.asarray(cov)
    mean = jnp.zeros(cov.shape[0], cov.dtype) if mean is None else jnp.asarray(mean)
    return jax.random.multivariate_normal(key, mean, cov, (num,))


def prior_weights(key: Key, prior: Prior, num: int) -> Float[Array, "num d"]:
    """``num`` independent draws of one unit's :math:`\\gamma` from the
    hierarchical prior of :func:`~jaxseq.bayes.regression`: for each draw
    :math:`\\mu_\\gamma \\sim N(a_\\gamma, A_\\gamma)`, :math:`S_\\gamma^{-1} \\sim
    \\mathrm{Wishart}(c_\\gamma, (c_\\gamma C_\\gamma)^{-1})`, then
    :math:`\\gamma \\sim N(\\mu_\\gamma, S_\\gamma)` (its marginal prior)."""
    d = np.shape(prior.a_gamma)[0]
    check_prior(prior, d - 1)
    if not isinstance(num, int | np.integer) or num < 1:
        raise ValueError(f"num: expected a positive integer, got {num!r}.")
    return _prior_weights(
        key,
        jnp.asarray(prior.a_gamma),
        jnp.asarray(prior.A_gamma),
        jnp.asarray(prior.c_gamma),
        jnp.asarray(prior.C_gamma),
        int(num),
    )


@functools.partial(jax.jit, static_argnums=5)
def _prior_weights(key, a_gamma, A_gamma, c_gamma, C_gamma, num):
    k_mu, k_prec, k_gamma = jax.random.split(key, 3)
    mu = dist.MultivariateNormal(a_gamma, A_gamma).sample(k_mu, (num,))
    prec = dist.Wishart(c_gamma, rate_matrix=c_gamma * C_gamma).sample(k_prec, (num,))
    return dist.MultivariateNormal(mu, precision_matrix=prec).sample(k_gamma)


def nngp_kernel(
    key: Key,
    prior: Prior,
    *,
    num_draws: int = 4096,
    psi: Callable[[Array], Array] = jax.nn.sigmoid,
) -> MonteCarloKernel:
    """The infinite-width kernel of the network prior ``prior`` with activation
    ``psi``: a :class:`MonteCarloKernel` on ``num_draws`` :func:`prior_weights`."""
    return MonteCarloKernel(prior_weights(key, prior, num_draws), psi)


def prior_functions(
    key: Key,
    x: Float[ArrayLike, "n p"],
    *,
    hidden: int,
    num: int,
    weights: Callable[[Key, int], Array],
    psi: Callable[[Array], Array] = jax.scipy.special.erf,
    beta_sd: float = 1.0,
) -> Float[Array, "num n"]:
    r"""``num`` draws of the scaled network :math:`f(x) = m^{-1/2}\sum_j \beta_j
    \psi(\tilde x'\gamma_j)` at ``x``, :math:`\beta_j \sim N(0,` ``beta_sd``
    :math:`^2)`, ``m = hidden`` units whose ``gamma`` come from
    ``weights(key, count) -> [count, d]`` (e.g. ``functools.partial(
    gaussian_weights, cov=cov)``)."""
    if not isinstance(hidden, int | np.integer) or hidden < 1:
        raise ValueError(f"hidden: expected a positive integer, got {hidden!r}.")
    k_w, k_b = jax.random.split(key)
    gamma = weights(k_w, num * hidden).reshape(num, hidden, -1)
    beta = beta_sd * jax.random.normal(k_b, (num, hidden), gamma.dtype)
    units = psi(jnp.einsum("nd,smd->snm", augment(jnp.asarray(x)), gamma))
    return jnp.einsum("snm,sm->sn", units, beta) / math.sqrt(hidden)
