"""The number of hidden units sampled (jaxseq.bayes.dimension): the birth/death
ratio against the joint density evaluated directly (scipy), the prior of m
recovered without data, the posterior of m on data simulated from m = 1 and m = 3,
and bad input."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxseq import bayes
from jaxseq.bayes import dimension as dim
from jaxseq.bayes import gibbs
from jaxseq.bayes.models import augment

from .conftest import _odd_prior


def _log_joint(m, gamma, y, x1, pos, prior, log_pm):
    """log p(m) + sum_{j<m} log N(gamma_j | mu, S) + log N(y | Z b, s2 I + Z V Z'),
    everything in float64 from its definition (beta and b0 integrated out)."""
    cov_gamma = np.linalg.inv(np.asarray(pos.prec_gamma, float))
    mu = np.asarray(pos.mu_gamma, float)
    lp = log_pm[m] + sum(
        stats.multivariate_normal.logpdf(gamma[j], mu, cov_gamma) for j in range(m)
    )
    z = np.concatenate([np.ones((len(y), 1)), 1 / (1 + np.exp(-x1 @ gamma[:m].T))], 1)
    b = np.r_[prior.a_0, np.full(m, float(pos.mu_beta))]
    v = np.r_[prior.A_0, np.full(m, 1 / float(pos.prec_beta))]
    cov = np.eye(len(y)) / float(pos.prec) + (z * v) @ z.T
    return lp + stats.multivariate_normal.logpdf(y, z @ b, cov)


@pytest.mark.parametrize(
    "prior_m", [dim.TruncatedPoisson(2.5), dim.Geometric(0.4)], ids=["poisson", "geom"]
)
def test_birth_and_death_ratio_match_the_joint_density(prior_m):
    hidden = dim.check_hidden_units(dim.HiddenUnits(4, prior_m, 0.35))
    rng = np.random.default_rng(3)
    n, d, m = 25, 3, 2
    prior = _odd_prior(d)
    x1 = np.asarray(augment(rng.normal(size=(n, d - 1))))
    y = rng.normal(size=n)
    a = rng.normal(size=(d, d))
    pos = gibbs.NetParams(
        beta=jnp.zeros(4),
        b0=jnp.zeros(()),
        gamma=jnp.zeros((4, d)),
        mu_beta=jnp.asarray(0.3),
        prec_beta=jnp.asarray(0.8),
        mu_gamma=jnp.asarray(rng.normal(size=d) * 0.5),
        prec_gamma=jnp.asarray(a @ a.T / d + 0.6 * np.eye(d)),
        prec=jnp.asarray(4.0),
    )
    gamma = np.zeros((4, d))
    gamma[:m] = rng.normal(size=(m, d)) * 1.5
    data = gibbs.Data(jnp.asarray(x1, jnp.float32), jnp.asarray(y, jnp.float32))
    mean, var = gibbs.beta_prior(pos, prior, True)
    jitted = jax.jit(
        lambda noise, g, k: gibbs._birth_death(
            noise, g, k, pos, pos.prec_gamma, data, mean, var, True, hidden
        )
    )
    move = lambda noise, g, k: jitted(noise, jnp.asarray(g, jnp.float32), jnp.int32(k))
    eps = rng.normal(size=d)
    # Birth from m = 2 into slot floor(0.5 * 3) = 1, accepted whenever possible.
    born, m_born, prob_birth = move(
        dim.DimensionNoise(jnp.asarray(eps, jnp.float32), jnp.array([0.1, 0.5, 1e-30])),
        gamma,
        m,
    )
    assert int(m_born) == m + 1
    chol = np.linalg.cholesky(np.asarray(pos.prec_gamma, float))
    new = np.asarray(pos.mu_gamma, float) + np.linalg.solve(chol.T, eps)
    expected = gamma.copy()
    expected[m], expected[1] = gamma[1], new
    np.testing.assert_allclose(np.asarray(born), expected, rtol=1e-5, atol=1e-5)
    # The direct ratio: joint densities of both states, the newborn's proposal
    # density, the choice of move (b_m, d_{m+1}) and of the slot (1 / (m + 1)).
    log_pm = dim.log_prior_m(hidden)
    b = dim.birth_probabilities(hidden)
    cov_gamma = np.linalg.inv(np.asarray(pos.prec_gamma, float))
    log_q_birth = np.log(b[m]) - np.log(m + 1)
    log_q_birth += stats.multivariate_normal.logpdf(new, pos.mu_gamma, cov_gamma)
    log_q_death = np.log(1 - b[m + 1]) - np.log(m + 1)
    log_r = (
        _log_joint(m + 1, expected, y, x1, pos, prior, log_pm)
        + log_q_death
        - _log_joint(m, gamma, y, x1, pos, prior, log_pm)
        - log_q_birth
    )
    assert np.isfinite(log_r) and abs(log_r) < 20  # an informative case
    np.testing.assert_allclose(float(prob_birth), min(1.0, np.exp(log_r)), rtol=2e-3)
    # The death that undoes it (slot floor(0.5 * 3) = 1) has the inverse ratio.
    dead, m_dead, prob_death = move(
        dim.DimensionNoise(jnp.zeros(d), jnp.array([0.99, 0.5, 1e-30])), expected, m + 1
    )
    assert int(m_dead) == m
    np.testing.assert_allclose(float(prob_death), min(1.0, np.exp(-log_r)), rtol=2e-3)
    np.testing.assert_allclose(np.asarray(dead), gamma, atol=1e-6)


def test_prior_of_m_is_recovered_without_data():
    """With n = 0 the marginal likelihood is 0 and the sweep's m must follow p(m)."""
    hidden = dim.check_hidden_units(dim.HiddenUnits(5, dim.TruncatedPoisson(2.0)))
    d, sweeps = 2, 6000
    prior = bayes.default_prior(d - 1)
    data = gibbs.Data(jnp.zeros((0, d)), jnp.zeros((0,)))
    start = bayes.initial_position(jax.random.key(0), prior, hidden.max)
    proposal = bayes.adaptation.init_proposal(hidden.max, d)

    def sweep(state, key):
        state, _ = gibbs.step(
            key, state, data, prior, proposal, kind="rw", hidden=hidden
        )
        return state, state.m

    state = gibbs.GibbsState(start, jnp.int32(hidden.max))
    keys = jax.random.split(jax.random.key(1), sweeps)
    _, m = jax.jit(lambda s, k: jax.lax.scan(sweep, s, k))(state, keys)
    m = np.asarray(m)[500:]
    freq = np.bincount(m, minlength=hidden.max + 1)[1:] / m.size
    target = np.exp(dim.log_prior_m(hidden)[1:-1])
    np.testing.assert_allclose(target.sum(), 1.0, rtol=1e-12)
    pmf = stats.poisson.pmf(np.arange(1, 6), 2.0)
    np.testing.assert_allclose(target, pmf / pmf.sum(), rtol=1e-10)
    # Nearest-neighbour moves: autocorrelated draws; 5500 draws leave a total
    # variation distance of about 0.02 (effective sizes ~1500).
    assert 0.5 * np.abs(freq - target).sum() < 0.06, (freq, target)


def _step_data(rng, n, units):
    x = rng.uniform(-3.0, 3.0, (n, 1))
    s = lambda t: 1.0 / (1.0 + np.exp(-t))
    if units == 1:
        f = 2.0 * s(3.0 * x[:, 0])
    else:  # three well-separated steps, up, down, up
        t = x[:, 0]
        f = 2 * s(6 * (t + 2)) - 2 * s(6 * t) + 2 * s(6 * (t - 2))
    return x, f + 0.1 * rng.normal(size=n)


@pytest.fixture(scope="module")
def fits():
    """Fits of data from m = 1 and m = 3 units, one compiled program for both."""
    rng = np.random.default_rng(1)
    hidden = bayes.HiddenUnits(max=4, prior=bayes.Geometric(0.5))
    out = {}
    for units in (1, 3):
        x, y = _step_data(rng, 120, units)
        with warnings.catch_warnings():  # short runs: R-hat/ESS warnings expected
            warnings.simplefilter("ignore", bayes.ConvergenceWarning)
            out[units] = bayes.fit(
                jax.random.key(units),
                x,
                y,
                hidden=hidden,
                proposal="rw+flip",
                num_warmup=500,
                num_samples=1500,
                progress=False,
            )
    return out


def test_posterior_of_m_concentrates_near_the_truth(fits):
    m1, m3 = (np.asarray(fits[k].samples["m"]) for k in (1, 3))
    prior = np.exp(dim.log_prior_m(fits[1].dimension)[1:-1])  # 8, 4, 2, 1 / 15
    # m = 3 data: one or two units cannot fit three steps (prior P(m >= 3) = 0.2).
    # Measured over five seeds (and AVX2): 0.89-1.0, and P(m <= 1) = 0.
    assert (m3 >= 3).mean() > 0.75 and (m3 <= 1).mean() < 0.02
    # m = 1 data: mostly one or two units. The posterior does not collapse onto
    # m = 1: an extra unit whose output is ~0 over the data costs only its prior
    # mass (measured P(m = 1) 0.48-0.69, P(m >= 3) 0.10-0.22 against the prior's
    # 0.53 and 0.2), so only what the data rule out is asserted.
    assert (m1 <= 2).mean() > 0.6 and (m1 >= 3).mean() < 0.4
    assert prior[0] == pytest.approx(8 / 15)
    # Posterior means of m (measured differences 1.7-2.0).
    assert m3.mean() - m1.mean() > 1.2


def test_variable_m_fit_outputs(fits):
    fit = fits[3]
    m = fit.samples["m"]
    assert m.shape == fit.samples["prec"].shape and fit.hidden == 4
    # Inactive units are zero, so they add nothing to f.
    slots = np.arange(4)
    inactive = slots >= m[..., None]
    assert np.all(fit.samples["beta"][inactive] == 0)
    assert "accept_dim" in fit.extra
    draws = bayes.label_invariant(fit)
    np.testing.assert_array_equal(draws["m"], m)
    # Predictions average over m: the band's mean is the mean over all draws.
    x_new = np.linspace(-2.5, 2.5, 7)[:, None]
    pred = bayes.predict(jax.random.key(0), fit, x_new)
    f = bayes.function_draws(fit, x_new)
    np.testing.assert_allclose(pred.mean, f.reshape(-1, 7).mean(0), rtol=1e-6)
    s = lambda t: 1.0 / (1.0 + np.exp(-t))
    t = x_new[:, 0]
    f_true = 2 * s(6 * (t + 2)) - 2 * s(6 * t) + 2 * s(6 * (t - 2))
    assert np.max(np.abs(pred.mean - f_true)) < 0.25


def test_variable_m_in_arviz(fits):
    pytest.importorskip("arviz")
    idata = fits[1].to_arviz()
    np.testing.assert_array_equal(idata.posterior["m"].values, fits[1].samples["m"])
    assert idata.posterior.attrs["hidden_variable"] == 1


@pytest.mark.parametrize(
    "hidden, match",
    [
        (bayes.HiddenUnits(max=0), r"hidden\.max: expected an integer >= 1, got 0"),
        (
            bayes.HiddenUnits(prior=bayes.TruncatedPoisson(0.0)),
            r"hidden\.prior\.rate: expected a finite rate > 0 .*got 0\.0",
        ),
        (
            bayes.HiddenUnits(prior=bayes.Geometric(0.0)),
            r"hidden\.prior\.q: expected a probability in \(0, 1\].*got 0\.0",
        ),
        (bayes.HiddenUnits(birth=1.0), r"hidden\.birth: expected .* \(0, 1\), got 1"),
        (bayes.HiddenUnits(birth=0.0), r"hidden\.birth: expected .* \(0, 1\), got 0"),
    ],
)
def test_bad_hidden_units(hidden, match):
    x, y = np.linspace(-1, 1, 10)[:, None], np.linspace(0, 1, 10) ** 2
    with pytest.raises(ValueError, match=match):
        bayes.fit(jax.random.key(0), x, y, hidden=hidden, num_samples=10)


def test_variable_m_needs_gibbs_with_vectorised_chains():
    x, y = np.linspace(-1, 1, 10)[:, None], np.linspace(0, 1, 10) ** 2
    with pytest.raises(ValueError, match="sampler: a variable number .* got 'nuts'"):
        bayes.fit(jax.random.key(0), x, y, hidden=bayes.HiddenUnits(), sampler="nuts")
    with pytest.raises(ValueError, match="chain_method: .* got 'parallel'"):
        bayes.fit(
            jax.random.key(0), x, y, hidden=bayes.HiddenUnits(), chain_method="parallel"
        )
    with pytest.raises(TypeError, match="hidden.prior: expected TruncatedPoisson"):
        dim.check_hidden_units(bayes.HiddenUnits(prior=3.0))


@pytest.mark.parametrize(
    "flags, code, message",
    [
        (
            ["--hidden", "abc"],
            2,
            "argument --hidden: expected an integer >= 1 or 'auto'",
        ),
        (["--hidden", "0"], 2, "argument --hidden: expected an integer >= 1, got '0'"),
        (["--hidden", "auto", "--max-hidden", "0"], 2, "argument --max-hidden"),
        (["--hidden", "3", "--max-hidden", "4"], 1, "--max-hidden: expected only with"),
        (["--hidden", "auto", "--sampler", "nuts"], 1, "sampler: a variable number"),
    ],
)
def test_cli_hidden_flags(tmp_path, capsys, flags, code, message):
    from jaxseq.bayes.cli import main

    path = tmp_path / "data.csv"
    rows = [f"{v:.3f},{v * v:.3f}" for v in np.linspace(-1, 1, 12)]
    path.write_text("x,y\n" + "\n".join(rows) + "\n")
    try:
        status = main(["fit", "--data", str(path), "--quiet", *flags])
    except SystemExit as exit_:
        status = exit_.code
    err = capsys.readouterr().err
    assert status == code and message in err, err


def _sbc_ranks(key, prior, hidden, x, *, reps, warmup, draws, thin, kind):
    """Ranks ``[reps, 9]`` of the truths of ``sbc.NAMES`` and ``m`` (ties of the
    discrete m broken uniformly at random) among thinned draws of chains started
    away from the truth (all m_max units active)."""
    x1, x_ref = augment(x), jnp.asarray([[-1.0], [0.5]])
    n, m_max = x.shape[0], hidden.max
    log_pm = jnp.asarray(dim.log_prior_m(hidden)[1:-1], jnp.float32)
    proposal = bayes.adaptation.init_proposal(m_max, 2)._replace(
        log_scale=jnp.full((m_max,), jnp.log(0.6))
    )

    def one(key):
        k_m, k_true, k_noise, k_init, k_run, k_tie = jax.random.split(key, 6)
        m = jax.random.categorical(k_m, log_pm) + 1
        truth = bayes.simulate.sample_prior(k_true, prior, m_max)
        on = jnp.arange(m_max) < m
        truth = truth._replace(
            beta=jnp.where(on, truth.beta, 0.0),
            gamma=jnp.where(on[:, None], truth.gamma, 0.0),
        )
        f = bayes.network_mean(x, truth.beta, truth.gamma, truth.b0)
        y = f + jax.random.normal(k_noise, (n,)) / jnp.sqrt(truth.prec)
        start = bayes.initial_position(k_init, prior, m_max)
        state = gibbs.GibbsState(start, jnp.int32(m_max))

        def sweep(state, k):
            state, _ = gibbs.step(
                k, state, gibbs.Data(x1, y), prior, proposal, kind=kind, hidden=hidden
            )
            return state, (bayes.sbc.quantities(state.position, x_ref), state.m)

        keys = jax.random.split(k_run, warmup + draws * thin)
        _, (q, ms) = jax.lax.scan(sweep, state, keys)
        q, ms = q[warmup::thin], ms[warmup::thin]
        below = jnp.sum(q < bayes.sbc.quantities(truth, x_ref), axis=0)
        ties = jnp.sum(ms == m)
        tie_rank = jnp.floor(jax.random.uniform(k_tie) * (ties + 1)).astype(jnp.int32)
        return jnp.append(below, jnp.sum(ms < m) + tie_rank)

    return np.asarray(jax.jit(jax.vmap(one))(jax.random.split(key, reps)))


@pytest.mark.slow
def test_variable_m_sweep_is_calibrated():
    """Simulation-based calibration with m drawn from its prior: the ranks of m,
    the noise, the hyperparameters and f at two inputs must be uniform. It covers
    the masked unit, HMC, group and sigma_beta moves and the conjugate draws'
    counts of active units."""
    hidden = dim.check_hidden_units(dim.HiddenUnits(3, dim.TruncatedPoisson(1.5)))
    x = np.random.default_rng(0).uniform(-2, 2, size=(20, 1))
    draws = 99
    ranks = _sbc_ranks(
        jax.random.key(0), _odd_prior(2), hidden, x, reps=200, warmup=100,
        draws=draws, thin=4, kind="rw+scale+flip+hmc+group+sigma_beta",
    )  # fmt: skip
    assert ranks.min() >= 0 and ranks.max() <= draws
    pvalues = bayes.sbc.rank_pvalues(ranks, draws)
    names = (*bayes.sbc.NAMES, "m")
    # 9 tests at 0.001: a correct sampler fails with probability < 1%.
    assert np.all(pvalues > 1e-3), dict(zip(names, pvalues.round(5), strict=True))
