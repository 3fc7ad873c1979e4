"""Simulation-based calibration of the full Gibbs sweep (Talts et al., 2018).

For each replication: draw every parameter from the hierarchical prior, simulate
``y``, run the sampler from an unrelated start and rank the true value of several
scalar quantities among thinned posterior draws. If the sweep leaves the posterior
invariant, the ranks are uniform; a chi-square test on their histogram checks it.
The larger version (more replications, both proposals) is in benchmarks/bayes.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxseq.bayes import adaptation, gibbs, simulate
from jaxseq.bayes.models import augment, network_mean

REPS, DRAWS, THIN, WARMUP, BINS = 200, 99, 4, 100, 10
X_REF = jnp.asarray([[-1.0], [0.5]])


def _quantities(pos: gibbs.NetParams) -> jax.Array:
    f = network_mean(X_REF, pos.beta, pos.gamma, pos.b0)
    return jnp.stack(
        [
            jnp.log(pos.prec),
            pos.mu_beta,
            jnp.log(pos.prec_beta),
            pos.mu_gamma[0],
            pos.mu_gamma[1],
            jnp.log(pos.prec_gamma[0, 0]),
            f[0],
            f[1],
        ]
    )


NAMES = ["log prec", "mu_beta", "log prec_beta", "mu_gamma0", "mu_gamma1",
         "log prec_gamma00", "f(-1)", "f(0.5)"]  # fmt: skip


def sbc_ranks(
    prior,
    *,
    hidden=2,
    n=20,
    kind="rw+scale+flip+prior+hmc+group+sigma_beta",
    seed=0,
    reps=REPS,
    thin=THIN,
):
    """Ranks ``[reps, quantities]`` of the true values among ``DRAWS`` draws."""
    x = np.random.default_rng(seed).uniform(-2, 2, size=(n, 1))
    x1 = augment(jnp.asarray(x, jnp.float32))
    proposal = adaptation.init_proposal(hidden, 2)._replace(
        log_scale=jnp.full((hidden,), jnp.log(0.6))
    )

    def one(key):
        k_true, k_noise, k_init, k_run = jax.random.split(key, 4)
        truth = simulate.sample_prior(k_true, prior, hidden)
        f = network_mean(x1[:, 1:], truth.beta, truth.gamma, truth.b0)
        y = f + jax.random.normal(k_noise, (n,)) / jnp.sqrt(truth.prec)
        data = gibbs.Data(x1, y)
        state = gibbs.init(simulate.initial_position(k_init, prior, hidden))

        def sweep(state, k):
            state, _ = gibbs.step(k, state, data, prior, proposal, kind=kind)
            return state, _quantities(state.position)

        keys = jax.random.split(k_run, WARMUP + DRAWS * thin)
        _, q = jax.lax.scan(sweep, state, keys)
        draws = q[WARMUP::thin]
        return jnp.sum(draws < _quantities(truth), axis=0)

    keys = jax.random.split(jax.random.key(seed), reps)
    # Chunks of 50 replications keep each batched LAPACK call small (XLA's CPU
    # thread pool has been seen to wedge on very large vmapped LAPACK batches).
    return np.asarray(jax.jit(lambda k: jax.lax.map(one, k, batch_size=50))(keys))


def chi2_pvalues(ranks: np.ndarray) -> np.ndarray:
    """Chi-square uniformity p-value of each column's rank histogram."""
    pvalues = []
    for col in ranks.T:
        counts = np.histogram(col, bins=BINS, range=(0, DRAWS + 1))[0]
        pvalues.append(stats.chisquare(counts).pvalue)
    return np.asarray(pvalues)


@pytest.mark.slow
def test_gibbs_sweep_is_calibrated(odd_prior):
    ranks = sbc_ranks(odd_prior(2))
    assert ranks.shape == (REPS, len(NAMES))
    pvalues = chi2_pvalues(ranks)
    # 8 tests at 0.001: a correct sampler fails with probability < 1%.
    assert np.all(pvalues > 1e-3), dict(zip(NAMES, np.round(pvalues, 5), strict=True))
