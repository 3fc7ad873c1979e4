r"""Closed-form full conditionals of the Müller–Ríos Insua network (pure JAX).

Every function here is a pure function of arrays; the ones that draw take the key
first. Shapes: ``n`` observations, ``d = p + 1`` augmented inputs, ``m`` hidden
units, ``k = m (+1 with an output bias)`` output-layer coefficients.

The output layer is a Bayesian linear regression given the hidden units: with the
design :math:`Z = [1, \psi(\tilde X\gamma_1), \dots, \psi(\tilde X\gamma_m)]`
(``[n, k]``), the prior :math:`\beta \sim N(b, V)` with diagonal ``V`` and
:math:`y \mid \beta \sim N(Z\beta, \sigma^2 I)`,

.. math::

    \beta \mid \gamma, \nu, y \sim N(\hat\beta, P^{-1}),\quad
    P = V^{-1} + \sigma^{-2} Z'Z,\quad
    \hat\beta = P^{-1}(V^{-1} b + \sigma^{-2} Z'y),

and integrating :math:`\beta` out,
:math:`y \mid \gamma, \nu \sim N(Zb, \sigma^2 I + Z V Z')`, whose log density is,
by the matrix-determinant lemma and completing the square,

.. math::

    \log p(y \mid \gamma, \nu) = -\tfrac n2 \log(2\pi\sigma^2) - \tfrac12\log|V|
    - \tfrac12\log|P| - \tfrac12\left[\sigma^{-2}\|y - Z\hat\beta\|^2
    + (\hat\beta - b)'V^{-1}(\hat\beta - b)\right].

Only ``k x k`` triangular factors are needed (never ``n x n``), and the
quadratic form is a sum of non-negative terms rather than a difference of large
ones, which keeps float32 accurate.

All factorisations and solves use :mod:`jaxseq.bayes._linalg` (plain ``jnp``/``lax``
loops), never LAPACK: jaxlib's batched CPU LAPACK calls can deadlock XLA's thread
pool under ``vmap`` over chains (that module explains how).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._typing import Key
from . import _linalg as la

__all__ = [
    "bartlett",
    "beta_from_noise",
    "beta_from_posterior",
    "beta_posterior",
    "design",
    "draw_beta",
    "draw_mu_beta",
    "draw_mu_gamma",
    "draw_prec",
    "draw_prec_beta",
    "draw_prec_gamma",
    "gamma_log_prior",
    "gamma_variates",
    "marginal_loglik",
    "marginal_loglik_gram",
    "marginal_loglik_gram_grad",
    "marginal_posterior",
    "mu_beta_params",
    "mu_gamma_params",
    "normal_from_words",
    "prec_beta_params",
    "prec_gamma_params",
    "prec_params",
    "random_words",
    "uniform_from_words",
    "wishart",
]


def design(
    x1: Float[Array, "n d"],
    gamma: Float[Array, "m d"],
    bias: bool,
    active: Array | None = None,
) -> Array:
    r"""The output-layer design ``Z`` ``[n, k]``.

    Columns :math:`\psi(\tilde X\gamma_j)`, preceded by a column of ones when
    ``bias``; ``x1`` is the augmented input (leading ones). ``active`` (``[m]``
    bool, optional) zeroes the columns of inactive units: a zero column leaves
    :func:`marginal_loglik` and the other coefficients' posterior unchanged
    (:mod:`jaxseq.bayes.dimension`).
    """
    z = jax.nn.sigmoid(x1 @ gamma.T)
    if active is not None:
        z = jnp.where(active, z, 0.0)
    return jnp.concatenate([jnp.ones_like(z[:, :1]), z], axis=1) if bias else z


def beta_posterior(
    z: Float[Array, "n k"],
    y: Float[Array, " n"],
    prec: Float[Array, ""],
    prior_mean: Float[Array, " k"],
    prior_var: Float[Array, " k"],
) -> tuple[Float[Array, " k"], Float[Array, "k k"]]:
    r"""Mean :math:`\hat\beta` and lower Cholesky factor ``L`` of the precision
    :math:`P = LL'` of :math:`\beta \mid \gamma, \nu, y` (module docstring).

    Computed in the prior-scaled form :math:`P = V^{-1/2} M V^{-1/2}`,
    :math:`M = I + \sigma^{-2} W'W`, :math:`W = Z V^{1/2}`, without ever forming
    :math:`W'W`: the triangular factor of ``M`` comes from a Householder QR
    decomposition (:func:`jaxseq.bayes._linalg.qr_solve`, ``O(n k^2)``) of the
    stacked ``[n + k, k]`` matrix :math:`A = [\sigma^{-1} W; I]` (:math:`A'A = M`),
    and :math:`\hat\beta - b = V^{1/2} u` with ``u`` the least squares solution of
    :math:`A u \approx [\sigma^{-1}(y - Zb); 0]`. Forming :math:`W'W` squares the
    condition number, and in float32 the normal equations then fail exactly where
    the posterior likes to go: nearly collinear hidden units with large,
    cancelling output weights. Measured on posterior draws of a fit with
    ``n = 2000``, ``m = 8`` (``cond(M)`` up to 8e7): the Cholesky factor of the
    float32 Gram matrix gave :func:`marginal_loglik` errors up to 2 nats and NaN in
    2% of the draws, the QR route at most 5e-4 (float64 reference).
    """
    mean, chol_m, _ = _scaled_posterior(z, y, prec, prior_mean, prior_var)
    return mean, chol_m / jnp.sqrt(prior_var)[:, None]


def _scaled_posterior(z, y, prec, prior_mean, prior_var):
    """``(beta_hat, L_M, u)``: ``beta_hat = b + V^{1/2} u``, ``L_M L_M' = M``."""
    sqrt_v = jnp.sqrt(prior_var)
    k = z.shape[1]
    root = jnp.sqrt(prec)
    stacked = jnp.concatenate([root * (z * sqrt_v), jnp.eye(k, dtype=z.dtype)])
    rhs = jnp.concatenate([root * (y - z @ prior_mean), jnp.zeros((k,), z.dtype)])
    # R has a non-negative diagonal, so L_M = R' is the Cholesky factor of M.
    r, qtb = la.qr_solve(stacked, rhs)
    u = la.solve_triangular(r, qtb, lower=False)
    return prior_mean + sqrt_v * u, r.T, u


def draw_beta(
    key: Key,
    z: Float[Array, "n k"],
    y: Float[Array, " n"],
    prec: Float[Array, ""],
    prior_mean: Float[Array, " k"],
    prior_var: Float[Array, " k"],
) -> Float[Array, " k"]:
    r"""Draw :math:`\beta \sim N(\hat\beta, P^{-1})` (:func:`beta_from_noise`)."""
    eps = jax.random.normal(key, prior_mean.shape, prior_mean.dtype)
    return beta_from_noise(eps, z, y, prec, prior_mean, prior_var)


def beta_from_noise(
    eps: Float[Array, " k"],
    z: Float[Array, "n k"],
    y: Float[Array, " n"],
    prec: Float[Array, ""],
    prior_mean: Float[Array, " k"],
    prior_var: Float[Array, " k"],
) -> Float[Array, " k"]:
    r"""Map ``eps ~ N(0, I_k)`` to :math:`\beta \mid \gamma, \nu, y` as
    :math:`\hat\beta + V^{1/2} L_M'^{-1}\varepsilon` (:func:`beta_posterior`)."""
    mean, chol_m, _ = _scaled_posterior(z, y, prec, prior_mean, prior_var)
    return beta_from_posterior(eps, mean, chol_m, prior_var)


def marginal_loglik(
    z: Float[Array, "n k"],
    y: Float[Array, " n"],
    prec: Float[Array, ""],
    prior_mean: Float[Array, " k"],
    prior_var: Float[Array, " k"],
) -> Float[Array, ""]:
    r""":math:`\log p(y \mid \gamma, \nu)` with
    :math:`\beta \sim N(b, \mathrm{diag}(V))` integrated out (the formula in the
    module docstring), in ``O(n k^2)``."""
    return marginal_posterior(z, y, prec, prior_mean, prior_var)[0]


def marginal_posterior(
    z: Float[Array, "n k"],
    y: Float[Array, " n"],
    prec: Float[Array, ""],
    prior_mean: Float[Array, " k"],
    prior_var: Float[Array, " k"],
) -> tuple[Float[Array, ""], Float[Array, " k"], Float[Array, "k k"]]:
    r""":func:`marginal_loglik` together with the posterior of :math:`\beta` it
    factorises on the way: ``(mll, beta_hat, L_M)`` (:func:`beta_posterior`'s
    scaled form), so that :func:`beta_from_posterior` draws :math:`\beta` without
    a second factorisation.

    In the scaled form of :func:`beta_posterior`, :math:`\log|V| + \log|P| =
    \log|M|` and :math:`(\hat\beta - b)'V^{-1}(\hat\beta - b) = \|u\|^2`.
    """
    n = y.shape[0]
    mean, chol_m, u = _scaled_posterior(z, y, prec, prior_mean, prior_var)
    resid = y - z @ mean
    quad = prec * (resid @ resid) + u @ u
    logdet_m = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol_m)))
    return 0.5 * (n * jnp.log(prec / (2 * jnp.pi)) - logdet_m - quad), mean, chol_m


def beta_from_posterior(
    eps: Float[Array, " k"],
    mean: Float[Array, " k"],
    chol_m: Float[Array, "k k"],
    prior_var: Float[Array, " k"],
) -> Float[Array, " k"]:
    r"""Map ``eps ~ N(0, I_k)`` to :math:`\beta \mid \gamma, \nu, y` given the
    posterior ``(mean, chol_m)`` of :func:`marginal_posterior`:
    :math:`\hat\beta + V^{1/2} L_M'^{-1}\varepsilon`."""
    return mean + jnp.sqrt(prior_var) * la.solve_triangular(
        chol_m, eps, lower=True, transpose=True
    )


def marginal_loglik_gram(
    z: Float[Array, "n k"],
    y: Float[Array, " n"],
    prec: Float[Array, ""],
    prior_mean: Float[Array, " k"],
    prior_var: Float[Array, " k"],
) -> Float[Array, ""]:
    """:func:`marginal_loglik` through the Gram matrix ``Z'Z`` and a Cholesky
    factorisation: cheaper to differentiate, but it squares the condition number,
    so it serves only as the gradient surrogate of the ``"hmc"`` move (whose
    acceptance step uses :func:`marginal_loglik`)."""
    sqrt_v = jnp.sqrt(prior_var)
    w = z * sqrt_v
    m = prec * (w.T @ w) + jnp.eye(w.shape[1], dtype=w.dtype)
    chol = la.cholesky(m)
    u = la.cho_solve(chol, prec * (w.T @ (y - z @ prior_mean)))
    resid = y - z @ (prior_mean + sqrt_v * u)
    quad = prec * (resid @ resid) + u @ u
    n = y.shape[0]
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    return 0.5 * (n * jnp.log(prec / (2 * jnp.pi)) - logdet - quad)


def marginal_loglik_gram_grad(
    z: Float[Array, "n k"],
    y: Float[Array, " n"],
    prec: Float[Array, ""],
    prior_mean: Float[Array, " k"],
    prior_var: Float[Array, " k"],
) -> Float[Array, "n k"]:
    r"""The gradient of :func:`marginal_loglik_gram` with respect to ``z``, in
    closed form (a fraction of the program that ``jax.grad`` makes of it).

    For :math:`y \sim N(Zb, K)`, :math:`K = \sigma^2 I + ZVZ'`, with the
    posterior mean :math:`\hat\beta` and covariance :math:`\Sigma_\beta =
    (V^{-1} + \sigma^{-2}Z'Z)^{-1}` of :math:`\beta`, the Woodbury identity gives
    :math:`K^{-1}(y - Zb) = \sigma^{-2}(y - Z\hat\beta)` and :math:`K^{-1}ZV =
    \sigma^{-2}Z\Sigma_\beta`, so

    .. math:: \frac{\partial \log p(y)}{\partial Z} = \sigma^{-2}\big[(y -
              Z\hat\beta)\hat\beta' - Z\Sigma_\beta\big].

    Here :math:`\Sigma_\beta = V^{1/2}M^{-1}V^{1/2}` with the Gram-matrix
    :math:`M` of :func:`marginal_loglik_gram` (same conditioning caveat).
    """
    sqrt_v = jnp.sqrt(prior_var)
    w = z * sqrt_v
    k = w.shape[1]
    eye = jnp.eye(k, dtype=w.dtype)
    chol = la.cholesky(prec * (w.T @ w) + eye)
    rhs = jnp.concatenate([(prec * (w.T @ (y - z @ prior_mean)))[:, None], eye], 1)
    sol = la.cho_solve(chol, rhs)  # [u | M^-1]
    beta_hat = prior_mean + sqrt_v * sol[:, 0]
    resid = y - z @ beta_hat
    return prec * (jnp.outer(resid, beta_hat) - (w @ sol[:, 1:]) * sqrt_v)


def _units(values: Array, active: Array | None) -> tuple[Array, Array]:
    """``(values with inactive units zeroed, number of active units)``."""
    if active is None:
        return values, values.shape[0]
    mask = active.reshape(active.shape + (1,) * (values.ndim - 1))
    return jnp.where(mask, values, 0.0), jnp.sum(active).astype(values.dtype)


def mu_beta_params(
    beta: Float[Array, " m"],
    prec_beta: Float[Array, ""],
    a: float,
    A: float,
    active: Array | None = None,
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    r"""Mean and variance of :math:`\mu_\beta \mid \beta, \sigma_\beta \sim
    N(\bar a, \bar A)`: :math:`\bar A^{-1} = A^{-1} + m\sigma_\beta^{-2}`,
    :math:`\bar a = \bar A(a/A + \sigma_\beta^{-2}\sum_j\beta_j)`.

    ``active`` (``[m]`` bool, optional): only these units count (here and in the
    other hyperparameters' conditionals)."""
    beta, m = _units(beta, active)
    precision = 1.0 / A + m * prec_beta
    return (a / A + prec_beta * jnp.sum(beta)) / precision, 1.0 / precision


def draw_mu_beta(
    key: Key, beta: Float[Array, " m"], prec_beta: Float[Array, ""], a: float, A: float
) -> Float[Array, ""]:
    r"""Draw :math:`\mu_\beta` from :func:`mu_beta_params`."""
    mean, var = mu_beta_params(beta, prec_beta, a, A)
    return mean + jnp.sqrt(var) * jax.random.normal(key, (), beta.dtype)


def prec_beta_params(
    beta: Float[Array, " m"],
    mu_beta: Float[Array, ""],
    c: float,
    C: float,
    active: Array | None = None,
) -> tuple[float, Float[Array, ""]]:
    r"""Shape and rate of :math:`\sigma_\beta^{-2} \mid \beta, \mu_\beta \sim
    \mathrm{Gamma}\big((c + m)/2,\ (cC + \sum_j(\beta_j - \mu_\beta)^2)/2\big)`."""
    shape = (c + (beta.shape[0] if active is None else jnp.sum(active))) / 2
    return shape, (c * C + jnp.sum(_units(beta - mu_beta, active)[0] ** 2)) / 2


def draw_prec_beta(
    key: Key, beta: Float[Array, " m"], mu_beta: Float[Array, ""], c: float, C: float
) -> Float[Array, ""]:
    r"""Draw :math:`\sigma_\beta^{-2}` from :func:`prec_beta_params`."""
    shape, rate = prec_beta_params(beta, mu_beta, c, C)
    return jax.random.gamma(key, jnp.asarray(shape, beta.dtype)) / rate


def prec_params(
    resid: Float[Array, " n"], s: float, S: float
) -> tuple[float, Float[Array, ""]]:
    r"""Shape and rate of :math:`\sigma^{-2} \mid \beta, \gamma, y \sim
    \mathrm{Gamma}\big((s + n)/2,\ (sS + \sum_i r_i^2)/2\big)`.

    ``resid`` is ``y - Z beta``.
    """
    return (s + resid.shape[0]) / 2, (s * S + resid @ resid) / 2


def draw_prec(
    key: Key, resid: Float[Array, " n"], s: float, S: float
) -> Float[Array, ""]:
    r"""Draw :math:`\sigma^{-2}` from :func:`prec_params`."""
    shape, rate = prec_params(resid, s, S)
    return jax.random.gamma(key, jnp.asarray(shape, resid.dtype)) / rate


def mu_gamma_params(
    gamma: Float[Array, "m d"],
    prec_gamma: Float[Array, "d d"],
    a: Float[Array, " d"],
    A: Float[Array, "d d"],
    active: Array | None = None,
) -> tuple[Float[Array, " d"], Float[Array, "d d"]]:
    r"""Mean and lower Cholesky factor of the precision of
    :math:`\mu_\gamma \mid \gamma, S_\gamma \sim N(\bar a, \bar A)`:
    :math:`\bar A^{-1} = A^{-1} + m S_\gamma^{-1}`,
    :math:`\bar a = \bar A(A^{-1}a + S_\gamma^{-1}\sum_j\gamma_j)`."""
    gamma, m = _units(gamma, active)
    A_inv = la.inv_spd(A)
    chol = la.cholesky(A_inv + m * prec_gamma)
    mean = la.cho_solve(chol, A_inv @ a + prec_gamma @ jnp.sum(gamma, axis=0))
    return mean, chol


def draw_mu_gamma(
    key: Key,
    gamma: Float[Array, "m d"],
    prec_gamma: Float[Array, "d d"],
    a: Float[Array, " d"],
    A: Float[Array, "d d"],
) -> Float[Array, " d"]:
    r"""Draw :math:`\mu_\gamma` from :func:`mu_gamma_params` as
    ``mean + L'^{-1} eps``."""
    mean, chol = mu_gamma_params(gamma, prec_gamma, a, A)
    eps = jax.random.normal(key, mean.shape, mean.dtype)
    return mean + la.solve_triangular(chol, eps, lower=True, transpose=True)


def bartlett(
    chi2: Float[Array, " d"],
    normals: Float[Array, "d d"],
    scale_factor: Float[Array, "d d"],
) -> Float[Array, "d d"]:
    r"""Assemble a Wishart draw from its Bartlett variates (see :func:`wishart`).

    Args:
        chi2: ``[d]`` with ``chi2[i] ~ chi^2_{df - i}``.
        normals: ``[d, d]`` standard normals (only the strict lower triangle is used).
        scale_factor: any ``F`` with ``F F' = Sigma``.
    """
    lower = jnp.tril(normals, -1) + jnp.diag(jnp.sqrt(chi2))
    fa = scale_factor @ lower
    return fa @ fa.T


def wishart(
    key: Key, df: Float[Array, ""] | float, scale_factor: Float[Array, "d d"]
) -> Float[Array, "d d"]:
    r"""Draw :math:`W \sim \mathrm{Wishart}(\nu, \Sigma)` by the Bartlett decomposition.

    With any factor :math:`F` of the scale, :math:`FF' = \Sigma`, and a lower
    triangular :math:`A` with :math:`A_{ii}^2 \sim \chi^2_{\nu - i}` (``i = 0..d-1``)
    and :math:`A_{ij} \sim N(0, 1)` below the diagonal, :math:`W = F A A' F'`.
    Then :math:`E[W] = \nu\Sigma` and :math:`\mathrm{Var}(W_{ii}) = 2\nu\Sigma_{ii}^2`.
    Requires ``df > d - 1``.

    References:
        M. S. Bartlett (1933); T. W. Anderson, *An Introduction to Multivariate
        Statistical Analysis* (3rd ed., 2003), Sec. 7.2.
    """
    d = scale_factor.shape[-1]
    dtype = scale_factor.dtype
    k_chi, k_norm = jax.random.split(key)
    shapes = (df - jnp.arange(d, dtype=dtype)) / 2
    chi2 = 2.0 * jax.random.gamma(k_chi, shapes, dtype=dtype)
    return bartlett(chi2, jax.random.normal(k_norm, (d, d), dtype), scale_factor)


def prec_gamma_params(
    gamma: Float[Array, "m d"],
    mu_gamma: Float[Array, " d"],
    c: float,
    C: Array,
    active: Array | None = None,
) -> tuple[float, Float[Array, "d d"]]:
    r"""Degrees of freedom and scale factor of :math:`S_\gamma^{-1} \mid \gamma,
    \mu_\gamma \sim \mathrm{Wishart}(c + m,\ R^{-1})`,
    :math:`R = cC + \sum_j(\gamma_j - \mu_\gamma)(\gamma_j - \mu_\gamma)'`.

    With :math:`R = UU'` (lower Cholesky), :math:`F = U'^{-1}` satisfies
    :math:`FF' = R^{-1}`, so no explicit inverse is formed.
    """
    centred, m = _units(gamma - mu_gamma, active)
    r = c * C + centred.T @ centred
    eye = jnp.eye(r.shape[0], dtype=r.dtype)
    return c + m, la.solve_triangular(la.cholesky(r), eye, lower=True, transpose=True)


def draw_prec_gamma(
    key: Key,
    gamma: Float[Array, "m d"],
    mu_gamma: Float[Array, " d"],
    c: float,
    C: Float[Array, "d d"],
) -> Float[Array, "d d"]:
    r"""Draw :math:`S_\gamma^{-1}` from :func:`prec_gamma_params` (Bartlett)."""
    df, factor = prec_gamma_params(gamma, mu_gamma, c, C)
    return wishart(key, df, factor)


def gamma_log_prior(
    gamma_j: Float[Array, " d"],
    mu_gamma: Float[Array, " d"],
    prec_gamma: Float[Array, "d d"],
) -> Float[Array, ""]:
    r""":math:`\log N(\gamma_j \mid \mu_\gamma, S_\gamma)` up to a constant that does
    not depend on :math:`\gamma_j` (all a Metropolis ratio needs)."""
    centred = gamma_j - mu_gamma
    return -0.5 * centred @ prec_gamma @ centred


def random_words(key: Key, num: int, dtype) -> Array:
    """``num`` random unsigned words of ``dtype``'s width (``uint32`` for float32,
    ``uint64`` for float64), from one :func:`jax.random.bits` call."""
    width = jnp.dtype(dtype).itemsize * 8
    return jax.random.bits(key, (num,), jnp.dtype(f"uint{width}"))


def uniform_from_words(words: Array, dtype, low: float = 0.0) -> Array:
    r"""Uniform variates on ``[low, 1)`` from random words, exactly as
    :func:`jax.random.uniform` makes them: the top mantissa bits of each word
    under the exponent of 1.0 give a float in ``[1, 2)``, minus 1, mapped to
    ``[low, 1)`` (and kept ``>= low``). One :func:`random_words` call can so feed
    several kinds of variates (each PRNG call compiles to a threefry hash loop)."""
    dtype = jnp.dtype(dtype)
    shift = words.dtype.itemsize * 8 - jnp.finfo(dtype).nmant
    one = np.array(1.0, dtype).view(words.dtype)
    floats = jax.lax.bitcast_convert_type((words >> shift) | one, dtype) - 1.0
    return jnp.maximum(jnp.asarray(low, dtype), floats * (1.0 - low) + low)


def normal_from_words(words: Array, dtype) -> Array:
    r"""Standard normals from random words, as :func:`jax.random.normal` makes
    them: :math:`\sqrt2\,\mathrm{erf}^{-1}(u)` for ``u`` uniform on
    ``(-1, 1)`` (:func:`uniform_from_words`)."""
    dtype = jnp.dtype(dtype)
    low = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))
    u = uniform_from_words(words, dtype, float(low))
    return np.sqrt(2.0).astype(dtype) * jax.lax.erf_inv(u)


GAMMA_MAX_ROUNDS = 64  # rounds of gamma_variates' rejection loop, at most


def gamma_variates(key: Key, shape: Float[Array, " r"]) -> Float[Array, " r"]:
    r"""Independent :math:`\mathrm{Gamma}(a_i, 1)` draws for the shapes ``shape``
    ``[r]`` (all :math:`a_i > 0`), by Marsaglia and Tsang's (2000) rejection method.

    The same law as :func:`jax.random.gamma`, written as *one* ``while`` loop over
    all ``r`` shapes (each round proposes for every shape and keeps the first
    acceptance), which compiles to a fraction of the program
    :func:`jax.random.gamma` makes (a loop per shape, and under ``vmap`` per
    chain): the Gibbs sweep draws its conjugate precisions with it. For
    :math:`\alpha \ge 1`, with :math:`d = \alpha - 1/3`, :math:`c = 1/\sqrt{9d}`,
    :math:`z \sim N(0, 1)`, :math:`v = (1 + cz)^3` and :math:`u \sim U(0, 1)`,
    :math:`dv` is accepted when :math:`v > 0` and :math:`\log u < z^2/2 + d - dv +
    d\log v`; the acceptance rate is above 95%. Shapes below 1 are boosted:
    :math:`\mathrm{Gamma}(a) = \mathrm{Gamma}(a + 1)\,U^{1/a}`, computed in logs.

    Round ``i`` takes its ``3r`` random words from one call
    (:func:`random_words` of ``fold_in(key, i)``): ``z``, ``u`` and, kept from
    the first round, the boost's ``U``; so the function compiles to two
    threefry hashes (six when each variate had its own PRNG call).

    References:
        G. Marsaglia and W. W. Tsang (2000), "A simple method for generating gamma
        variables", *ACM TOMS* 26(3), 363-372.
    """
    dtype = shape.dtype
    r = shape.shape[0]
    boost = shape < 1.0
    alpha = jnp.where(boost, shape + 1.0, shape)
    d = alpha - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)

    def propose(state):
        i, x, log_boost, done = state
        w = random_words(jax.random.fold_in(key, i), 3 * r, dtype)
        z = normal_from_words(w[:r], dtype)
        u = uniform_from_words(w[r : 2 * r], dtype)
        log_boost = jnp.where(
            i == 0, jnp.log(uniform_from_words(w[2 * r :], dtype)), log_boost
        )
        v = (1.0 + c * z) ** 3
        log_v = jnp.log(jnp.where(v > 0, v, 1.0))
        ok = (v > 0) & (jnp.log(u) < 0.5 * z * z + d - d * v + d * log_v)
        new = ~done & ok
        return i + 1, jnp.where(new, d * v, x), log_boost, done | ok

    # A shape that is not a finite positive number never accepts: it is done at
    # once (NaN out). The rounds are capped at GAMMA_MAX_ROUNDS, so the loop ends
    # whatever the random words: every round accepts with probability above 0.95,
    # so a finite shape still undrawn after the cap (NaN out, which the sampler
    # reports as a non-finite state) has probability below 0.05**64.
    bad = ~(jnp.isfinite(shape) & (shape > 0))
    zero = jnp.zeros_like(shape)
    start = (jnp.zeros((), jnp.uint32), zero, zero, bad)
    more = lambda s: ~jnp.all(s[3]) & (s[0] < GAMMA_MAX_ROUNDS)
    _, x, log_u, done = jax.lax.while_loop(more, propose, start)
    x = jnp.where(done & ~bad, x, jnp.nan)
    return jnp.where(boost, jnp.exp(jnp.log(x) + log_u / shape), x)
