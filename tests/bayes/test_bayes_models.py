"""NumPyro models: shapes, the prior shared with the Gibbs sampler, classification,
autoregressive inputs and prior validation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer import Predictive
from numpyro.infer.util import log_density
from scipy import stats

from jaxseq.bayes import (
    check_prior,
    classifier,
    default_prior,
    lagged,
    network_mean,
    regression,
    sample_prior,
)


def test_sample_prior_matches_the_model_prior(odd_prior):
    # The SBC test relies on sample_prior drawing from exactly the NumPyro prior.
    prior, n = odd_prior(2), 4000
    x = jnp.zeros((1, 1))
    predictive = Predictive(regression, num_samples=n)
    model = jax.jit(lambda k: predictive(k, x, hidden=2, prior=prior))(
        jax.random.key(1)
    )
    ours = jax.jit(jax.vmap(lambda k: sample_prior(k, prior, 2)))(
        jax.random.split(jax.random.key(2), n)
    )
    pairs = {
        "mu_beta": lambda s: s["mu_beta"],
        "prec_beta": lambda s: s["prec_beta"],
        "prec": lambda s: s["prec"],
        "b0": lambda s: s["b0"],
        "beta0": lambda s: s["beta"][:, 0],
        "gamma00": lambda s: s["gamma"][:, 0, 0],
        "gamma11": lambda s: s["gamma"][:, 1, 1],
        "mu_gamma1": lambda s: s["mu_gamma"][:, 1],
        "prec_gamma00": lambda s: s["prec_gamma"][:, 0, 0],
        "prec_gamma01": lambda s: s["prec_gamma"][:, 0, 1],
    }
    ours = ours._asdict()
    assert model["y"].shape == (n, 1) and model["gamma"].shape == (n, 2, 2)
    assert model["prec_gamma"].shape == (n, 2, 2) and model["b0"].shape == (n,)
    for name, get in pairs.items():
        p = stats.ks_2samp(np.asarray(get(model)), np.asarray(get(ours))).pvalue
        assert p > 1e-3, (name, p)
    # E[S_gamma^{-1}] = c (c C)^{-1} = C^{-1} under Wishart(c, (c C)^{-1}).
    w = np.asarray(ours["prec_gamma"])
    se = w.std(0) / np.sqrt(n)
    assert np.all(np.abs(w.mean(0) - np.linalg.inv(prior.C_gamma)) < 4.5 * se)


def test_network_mean_broadcasts_over_draws():
    rng = np.random.default_rng(0)
    beta, gamma, b0 = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2, 2)), 0.5
    x = rng.normal(size=(5, 1))
    f = np.asarray(network_mean(x, beta, gamma, b0))
    eta = gamma[1, 2] @ np.r_[1.0, x[3, 0]]
    np.testing.assert_allclose(f[1, 2, 3], beta[1, 2] @ (1 / (1 + np.exp(-eta))) + 0.5,
                               rtol=1e-5)  # fmt: skip


def test_lagged_builds_most_recent_first():
    x, y = lagged(np.arange(10.0), 3)
    assert x.shape == (7, 3) and y.shape == (7,)
    np.testing.assert_array_equal(x[0], [2.0, 1.0, 0.0])
    np.testing.assert_array_equal(y[:2], [3.0, 4.0])
    with pytest.raises(
        ValueError, match=r"series: expected finite values, got series\[2\]"
    ):
        lagged(np.array([1.0, 2.0, np.nan, 3.0, 4.0, 5.0]), 2)
    with pytest.raises(ValueError, match="order"):
        lagged(np.arange(10.0), 0)


def test_default_prior_is_valid_and_data_scaled():
    prior = default_prior(3)
    check_prior(prior, 3)
    assert prior.C_gamma.shape == (4, 4) and prior.c_gamma == 5.0
    assert prior.S == 0.1 and prior.a_beta == 0.0


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "C_gamma",
            np.array([[1.0, 2.0], [2.0, 1.0]]),
            r"prior.C_gamma: .*positive-definite",
        ),
        ("A_gamma", np.eye(3), r"prior.A_gamma: expected shape \(2, 2\), got \(3, 3\)"),
        ("C_gamma", np.array([[1.0, 0.5], [0.0, 1.0]]), r"prior.C_gamma: .*symmetric"),
        ("c_gamma", 0.5, r"prior.c_gamma: .*> d - 1 = 1"),
        ("S", -1.0, r"prior.S: expected a finite positive scalar, got .*-1"),
        ("A_beta", np.inf, r"prior.A_beta: expected a finite positive scalar"),
    ],
)
def test_check_prior_names_the_bad_field(field, value, message):
    prior = default_prior(1)._replace(**{field: value})
    with pytest.raises(ValueError, match=message):
        check_prior(prior, 1)


def test_classifier_prior_predictive_and_seed_special_case():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 2)))
    predictive = Predictive(classifier, num_samples=4)
    draws = jax.jit(lambda k: predictive(k, x, hidden=3, num_classes=3))(
        jax.random.key(0)
    )
    assert draws["y"].shape == (4, 6) and draws["logits"].shape == (4, 6, 3)
    assert np.all((draws["y"] >= 0) & (draws["y"] < 3))
    with pytest.raises(ValueError, match="num_classes"):
        Predictive(classifier, num_samples=1)(
            jax.random.key(0), x, hidden=2, num_classes=1
        )


def test_classifier_log_density_is_the_softmax_likelihood():
    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(8, 2)), rng.integers(0, 3, size=8)
    params = {
        "mu_beta": jnp.asarray(0.1), "prec_beta": jnp.asarray(2.0),
        "mu_gamma": jnp.asarray(rng.normal(size=3)),
        "prec_gamma": jnp.asarray(np.eye(3) * 1.5),
        "gamma": jnp.asarray(rng.normal(size=(2, 3))),
        "beta": jnp.asarray(rng.normal(size=(2, 3))),
        "b": jnp.asarray(rng.normal(size=3)),
    }  # fmt: skip
    kwargs = {"hidden": 2, "num_classes": 3}

    @jax.jit
    def loglik(params):
        _, trace = log_density(classifier, (x, labels), kwargs, params)
        site = trace["y"]
        return site["fn"].log_prob(site["value"]).sum()

    hidden = 1 / (1 + np.exp(-(np.c_[np.ones(8), x] @ np.asarray(params["gamma"]).T)))
    logits = hidden @ np.asarray(params["beta"]) + np.asarray(params["b"])
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = log_p[np.arange(8), labels].sum()
    np.testing.assert_allclose(float(loglik(params)), expected, rtol=1e-5)
