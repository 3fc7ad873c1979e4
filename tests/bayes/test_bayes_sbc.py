"""Simulation-based calibration of the full Gibbs sweep (Talts et al., 2018),
with :mod:`jaxseq.bayes.sbc`: ranks of prior draws among posterior draws must be
uniform. A deliberately wrong sweep shows that the check can fail. The larger
version (more replications, the lecture's literal step order as a negative
control) is in benchmarks/bayes.py.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxseq.bayes import gibbs, sbc

REPS, DRAWS, THIN, WARMUP = 200, 99, 4, 100
KIND = "rw+scale+flip+prior+hmc+group+sigma_beta"
X = np.random.default_rng(0).uniform(-2, 2, size=(20, 1))
X_REF = np.asarray([[-1.0], [0.5]])


def _ranks(prior, step=gibbs.step, reps=REPS):
    return sbc.ranks(
        jax.random.key(0), prior, X, hidden=2, reps=reps, warmup=WARMUP,
        draws=DRAWS, thin=THIN, kind=KIND, step=step, x_ref=X_REF,
    )  # fmt: skip


@pytest.mark.slow
def test_gibbs_sweep_is_calibrated(odd_prior):
    ranks = _ranks(odd_prior(2))
    assert ranks.shape == (REPS, len(sbc.NAMES))
    assert ranks.min() >= 0 and ranks.max() <= DRAWS
    pvalues = sbc.rank_pvalues(ranks, DRAWS)
    # 8 tests at 0.001: a correct sampler fails with probability < 1%.
    assert np.all(pvalues > 1e-3), dict(zip(sbc.NAMES, pvalues.round(5), strict=True))


@pytest.mark.slow
def test_a_wrong_sweep_fails_calibration(odd_prior):
    def biased_step(key, state, data, prior, proposal, *, kind):
        state, info = gibbs.step(key, state, data, prior, proposal, kind=kind)
        pos = state.position
        return gibbs.GibbsState(pos._replace(prec=1.5 * pos.prec)), info

    pvalues = sbc.rank_pvalues(_ranks(odd_prior(2), biased_step, reps=100), DRAWS)
    assert pvalues[sbc.NAMES.index("log prec")] < 1e-6, pvalues


def test_rank_pvalues_pass_uniform_and_reject_skewed_ranks():
    rng = np.random.default_rng(1)
    uniform = rng.integers(0, DRAWS + 1, size=(500, 2))
    skewed = np.minimum(rng.geometric(0.05, size=(500, 1)), DRAWS)  # piles up low
    exact = np.repeat(np.arange(0, DRAWS + 1, 10), 50)[:, None]  # 50 per bin
    p = sbc.rank_pvalues(np.concatenate([uniform, skewed, exact], 1), DRAWS)
    assert p[0] > 1e-3 and p[1] > 1e-3
    assert p[2] < 1e-20
    assert p[3] == pytest.approx(1.0)  # a perfectly flat histogram: chi-square 0
