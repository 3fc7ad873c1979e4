"""``Fit.to_arviz``: original units, sample stats, pointwise log-likelihood (LOO)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from jaxseq.bayes import function_draws
from jaxseq.bayes.infer import NUTS_FIELDS


@pytest.fixture(scope="module")
def az():
    with warnings.catch_warnings():
        # ArviZ announces its 1.0 refactor with a FutureWarning on import.
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


@pytest.fixture(scope="module")
def idata(sine_fit, az):
    return sine_fit.to_arviz(input_names=["x"], standardised=True)


def _f_numpy(post, x):
    """f(x) [chain, draw, n] from the original-unit parameters, in float64 NumPy."""
    gamma = np.asarray(post["gamma"])  # [c, s, m, d]
    eta = gamma[..., None, :, 0] + np.einsum("np,csmp->csnm", x, gamma[..., 1:])
    hidden = 1 / (1 + np.exp(-eta))
    beta = np.asarray(post["beta"])
    return np.einsum("csnm,csm->csn", hidden, beta) + np.asarray(post["b0"])[..., None]


def test_groups_dims_and_observed_data(sine_fit, idata):
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data",
                  "constant_data"):  # fmt: skip
        assert group in idata.groups()
    post = idata.posterior
    chains, draws = sine_fit.samples["prec"].shape
    assert post["gamma"].dims == ("chain", "draw", "unit", "weight")
    assert list(post["weight"].values) == ["intercept", "x"]
    assert post["sigma"].shape == (chains, draws)
    np.testing.assert_array_equal(idata.observed_data["y"], sine_fit.y)
    np.testing.assert_array_equal(idata.constant_data["x"], sine_fit.x)
    assert idata.log_likelihood["y"].shape == (chains, draws, sine_fit.y.shape[0])
    assert post.attrs["sampler"] == "gibbs" and post.attrs["hidden"] == 3
    np.testing.assert_array_equal(post["prec_std"], sine_fit.samples["prec"])


def test_original_units_are_the_numpy_back_transform(sine_fit, idata):
    post, s, sc = idata.posterior, sine_fit.samples, sine_fit.scaler
    np.testing.assert_allclose(
        post["sigma"], sc.y_scale / np.sqrt(s["prec"]), rtol=1e-6
    )
    np.testing.assert_allclose(post["beta"], sc.y_scale * s["beta"], rtol=1e-6)
    np.testing.assert_allclose(post["b0"], sc.y_mean + sc.y_scale * s["b0"], rtol=1e-5,
                               atol=1e-6)  # fmt: skip
    slope = s["gamma"][..., 1] / sc.x_scale[0]
    np.testing.assert_allclose(post["gamma"][..., 1], slope, rtol=1e-5)
    np.testing.assert_allclose(
        post["gamma"][..., 0], s["gamma"][..., 0] - slope * sc.x_mean[0], rtol=1e-4,
        atol=1e-5,
    )  # fmt: skip
    # The same function: f from the original-unit weights (NumPy, float64) equals
    # the standardised model mapped back (function_draws).
    x = np.linspace(-1.5, 1.5, 7)[:, None]
    np.testing.assert_allclose(
        _f_numpy(post, x), function_draws(sine_fit, x), rtol=1e-4, atol=1e-4
    )
    # Hyperparameters: standardised distances are invariant under the transform.
    z_orig = (post["beta"] - post["mu_beta"]) / post["sigma_beta"]
    z_std = (s["beta"] - s["mu_beta"][..., None]) * np.sqrt(s["prec_beta"][..., None])
    np.testing.assert_allclose(z_orig, z_std, rtol=1e-4, atol=1e-5)
    d_orig = np.asarray(post["gamma"]) - np.asarray(post["mu_gamma"])[:, :, None]
    d_std = s["gamma"] - s["mu_gamma"][:, :, None]
    maha = lambda d, p: np.einsum("csmk,cskl,csml->csm", d, p, d)
    np.testing.assert_allclose(
        maha(d_orig, np.asarray(post["prec_gamma"])), maha(d_std, s["prec_gamma"]),
        rtol=1e-3,
    )  # fmt: skip


def test_pointwise_loglik_and_loo(sine_fit, idata, az):
    post = idata.posterior
    f = _f_numpy(post, sine_fit.x)
    expected = stats.norm(f, np.asarray(post["sigma"])[..., None]).logpdf(sine_fit.y)
    ll = np.asarray(idata.log_likelihood["y"])
    np.testing.assert_allclose(ll, expected, rtol=1e-4, atol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto k warnings
        loo = az.loo(idata, pointwise=True)
    flat = ll.reshape(-1, ll.shape[-1])
    # log pointwise predictive density: az.loo's elpd + p_loo is exactly it.
    lppd = np.sum(np.logaddexp.reduce(flat, axis=0) - np.log(flat.shape[0]))
    np.testing.assert_allclose(loo.elpd_loo + loo.p_loo, lppd, rtol=1e-6)
    # Plain importance-sampling LOO (harmonic mean) agrees with PSIS-LOO.
    is_loo = -np.sum(np.logaddexp.reduce(-flat, axis=0) - np.log(flat.shape[0]))
    assert abs(loo.elpd_loo - is_loo) < 1.0, (loo.elpd_loo, is_loo)
    assert 0 < loo.p_loo < 30


def test_gibbs_sample_stats_are_the_moves_in_use(sine_fit, idata):
    st = idata.sample_stats
    used = {k for k, v in sine_fit.extra.items() if not np.all(np.isnan(v))}
    assert set(st.data_vars) == used and "accept_prior" not in used
    assert st["accept_rw"].dims == ("chain", "draw", "unit")


def test_nuts_sample_stats(sine_fit, az):
    # The conversion only sees arrays: a NUTS-shaped Fit from the Gibbs draws
    # (a real NUTS fit of the network takes minutes to compile on 2 cores).
    shape = sine_fit.samples["prec"].shape
    rng = np.random.default_rng(0)
    steps = rng.choice([1, 3, 4, 7, 8, 15, 255, 1023], size=shape)
    extra = {
        "diverging": rng.random(shape) < 0.05,
        "num_steps": steps,
        "accept_prob": rng.random(shape),
        "energy": rng.normal(size=shape),
        "step_size": np.full(shape, 0.1),
    }
    fit = sine_fit._replace(sampler="nuts", extra=extra)
    st = fit.to_arviz().sample_stats
    np.testing.assert_array_equal(st["diverging"], extra["diverging"])
    depth = np.asarray(st["tree_depth"])
    assert np.all((2 ** (depth - 1) <= steps) & (steps <= 2**depth - 1))
    np.testing.assert_array_equal(st["n_steps"], steps)
    np.testing.assert_allclose(st["acceptance_rate"], extra["accept_prob"])
    assert {"energy", "step_size"} <= set(st.data_vars)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert np.isfinite(az.bfmi(fit.to_arviz())).all()


def test_nuts_fields_are_numpyro_state_fields():
    from numpyro.infer.hmc import HMCState
    from numpyro.infer.hmc_util import HMCAdaptState

    for field in NUTS_FIELDS:
        head, _, tail = field.partition(".")
        assert head in HMCState._fields
        assert not tail or tail in HMCAdaptState._fields


def test_netcdf_round_trip(sine_fit, tmp_path, az):
    path = tmp_path / "fit.nc"
    sine_fit.to_arviz(input_names=["x"]).to_netcdf(str(path))
    back = az.from_netcdf(str(path))
    assert "log_likelihood" in back.groups() and "sample_stats" in back.groups()
    assert back.posterior.attrs["sampler"] == "gibbs"
    assert "prec_std" not in back.posterior  # original units only by default


def test_bad_input_names(sine_fit):
    with pytest.raises(ValueError, match="input_names: expected 1 distinct names"):
        sine_fit.to_arviz(input_names=["a", "b"])
