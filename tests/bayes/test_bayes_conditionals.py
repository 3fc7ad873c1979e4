"""Every conjugate conditional of the Gibbs sampler against independent references.

Two kinds of check:

* exactness of the closed forms: for any two values ``v1, v2`` of a block, the
  claimed conditional must satisfy ``log q(v1) - log q(v2) = log p(v1, rest, y) -
  log p(v2, rest, y)``, where the joint comes from the *NumPyro model* (so the
  sampler provably targets the same posterior as NUTS) and ``q`` is evaluated
  with scipy;
* the samplers: moments of many draws (or a KS test) against the closed form, with
  tolerances from Monte Carlo standard errors.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxseq.bayes import conditionals as cond
from jaxseq.bayes import gibbs

pytestmark = pytest.mark.usefixtures("x64_module")

N_DRAWS = 20_000


@functools.cache
def _batched(fn, num_args):
    return jax.jit(jax.vmap(fn, in_axes=(0,) + (None,) * num_args))


def _draws(fn, seed, *args, n=N_DRAWS):
    """``n`` draws of ``fn(key, *args)``, jitted (eager vmap compiles op by op)."""
    keys = jax.random.split(jax.random.key(seed), n)
    return np.asarray(_batched(fn, len(args))(keys, *args))


def _two_values(rng, shape, positive=False):
    vals = rng.normal(size=(2, *shape))
    return np.exp(vals) if positive else vals


def _spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + d * np.eye(d)


def _check_ratio(problem, site, v1, v2, log_q):
    p1 = problem.pos._replace(**{site: jnp.asarray(v1)})
    p2 = problem.pos._replace(**{site: jnp.asarray(v2)})
    expected = problem.log_joint(p1) - problem.log_joint(p2)
    np.testing.assert_allclose(log_q(v1) - log_q(v2), expected, rtol=1e-9, atol=1e-8)


def _beta_block(problem):
    pm, pv = gibbs.beta_prior(problem.pos, problem.prior, True)
    z = cond.design(problem.data.x1, problem.pos.gamma, True)
    return z, pm, pv


def test_marginal_loglik_equals_dense_gaussian(problem):
    z, pm, pv = _beta_block(problem)
    prec = problem.pos.prec
    got = cond.marginal_loglik(z, problem.data.y, prec, pm, pv)
    zn, pmn, pvn = map(np.asarray, (z, pm, pv))
    cov = np.eye(zn.shape[0]) / float(prec) + zn @ np.diag(pvn) @ zn.T
    expected = stats.multivariate_normal(zn @ pmn, cov).logpdf(problem.y)
    np.testing.assert_allclose(float(got), expected, rtol=1e-10)


def test_beta_conditional_is_exact(problem):
    z, pm, pv = _beta_block(problem)
    mean, chol = cond.beta_posterior(z, problem.data.y, problem.pos.prec, pm, pv)
    cov = np.linalg.inv(np.asarray(chol @ chol.T))
    q = stats.multivariate_normal(np.asarray(mean), cov)
    rng = np.random.default_rng(1)
    v1, v2 = _two_values(rng, (problem.m + 1,))
    p1 = problem.pos._replace(b0=jnp.asarray(v1[0]), beta=jnp.asarray(v1[1:]))
    p2 = problem.pos._replace(b0=jnp.asarray(v2[0]), beta=jnp.asarray(v2[1:]))
    expected = problem.log_joint(p1) - problem.log_joint(p2)
    np.testing.assert_allclose(q.logpdf(v1) - q.logpdf(v2), expected, rtol=1e-9)


def test_beta_conditional_without_bias_is_exact(problem):
    # bias=False: the output layer is beta alone and the model has no b0 site.
    pos = problem.pos._replace(b0=jnp.asarray(0.0))
    pm, pv = gibbs.beta_prior(pos, problem.prior, False)
    z = cond.design(problem.data.x1, pos.gamma, False)
    assert z.shape == (25, problem.m) and pm.shape == (problem.m,)
    mean, chol = cond.beta_posterior(z, problem.data.y, pos.prec, pm, pv)
    q = stats.multivariate_normal(
        np.asarray(mean), np.linalg.inv(np.asarray(chol @ chol.T))
    )
    v1, v2 = _two_values(np.random.default_rng(13), (problem.m,))
    p1, p2 = pos._replace(beta=jnp.asarray(v1)), pos._replace(beta=jnp.asarray(v2))
    expected = problem.log_joint(p1, bias=False) - problem.log_joint(p2, bias=False)
    np.testing.assert_allclose(q.logpdf(v1) - q.logpdf(v2), expected, rtol=1e-9)


def test_beta_draws_match_linear_model_posterior(problem):
    # With gamma fixed the output layer is a linear model: its exact posterior.
    z, pm, pv = _beta_block(problem)
    zn, y, prec = np.asarray(z), problem.y, float(problem.pos.prec)
    precision = prec * zn.T @ zn + np.diag(1 / np.asarray(pv))
    cov = np.linalg.inv(precision)
    mean = cov @ (prec * zn.T @ y + np.asarray(pm) / np.asarray(pv))
    draws = _draws(lambda k: cond.draw_beta(k, z, problem.data.y, prec, pm, pv), 2)
    se_mean = np.sqrt(np.diag(cov) / N_DRAWS)
    assert np.all(np.abs(draws.mean(0) - mean) < 4.5 * se_mean)
    emp = np.cov(draws.T)
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / N_DRAWS)
    assert np.all(np.abs(emp - cov) < 4.5 * se_cov)


def test_mu_beta_conditional(problem):
    pos, prior = problem.pos, problem.prior
    mean, var = cond.mu_beta_params(pos.beta, pos.prec_beta, prior.a_beta, prior.A_beta)
    q = stats.norm(float(mean), np.sqrt(float(var)))
    _check_ratio(problem, "mu_beta", 0.7, -1.3, q.logpdf)
    a, A = prior.a_beta, prior.A_beta
    draws = _draws(lambda k: cond.draw_mu_beta(k, pos.beta, pos.prec_beta, a, A), 3)
    assert stats.kstest(draws, q.cdf).pvalue > 1e-3


def test_prec_beta_conditional(problem):
    pos, prior = problem.pos, problem.prior
    shape, rate = cond.prec_beta_params(pos.beta, pos.mu_beta, prior.c_b, prior.C_b)
    q = stats.gamma(shape, scale=1 / float(rate))
    _check_ratio(problem, "prec_beta", 0.4, 2.5, q.logpdf)
    c, C = prior.c_b, prior.C_b
    draws = _draws(lambda k: cond.draw_prec_beta(k, pos.beta, pos.mu_beta, c, C), 4)
    assert stats.kstest(draws, q.cdf).pvalue > 1e-3


def test_prec_conditional(problem):
    pos, prior = problem.pos, problem.prior
    z = np.asarray(cond.design(problem.data.x1, pos.gamma, True))
    resid = problem.y - z @ np.r_[float(pos.b0), np.asarray(pos.beta)]
    shape, rate = cond.prec_params(jnp.asarray(resid), prior.s, prior.S)
    q = stats.gamma(shape, scale=1 / float(rate))
    _check_ratio(problem, "prec", 0.8, 3.1, q.logpdf)
    r = jnp.asarray(resid)
    draws = _draws(lambda k: cond.draw_prec(k, r, prior.s, prior.S), 5)
    assert stats.kstest(draws, q.cdf).pvalue > 1e-3


def test_mu_gamma_conditional(problem):
    pos, prior = problem.pos, problem.prior
    a, A = jnp.asarray(prior.a_gamma), jnp.asarray(prior.A_gamma)
    mean, chol = cond.mu_gamma_params(pos.gamma, pos.prec_gamma, a, A)
    cov = np.linalg.inv(np.asarray(chol @ chol.T))
    q = stats.multivariate_normal(np.asarray(mean), cov)
    v1, v2 = _two_values(np.random.default_rng(6), (3,))
    _check_ratio(problem, "mu_gamma", v1, v2, q.logpdf)
    # Independent reference: condition the joint Gaussian of (mu, gamma_1..m).
    m, d = pos.gamma.shape
    S = np.linalg.inv(np.asarray(pos.prec_gamma))
    An = np.asarray(A)
    cov_gg = np.kron(np.ones((m, m)), An) + np.kron(np.eye(m), S)
    cov_mg = np.kron(np.ones((1, m)), An)
    gain = cov_mg @ np.linalg.inv(cov_gg)
    ref_mean = np.asarray(a) + gain @ (np.asarray(pos.gamma).ravel() - np.tile(a, m))
    ref_cov = An - gain @ cov_mg.T
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-8, atol=1e-10)
    draws = _draws(lambda k: cond.draw_mu_gamma(k, pos.gamma, pos.prec_gamma, a, A), 7)
    se = np.sqrt(np.diag(ref_cov) / N_DRAWS)
    assert np.all(np.abs(draws.mean(0) - ref_mean) < 4.5 * se)
    se_cov = np.sqrt(
        (np.outer(np.diag(ref_cov), np.diag(ref_cov)) + ref_cov**2) / N_DRAWS
    )
    assert np.all(np.abs(np.cov(draws.T) - ref_cov) < 4.5 * se_cov)


def test_prec_gamma_conditional_is_wishart(problem):
    pos, prior = problem.pos, problem.prior
    C = jnp.asarray(prior.C_gamma)
    df, factor = cond.prec_gamma_params(pos.gamma, pos.mu_gamma, prior.c_gamma, C)
    q = stats.wishart(df=float(df), scale=np.asarray(factor @ factor.T))
    rng = np.random.default_rng(8)
    _check_ratio(problem, "prec_gamma", _spd(rng, 3), _spd(rng, 3), q.logpdf)
    # Independent closed form: Wishart(c + m, (cC + sum (g - mu)(g - mu)')^{-1}).
    centred = np.asarray(pos.gamma - pos.mu_gamma)
    ref_scale = np.linalg.inv(prior.c_gamma * prior.C_gamma + centred.T @ centred)
    np.testing.assert_allclose(df, prior.c_gamma + problem.m)
    np.testing.assert_allclose(factor @ factor.T, ref_scale, rtol=1e-9)


@pytest.mark.parametrize("df, factor", [(3.5, "lower"), (12.0, "upper")])
def test_bartlett_wishart_moments(df, factor):
    rng = np.random.default_rng(9)
    sigma = _spd(rng, 3) / 3
    if factor == "lower":
        f = np.linalg.cholesky(sigma)
    else:  # prec_gamma_params passes an upper-triangular factor: only F F' matters
        f = np.linalg.cholesky(sigma[::-1, ::-1])[::-1, ::-1]
    np.testing.assert_allclose(f @ f.T, sigma, rtol=1e-10)
    w = _draws(cond.wishart, 10, jnp.asarray(df), jnp.asarray(f))
    # E[W] = df * Sigma; Var(W_ij) = df (Sigma_ij^2 + Sigma_ii Sigma_jj).
    var = df * (sigma**2 + np.outer(np.diag(sigma), np.diag(sigma)))
    assert np.all(np.abs(w.mean(0) - df * sigma) < 4.5 * np.sqrt(var / N_DRAWS))
    # Var(W_ii) = 2 df Sigma_ii^2, against an empirical SE of the sample variance.
    diag = w[:, [0, 1, 2], [0, 1, 2]]
    sq = (diag - diag.mean(0)) ** 2
    se = sq.std(0) / np.sqrt(N_DRAWS)
    assert np.all(np.abs(sq.mean(0) - 2 * df * np.diag(sigma) ** 2) < 4.5 * se)
    # And the whole distribution of W_00 is a scaled chi-square(df).
    chi2 = stats.chi2(df, scale=sigma[0, 0])
    assert stats.kstest(w[:, 0, 0], chi2.cdf).pvalue > 1e-3
