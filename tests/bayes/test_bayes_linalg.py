"""The LAPACK-free linear algebra of the samplers (``jaxseq.bayes._linalg``)
against NumPy/SciPy in float64, and the float32 accuracy of the marginal
likelihood where the normal equations fail."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg as sl

from jaxseq.bayes import _linalg as la
from jaxseq.bayes import conditionals as cond


@pytest.fixture
def spd(x64):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    return a @ a.T + 0.5 * np.eye(6)


def test_cholesky_inverse_and_solves_match_scipy(spd):
    low = np.asarray(la.cholesky(jnp.asarray(spd)))
    np.testing.assert_allclose(low, np.linalg.cholesky(spd), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(la.inv_spd(jnp.asarray(spd)), np.linalg.inv(spd),
                               rtol=1e-10)  # fmt: skip
    rng = np.random.default_rng(1)
    for b in (rng.normal(size=6), rng.normal(size=(6, 3))):
        for lower in (True, False):
            t = low if lower else low.T
            for transpose in (False, True):
                got = la.solve_triangular(
                    jnp.asarray(t), jnp.asarray(b), lower=lower, transpose=transpose
                )
                ref = sl.solve_triangular(t, b, lower=lower, trans=int(transpose))
                np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(la.cho_solve(jnp.asarray(low), jnp.asarray(b)),
                                   np.linalg.solve(spd, b), rtol=1e-10)  # fmt: skip


def test_cholesky_of_an_indefinite_matrix_is_nan(x64):
    bad = jnp.asarray([[1.0, 2.0], [2.0, 1.0]])
    assert np.isnan(np.asarray(la.cholesky(bad))).any()


def test_qr_solve_gives_r_and_least_squares(x64):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(40, 5)), rng.normal(size=40)
    r, qtb = la.qr_solve(jnp.asarray(a), jnp.asarray(b))
    # R' is the Cholesky factor of a'a (non-negative diagonal), unique.
    np.testing.assert_allclose(r, np.linalg.cholesky(a.T @ a).T, rtol=1e-10, atol=1e-12)
    x = sl.solve_triangular(np.asarray(r), np.asarray(qtb))
    np.testing.assert_allclose(x, np.linalg.lstsq(a, b, rcond=None)[0], rtol=1e-10)
    # vmap over a batch equals the single calls (what vectorised chains do).
    batch = jax.vmap(la.qr_solve)(jnp.stack([a, 2 * a]), jnp.stack([b, b]))
    np.testing.assert_allclose(batch[0][1], 2 * np.asarray(r), rtol=1e-12)


def _reference_mll(z, y, prec, pm, pv):
    """float64 NumPy (LAPACK QR) value of ``marginal_loglik``."""
    sv = np.sqrt(pv)
    n, k = z.shape
    a = np.r_[np.sqrt(prec) * z * sv, np.eye(k)]
    q, r = np.linalg.qr(a)
    u = np.linalg.solve(r, q[:n].T @ (np.sqrt(prec) * (y - z @ pm)))
    res = y - z @ (pm + sv * u)
    logdet = 2 * np.sum(np.log(np.abs(np.diag(r))))
    return 0.5 * (n * np.log(prec / (2 * np.pi)) - logdet - prec * res @ res - u @ u)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_float32_marginal_likelihood_is_accurate_for_collinear_units(seed):
    # Two nearly identical hidden units and a small noise: cond(M) ~ 4e6, where
    # float32 normal equations (Z'Z and a Cholesky factor) are off by ~0.6 nats.
    rng = np.random.default_rng(seed)
    n = 2000
    x = rng.uniform(-2, 2, n)
    sig = lambda t: 1 / (1 + np.exp(-t))
    z = np.c_[np.ones(n), sig(3 * x), sig(3 * x + 0.01), sig(x - 1)]
    y = 1.5 * z[:, 1] - 0.7 * z[:, 3] + 0.02 * rng.normal(size=n)
    prec, pm, pv = 2500.0, np.zeros(4), np.array([10.0, 100.0, 100.0, 100.0])
    w = z * np.sqrt(pv)
    assert np.linalg.cond(prec * w.T @ w + np.eye(4)) > 1e6  # the hard regime
    got = cond.marginal_loglik(
        *(jnp.asarray(v, jnp.float32) for v in (z, y, prec, pm, pv))
    )
    assert got.dtype == jnp.float32
    assert abs(float(got) - _reference_mll(z, y, prec, pm, pv)) < 5e-3
