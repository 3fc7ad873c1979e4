"""Fits, predictions, forecasts, the ridge network and plots."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.figure import Figure

from jaxseq.bayes import (
    coverage,
    fit_ridge,
    fit_scaler,
    forecast,
    label_invariant,
    lagged,
    load_sunspots,
    predict,
    predictive,
    regression,
    ridge_predict,
    sine_data,
)
from jaxseq.bayes.plots import plot_band, plot_diagnostics, plot_observed, save


def test_scaler_round_trip():
    x, y = sine_data(1, 20)
    s = fit_scaler(x, y)
    np.testing.assert_allclose(s.y_inverse(s.y(y)), y)
    np.testing.assert_allclose(s.x(x).std(0), 1.0)


def test_fit_records_configuration_and_timing(sine_fit):
    assert sine_fit.sampler == "gibbs" and sine_fit.hidden == 3
    assert sine_fit.samples["gamma"].shape == (2, 300, 3, 2)
    assert sine_fit.extra["accept_rw"].shape == (2, 300, 3)
    assert 0 < sine_fit.compile_s < sine_fit.wall_s


def test_predictive_bands_cover_new_data(sine_fit):
    x_new, y_new = sine_data(99, 400)
    pred = predict(jax.random.key(1), sine_fit, x_new, prob=0.9)
    assert pred.mean.shape == (400,) and pred.draws.shape == (600, 400)
    assert np.all(pred.lower <= pred.f_lower) and np.all(pred.f_upper <= pred.upper)
    assert 0.8 < coverage(y_new, pred.lower, pred.upper) < 0.97
    rmse = np.sqrt(np.mean((pred.mean - np.sin(3 * x_new[:, 0])) ** 2))
    assert rmse < 0.12


def test_predictive_interval_is_the_mixture_quantile(sine_fit, caplog):
    """The predictive interval against the quantiles of the mixture of
    ``N(f_d, sigma_d^2)`` over the draws (bisection on its CDF, SciPy); drawn on
    the host, so nothing is compiled, and the same key gives the same draws."""
    from scipy.stats import norm

    from jaxseq.bayes import function_draws, noise_sd

    x_new = np.linspace(-1.0, 1.0, 5)[:, None]
    with caplog.at_level("WARNING"), jax.log_compiles(True):
        pred = predict(jax.random.key(3), sine_fit, x_new, prob=0.8)
    assert not [r for r in caplog.records if "Compiling" in r.getMessage()]
    f = function_draws(sine_fit, x_new).reshape(-1, 5)
    sd = noise_sd(sine_fit).reshape(-1, 1)

    def quantile(q):
        lo, hi = (f - 6 * sd).min(0), (f + 6 * sd).max(0)
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = norm.cdf((mid - f) / sd).mean(0) < q
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)

    # 600 draws: the sample quantile's standard error is about 0.07 sd of y here
    tol = 0.25 * sd.mean()
    np.testing.assert_allclose(pred.lower, quantile(0.1), atol=tol)
    np.testing.assert_allclose(pred.upper, quantile(0.9), atol=tol)
    again = predict(jax.random.key(3), sine_fit, x_new, prob=0.8)
    np.testing.assert_array_equal(again.lower, pred.lower)
    other = predict(jax.random.key(4), sine_fit, x_new, prob=0.8)
    assert not np.array_equal(other.lower, pred.lower)


def test_numpyro_predictive_accepts_gibbs_samples(sine_fit):
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in sine_fit.samples.items()}
    x = jnp.asarray(sine_fit.scaler.x(sine_fit.x[:5]))
    out = predictive(jax.random.key(0), regression, flat, x, hidden=3)
    assert out["y"].shape == (600, 5)


def test_sunspots_ship_with_the_package():
    years, spots = load_sunspots()
    assert years[0] == 1700 and years[-1] == 2008 and spots.shape == (309,)
    assert spots[0] == 5.0 and spots.min() >= 0 and spots.max() < 200


def test_forecast_paths_widen_with_horizon(sine_fit):
    # A one-input fit is a valid AR(1) map x_t = f(x_{t-1}) + noise.
    history = np.array([0.3, -0.2])
    path = forecast(jax.random.key(3), sine_fit, history, 8)
    assert path.draws.shape == (600, 8)
    width = path.upper - path.lower
    assert width[-1] > width[0]
    one_step = predict(jax.random.key(4), sine_fit, history[-1:][None, :])
    np.testing.assert_allclose(one_step.mean[0], path.mean[0], rtol=1e-5)
    with pytest.raises(ValueError, match="history: expected at least 1"):
        forecast(jax.random.key(3), sine_fit, history[:0], 3)
    with pytest.raises(ValueError, match="steps"):
        forecast(jax.random.key(3), sine_fit, history, 0)


def test_lagged_sunspots_design():
    _, spots = load_sunspots()
    x, y = lagged(np.sqrt(spots), 3)
    assert x.shape == (306, 3)
    np.testing.assert_allclose(x[1], np.sqrt(spots[[3, 2, 1]]))


def test_ridge_network_fits_the_sine(sine_fit):
    x, y = sine_data(0, 80)
    ridge = fit_ridge(jax.random.key(0), x, y, hidden=3, steps=3000)
    assert ridge.losses[-1] < 0.5 * ridge.losses[0]
    grid = np.linspace(-1, 1, 50)[:, None]
    assert (
        np.sqrt(np.mean((ridge_predict(ridge, grid) - np.sin(3 * grid[:, 0])) ** 2))
        < 0.15
    )
    # Stronger weight decay shrinks the weights.
    heavy = fit_ridge(jax.random.key(0), x, y, hidden=3, steps=3000, lambda_beta=50.0)
    assert np.abs(heavy.beta).sum() < np.abs(ridge.beta).sum()
    sgd = fit_ridge(jax.random.key(0), x, y, hidden=3, steps=500, batch_size=16)
    assert np.all(np.isfinite(sgd.losses))


def test_plots_write_png(sine_fit, tmp_path):
    grid = np.linspace(-1, 1, 60)[:, None]
    pred = predict(jax.random.key(0), sine_fit, grid)
    fig = Figure()
    plot_band(fig.subplots(), grid, pred, x=sine_fit.x, y=sine_fit.y)
    assert save(fig, tmp_path / "band.png").stat().st_size > 1000
    fig = Figure()
    train = predict(jax.random.key(0), sine_fit, sine_fit.x)
    plot_observed(fig.subplots(), sine_fit.y, train)
    save(fig, tmp_path / "obs.png")
    fig = plot_diagnostics(label_invariant(sine_fit))
    assert save(fig, tmp_path / "diag.png").exists()
