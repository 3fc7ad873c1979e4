"""R-hat/ESS against ArviZ, convergence warnings, label-invariant quantities and
relabelling."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

from jaxseq.bayes import (
    convergence_warnings,
    coverage,
    ess_bulk,
    ess_tail,
    function_draws,
    label_invariant,
    network_mean,
    relabel,
    rhat,
    summary,
)


def _ar1(seed, chains=4, draws=600, rho=0.7, shift=None):
    rng = np.random.default_rng(seed)
    x = np.zeros((chains, draws))
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + rng.normal(size=chains)
    if shift is not None:
        x += np.asarray(shift)[:, None]
    return np.exp(x / 2)  # skewed, so rank normalisation matters


@pytest.fixture(scope="module")
def az():
    with warnings.catch_warnings():
        # ArviZ announces its 1.0 refactor with a FutureWarning on import.
        warnings.simplefilter("ignore", FutureWarning)
        import arviz

    return arviz


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rhat_and_ess_match_arviz(az, seed):
    x = _ar1(seed)
    np.testing.assert_allclose(rhat(x), az.rhat(x), rtol=1e-8)
    # ESS: numpyro's and ArviZ's truncations of the autocorrelation sum (Geyer's
    # initial monotone sequence) differ in detail, by up to ~1% on these chains.
    np.testing.assert_allclose(ess_bulk(x), az.ess(x, method="bulk"), rtol=0.02)
    np.testing.assert_allclose(ess_tail(x), az.ess(x, method="tail"), rtol=0.02)


def test_warnings_flag_disagreeing_and_short_chains():
    good = summary({"a": _ar1(0, rho=0.1)})
    assert convergence_warnings(good, 4) == []
    stuck = summary({"b": _ar1(0, shift=[0.0, 0.0, 0.0, 1.5])})
    assert any("R-hat" in w for w in convergence_warnings(stuck, 4))
    sticky = summary({"c": _ar1(0, draws=200, rho=0.97)})
    assert any("ESS" in w for w in convergence_warnings(sticky, 4))


def test_label_invariant_loglik_is_the_gaussian_loglik(sine_fit):
    draws = label_invariant(sine_fit)
    assert set(draws) == {"sigma", "loglik", "f[0]", "f[1]", "f[2]"}
    assert draws["sigma"].shape == (2, 300)
    c, s = 1, 17
    f = function_draws(sine_fit, sine_fit.x)[c, s]
    expected = stats.norm(f, draws["sigma"][c, s]).logpdf(sine_fit.y).sum()
    np.testing.assert_allclose(draws["loglik"][c, s], expected, rtol=1e-5)
    rows = summary(draws)
    assert 0.1 < rows["sigma"].mean < 0.35  # simulated with noise sd 0.2


def test_relabel_preserves_f_and_undoes_permutations_and_flips():
    rng = np.random.default_rng(0)
    m, d, draws = 3, 2, 50
    base = {"beta": rng.normal(size=(draws, m)), "gamma": rng.normal(size=(draws, m, d)),
            "b0": rng.normal(size=draws), "prec": np.ones(draws)}  # fmt: skip
    # Scramble each draw: permute units and flip the sign of some.
    scrambled = {k: v.copy() for k, v in base.items()}
    for i in range(draws):
        perm = rng.permutation(m)
        flip = rng.random(m) < 0.5
        beta, gamma = base["beta"][i, perm], base["gamma"][i, perm]
        scrambled["b0"][i] = base["b0"][i] + np.where(flip, beta, 0.0).sum()
        scrambled["beta"][i] = np.where(flip, -beta, beta)
        scrambled["gamma"][i] = np.where(flip[:, None], -gamma, gamma)
    x = rng.normal(size=(9, 1))
    f = lambda s: np.asarray(network_mean(x, s["beta"], s["gamma"], s["b0"]))
    np.testing.assert_allclose(f(scrambled), f(base), atol=1e-5)
    a, b = relabel(base), relabel(scrambled)
    for key in ("beta", "gamma", "b0"):
        np.testing.assert_allclose(a[key], b[key], atol=1e-10)
    np.testing.assert_allclose(f(a), f(base), atol=1e-5)
    assert np.all(a["gamma"][..., 1] >= 0)
    loc = -a["gamma"][..., 0] / a["gamma"][..., 1]
    assert np.all(np.diff(loc, axis=-1) >= 0)
    # Pivot relabelling maps a permuted copy of the pivot back onto it.
    pivot = (a["beta"][0], a["gamma"][0])
    shuffled = {k: v[:1].copy() for k, v in a.items()}
    shuffled["beta"], shuffled["gamma"] = a["beta"][:1, ::-1], a["gamma"][:1, ::-1]
    back = relabel(shuffled, flip_signs=False, pivot=pivot)
    np.testing.assert_allclose(back["gamma"][0], a["gamma"][0])


def test_coverage():
    assert coverage([0.0, 1.0, 2.0, 3.0], [-1, 0, 2.5, 0], [1, 2, 3, 1]) == 0.5


def _row(mean, sd):
    from jaxseq.bayes import SummaryRow

    return SummaryRow(mean, sd, mean - 2 * sd, mean + 2 * sd, sd / 20, 812.4, 640.6,
                      1.0042)  # fmt: skip


def test_format_summary_one_rounding_rule_and_footnote():
    from jaxseq.bayes import format_summary

    rows = {"sigma": _row(0.23141, 0.020234), "loglik": _row(-1234.5678, 2.5349)}
    text = format_summary(rows, x_ref=np.array([[0.5, -1.25], [2.0, 3e4]]),
                          input_names=["a", "b"])  # fmt: skip
    lines = text.splitlines()
    assert lines[0].split() == ["mean", "sd", "5%", "95%", "mcse", "ess_bulk",
                                "ess_tail", "r_hat"]  # fmt: skip
    # Same decimal place in a row: the one giving sd 3 significant figures.
    assert lines[1].split() == ["sigma", "0.2314", "0.0202", "0.1909", "0.2719",
                                "0.0010", "812", "641", "1.004"]  # fmt: skip
    assert lines[2].split()[:6] == ["loglik", "-1234.57", "2.53", "-1239.64",
                                    "-1229.50", "0.13"]  # fmt: skip
    assert lines[3] == "f[0]: the regression function f at a = 0.5, b = -1.25"
    assert lines[4] == "f[1]: the regression function f at a = 2, b = 3e+04"
    assert len({len(line) for line in lines[:3]}) == 1  # aligned columns
    with pytest.raises(ValueError, match="input_names: expected 2 names"):
        format_summary(rows, x_ref=np.zeros((1, 2)), input_names=["a"])


def test_plots_explain_themselves(sine_fit, tmp_path):
    import jax
    from matplotlib.figure import Figure

    from jaxseq.bayes import predict
    from jaxseq.bayes.plots import plot_band, plot_diagnostics, save

    grid = np.linspace(-1, 1, 40)[:, None]
    pred = predict(jax.random.key(0), sine_fit, grid, prob=0.8)
    assert pred.prob == 0.8
    ax = Figure().subplots()
    held = (np.array([[0.1], [0.5]]), np.array([0.2, 0.9]))
    plot_band(ax, grid, pred, x=sine_fit.x, y=sine_fit.y, held_out=held)
    labels = ax.get_legend_handles_labels()[1]
    assert "posterior: 80% predictive interval of y" in labels
    assert "posterior: 80% credible band of f" in labels and "held-out data" in labels
    draws = label_invariant(sine_fit)
    fig = plot_diagnostics(draws, units={"sigma": "units of y"}, title="t")
    axes = np.asarray(fig.axes).reshape(-1, 2)
    assert axes[0, 0].get_ylabel() == "sigma\n(units of y)"
    assert axes[1, 0].get_ylabel() == "loglik"
    assert axes[-1, 0].get_xlabel() and axes[-1, 1].get_xlabel()
    chains = draws["sigma"].shape[0]
    legend = [t.get_text() for t in axes[0, 0].get_legend().get_texts()]
    assert legend == [f"chain {c}" for c in range(chains)]
    assert fig.get_suptitle() == "t"
    assert save(fig, tmp_path / "trace.png").stat().st_size > 1000
    with pytest.raises(ValueError, match=r"draws\['x'\]: expected shape"):
        plot_diagnostics({"x": np.zeros(5)})
