"""Shared helpers for the Bayesian tests: a non-default prior (so hyperparameter
mix-ups cannot cancel) and a small data set drawn from it."""

from __future__ import annotations

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density

from jaxseq.bayes import Prior, augment, gibbs, regression

# The CLI turns on JAX's persistent compilation cache (~/.cache/jaxseq/jax); tests
# leave the home folder alone unless a test sets the variable itself.
os.environ.setdefault("JAXSEQ_COMPILE_CACHE", "0")


def _odd_prior(d: int) -> Prior:
    """A proper prior with no default values and non-diagonal matrices."""
    rng = np.random.default_rng(7)
    a = rng.normal(size=(d, d))
    c = rng.normal(size=(d, d))
    return Prior(
        a_beta=0.3,
        A_beta=2.0,
        c_b=3.0,
        C_b=0.5,
        a_gamma=np.linspace(0.1, -0.3, d),
        A_gamma=a @ a.T / d + 0.5 * np.eye(d),
        c_gamma=d + 2.5,
        C_gamma=c @ c.T / d + 0.7 * np.eye(d),
        s=3.0,
        S=0.2,
        a_0=-0.4,
        A_0=4.0,
    )


class Problem:
    """Data, prior and a parameter point (float64) for conditional-density tests."""

    def __init__(self, n: int = 25, p: int = 2, m: int = 3, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.prior = _odd_prior(p + 1)
        self.m = m
        self.x = rng.normal(size=(n, p))
        prior = self.prior
        d = p + 1
        w = rng.normal(size=(d, d))
        self.pos = gibbs.NetParams(
            beta=jnp.asarray(rng.normal(size=m)),
            b0=jnp.asarray(0.5),
            gamma=jnp.asarray(2.0 * rng.normal(size=(m, d))),
            mu_beta=jnp.asarray(0.2),
            prec_beta=jnp.asarray(1.3),
            mu_gamma=jnp.asarray(rng.normal(size=d)),
            prec_gamma=jnp.asarray(w @ w.T / d + 0.5 * np.eye(d)),
            prec=jnp.asarray(4.0),
        )
        eta = np.c_[np.ones(n), self.x] @ np.asarray(self.pos.gamma).T
        f = (1 / (1 + np.exp(-eta))) @ np.asarray(self.pos.beta) + float(self.pos.b0)
        self.y = f + rng.normal(size=n) / np.sqrt(float(self.pos.prec))
        self.data = gibbs.Data(augment(jnp.asarray(self.x)), jnp.asarray(self.y))

        x, y = jnp.asarray(self.x), jnp.asarray(self.y)
        self._log_joint = {
            bias: jax.jit(
                lambda p, bias=bias: log_density(
                    regression, (x, y), {"hidden": m, "prior": prior, "bias": bias}, p
                )[0]
            )
            for bias in (True, False)
        }

    def log_joint(self, pos: gibbs.NetParams, bias: bool = True) -> float:
        """log p(y, all parameters) from the NumPyro model (the NUTS target)."""
        params = {k: jnp.asarray(v) for k, v in pos._asdict().items()}
        if not bias:
            params.pop("b0")
        return float(self._log_joint[bias](params))


@pytest.fixture(scope="module")
def problem(x64_module) -> Problem:
    return Problem()


@pytest.fixture(scope="session")
def odd_prior():
    """``odd_prior(d)``: a proper prior with no default values, non-diagonal matrices."""
    return _odd_prior


@pytest.fixture(scope="session")
def sine_fit():
    """One small Gibbs fit shared by the prediction, diagnostics and plot tests.

    Its chains are short, so :func:`~jaxseq.bayes.fit` may warn about R-hat or ESS
    (tests/bayes/test_bayes_warnings.py checks the warnings); that is not what
    these tests are about."""
    from jaxseq.bayes import ConvergenceWarning, fit, sine_data

    x, y = sine_data(0, 80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(
            jax.random.key(0), x, y, hidden=3, num_warmup=300, num_samples=300,
            num_chains=2,
        )  # fmt: skip
