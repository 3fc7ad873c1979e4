"""The Metropolis moves on gamma_j (beta marginalised).

* The acceptance probability returned by ``update_unit`` equals ``min(1, r)`` with
  ``r`` computed independently (dense Gaussian marginal likelihood from scipy and
  the prior density): with the prior ratio for the random walk, with the prior
  ratio and the Jacobian for the scale move, and without the prior ratio for the
  conditional-prior independence proposal.
* Many parallel chains of the single-unit update reach the exact conditional
  ``p(gamma_j | gamma_-j, nu, y)`` computed on a grid; the prior is informative
  enough that leaving the prior ratio out (or in, for the independence proposal)
  would move the moments by many standard errors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxseq.bayes import adaptation, blocks, gibbs, moves
from jaxseq.bayes import conditionals as cond
from jaxseq.bayes.models import augment

pytestmark = pytest.mark.usefixtures("x64_module")


@pytest.fixture(scope="module")
def setup(x64_module, odd_prior):
    rng = np.random.default_rng(3)
    n = 20
    x = rng.uniform(-2, 2, size=(n, 1))
    y = 1.5 / (1 + np.exp(-(0.5 + 2.0 * x[:, 0]))) - 0.8 / (1 + np.exp(x[:, 0]))
    y = y + 0.3 * rng.normal(size=n)
    pos = gibbs.NetParams(
        beta=jnp.asarray([1.2, -0.7]),
        b0=jnp.asarray(0.1),
        gamma=jnp.asarray([[0.3, 1.5], [-0.4, -1.0]]),
        mu_beta=jnp.asarray(0.2),
        prec_beta=jnp.asarray(0.8),
        mu_gamma=jnp.asarray([1.0, -0.5]),
        prec_gamma=jnp.asarray(np.linalg.inv([[0.6, 0.2], [0.2, 0.5]])),
        prec=jnp.asarray(1 / 0.3**2),
    )
    data = gibbs.Data(augment(jnp.asarray(x)), jnp.asarray(y))
    pm, pv = gibbs.beta_prior(pos, odd_prior(2), True)
    return pos, data, pm, pv


def _dense_mll(data, gamma, pos, pm, pv):
    z = np.asarray(cond.design(data.x1, jnp.asarray(gamma), True))
    cov = np.eye(z.shape[0]) / float(pos.prec) + z @ np.diag(np.asarray(pv)) @ z.T
    return stats.multivariate_normal(z @ np.asarray(pm), cov).logpdf(np.asarray(data.y))


@pytest.mark.parametrize("kind", moves.MOVES)
def test_acceptance_probability_is_the_correct_ratio(setup, kind):
    pos, data, pm, pv = setup
    proposal = adaptation.init_proposal(2, 2, jnp.float64)._replace(
        log_tau=jnp.log(jnp.asarray([1.5, 2.0]))
    )
    prior_j = stats.multivariate_normal(
        np.asarray(pos.mu_gamma), np.linalg.inv(np.asarray(pos.prec_gamma))
    )
    update = jax.jit(
        lambda k, j, g, mll: moves.update_unit(
            k, j, g, mll, pos, data, pm, pv, proposal, bias=True, kinds=(kind,)
        )
    )
    gamma0 = np.asarray(pos.gamma)
    mll0 = _dense_mll(data, gamma0, pos, pm, pv)
    i = moves.MOVES.index(kind)
    accepted, wrong_formula_differs = [], []
    for seed in range(12):
        j = seed % 2
        key = jax.random.key(seed)
        g, _, acc = update(key, j, jnp.asarray(gamma0), jnp.asarray(mll0))
        noise = moves.unit_noise(key, 2, jnp.float64)  # what update_unit consumes
        log_jacobian = 0.0
        if kind == "rw":
            scale = np.exp(float(proposal.log_scale[j])) * proposal.chol[j]
            cand = np.asarray(moves.propose_rw(pos.gamma[j], scale, noise.eps_rw))
        elif kind == "scale":
            delta = np.exp(float(proposal.log_tau[j])) * float(noise.eps_scale)
            cand = np.exp(delta) * gamma0[j]
            log_jacobian = 2 * delta  # d = 2
        elif kind == "flip":
            cand = -gamma0[j]
        else:
            cand = np.asarray(
                moves.propose_prior(pos.mu_gamma, pos.prec_gamma, noise.eps_prior)
            )
        moved = gamma0.copy()
        moved[j] = cand
        log_lik_ratio = _dense_mll(data, moved, pos, pm, pv) - mll0
        log_prior_ratio = prior_j.logpdf(cand) - prior_j.logpdf(gamma0[j])
        right = {
            "rw": log_lik_ratio + log_prior_ratio,
            "scale": log_lik_ratio + log_prior_ratio + log_jacobian,
            "flip": log_lik_ratio + log_prior_ratio,
            "prior": log_lik_ratio,
        }[kind]
        wrong = {  # the classic mistakes: prior ratio dropped/added, Jacobian dropped
            "rw": log_lik_ratio,
            "scale": log_lik_ratio + log_prior_ratio,
            "flip": log_lik_ratio,
            "prior": log_lik_ratio + log_prior_ratio,
        }[kind]
        acc = np.asarray(acc)
        np.testing.assert_allclose(
            acc[i], min(1.0, np.exp(right)), rtol=1e-7, atol=1e-12
        )
        assert np.all(np.isnan(np.delete(acc, i)))
        wrong_formula_differs.append(abs(min(1.0, np.exp(wrong)) - acc[i]) > 1e-3)
        ok = float(noise.log_u[i]) < right
        np.testing.assert_allclose(np.asarray(g), moved if ok else gamma0, rtol=1e-12)
        accepted.append(ok)
    assert any(accepted) and not all(accepted)
    assert sum(wrong_formula_differs) >= 5


def test_prior_proposal_has_the_conditional_prior_law(setup):
    pos = setup[0]
    eps = np.random.default_rng(0).normal(size=(50_000, 2))
    draws = np.asarray(
        jax.vmap(lambda e: moves.propose_prior(pos.mu_gamma, pos.prec_gamma, e))(eps)
    )
    cov = np.linalg.inv(np.asarray(pos.prec_gamma))
    # eps is fixed, so the only error is Monte Carlo: mean and covariance match.
    np.testing.assert_allclose(draws.mean(0), pos.mu_gamma, atol=0.02)
    np.testing.assert_allclose(np.cov(draws.T), cov, atol=0.02)


def _grid_moments(logp, grid):
    w = np.exp(logp - logp.max())
    w /= w.sum()
    mean = w @ grid
    c = grid - mean
    return mean, (w[:, None] * c).T @ c, w


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rw", "rw+scale", "prior", "hmc"])
def test_unit_chains_reach_exact_conditional(setup, kind):
    pos, data, pm, pv = setup
    j, chains, steps = 0, 4000, 150
    axis = np.linspace(-6.0, 8.0, 281)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)

    def mll_at(g0, marginal=cond.marginal_loglik):
        gamma = pos.gamma.at[j].set(g0)
        z = cond.design(data.x1, gamma, True)
        return marginal(z, data.y, pos.prec, pm, pv)

    log_lik = np.asarray(jax.jit(jax.vmap(mll_at))(jnp.asarray(grid)))
    prior_j = stats.multivariate_normal(
        np.asarray(pos.mu_gamma), np.linalg.inv(np.asarray(pos.prec_gamma))
    )
    mean, cov, w = _grid_moments(log_lik + prior_j.logpdf(grid), grid)
    w2 = w.reshape(axis.size, axis.size)
    edge = w2[[0, -1], :].sum() + w2[:, [0, -1]].sum()
    assert edge < 1e-6  # the grid holds the whole conditional
    mean_lik, _, _ = _grid_moments(log_lik, grid)  # what a missing prior would give

    proposal = adaptation.init_proposal(2, 2, jnp.float64)._replace(
        log_scale=jnp.log(jnp.full((2,), 0.8)), log_tau=jnp.log(jnp.full((2,), 0.5))
    )

    def hmc_chain(key, g0):
        # HMC on gamma_j alone (as a one-unit block), with the production gradient
        # surrogate (the Gram-matrix marginal likelihood).
        def log_target(g, marginal=cond.marginal_loglik):
            return mll_at(g[0], marginal) + cond.gamma_log_prior(
                g[0], pos.mu_gamma, pos.prec_gamma
            )

        surrogate = lambda g: log_target(g, cond.marginal_loglik_gram)
        chol = 0.6 * jnp.eye(2, dtype=jnp.float64)[None]

        def body(g, k):
            k_p, k_u = jax.random.split(k)
            p = jax.random.normal(k_p, (1, 2), jnp.float64)
            log_u = jnp.log(jax.random.uniform(k_u, dtype=jnp.float64))
            g, _ = blocks.hmc_move(p, log_u, g, log_target, chol, 0.5, 5, surrogate)
            return g, None

        g, _ = jax.lax.scan(body, g0[None], jax.random.split(key, steps // 3))
        return g[0]

    def chain(key, g0):
        if kind == "hmc":
            return hmc_chain(key, g0)
        gamma = pos.gamma.at[j].set(g0)

        def body(carry, k):
            gamma, mll = carry
            gamma, mll, _ = moves.update_unit(
                k, j, gamma, mll, pos, data, pm, pv, proposal, bias=True, kinds=kinds
            )
            return (gamma, mll), None

        mll = mll_at(g0)
        (gamma, _), _ = jax.lax.scan(body, (gamma, mll), jax.random.split(key, steps))
        return gamma[j]

    kinds = moves.parse_moves(kind) if kind != "hmc" else ()
    k_start, k_run = jax.random.split(jax.random.key(4))
    starts = prior_j.rvs(chains, random_state=np.random.default_rng(5))
    keys = jax.random.split(k_run, chains)
    final = np.asarray(jax.jit(jax.vmap(chain))(keys, jnp.asarray(starts)))
    se = np.sqrt(np.diag(cov) / chains)
    assert np.all(np.abs(final.mean(0) - mean) < 4.5 * se)
    sq = (final - final.mean(0)) ** 2
    assert np.all(np.abs(sq.mean(0) - np.diag(cov)) < 4.5 * sq.std(0) / np.sqrt(chains))
    # The check can fail: ignoring the prior would shift the mean by many SEs.
    assert np.max(np.abs(mean_lik - mean) / se) > 10


@pytest.mark.parametrize("delta", [-0.4, 0.25, 0.6])
def test_sweep_moves_use_the_correct_ratio(setup, odd_prior, delta):
    pos, data, pm, pv = setup
    prior = odd_prior(2)
    m, d = pos.gamma.shape
    gamma, W, mu = (np.asarray(v) for v in (pos.gamma, pos.prec_gamma, pos.mu_gamma))

    def log_target_group(gamma, W):  # p(gamma, W | rest, y), beta integrated out
        cov = np.linalg.inv(W)
        wishart = stats.wishart(
            df=prior.c_gamma, scale=np.linalg.inv(prior.c_gamma * prior.C_gamma)
        )
        return (
            _dense_mll(data, gamma, pos, pm, pv)
            + wishart.logpdf(W)
            + sum(stats.multivariate_normal(mu, cov).logpdf(g) for g in gamma)
        )

    def mll(g):
        z = cond.design(data.x1, g, True)
        return cond.marginal_loglik(z, data.y, pos.prec, pm, pv)

    log_u = jnp.log(jnp.asarray(0.5))
    g_new, w_new, _, prob = blocks.group_scale_move(
        jnp.asarray(delta),
        log_u,
        pos.gamma,
        pos.prec_gamma,
        pos.mu_gamma,
        mll(pos.gamma),
        mll,
        prior,
    )
    cand_g, cand_w = mu + np.exp(delta) * (gamma - mu), np.exp(-2 * delta) * W
    # Jacobian: m*d weights scaled by e^delta, d(d+1)/2 matrix entries by e^-2delta.
    log_r = log_target_group(cand_g, cand_w) - log_target_group(gamma, W)
    log_r += m * d * delta - d * (d + 1) * delta
    np.testing.assert_allclose(float(prob), min(1.0, np.exp(log_r)), rtol=1e-6)
    accepted = np.log(0.5) < log_r
    np.testing.assert_allclose(
        np.asarray(g_new), cand_g if accepted else gamma, rtol=1e-12
    )
    np.testing.assert_allclose(np.asarray(w_new), cand_w if accepted else W, rtol=1e-12)

    a, b = prior.c_b / 2, prior.c_b * prior.C_b / 2

    def log_target_sb(lam):  # p(sigma_beta^-2 | gamma, mu_beta, sigma, y)
        pm_l, pv_l = gibbs.beta_prior(
            pos._replace(prec_beta=jnp.asarray(lam)), prior, True
        )
        return _dense_mll(data, gamma, pos, pm_l, pv_l) + stats.gamma(
            a, scale=1 / b
        ).logpdf(lam)

    def mll_sb(lam):
        pm_l, pv_l = gibbs.beta_prior(pos._replace(prec_beta=lam), prior, True)
        return cond.marginal_loglik(
            cond.design(data.x1, pos.gamma, True), data.y, pos.prec, pm_l, pv_l
        )

    lam = float(pos.prec_beta)
    _, prob = blocks.sigma_beta_move(
        jnp.asarray(delta), log_u, pos.prec_beta, mll_sb(pos.prec_beta), mll_sb, prior
    )
    log_r = log_target_sb(lam * np.exp(delta)) - log_target_sb(lam) + delta  # Jacobian
    np.testing.assert_allclose(float(prob), min(1.0, np.exp(log_r)), rtol=1e-6)
