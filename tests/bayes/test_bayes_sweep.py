"""The sweep's building blocks: the closed-form HMC gradient, the ``Moves``
configuration and the one-scan Metropolis-Hastings schedule of ``gibbs.step``."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxseq.bayes import adaptation, augment, gibbs, moves
from jaxseq.bayes import conditionals as cond


def _problem(odd_prior, n=30, m=3, p=2, seed=1):
    rng = np.random.default_rng(seed)
    d = p + 1
    a = rng.normal(size=(d, d))
    pos = gibbs.NetParams(
        beta=jnp.asarray(rng.normal(size=m)),
        b0=jnp.asarray(0.1),
        gamma=jnp.asarray(rng.normal(size=(m, d))),
        mu_beta=jnp.asarray(0.3),
        prec_beta=jnp.asarray(0.7),
        mu_gamma=jnp.asarray(rng.normal(size=d)),
        prec_gamma=jnp.asarray(a @ a.T + np.eye(d)),
        prec=jnp.asarray(3.0),
    )
    data = gibbs.Data(augment(jnp.asarray(rng.normal(size=(n, p)))),
                      jnp.asarray(rng.normal(size=n)))  # fmt: skip
    return pos, data, odd_prior(d)


@pytest.mark.parametrize("bias, masked", [(True, True), (False, False)])
def test_hmc_gradient_is_autodiff_of_the_surrogate(x64_module, odd_prior, bias, masked):
    """The closed form (Woodbury) equals ``jax.grad`` of the Gram-matrix marginal
    likelihood plus the units' normal prior; inactive units get no gradient."""
    pos, data, prior = _problem(odd_prior)
    active = jnp.arange(3) < 2 if masked else None
    pm, pv = gibbs.beta_prior(pos, prior, bias)

    def surrogate(g):
        z = cond.design(data.x1, g, bias, active)
        lp = jax.vmap(cond.gamma_log_prior, (0, None, None))(
            g, pos.mu_gamma, pos.prec_gamma
        )
        lp = lp if active is None else jnp.where(active, lp, 0.0)
        return cond.marginal_loglik_gram(z, data.y, pos.prec, pm, pv) + lp.sum()

    moving = gibbs._Moving(pos.gamma, pos.prec_gamma, pos.prec_beta, jnp.int32(2))
    got = jax.jit(
        lambda g: gibbs._hmc_gradient(g, moving, pos, data, prior, bias, active)
    )(pos.gamma)
    want = jax.jit(jax.grad(surrogate))(pos.gamma)
    assert np.max(np.abs(want)) > 1.0  # an informative point
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)
    if masked:
        assert np.all(np.asarray(got)[2] == 0.0)
    # ... and the gradient in z against central differences of the exact marginal
    # likelihood (the Gram form differs from it by rounding only).
    z = cond.design(data.x1, pos.gamma, bias)
    grad_z = jax.jit(cond.marginal_loglik_gram_grad)(z, data.y, pos.prec, pm, pv)
    h, (i, j) = 1e-6, (4, z.shape[1] - 1)
    f = jax.jit(jax.vmap(lambda zz: cond.marginal_loglik(zz, data.y, pos.prec, pm, pv)))
    plus, minus = f(jnp.stack([z.at[i, j].add(h), z.at[i, j].add(-h)]))
    np.testing.assert_allclose(float(grad_z[i, j]), (plus - minus) / (2 * h), rtol=1e-5)


def test_moves_are_parsed_once_and_name_the_argument():
    parsed = moves.Moves.parse("hmc+scale+rw")
    assert parsed == moves.Moves(("rw", "scale"), ("hmc",))
    assert str(parsed) == "rw+scale+hmc" and "hmc" in parsed and "flip" not in parsed
    assert moves.as_moves(parsed) is parsed
    assert moves.parse_moves(parsed) == ("rw", "scale", "hmc")
    assert hash(moves.Moves.parse(moves.DEFAULT)) == hash(moves.as_moves(moves.DEFAULT))
    assert moves.Moves(("scale", "rw")).unit == ("rw", "scale")  # the applied order
    with pytest.raises(ValueError, match="proposal: expected moves joined by"):
        moves.Moves.parse("rw+langevin")
    with pytest.raises(ValueError, match="kind: expected moves joined by .* got 'hmc'"):
        moves.as_moves("hmc", "kind")  # no per-unit move
    with pytest.raises(ValueError, match="Moves: expected unit moves from"):
        moves.Moves(("hmc",))


def test_step_takes_moves_or_their_string_form(odd_prior):
    pos, data, prior = _problem(odd_prior, n=12, m=2, p=1)
    state = gibbs.GibbsState(jax.tree.map(lambda a: a.astype(jnp.float32), pos))
    data = jax.tree.map(lambda a: a.astype(jnp.float32), data)
    proposal = adaptation.init_proposal(2, 2, jnp.float32)
    key = jax.random.key(0)
    args = (key, state, data, prior, proposal)
    program = lambda kind: str(jax.make_jaxpr(partial(gibbs.step, kind=kind))(*args))
    parsed = moves.Moves.parse("flip+rw+sigma_beta")
    assert program("rw+flip+sigma_beta") == program(parsed)  # the same sweep
    info = jax.jit(partial(gibbs.step, kind=parsed))(*args)[1]
    assert np.all(np.isnan(info.accept_scale)) and np.isnan(info.accept_hmc)
    assert np.all(np.isfinite(info.accept_rw)) and np.isfinite(info.accept_sigma_beta)
    with pytest.raises(ValueError, match="kind: expected moves joined by"):
        gibbs.step(key, state, data, prior, proposal, kind="rw+langevin")


def test_sweep_schedule_keeps_the_conditional_of_one_unit(x64_module, odd_prior):
    """With everything but one unit's weights fixed (m = 1, no sweep-level move
    changes nu), the sweep's scan of rw+scale+flip moves must leave
    p(gamma_1 | nu, y) invariant: compare its stationary draws with a quadrature
    of that density on a grid."""
    rng = np.random.default_rng(5)
    n = 15
    x = rng.uniform(-2, 2, size=(n, 1))
    y = np.tanh(2.0 * x[:, 0]) + 0.3 * rng.normal(size=n)
    prior = odd_prior(2)
    pos = gibbs.NetParams(
        beta=jnp.zeros(1), b0=jnp.asarray(0.0), gamma=jnp.asarray([[0.2, 1.0]]),
        mu_beta=jnp.asarray(0.2), prec_beta=jnp.asarray(0.8),
        mu_gamma=jnp.asarray([0.3, 0.5]),
        prec_gamma=jnp.asarray(np.linalg.inv([[0.6, 0.1], [0.1, 0.8]])),
        prec=jnp.asarray(1 / 0.3**2),
    )  # fmt: skip
    data = gibbs.Data(augment(jnp.asarray(x)), jnp.asarray(y))
    pm, pv = gibbs.beta_prior(pos, prior, True)
    kinds = moves.Moves.parse("rw+scale+flip")
    proposal = adaptation.init_proposal(1, 2, jnp.float64)
    steps, chains = 200, 40

    def chain(key):
        def body(moving, k):
            k_n, k_u = jax.random.split(k)
            units = moves.unit_noise(k_n, 2, jnp.float64, (1,))
            log_u = jnp.log(jax.random.uniform(k_u, (4,), jnp.float64))
            noise = (units, jnp.zeros((1, 2)), jnp.zeros(2), None, log_u)
            moving, _, _ = gibbs._metropolis(
                noise, moving, pos, data, prior, proposal, True, kinds, None
            )
            return moving, moving.gamma[0]

        start = gibbs._Moving(pos.gamma, pos.prec_gamma, pos.prec_beta, jnp.int32(1))
        _, draws = jax.lax.scan(body, start, jax.random.split(key, steps))
        return draws[-1]

    final = np.asarray(
        jax.jit(jax.vmap(chain))(jax.random.split(jax.random.key(1), chains))
    )
    axis = np.linspace(-6, 6, 121)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    z = lambda g: cond.design(data.x1, jnp.asarray(g)[None], True)
    mll = jax.vmap(lambda g: cond.marginal_loglik(z(g), data.y, pos.prec, pm, pv))
    cov = np.linalg.inv(np.asarray(pos.prec_gamma))
    logp = np.asarray(mll(jnp.asarray(grid))) + stats.multivariate_normal(
        np.asarray(pos.mu_gamma), cov
    ).logpdf(grid)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    mean = w @ grid
    var = w @ (grid - mean) ** 2
    se = np.sqrt(var / chains)
    assert np.all(np.abs(final.mean(0) - mean) < 4.5 * se)
