"""Gaussian-process regression (jaxseq.bayes.gp) and the network prior's
infinite-width kernel (jaxseq.bayes.nngp) against independent references:
NumPy's textbook equations (Rasmussen & Williams alg. 2.1), scipy's multivariate
normal, finite differences, Williams' closed form and simulated prior networks."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from jaxseq.bayes import default_prior, gp, nngp


def _np_matern52(x1, x2, ls):
    r = np.sqrt((((x1[:, None, :] - x2[None, :, :]) / ls) ** 2).sum(-1))
    return (1 + np.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-np.sqrt(5) * r)


def _np_matern32(x1, x2, ls):
    r = np.sqrt((((x1[:, None, :] - x2[None, :, :]) / ls) ** 2).sum(-1))
    return (1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r)


def _np_se(x1, x2, ls):
    return np.exp(-0.5 * (((x1[:, None, :] - x2[None, :, :]) / ls) ** 2).sum(-1))


NP_KERNELS = {
    gp.squared_exponential: _np_se,
    gp.matern32: _np_matern32,
    gp.matern52: _np_matern52,
}


def _data(n=25, p=2, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] + 0.1 * rng.normal(size=n)
    return x, y, rng.normal(size=(7, p))


# one options object and one data size (n = 25) for the small fits: one compile
OPTIONS = gp.GPOptions(restarts=2, steps=150)
PARAMS = gp.GPParams(np.float64(1.3), np.array([0.8, 1.7]), np.float64(0.25))


@pytest.mark.parametrize("kernel", list(NP_KERNELS))
def test_posterior_matches_textbook_numpy(kernel):
    """Alg. 2.1 written with NumPy inverses (no Cholesky) as the reference."""
    x, y, xs = _data()
    a, ls, s = PARAMS
    k = a**2 * NP_KERNELS[kernel](x, x, ls) + s**2 * np.eye(len(x))
    ks = a**2 * NP_KERNELS[kernel](x, xs, ls)
    kss = a**2 * NP_KERNELS[kernel](xs, xs, ls)
    mean_ref = ks.T @ np.linalg.solve(k, y)
    var_ref = np.diag(kss - ks.T @ np.linalg.solve(k, ks))
    with jax.enable_x64(True):
        mean, var = gp.gp_posterior(kernel, PARAMS, x, y, xs)
        lml = gp.log_marginal_likelihood(kernel, PARAMS, x, y)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(var, var_ref, rtol=1e-7, atol=1e-10)
    ref = scipy.stats.multivariate_normal(np.zeros(len(x)), k).logpdf(y)
    np.testing.assert_allclose(float(lml), ref, rtol=1e-10)


def test_marginal_likelihood_gradient_finite_differences():
    x, y, _ = _data()
    theta = np.array([math.log(1.3), math.log(0.8), math.log(1.7), math.log(0.25)])

    @jax.jit
    def lml(t):
        params = gp.GPParams(jnp.exp(t[0]), jnp.exp(t[1:3]), jnp.exp(t[3]))
        return gp.log_marginal_likelihood(gp.matern52, params, x, y)

    with jax.enable_x64(True):
        grad = np.asarray(jax.grad(lml)(jnp.asarray(theta)))
        eps = 1e-6
        fd = [
            (float(lml(theta + eps * e)) - float(lml(theta - eps * e))) / (2 * eps)
            for e in np.eye(4)
        ]
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-6)


def test_ml2_recovers_length_scale():
    """Data drawn from a GP with l = 0.5 (original units) on x in [0, 10], n = 150;
    the ML-II length scale, back in original units, within 25%. Over data seeds
    0-7 the estimates were 0.45-0.55 (sd about 0.04, 8%), the noise sd within 10%."""
    rng = np.random.default_rng(3)
    n, ls, amp, noise = 150, 0.5, 1.0, 0.1
    x = np.sort(rng.uniform(0, 10, size=(n, 1)), axis=0)
    cov = amp**2 * _np_se(x, x, ls) + noise**2 * np.eye(n)
    y = np.linalg.cholesky(cov) @ rng.normal(size=n)
    fit = gp.fit_gp(jax.random.key(0), x, y, gp.squared_exponential)
    got = float(fit.params.length_scale[0]) * fit.scaler.x_scale[0]
    assert abs(got / ls - 1) < 0.25, got
    got_noise = float(fit.params.noise[0]) * fit.scaler.y_scale
    assert abs(got_noise / noise - 1) < 0.3, got_noise
    # the optimum is a stationary point: better than a nearby length scale
    best = fit.log_marginal[0]
    with jax.enable_x64(True):
        for factor in (0.9, 1.1):
            params = fit.params._replace(length_scale=fit.params.length_scale * factor)
            params = gp.GPParams(*(np.asarray(v)[0] for v in params))
            other = gp.log_marginal_likelihood(
                gp.squared_exponential, params, fit.x, fit.y, jitter=fit.jitter
            )
            assert float(other) < best


def test_prediction_in_original_units_and_lpd():
    x, y, xs = _data()
    scale, shift = 50.0, 7.0
    fit1 = gp.fit_gp(jax.random.key(1), x, y, gp.matern52, options=OPTIONS)
    fit2 = gp.fit_gp(
        jax.random.key(1), x, y * scale + shift, gp.matern52, options=OPTIONS
    )
    p1, p2 = gp.predict_gp(fit1, xs), gp.predict_gp(fit2, xs)
    np.testing.assert_allclose(p2.mean, p1.mean * scale + shift, rtol=1e-6)
    np.testing.assert_allclose(p2.upper, p1.upper * scale + shift, rtol=1e-6)
    # one ML-II fit: the interval and lpd are those of N(mean, sd_y^2)
    z = scipy.stats.norm.ppf(0.95)
    np.testing.assert_allclose(p1.upper, p1.mean + z * p1.sd_y, rtol=1e-6)
    y_new = np.sin(xs[:, 0]) + 0.5 * xs[:, 1]
    ref = scipy.stats.norm(p1.mean, p1.sd_y).logpdf(y_new)
    np.testing.assert_allclose(
        gp.gp_log_predictive_density(fit1, xs, y_new), ref, rtol=1e-6
    )
    lpd2 = gp.gp_log_predictive_density(fit2, xs, y_new * scale + shift)
    np.testing.assert_allclose(lpd2, ref - math.log(scale), rtol=1e-6)


def test_mixture_prediction_of_draws():
    """A 'NUTS' fit with two draws: mixture mean, interval from the mixture CDF."""
    x, y, xs = _data()
    fit = gp.fit_gp(jax.random.key(0), x, y, gp.matern52, options=OPTIONS)
    two = gp.GPParams(np.array([1.0, 0.5]), np.array([0.7, 2.0]), np.array([0.2, 0.6]))
    mix = fit._replace(params=two)
    pred = gp.predict_gp(mix, xs, prob=0.8)
    comps = [
        gp.predict_gp(
            fit._replace(params=gp.GPParams(*(v[i : i + 1] for v in two))), xs
        )
        for i in (0, 1)
    ]
    np.testing.assert_allclose(
        pred.mean, (comps[0].mean + comps[1].mean) / 2, rtol=1e-9
    )
    cdf = lambda v: np.mean([scipy.stats.norm(c.mean, c.sd_y).cdf(v) for c in comps], 0)
    np.testing.assert_allclose(cdf(pred.lower), 0.1, atol=1e-8)
    np.testing.assert_allclose(cdf(pred.upper), 0.9, atol=1e-8)


def test_arcsine_kernel_is_the_limit_of_the_monte_carlo_kernel():
    """Williams' closed form vs the average of erf(x~'g) erf(x~''g) over 100k
    draws of g ~ N(0, Sigma); tolerance 5 Monte Carlo standard errors per entry."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 2))
    a = rng.normal(size=(3, 3))
    cov = a @ a.T / 3 + 0.3 * np.eye(3)
    with jax.enable_x64(True):
        w = nngp.gaussian_weights(jax.random.key(0), 100_000, cov)
        mc = nngp.MonteCarloKernel(w, jax.scipy.special.erf)
        f = np.asarray(jax.scipy.special.erf(np.c_[np.ones(6), x] @ np.asarray(w).T))
        products = f[:, None, :] * f[None, :, :]
        se = products.std(-1) / math.sqrt(w.shape[0])
        got = np.asarray(mc(x, x))
        ref = np.asarray(nngp.arcsine_kernel(x, x, cov))
    np.testing.assert_allclose(got, products.mean(-1), rtol=1e-10)
    assert np.all(np.abs(got - ref) < 5 * se + 1e-12), np.abs(got - ref) / se
    assert np.abs(got - ref).max() > 0  # a real Monte Carlo estimate


def test_prior_networks_tend_to_the_gp():
    """Scaled prior networks: sample covariance = sigma_beta^2 K (any m), excess
    kurtosis = kappa / m -> 0 (Neal 1996). Tolerances from the Monte Carlo error."""
    cov = np.diag([0.5, 2.0])
    x = np.array([[-1.0], [0.2], [1.5]])
    weights = functools.partial(nngp.gaussian_weights, cov=cov)
    n_nets = 20_000
    with jax.enable_x64(True):
        k = np.asarray(nngp.arcsine_kernel(x, x, cov))
        f64 = np.asarray(nngp.prior_functions(
            jax.random.key(1), x, hidden=64, num=n_nets, weights=weights, beta_sd=1.5
        ))  # fmt: skip
        f1 = np.asarray(nngp.prior_functions(
            jax.random.key(2), x, hidden=1, num=n_nets, weights=weights, beta_sd=1.5
        ))  # fmt: skip
    for f in (f1, f64):
        sample_cov = f.T @ f / n_nets  # the mean is 0
        prods = f[:, :, None] * f[:, None, :]
        se = prods.std(0) / math.sqrt(n_nets)
        assert np.all(np.abs(sample_cov - 1.5**2 * k) < 5 * se), (sample_cov, k)
    # excess kurtosis at x = 0.2: m = 1 far from Gaussian, m = 64 close (SE ~ 0.04)
    kurt1 = scipy.stats.kurtosis(f1[:, 1])
    kurt64 = scipy.stats.kurtosis(f64[:, 1])
    assert kurt1 > 2.0, kurt1
    assert abs(kurt64 - kurt1 / 64) < 0.25, (kurt64, kurt1)


def test_nngp_kernel_of_the_default_prior_fits():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(60, 1))
    y = np.sin(3 * x[:, 0]) + 0.2 * rng.normal(size=60)
    kernel = nngp.nngp_kernel(jax.random.key(0), default_prior(1), num_draws=1024)
    options = gp.GPOptions(restarts=1, steps=150)
    fit = gp.fit_gp(jax.random.key(1), x, y, kernel, options=options)
    grid = np.linspace(-0.9, 0.9, 20)[:, None]
    pred = gp.predict_gp(fit, grid)
    assert np.sqrt(np.mean((pred.mean - np.sin(3 * grid[:, 0])) ** 2)) < 0.15
    assert 0.1 < float(fit.params.noise[0]) * fit.scaler.y_scale < 0.35


def test_bad_input_names_the_argument():
    x, y, xs = _data()
    with pytest.raises(
        ValueError,
        match=r"kernel: expected one of \['matern32', 'matern52', 'se'\], got 'rbf'",
    ):
        gp.kernel_from_name("rbf")
    with pytest.raises(ValueError, match=r"--gp-kernel: expected one of"):
        gp.kernel_from_name("rbf", "--gp-kernel")
    assert gp.kernel_from_name("se") is gp.squared_exponential
    with pytest.raises(TypeError, match="kernel: expected a kernel function"):
        gp.fit_gp(jax.random.key(0), x, y, "se")
    y_bad = y.copy()
    y_bad[3] = np.nan
    with pytest.raises(
        ValueError, match=r"y: expected finite values, got y\[3\] = nan"
    ):
        gp.fit_gp(jax.random.key(0), x, y_bad)
    x_bad = x.copy()
    x_bad[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"x: expected finite values"):
        gp.fit_gp(jax.random.key(0), x_bad, y)
    for field, value in (
        ("amplitude", 0.0),
        ("noise", -0.1),
        ("length_scale", np.array([1.0, np.nan])),
    ):
        params = PARAMS._replace(**{field: value})
        with pytest.raises(
            ValueError, match=rf"params.{field}: expected finite positive"
        ):
            gp.log_marginal_likelihood(gp.matern52, params, x, y)
    with pytest.raises(
        ValueError, match=r"params.length_scale: expected shape \(\) or \(2,\)"
    ):
        gp.gp_posterior(gp.matern52, PARAMS._replace(length_scale=np.ones(3)), x, y, xs)
    with pytest.raises(
        ValueError, match="options.restarts: expected a positive integer"
    ):
        gp.fit_gp(jax.random.key(0), x, y, options=gp.GPOptions(restarts=0))
    fit = gp.fit_gp(jax.random.key(0), x, y, gp.matern52, options=OPTIONS)
    with pytest.raises(ValueError, match="x_new: expected 2 input columns"):
        gp.predict_gp(fit, xs[:, :1])
    with pytest.raises(ValueError, match="y_new: expected finite values"):
        gp.gp_log_predictive_density(fit, xs, np.full(len(xs), np.nan))
