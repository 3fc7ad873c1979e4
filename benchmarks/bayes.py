"""Blocked Gibbs/Metropolis vs NUTS on the Müller–Ríos Insua network.

Datasets: (a) y = sin(3x) + N(0, 0.2^2), x ~ U(-1, 1), n = 200 (held out: 1000 new
draws), m = 4 and 6; (b) yearly sunspots 1700-2008, square-root scale, non-linear
AR(3), m = 4, trained on targets up to 1920 and tested one step ahead on 1921-2008;
(c) scikit-learn's diabetes data (10 inputs), m = 4, a random 342/100 split.

Both samplers run 4 chains in the same process with the same model, prior and
standardisation. Reported per dataset and sampler: wall and compile time, bulk ESS
per second of sampling (wall minus compile, warm-up included) for sigma, the
training log-likelihood and f at three inputs (columnwise 10/50/90% quantiles of
the training inputs), the largest rank-normalised R-hat over those five
quantities, divergences, held-out RMSE of the posterior mean and coverage of the
90% posterior predictive interval. Plus a simulation-based calibration of the
Gibbs sweep (with a negative control: the seed's literal step order), the ridge
(SGD) fit of the same network and a softmax classification example.

With ``--scaling`` it answers another question instead: the time of one Gibbs
sweep (4 vectorised chains, default moves) for n in {500, ..., 10000} and m in
{2, 4, 8, 16}, which must grow linearly in n (issue 14: at n = 2000, m = 8 the
sampler used to hang in jaxlib's batched LAPACK QR).

With ``--baselines`` it runs only the comparison rows of issue 18 and merges them
into ``bayes.json``/``bayes.md`` (the other rows are kept): on every data set
(sine, sunspots AR(3), diabetes) the Gibbs sampler at fixed m = 1..6 and with m
sampled (``m = "variable"``, 1..8; default fits: 1,000 + 1,000 draws, 4 chains;
the posterior of m in ``bayes_posterior_m.png``), Gaussian processes
(squared-exponential and Matérn-5/2 by type-II maximum likelihood,
squared-exponential by NUTS), the GP with the network prior's own infinite-width
kernel (logistic units, default prior, Monte Carlo; :mod:`jaxseq.bayes.nngp`) and
a least-squares linear model. Every row has ``m``, ``lpd`` (held-out log predictive
density per point, original units), ``rmse``, ``coverage90``, ``wall_s`` (with compile),
``compile_s``, ``sampler`` and ``default_settings``.

Usage:
    python benchmarks/bayes.py            # full run: benchmarks/results/bayes.*
    python benchmarks/bayes.py --baselines  # only the m / GP / linear rows
    python benchmarks/bayes.py --quick    # small run: benchmarks/results/bayes_quick/
    python benchmarks/bayes.py --scaling  # benchmarks/results/bayes_scaling.*
    python benchmarks/bayes.py --default-fit  # benchmarks/results/bayes_default_fit.*
    python benchmarks/bayes.py --default-command [--pairs 3] [--before DIR] [--nuts]
    python benchmarks/bayes.py --command-stages [--pairs 3] [--before DIR]

With ``--default-fit`` it times a *default* fit (1,000 + 1,000 draws, 4 chains) of
each sampler on the shipped data sets (sine, m = 4; sunspots AR(3), m = 4): in a
fresh process with an empty persistent compilation cache ("cold"), again in the
same process ("memory": the compiled programs are reused), and in a second fresh
process that finds the programs in the persistent cache ("disk").

With ``--default-command`` it times the whole ``jaxseq bayes fit`` command (imports,
fit, summary, predictions, samples file and both PNGs) on synthetic data (n = 200,
m = 4 and n = 500, m = 8), each run a fresh process: with an empty persistent cache
("cold") and then with the cache that run filled ("disk"); wall seconds, the
process's user + system CPU seconds and the 1-minute load average beside each.
``--before DIR`` alternates each pair with the ``jaxseq`` package found in ``DIR``
(an older version, e.g. ``git archive HEAD jaxseq | tar -x -C DIR``); ``--nuts``
adds one cold NUTS command (n = 200, m = 4) for its compile time. The rows go into
``bayes_default_fit.*`` beside the ``fit`` rows.
With ``--command-stages`` it runs the same commands (Gibbs, cold and cached,
``--before`` as above) and splits each process's wall time into stages: imports,
setup, JAX's tracing, lowering and XLA compiling, loading or saving the whole
compiled program, sampling and the work after the fit (summary, predictions,
PNGs): ``bayes_command_stages.*``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from _machine import describe as cpu_model
from matplotlib.figure import Figure

from jaxseq.bayes import (
    HiddenUnits,
    classifier,
    coverage,
    fit,
    fit_ridge,
    forecast,
    function_draws,
    gibbs,
    label_invariant,
    lagged,
    load_sunspots,
    moves,
    noise_sd,
    predict,
    ridge_predict,
    run_nuts,
    sine_data,
    summary,
)
from jaxseq.bayes import conditionals as cond
from jaxseq.bayes import dimension as dim
from jaxseq.bayes import gp as gp_lib
from jaxseq.bayes import nngp as nngp_lib
from jaxseq.bayes import sbc as sbc_lib
from jaxseq.bayes.kernel import BlockedGibbs
from jaxseq.bayes.models import augment, default_prior
from jaxseq.bayes.plots import plot_band, plot_diagnostics, plot_observed, save

RESULTS = Path(__file__).parent / "results"
OUT = RESULTS  # where files go; main() points it elsewhere for --quick
CHAINS = 4
FULL = {
    "gibbs": dict(num_warmup=4000, num_samples=10_000, thinning=1),
    "nuts": dict(num_warmup=1000, num_samples=1000, thinning=1),
    "sbc_reps": 1000,
}
QUICK = {
    "gibbs": dict(num_warmup=300, num_samples=1000, thinning=1),
    "nuts": dict(num_warmup=150, num_samples=150, thinning=1),
    "sbc_reps": 200,
}


# ----------------------------------------------------------------------------- data
def synthetic():
    x, y = sine_data(0, 200)
    x_test, y_test = sine_data(1, 1000)
    return x, y, x_test, y_test


def sunspots():
    years, spots = load_sunspots()
    x, y = lagged(np.sqrt(spots), 3)
    target_years = years[3:]
    train = target_years <= 1920
    return x[train], y[train], x[~train], y[~train], target_years[~train]


def diabetes():
    from sklearn.datasets import load_diabetes  # benchmark-only dependency

    data = load_diabetes()
    idx = np.random.default_rng(0).permutation(data.target.shape[0])
    train, test = idx[:342], idx[342:]
    return data.data[train], data.target[train], data.data[test], data.target[test]


def datasets():
    xs, ys, xs_t, ys_t = synthetic()
    sx, sy, sx_t, sy_t, _ = sunspots()
    dx, dy, dx_t, dy_t = diabetes()
    return {
        "synth_m4": (xs, ys, xs_t, ys_t, 4),
        "synth_m6": (xs, ys, xs_t, ys_t, 6),
        "sunspots": (sx, sy, sx_t, sy_t, 4),
        "diabetes": (dx, dy, dx_t, dy_t, 4),
    }


# ------------------------------------------------------------------------ samplers
def run_one(name, sampler, data, settings, seed=0):
    x, y, x_test, y_test, hidden = data
    load_before = os.getloadavg()[0]
    result = fit(
        jax.random.key(seed),
        x,
        y,
        hidden=hidden,
        sampler=sampler,
        num_chains=CHAINS,
        chain_method="vectorized",
        **settings,
    )
    draws = label_invariant(result)
    rows = summary(draws)
    sample_s = result.wall_s - result.compile_s
    pred = predict(jax.random.key(seed + 1), result, x_test, prob=0.9)
    ess = {k: r.ess_bulk for k, r in rows.items()}
    extra = {
        "ess_bulk": {k: round(v, 1) for k, v in ess.items()},
        "ess_tail_min": round(min(r.ess_tail for r in rows.values()), 1),
        "rhat": {k: round(r.rhat, 4) for k, r in rows.items()},
        "sample_s": round(sample_s, 3),
        "draws_per_chain": int(result.samples["prec"].shape[1]),
        "settings": settings,
        "loadavg_1min_before_after": [
            round(load_before, 2),
            round(os.getloadavg()[0], 2),
        ],
        "posterior_mean_sigma": round(rows["sigma"].mean, 4),
    }
    if sampler == "nuts":
        steps = result.extra["num_steps"]
        extra["treedepth_limit_frac"] = round(float(np.mean(steps >= 1023)), 4)
        extra["mean_leapfrog_steps"] = round(float(steps.mean()), 1)
    else:
        for move in [f"accept_{k}" for k in moves.MOVES + moves.SWEEP_MOVES]:
            rate = result.extra[move]
            if not np.all(np.isnan(rate)):
                extra[move] = round(float(np.nanmean(rate)), 3)
    row = {
        "dataset": name,
        "sampler": sampler,
        "ess_per_s": {
            "sigma": ess["sigma"] / sample_s,
            "loglik": ess["loglik"] / sample_s,
            "f": [ess[f"f[{i}]"] / sample_s for i in range(3)],
        },
        "rhat_max": max(r.rhat for r in rows.values()),
        "divergences": int(result.extra["diverging"].sum()) if sampler == "nuts" else 0,
        "rmse": float(np.sqrt(np.mean((pred.mean - y_test) ** 2))),
        "coverage90": coverage(y_test, pred.lower, pred.upper),
        "wall_s": result.wall_s,
        "compile_s": result.compile_s,
        "m": hidden,
        "lpd": float(net_lpd(result, x_test, y_test).mean()),
        "default_settings": False,
        "extra": extra,
    }
    return row, result, pred, draws


def net_lpd(result, x_test, y_test):
    """Pointwise held-out log predictive density of a network fit, original
    units: log of the average over draws of N(y | f_s(x), sigma_s^2)."""
    from scipy.special import logsumexp

    f = function_draws(result, x_test).reshape(-1, len(y_test))
    sigma = noise_sd(result).reshape(-1, 1)
    logpdf = -0.5 * ((y_test - f) / sigma) ** 2 - np.log(sigma * np.sqrt(2 * np.pi))
    return logsumexp(logpdf, axis=0) - np.log(f.shape[0])


# ----------------------------------------------------------------------------- SBC
SBC_NAMES = [*sbc_lib.NAMES[:-2], "f(-1)", "f(0.5)"]  # x_ref = -1, 0.5
SBC_DRAWS, SBC_THIN, SBC_WARMUP = 99, 5, 200


def seed_order_step(key, state, data, prior, proposal, *, kind):
    """NEGATIVE CONTROL, not a valid sampler: the seed's listing taken literally,
    beta drawn *before* the gamma loop that integrates it out and then reused."""
    pos = state.position
    k_beta, k_units, k1, k2, k3, k4, k5 = jax.random.split(key, 7)
    pm, pv = gibbs.beta_prior(pos, prior, True)
    coef = cond.draw_beta(
        k_beta, cond.design(data.x1, pos.gamma, True), data.y, pos.prec, pm, pv
    )
    gamma = pos.gamma
    z = cond.design(data.x1, gamma, True)
    mll = cond.marginal_loglik(z, data.y, pos.prec, pm, pv)
    for j in range(gamma.shape[0]):
        key_j = jax.random.fold_in(k_units, j)
        gamma, mll, _ = moves.update_unit(
            key_j,
            j,
            gamma,
            mll,
            pos,
            data,
            pm,
            pv,
            proposal,
            bias=True,
            kinds=moves.parse_moves(kind),
        )
    b0, beta = coef[0], coef[1:]
    mu_beta = cond.draw_mu_beta(k1, beta, pos.prec_beta, prior.a_beta, prior.A_beta)
    prec_beta = cond.draw_prec_beta(k2, beta, mu_beta, prior.c_b, prior.C_b)
    a, A = (
        jnp.asarray(prior.a_gamma, gamma.dtype),
        jnp.asarray(prior.A_gamma, gamma.dtype),
    )
    mu_gamma = cond.draw_mu_gamma(k3, gamma, pos.prec_gamma, a, A)
    C = jnp.asarray(prior.C_gamma, gamma.dtype)
    prec_gamma = cond.draw_prec_gamma(k4, gamma, mu_gamma, prior.c_gamma, C)
    resid = data.y - cond.design(data.x1, gamma, True) @ coef
    prec = cond.draw_prec(k5, resid, prior.s, prior.S)
    new = gibbs.NetParams(
        beta, b0, gamma, mu_beta, prec_beta, mu_gamma, prec_gamma, prec
    )
    return gibbs.GibbsState(new), None


def sbc(reps, *, kind, step=gibbs.step, seed=0, n=20, hidden=2):
    x = np.random.default_rng(seed).uniform(-2, 2, size=(n, 1))
    start = time.perf_counter()
    ranks = sbc_lib.ranks(
        jax.random.key(seed), default_prior(1), x, hidden=hidden, reps=reps,
        warmup=SBC_WARMUP, draws=SBC_DRAWS, thin=SBC_THIN, kind=kind, step=step,
        x_ref=np.asarray([[-1.0], [0.5]]),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    pvalues = sbc_lib.rank_pvalues(ranks, SBC_DRAWS)
    return {
        "ranks": ranks,
        "pvalues": dict(zip(SBC_NAMES, map(float, pvalues), strict=True)),
        "seconds": seconds,
    }


# ------------------------------------------------------------------------- extras
def ridge_vs_posterior(result):
    x, y, *_ = synthetic()
    ridge = fit_ridge(jax.random.key(0), x, y, hidden=4, steps=5000)
    grid = np.linspace(-1, 1, 201)[:, None]
    truth = np.sin(3 * grid[:, 0])
    post = predict(jax.random.key(1), result, grid)
    f_ridge = ridge_predict(ridge, grid)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    plot_band(ax, grid, post, x=x, y=y, label="Gibbs posterior")
    ax.plot(grid[:, 0], f_ridge, "C3--", lw=1.5, label="ridge / SGD (one fit)")
    ax.plot(grid[:, 0], truth, "k:", lw=1, label="sin(3x)")
    ax.legend(fontsize="small")
    ax.set_title("Posterior vs penalised least squares, m = 4")
    save(fig, OUT / "bayes_ridge.png")
    rmse = lambda f: float(np.sqrt(np.mean((f - truth) ** 2)))
    return {
        "rmse_vs_truth_ridge": rmse(f_ridge),
        "rmse_vs_truth_posterior": rmse(post.mean),
    }


def classification(quick):
    from sklearn.datasets import load_iris

    data = load_iris()
    idx = np.random.default_rng(0).permutation(150)
    x = (data.data - data.data.mean(0)) / data.data.std(0)
    train, test = idx[:100], idx[100:]
    n = 150 if quick else 500
    start = time.perf_counter()
    mcmc = run_nuts(
        jax.random.key(0),
        classifier,
        jnp.asarray(x[train]),
        jnp.asarray(data.target[train]),
        hidden=3,
        num_classes=3,
        num_warmup=n,
        num_samples=n,
        num_chains=2,
        chain_method="vectorized",
    )
    wall = time.perf_counter() - start
    s = {k: v for k, v in mcmc.get_samples().items() if k != "logits"}
    hidden = jax.nn.sigmoid(jnp.einsum("nd,smd->snm", augment(x[test]), s["gamma"]))
    logits = jnp.einsum("snm,smk->snk", hidden, s["beta"]) + s["b"][:, None, :]
    probs = np.asarray(jax.nn.softmax(logits, -1).mean(0))
    return {
        "dataset": "iris (scikit-learn), 100 train / 50 test",
        "hidden": 3,
        "test_accuracy": float(np.mean(probs.argmax(-1) == data.target[test])),
        "divergences": int(mcmc.get_extra_fields()["diverging"].sum()),
        "wall_s": wall,
    }


# -------------------------------------------------------------------------- plots
def band_figure(results, name):
    x, y, *_ = synthetic()
    grid = np.linspace(-1, 1, 201)[:, None]
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, sampler in zip(axes, ("gibbs", "nuts"), strict=True):
        pred = predict(jax.random.key(2), results[(name, sampler)], grid)
        plot_band(ax, grid, pred, x=x, y=y, label=sampler)
        ax.plot(grid[:, 0], np.sin(3 * grid[:, 0]), "k:", lw=1)
        ax.set_title(f"{name}: {sampler}")
    save(fig, OUT / f"bayes_bands_{name}.png")


def sunspot_figure(result):
    _, _, x_test, y_test, test_years = sunspots()
    pred = predict(jax.random.key(3), result, x_test)
    years, spots = load_sunspots()
    history = np.sqrt(spots[years <= 1920])
    path = forecast(jax.random.key(4), result, history, 20)
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    ax1.fill_between(
        test_years,
        pred.lower**2,
        pred.upper**2,
        alpha=0.3,
        label="90% one-step predictive",
    )
    ax1.plot(test_years, pred.mean**2, lw=1, label="one-step mean")
    ax1.plot(test_years, y_test**2, "k.", ms=3, label="observed")
    ax1.set_title("Sunspots 1921-2008, one step ahead (Gibbs)")
    ax1.legend(fontsize="small")
    horizon = np.arange(1921, 1941)
    ax2.fill_between(
        horizon,
        np.maximum(path.lower, 0) ** 2,
        path.upper**2,
        alpha=0.3,
        label="90% multi-step predictive",
    )
    ax2.plot(horizon, np.median(path.draws, 0) ** 2, lw=1, label="median path")
    ax2.plot(
        years[(years > 1900) & (years <= 1940)],
        spots[(years > 1900) & (years <= 1940)],
        "k.-",
        ms=3,
        lw=0.5,
        label="observed",
    )
    ax2.set_title("Forecast from 1920, 20 years (simulated paths)")
    ax2.legend(fontsize="small")
    save(fig, OUT / "bayes_sunspots.png")


def diabetes_figure(results, preds):
    *_, y_test, _ = datasets()["diabetes"]
    fig = Figure(figsize=(11, 4), layout="constrained")
    for ax, sampler in zip(
        fig.subplots(1, 2, sharey=True), ("gibbs", "nuts"), strict=True
    ):
        plot_observed(
            ax,
            y_test,
            preds[("diabetes", sampler)],
            title=f"diabetes, held out: {sampler}",
        )
    save(fig, OUT / "bayes_diabetes.png")


def sbc_figure(runs):
    fig = Figure(figsize=(12, 2.4 * len(runs)), layout="constrained")
    axes = fig.subplots(len(runs), len(SBC_NAMES), squeeze=False)
    for row, (label, run) in enumerate(runs.items()):
        for col, name in enumerate(SBC_NAMES):
            ax = axes[row, col]
            ax.hist(run["ranks"][:, col], bins=10, range=(0, SBC_DRAWS + 1), color="C0")
            ax.axhline(run["ranks"].shape[0] / 10, color="k", ls=":")
            ax.set_title(f"{name}\np = {run['pvalues'][name]:.2g}", fontsize="small")
            ax.set_yticks([])
        axes[row, 0].set_ylabel(label, fontsize="small")
    save(fig, OUT / "bayes_sbc.png")


# -------------------------------------------------------------------------- report
def fmt(v, digits=3):
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def markdown(rows, sbc_runs, ridge, clf, meta, quick):
    lines = [
        "# Bayesian shallow networks: blocked Gibbs vs NUTS"
        + (" (quick run)" if quick else ""),
        "",
        "Written by `benchmarks/bayes.py`"
        + (" --quick" if quick else "")
        + f" on {meta['date']}.",
        f"Machine: {meta['machine']}; jax {meta['jax']}, numpyro {meta['numpyro']}. "
        f"1-min load average at start {meta['load_start']:.1f}, "
        f"at end {meta['load_end']:.1f} "
        "(the machine was shared; wall times are noisy). "
        f"`XLA_FLAGS={meta['xla_flags']}` (see the script).",
        "",
        f"Gibbs: {meta['gibbs']}; NUTS: {meta['nuts']} (numpyro defaults: target "
        'acceptance 0.8, max tree depth 10). 4 chains, `chain_method="vectorized"`, '
        "same model, prior (data-scaled defaults) and standardisation. "
        "ESS/s = bulk ESS "
        "divided by sampling time (wall minus compile; warm-up included).",
        "",
        "| dataset | sampler | ESS/s sigma | ESS/s loglik | ESS/s f(x1, x2, x3) "
        "| R-hat max "
        "| div. | RMSE | cov. 90% | wall s | compile s |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        e = r["ess_per_s"]
        f = ", ".join(fmt(v) for v in e["f"])
        lines.append(
            f"| {r['dataset']} | {r['sampler']} | {fmt(e['sigma'])} "
            f"| {fmt(e['loglik'])} "
            f"| {f} | {r['rhat_max']:.3f} | {r['divergences']} | {fmt(r['rmse'])} "
            f"| {r['coverage90']:.3f} | {r['wall_s']:.1f} | {r['compile_s']:.1f} |"
        )
    lines += [
        "",
        "## Ratios Gibbs / NUTS (ESS per second) and the issue's floors",
        "",
        "| dataset | sigma | loglik | f (min over 3) | floor | met |",
        "|---|---:|---:|---:|---|---|",
    ]
    by = {(r["dataset"], r["sampler"]): r for r in rows}
    for name in dict.fromkeys(r["dataset"] for r in rows):
        g, n = by[(name, "gibbs")]["ess_per_s"], by[(name, "nuts")]["ess_per_s"]
        ratios = (
            g["sigma"] / n["sigma"],
            g["loglik"] / n["loglik"],
            min(a / b for a, b in zip(g["f"], n["f"], strict=True)),
        )
        if name == "diabetes":
            floor, met = "all >= 1", all(v >= 1 for v in ratios)
        else:
            floor, met = "sigma >= 10, loglik >= 3", ratios[0] >= 10 and ratios[1] >= 3
        lines.append(
            f"| {name} | {ratios[0]:.0f}x | {ratios[1]:.0f}x | {ratios[2]:.0f}x "
            f"| {floor} | {'yes' if met else 'NO'} |"
        )
    inside = lambda r: 0.85 <= r["coverage90"] <= 0.95
    cov_gibbs = all(inside(r) for r in rows if r["sampler"] == "gibbs")
    outside = [f"{r['dataset']}/{r['sampler']}" for r in rows if not inside(r)]
    lines += [
        "",
        "Held-out 90% coverage within 0.85-0.95 for every Gibbs row: "
        f"{'yes' if cov_gibbs else 'NO'}; "
        f"rows outside: {', '.join(outside) or 'none'}.",
        "",
        "Per-row details (raw ESS, R-hat per quantity, NUTS tree-depth saturation, "
        "Gibbs acceptance, load average) are in `bayes.json` under `extra`.",
        "",
    ]
    lines += [
        "## Simulation-based calibration of the Gibbs sweep",
        "",
        f"n = 20, m = 2, default prior; each replication simulates from the prior, "
        f"runs {SBC_WARMUP} warm-up sweeps and keeps {SBC_DRAWS} draws thinned by "
        f"{SBC_THIN}; chi-square p-values of 10-bin rank histograms.",
        "",
        "| sweep | reps | " + " | ".join(SBC_NAMES) + " | seconds |",
        "|---|---:|" + "---:|" * (len(SBC_NAMES) + 1),
    ]
    for label, run in sbc_runs.items():
        ps = " | ".join(f"{run['pvalues'][k]:.3g}" for k in SBC_NAMES)
        lines.append(
            f"| {label} | {run['ranks'].shape[0]} | {ps} | {run['seconds']:.1f} |"
        )
    lines += [
        "",
        "The last row is a negative control: the seed's listing taken literally "
        "(beta drawn before the gamma loop that integrates it out, then reused for the "
        "hyperparameters and sigma). Its rank histograms are far from uniform, "
        "which is "
        "why jaxseq redraws beta after the gamma moves.",
        "",
        "## The same network by penalised least squares (SGD)",
        "",
        "RMSE against sin(3x) on a grid: ridge/SGD "
        f"{ridge['rmse_vs_truth_ridge']:.4f}, "
        f"Gibbs posterior mean {ridge['rmse_vs_truth_posterior']:.4f} "
        "(`bayes_ridge.png`).",
        "",
        "## Softmax classification (NUTS)",
        "",
        f"{clf['dataset']}, m = {clf['hidden']}: test accuracy "
        f"{clf['test_accuracy']:.3f}, {clf['divergences']} divergences, "
        f"{clf['wall_s']:.0f} s.",
        "",
        "Figures: `bayes_bands_synth_m4.png`, `bayes_bands_synth_m6.png`, "
        "`bayes_trace_synth_m4_gibbs.png`, `bayes_trace_synth_m4_nuts.png`, "
        "`bayes_sunspots.png`, `bayes_diabetes.png`, `bayes_sbc.png`, "
        "`bayes_ridge.png`.",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------------- scaling
SCALING_N = (500, 1000, 2000, 5000, 10_000)
SCALING_M = (2, 4, 8, 16)


def sweep_time(n, m, *, seconds=2.0, chains=CHAINS):
    """Compile seconds and per-sweep milliseconds (median and min over at least 3
    timed sweeps, after 2 untimed) of ``chains`` vectorised chains at ``(n, m)``."""
    x, y = sine_data(0, n)
    x = jnp.asarray((x - x.mean()) / x.std(), jnp.float32)
    y = jnp.asarray((y - y.mean()) / y.std(), jnp.float32)
    kernel = BlockedGibbs(m)
    keys = jax.random.split(jax.random.key(0), chains)
    # num_warmup = 10**6: the adaptation stays on, as in a warm-up sweep.
    state = jax.jit(lambda k, x, y: kernel.init(k, 10**6, None, (x, y), {}))(keys, x, y)
    start = time.perf_counter()
    step = jax.jit(lambda s, x, y: kernel.sample(s, (x, y), {}))
    step = step.lower(state, x, y).compile()
    compile_s = time.perf_counter() - start
    for _ in range(2):
        state = jax.block_until_ready(step(state, x, y))
    times = []
    while len(times) < 3 or (sum(times) < seconds and len(times) < 200):
        start = time.perf_counter()
        state = jax.block_until_ready(step(state, x, y))
        times.append(time.perf_counter() - start)
    assert np.isfinite(np.asarray(state.info.loglik)).all()
    median, fastest = 1e3 * float(np.median(times)), 1e3 * float(np.min(times))
    return compile_s, median, fastest, len(times)


def scaling() -> None:
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu": cpu_model(),
        "jax": jax.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "load_start": os.getloadavg()[0],
        "chains": CHAINS,
        "moves": moves.DEFAULT,
    }
    cells = []
    for m in SCALING_M:
        for n in SCALING_N:
            compile_s, median, fastest, reps = sweep_time(n, m)
            cells.append(dict(n=n, m=m, ms_median=round(median, 2),
                              ms_min=round(fastest, 2), reps=reps,
                              compile_s=round(compile_s, 1),
                              load=round(os.getloadavg()[0], 2)))  # fmt: skip
            print(json.dumps(cells[-1]), flush=True)
    meta["load_end"] = os.getloadavg()[0]
    fits = {}
    for m in SCALING_M:
        ns = np.array([c["n"] for c in cells if c["m"] == m], float)
        ts = np.array([c["ms_min"] for c in cells if c["m"] == m])
        slope, intercept = np.polyfit(ns, ts, 1)
        resid = ts - (intercept + slope * ns)
        fits[m] = dict(ms_per_1000=round(1e3 * slope, 2), ms_at_0=round(intercept, 2),
                       r2=round(1 - resid @ resid / ((ts - ts.mean()) ** 2).sum(), 4),
                       ratio_10000_5000=round(ts[-1] / ts[-2], 2))  # fmt: skip
    report = scaling_markdown(cells, fits, meta)
    (RESULTS / "bayes_scaling.md").write_text(report)
    payload = {"cells": cells, "linear_fits": fits, "meta": meta}
    (RESULTS / "bayes_scaling.json").write_text(json.dumps(payload, indent=1))
    print(report)


def scaling_markdown(cells, fits, meta) -> str:
    table = {(c["n"], c["m"]): c for c in cells}
    lines = [
        "# Gibbs sweep time against n and m",
        "",
        f"Written by `benchmarks/bayes.py --scaling` on {meta['date']}. CPU: "
        f"{meta['cpu']}; jax {meta['jax']}; `XLA_FLAGS={meta['xla_flags']!r}`. "
        f"1-min load average {meta['load_start']:.1f} at start, "
        f"{meta['load_end']:.1f} at end (a shared machine: the median is noisy, "
        "the minimum less so).",
        "",
        f"One sweep of {meta['chains']} vectorised chains (`BlockedGibbs`, moves "
        f"`{meta['moves']}`, warm-up adaptation on), y = sin(3x) + noise, "
        "standardised. Milliseconds per sweep, minimum (median) over the timed "
        "sweeps after two untimed ones; compilation excluded.",
        "",
        "| n | " + " | ".join(f"m = {m}" for m in SCALING_M) + " |",
        "|---:|" + "---:|" * len(SCALING_M),
    ]
    for n in SCALING_N:
        row = [f"{table[n, m]['ms_min']:.1f} ({table[n, m]['ms_median']:.1f})"
               for m in SCALING_M]  # fmt: skip
        lines.append(f"| {n} | " + " | ".join(row) + " |")
    lines += [
        "",
        "Least-squares line through the minima, per m: milliseconds per 1000 "
        "observations, intercept, R^2, and the ratio of the times at n = 10000 and "
        "n = 5000 (2 for a linear cost without overhead).",
        "",
        "| m | ms / 1000 obs | ms at n = 0 | R^2 | t(10000) / t(5000) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for m, f in fits.items():
        lines.append(
            f"| {m} | {f['ms_per_1000']} | {f['ms_at_0']} | {f['r2']} | "
            f"{f['ratio_10000_5000']} |"
        )
    compile_s = [c["compile_s"] for c in cells]
    lines += ["", f"Compilation: {min(compile_s):.0f}-{max(compile_s):.0f} s per "
              "(n, m).", ""]  # fmt: skip
    return "\n".join(lines)


# ------------------------------------------------------------ default-fit timing
DEFAULT_FIT_DATA = ("synth_m4", "sunspots", "synth_m4+auto")


def _default_fit_data(name):
    """``(x, y, hidden)``; a name ending in ``+auto`` samples m (``--hidden
    auto``: 1..8), else m = 4."""
    base = name.removesuffix("+auto")
    if base == "synth_m4":
        x, y, _, _ = synthetic()
    else:
        x, y, _, _, _ = sunspots()
    return x, y, (VARIABLE_M if name.endswith("+auto") else 4)


def default_fit_child(name: str, sampler: str, fits: int) -> None:
    """In a fresh process: ``fits`` default fits, one JSON line each."""
    from jaxseq.bayes.driver import enable_compile_cache

    cache = enable_compile_cache()  # JAXSEQ_COMPILE_CACHE set by the parent
    x, y, hidden = _default_fit_data(name)
    for rep in range(fits):
        cpu, start = time.process_time(), time.perf_counter()
        result = fit(jax.random.key(rep), x, y, hidden=hidden, sampler=sampler,
                     progress=False)  # fmt: skip
        row = {
            "dataset": name.removesuffix("+auto"),
            "sampler": sampler,
            "m": "variable" if isinstance(hidden, HiddenUnits) else hidden,
            "n": int(y.shape[0]),
            "default_settings": True,
            "wall_s": round(time.perf_counter() - start, 2),
            "compile_s": round(result.compile_s, 2),
            "cpu_s": round(time.process_time() - cpu, 2),
            "load": round(os.getloadavg()[0], 1),
            "persistent_cache": cache is not None,
            "machine": cpu_model(),
        }
        print("ROW " + json.dumps(row), flush=True)


def default_fit(samplers=("gibbs", "nuts"), rows=None, data=DEFAULT_FIT_DATA) -> None:
    """Time default fits cold, warm in memory and warm from the disk cache
    (appending to ``rows``, e.g. those of an earlier run of other samplers)."""
    rows = [] if rows is None else list(rows)
    for sampler in samplers:
        for name in data:
            if name.endswith("+auto") and sampler != "gibbs":
                continue  # m is sampled by the Gibbs sampler only
            with tempfile.TemporaryDirectory() as cache:
                env = dict(os.environ, JAXSEQ_COMPILE_CACHE=cache)
                for stage, fits in (("cold", 2), ("disk", 1)):
                    out = subprocess.run(
                        [sys.executable, __file__, "--default-fit-child",
                         name, sampler, str(fits)],
                        env=env, capture_output=True, text=True, check=True,
                    ).stdout  # fmt: skip
                    got = [json.loads(line[4:]) for line in out.splitlines()
                           if line.startswith("ROW ")]  # fmt: skip
                    labels = ("cold", "memory") if stage == "cold" else ("disk",)
                    for label, row in zip(labels, got, strict=True):
                        rows.append({**row, "cache": label})
                        print(json.dumps(rows[-1]), flush=True)
                        write_default_fit(rows)
    write_default_fit(rows, done=True)


#: ``(n, m)`` of the whole-command rows: the default size and the largest the
#: goal names (n <= 500, m <= 8).
COMMAND_SIZES = ((200, 4), (500, 8))


def command_data(folder: Path, n: int) -> Path:
    """``synth{n}.csv`` in ``folder``: ``x ~ U(-2, 2)^2``, ``y = sin(2 x1) +
    tanh(x2) / 2 + N(0, 0.2^2)`` (NumPy seed 0), columns ``x1, x2, y``."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-2, 2, (n, 2))
    y = np.sin(2 * x[:, 0]) + np.tanh(x[:, 1]) / 2 + rng.normal(0, 0.2, n)
    path = Path(folder) / f"synth{n}.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="x1,x2,y",
               comments="")  # fmt: skip
    return path


def time_command(args: list[str], env: dict, cwd: Path | None = None) -> dict:
    """Run ``python -m jaxseq bayes fit ARGS --quiet`` in a fresh process (in
    ``cwd``: ``python -m`` puts the working folder first on ``sys.path``, so in
    the repository it would shadow ``PYTHONPATH``): wall and user + system CPU
    seconds, and the ``fit`` call's own wall and compile seconds from the
    command's ``time:`` line."""
    import re
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "jaxseq", "bayes", "fit", *args, "--quiet"],
        env=env, capture_output=True, text=True, check=True, cwd=cwd,
    ).stdout  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = re.search(r"time: ([0-9.]+) s \(([0-9.]+) s compiling\)", out)
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "fit_wall_s": float(found[1]) if found else None,
        "fit_compile_s": float(found[2]) if found else None,
        "load": round(os.getloadavg()[0], 1),
    }


def default_command(pairs: int = 3, before: str | None = None, nuts: bool = False,
                    rows: list[dict] | None = None) -> list[dict]:  # fmt: skip
    """Time the whole ``jaxseq bayes fit`` command (:data:`COMMAND_SIZES`), cold
    and from the disk cache, ``pairs`` times, alternating with the ``jaxseq`` in
    ``before`` when given; returns the rows (also written after each)."""
    rows = [] if rows is None else list(rows)
    versions = [("now", None)] + ([("before", before)] if before else [])
    earlier = _read_default_fit()
    fit_rows, fit_meta = earlier["rows"], earlier["meta"]
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        runs = [(n, m, "gibbs") for n, m in COMMAND_SIZES] * pairs
        runs += [(200, 4, "nuts")] if nuts else []
        for i, (n, m, sampler) in enumerate(runs):
            csv = command_data(folder, n)
            order = versions if i % 2 == 0 else versions[::-1]
            for label, path in order:
                cache = folder / f"cache-{i}-{label}"
                env = dict(os.environ, JAXSEQ_COMPILE_CACHE=str(cache))
                if path:
                    env["PYTHONPATH"] = os.pathsep.join(
                        [str(Path(path).resolve()), env.get("PYTHONPATH", "")]
                    )
                args = ["--data", str(csv), "--hidden", str(m), "--sampler",
                        sampler, "--out", str(folder / "out")]  # fmt: skip
                stages = ("cold", "disk") if sampler == "gibbs" else ("cold",)
                for stage in stages:
                    row = {"what": "command", "dataset": f"synth{n}", "n": n,
                           "m": m, "sampler": sampler, "cache": stage,
                           "version": label, **time_command(args, env, folder),
                           "date": time.strftime("%Y-%m-%d %H:%M"),
                           "machine": cpu_model()}  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    write_default_fit(fit_rows, commands=rows, meta=fit_meta)
    write_default_fit(fit_rows, commands=rows, meta=fit_meta, done=True)
    return rows


#: A fresh process that runs ``jaxseq bayes fit ARGS`` and prints one ``STAGES``
#: JSON line: wall and CPU seconds (since its first statement) at each stage's
#: end, and the seconds of JAX's compile events (tracing, lowering, XLA) and of
#: loading/saving whole compiled programs. Only ``time`` is imported before the
#: first mark, so the imports are the command's own.
STAGES_CHILD = r"""
import time
t0, c0 = time.perf_counter(), time.process_time()
marks = {}
def mark(name):
    marks[name] = [time.perf_counter() - t0, time.process_time() - c0]
import json, sys
from jax import monitoring
spans = {}
def on_span(event, start, end, **_):
    spans[event] = spans.get(event, 0.0) + (end - start)
monitoring.register_event_time_span_listener(on_span)
mark("jax")
import jaxseq.bayes.cli as cli
import jaxseq.bayes.infer as infer
mark("imports")
fit = infer.fit
def timed_fit(*args, **kwargs):
    mark("setup")
    result = fit(*args, **kwargs)
    mark("fit")
    return result
infer.fit = timed_fit
rc = cli.main(sys.argv[1:])
mark("end")
print("STAGES " + json.dumps({"marks": marks, "spans": spans, "rc": rc}))
"""
#: Span events of :data:`STAGES_CHILD` by column: JAX's compile events and the
#: program cache's (``jaxseq.bayes._programs.EVENT``).
STAGE_EVENTS = {
    "trace": "/jax/core/compile/jaxpr_trace_duration",
    "lower": "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "xla": "/jax/core/compile/backend_compile_duration",
    "program_file": "/jaxseq/bayes/program_cache_duration",
}


def command_stages_row(args: list[str], env: dict, cwd: Path) -> dict:
    """One fresh ``jaxseq bayes fit`` process (:data:`STAGES_CHILD`) in ``cwd``
    (not the repository: ``python -c`` puts the working folder first on
    ``sys.path``, before ``PYTHONPATH``): the process's wall and CPU seconds and
    the wall seconds of each stage."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", STAGES_CHILD, "fit", *args, "--quiet"],
        env=env, capture_output=True, text=True, check=True, cwd=cwd,
    ).stdout  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in out.splitlines() if x.startswith("STAGES "))
    got = json.loads(line[7:])
    at = {k: v[0] for k, v in got["marks"].items()}
    spans = {k: got["spans"].get(e, 0.0) for k, e in STAGE_EVENTS.items()}
    fit_s = at["fit"] - at["setup"]
    row = {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime)
        + (after.ru_stime - before.ru_stime),
        "import_jax_s": at["jax"],
        "import_rest_s": at["imports"] - at["jax"],
        "setup_s": at["setup"] - at["imports"],
        **{f"{k}_s": v for k, v in spans.items()},
        "sampling_s": fit_s - sum(spans.values()),
        "after_fit_s": at["end"] - at["fit"],
        "load": os.getloadavg()[0],
    }
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}


def command_stages(pairs: int = 2, before: str | None = None) -> list[dict]:
    """Time the stages of ``jaxseq bayes fit`` (:data:`COMMAND_SIZES`), cold and
    from the disk cache, ``pairs`` times, alternating with the ``jaxseq`` in
    ``before`` when given; writes ``results/bayes_command_stages.*`` after each
    (after the rows of earlier runs, which are kept)."""
    path = RESULTS / "bayes_command_stages.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    versions = [("now", None)] + ([("before", before)] if before else [])
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for i, (n, m) in enumerate(list(COMMAND_SIZES) * pairs):
            csv = command_data(folder, n)
            for label, path in versions if i % 2 == 0 else versions[::-1]:
                env = dict(
                    os.environ, JAXSEQ_COMPILE_CACHE=str(folder / f"c{i}{label}")
                )
                if path:
                    env["PYTHONPATH"] = os.pathsep.join(
                        [str(Path(path).resolve()), env.get("PYTHONPATH", "")]
                    )
                args = ["--data", str(csv), "--hidden", str(m),
                        "--out", str(folder / "out")]  # fmt: skip
                for stage in ("cold", "disk"):
                    row = {"n": n, "m": m, "cache": stage, "version": label,
                           **command_stages_row(args, env, folder),
                           "date": time.strftime("%Y-%m-%d %H:%M")}  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    write_command_stages(rows)
    write_command_stages(rows, done=True)
    return rows


def write_command_stages(rows: list[dict], done: bool = False) -> None:
    """``results/bayes_command_stages.{json,md}``."""
    meta = {"machine": cpu_model(), "jax": jax.__version__, "complete": done,
            "cores": os.cpu_count()}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "bayes_command_stages.json"
    path.write_text(json.dumps({"rows": rows, "meta": meta}, indent=1))
    cols = ["wall_s", "cpu_s", "import_jax_s", "import_rest_s", "setup_s",
            "trace_s", "lower_s", "xla_s", "program_file_s", "sampling_s",
            "after_fit_s", "load"]  # fmt: skip
    lines = [
        "# `jaxseq bayes fit`: where the wall time goes",
        "",
        f"{meta['machine']}, jax {meta['jax']}; `python benchmarks/bayes.py "
        "--command-stages` (default Gibbs fit: 1,000 + 1,000 draws, 4 chains, data "
        "as in `bayes_default_fit.md`). Each row a fresh process running "
        "`jaxseq bayes fit --data synth{n}.csv --hidden m --out DIR --quiet`; cold: "
        "empty persistent cache, disk: the cache the cold run filled. wall s / cpu "
        "s: the process (user + system CPU); then wall seconds per stage: importing "
        "jax, the rest of the imports, setup (flags, data, keys), JAX tracing, "
        "lowering, XLA compiling, loading or saving the whole compiled program "
        "(`jaxseq.bayes._programs`; no such stage `before`), sampling (the rest of "
        "`fit`: running the chains, the diagnostics inside `fit`), after the fit "
        "(summary, predictions, samples file, both PNGs). load: 1-minute load "
        "average at the end (the 2 cores were shared with other jobs). version "
        "`before`: the package before this change, run alternately.",
        "",
    ]
    if not done:
        lines += ["**Incomplete**: the run stopped before every row was timed.", ""]
    lines += [
        "| n | m | cache | version | "
        + " | ".join(c.removesuffix("_s") for c in cols)
        + " | date |",
        "|---|---|---|---|" + "---|" * len(cols) + "---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['m']} | {r['cache']} | {r['version']} | "
            + " | ".join(str(r[c]) for c in cols)
            + f" | {r['date']} |"
        )
    (RESULTS / "bayes_command_stages.md").write_text("\n".join(lines) + "\n")


def _read_default_fit() -> dict:
    path = RESULTS / "bayes_default_fit.json"
    if not path.exists():
        return {"rows": [], "commands": []}
    payload = json.loads(path.read_text())
    return {"rows": payload.get("rows", []), "commands": payload.get("commands", []),
            "meta": payload.get("meta")}  # fmt: skip


def write_default_fit(rows: list[dict], *, done: bool = False,
                      commands: list[dict] | None = None,
                      meta: dict | None = None) -> str:  # fmt: skip
    """Write ``results/bayes_default_fit.{json,md}`` (after every row, so that a
    run stopped early leaves what it measured, marked ``"complete": false``).
    ``meta``: that of the ``fit`` rows when they come from an earlier run."""
    meta = meta or {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": cpu_model(),
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "cores": os.cpu_count(),
        "complete": done,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    if commands is None:  # keep the whole-command rows of an earlier run
        commands = _read_default_fit()["commands"]
    payload = {"rows": rows, "commands": commands, "meta": meta}
    (RESULTS / "bayes_default_fit.json").write_text(json.dumps(payload, indent=1))
    lines = [
        "# Default fit: wall time with compilation",
        "",
        f"{meta['date']}, {meta['machine']}, jax {meta['jax']}, "
        f"numpyro {meta['numpyro']}. `fit(key, x, y, hidden=4, sampler=...)` with "
        "the defaults (1,000 warm-up + 1,000 draws, 4 vectorised chains); m "
        "variable: `hidden=HiddenUnits(max=8)` (`--hidden auto`). cold: "
        "fresh process, empty persistent cache; memory: second fit in the same "
        "process; disk: fresh process, programs in the persistent cache. cpu_s: "
        "the process's CPU time (user + system) during the fit; load: the "
        "1-minute load average at its end (other processes shared the cores, so "
        "wall times are inflated and cpu_s is the steadier measure). Each row "
        "names its machine (rows of earlier runs kept where not rerun).",
        "",
        "| data | n | m | sampler | cache | wall s | compile s | cpu s | load "
        "| machine |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if not done:
        lines[2:2] = ["**Incomplete**: the run stopped before every row was timed.", ""]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['n']} | {r['m']} | {r['sampler']} | "
            f"{r['cache']} | {r['wall_s']} | {r['compile_s']} | {r['cpu_s']} | "
            f"{r['load']} | {r.get('machine', meta['machine'])} |"
        )
    if commands:
        lines += [
            "",
            "## The whole command",
            "",
            "`python -m jaxseq bayes fit --data synth{n}.csv --hidden m --sampler S "
            "--out DIR --quiet` (`benchmarks/bayes.py --default-command`): data `x ~ "
            "U(-2, 2)^2`, `y = sin(2 x1) + tanh(x2) / 2 + N(0, 0.2^2)` (NumPy seed 0); "
            "1,000 warm-up + 1,000 draws, 4 chains (split over one JAX CPU device "
            "per core); imports, fit, summary, predictions, samples file and both "
            "PNGs. Each row a fresh process; cold: empty persistent cache, disk: the "
            "cache that the cold run filled. wall s: the process; cpu s: its user + "
            "system CPU; fit / compile s: the command's own `time:` line. version: "
            "`before` is the earlier package run alternately with `now`.",
            "",
            "| data | n | m | sampler | cache | version | wall s | cpu s | fit s "
            "| compile s | load | date | machine |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in commands:
            lines.append(
                f"| {r['dataset']} | {r['n']} | {r['m']} | {r['sampler']} | "
                f"{r['cache']} | {r['version']} | {r['wall_s']} | {r['cpu_s']} | "
                f"{r['fit_wall_s']} | {r['fit_compile_s']} | {r['load']} | "
                f"{r.get('date', '')} | {r.get('machine', meta['machine'])} |"
            )
    (RESULTS / "bayes_default_fit.md").write_text("\n".join(lines) + "\n")
    if done:
        print("\n".join(lines))
    return "\n".join(lines)


# ------------------------------------------------- fixed m, GP, NNGP, linear rows
BASELINE_DATA = {"synth_m4": "synth", "sunspots": "sunspots", "diabetes": "diabetes"}
BASELINE_NAMES = tuple(BASELINE_DATA.values())
BASELINE_M = (1, 2, 3, 4, 5, 6)
BASELINE_KERNELS = ("se", "matern52")  # names at the edge: gp_lib.kernel_from_name
GP_NUTS = {"full": dict(num_warmup=300, num_samples=300, num_chains=2),
           "quick": dict(num_warmup=100, num_samples=100, num_chains=1)}  # fmt: skip
QUICK_GIBBS = dict(num_warmup=300, num_samples=300)


def _scores(y_test, mean, lower, upper, lpd):
    return {
        "lpd": float(np.mean(lpd)),
        "rmse": float(np.sqrt(np.mean((mean - y_test) ** 2))),
        "coverage90": coverage(y_test, lower, upper),
    }


def gibbs_fixed_m(name, data, m, quick, seed=0):
    """A default Gibbs fit (or the quick settings) at fixed m, scored held out."""
    x, y, x_test, y_test, _ = data
    settings = QUICK_GIBBS if quick else {}
    result = fit(jax.random.key(seed), x, y, hidden=m, sampler="gibbs",
                 progress=False, **settings)  # fmt: skip
    pred = predict(jax.random.key(seed + 1), result, x_test, prob=0.9)
    rows = summary(label_invariant(result))
    sample_s = result.wall_s - result.compile_s
    return {
        "dataset": name, "sampler": "gibbs", "model": "network", "m": m,
        **_scores(y_test, pred.mean, pred.lower, pred.upper,
                  net_lpd(result, x_test, y_test)),
        "wall_s": result.wall_s, "compile_s": result.compile_s,
        "default_settings": not quick,
        "ess_per_s": {"sigma": rows["sigma"].ess_bulk / sample_s,
                      "loglik": rows["loglik"].ess_bulk / sample_s},
        "rhat_max": max(r.rhat for r in rows.values()),
        "extra": {"settings": settings or "fit() defaults",
                  "posterior_mean_sigma": round(rows["sigma"].mean, 4)},
    }  # fmt: skip


VARIABLE_M = HiddenUnits(max=8)  # what `jaxseq bayes fit --hidden auto` samples


def gibbs_variable_m(name, data, quick, seed=0):
    """A default Gibbs fit with m sampled (``--hidden auto``: 1..8, truncated
    Poisson(3) prior), scored held out; ``extra.posterior_m`` holds the share of
    draws with m = 1..8."""
    x, y, x_test, y_test, _ = data
    settings = QUICK_GIBBS if quick else {}
    result = fit(jax.random.key(seed), x, y, hidden=VARIABLE_M, sampler="gibbs",
                 progress=False, **settings)  # fmt: skip
    pred = predict(jax.random.key(seed + 1), result, x_test, prob=0.9)
    rows = summary(label_invariant(result))
    sample_s = result.wall_s - result.compile_s
    m = np.asarray(result.samples["m"]).ravel()
    share = np.bincount(m, minlength=VARIABLE_M.max + 1)[1:] / m.size
    return {
        "dataset": name, "sampler": "gibbs", "model": "network", "m": "variable",
        **_scores(y_test, pred.mean, pred.lower, pred.upper,
                  net_lpd(result, x_test, y_test)),
        "wall_s": result.wall_s, "compile_s": result.compile_s,
        "default_settings": not quick,
        "ess_per_s": {"sigma": rows["sigma"].ess_bulk / sample_s,
                      "loglik": rows["loglik"].ess_bulk / sample_s},
        "rhat_max": max(r.rhat for r in rows.values()),
        "extra": {"settings": settings or "fit() defaults",
                  "hidden": "HiddenUnits(max=8), truncated Poisson(3) prior",
                  "posterior_m": [round(float(v), 4) for v in share],
                  "posterior_mean_sigma": round(rows["sigma"].mean, 4)},
    }  # fmt: skip


def posterior_m_figure(rows) -> Path | None:
    """Bar charts of the posterior of m (share of draws), one panel per data set,
    from the variable-m rows; the prior's probabilities as points."""
    rows = [r for r in rows if r.get("m") == "variable" and "posterior_m" in r["extra"]]
    if not rows:
        return None
    prior = np.exp(dim.log_prior_m(VARIABLE_M)[1:-1])
    fig = Figure(figsize=(4.2 * len(rows), 3.8), layout="constrained")
    axes = fig.subplots(1, len(rows), squeeze=False)[0]
    for ax, r in zip(axes, rows, strict=True):
        share = np.asarray(r["extra"]["posterior_m"])
        k = np.arange(1, len(share) + 1)
        ax.bar(k, share, color="tab:blue", label="posterior (share of draws)")
        ax.plot(k, prior, "o", color="black", ms=4, label="prior")
        ax.set_xticks(k)
        ax.set_xlabel("number of hidden units m")
        ax.set_ylabel("probability")
        ax.set_title(f"{r['dataset']}: posterior of m")
        ax.set_ylim(0, max(0.5, 1.15 * max(share.max(), prior.max())))
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle("Posterior of the number of hidden units m\n(default Gibbs fits, "
                 "--hidden auto: m in 1..8, truncated Poisson(3) prior)")  # fmt: skip
    return save(fig, OUT / "bayes_posterior_m.png")


def gp_row(name, data, label, gp_fit):
    _, _, x_test, y_test, _ = data
    pred = gp_lib.predict_gp(gp_fit, x_test, prob=0.9)
    lpd = gp_lib.gp_log_predictive_density(gp_fit, x_test, y_test)
    sc = gp_fit.scaler
    params = {
        "amplitude": float(np.median(gp_fit.params.amplitude)) * sc.y_scale,
        "noise": float(np.median(gp_fit.params.noise)) * sc.y_scale,
    }
    if getattr(gp_fit.kernel, "uses_length_scale", True):
        ls = np.median(np.asarray(gp_fit.params.length_scale), axis=0)
        params["length_scale_std_units"] = float(ls)
    return {
        "dataset": name, "sampler": "gp", "model": label,
        "m": "infinite" if label.startswith("nngp") else None,
        **_scores(y_test, pred.mean, pred.lower, pred.upper, lpd),
        "wall_s": gp_fit.wall_s, "compile_s": gp_fit.compile_s,
        "default_settings": gp_fit.method == "ml2",
        "extra": {"method": gp_fit.method, "original_units": params,
                  "log_marginal_std_scale": float(np.max(gp_fit.log_marginal)),
                  **gp_fit.extra},
    }  # fmt: skip


def linear_row(name, data):
    """Least squares with the exact Student-t predictive (flat prior)."""
    import scipy.stats

    x, y, x_test, y_test, _ = data
    start = time.perf_counter()
    design = np.c_[np.ones(len(y)), x]
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    dof = len(y) - design.shape[1]
    s2 = np.sum((y - design @ coef) ** 2) / dof
    d_test = np.c_[np.ones(len(y_test)), x_test]
    lev = np.einsum("ni,ij,nj->n", d_test, np.linalg.inv(design.T @ design), d_test)
    pred = scipy.stats.t(dof, d_test @ coef, np.sqrt(s2 * (1 + lev)))
    lower, upper = pred.ppf(0.05), pred.ppf(0.95)
    return {
        "dataset": name, "sampler": "ols", "model": "linear", "m": None,
        **_scores(y_test, pred.mean(), lower, upper, pred.logpdf(y_test)),
        "wall_s": time.perf_counter() - start, "compile_s": 0.0,
        "default_settings": True,
    }  # fmt: skip


class _Rows(list):
    """A list that also saves itself after every row (a crash keeps the rows)."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def append(self, row):
        super().append(row)
        self.path.write_text(json.dumps(list(self), indent=1, default=str))


def _partial_path(names) -> Path:
    return OUT / f".bayes_baselines_partial_{'_'.join(names)}.json"


def baselines(quick: bool, names=BASELINE_NAMES) -> list[dict]:
    rows = _Rows(_partial_path(names))
    data = datasets()
    for source, name in BASELINE_DATA.items():
        if name not in names:
            continue
        d = data[source]
        x, y = d[0], d[1]
        rows.append(linear_row(name, d))
        for label in BASELINE_KERNELS:
            kernel = gp_lib.kernel_from_name(label)
            gp_fit = gp_lib.fit_gp(jax.random.key(0), x, y, kernel)
            rows.append(gp_row(name, d, f"gp_{label}_ml2", gp_fit))
            print(json.dumps(rows[-1]), flush=True)
        nuts = GP_NUTS["quick" if quick else "full"]
        rows.append(gp_row(name, d, "gp_se_nuts", gp_lib.fit_gp_nuts(
            jax.random.key(0), x, y, gp_lib.squared_exponential, **nuts)))  # fmt: skip
        rows[-1]["extra"]["settings"] = nuts
        print(json.dumps(rows[-1]), flush=True)
        kernel = nngp_lib.nngp_kernel(jax.random.key(1), default_prior(x.shape[1]))
        rows.append(gp_row(name, d, "nngp_logistic_ml2",
                           gp_lib.fit_gp(jax.random.key(0), x, y, kernel)))  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
        for m in BASELINE_M:
            rows.append(gibbs_fixed_m(name, d, m, quick))
            print(json.dumps(rows[-1]), flush=True)
        rows.append(gibbs_variable_m(name, d, quick))
        print(json.dumps(rows[-1]), flush=True)
    return rows


def baselines_markdown(rows, meta) -> str:
    lines = [
        BASELINE_START,
        "## Fixed m, Gaussian processes, the infinite-width kernel and a linear model",
        "",
        f"Written by `benchmarks/bayes.py --baselines` on {meta['date']}; "
        f"{meta['machine']}; jax {meta['jax']}; `XLA_FLAGS={meta['xla_flags']!r}`, "
        f"`OPENBLAS_NUM_THREADS={meta['openblas_threads']!r}`; 1-min load average "
        f"{meta['load_start']:.1f} at start, {meta['load_end']:.1f} at end (a "
        "heavily shared machine: wall times are inflated and noisy).",
        *_runs_lines(meta),
        "",
        "Held out: sine 1000 new draws, sunspots 1921-2008 one step ahead, "
        "diabetes a random 100 of 442. lpd: held-out log predictive density per "
        "point in original units (higher is better; for sunspots the sqrt scale). "
        "gibbs: " + ("quick settings " + str(QUICK_GIBBS) if meta["quick"] else
                     "a default fit (1,000 + 1,000 draws, 4 chains)") +
        " at fixed m, and with m sampled (m = variable: `--hidden auto`, 1..8, "
        "truncated Poisson(3) prior; posterior of m in bayes_posterior_m.png); "
        "gp_*_ml2: type-II maximum likelihood (Adam, 4 starts); gp_se_nuts: NUTS on "
        f"the hyperparameters ({meta['gp_nuts']}); nngp_logistic_ml2: the GP whose "
        "kernel is the default network prior's infinite-width limit (logistic "
        "units, 4096 Monte Carlo draws of gamma; amplitude and noise by ML-II); "
        "linear: least squares with its Student-t predictive. wall s includes "
        "compilation.",
        "",
        *([f"**Incomplete**: {meta['missing']}", ""] if meta.get("missing") else []),
        "| dataset | model | m | lpd | RMSE | cov. 90% | wall s | compile s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]  # fmt: skip
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['m'] or '-'} | {r['lpd']:.3f} "
            f"| {fmt(r['rmse'])} | {r['coverage90']:.3f} | {r['wall_s']:.1f} "
            f"| {r['compile_s']:.1f} |"
        )
    lines += [
        "",
        "Where the network does not win (best fixed m by lpd, chosen after the "
        "fact, against the linear model and the best GP; only the sign of the "
        "difference is judged here, no standard error: with 88-1000 held-out "
        "points, differences of a few thousandths per point are noise):",
        "",
    ]
    for name in dict.fromkeys(r["dataset"] for r in rows):
        here = [r for r in rows if r["dataset"] == name]
        nets = [r for r in here if r["model"] == "network" and r["m"] != "variable"]
        if not nets:
            lines.append(f"- {name}: no fixed-m network row was measured.")
            continue
        net = max(nets, key=lambda r: r["lpd"])
        others = [r for r in here if r["model"] == "linear"]
        gps = [r for r in here if r["sampler"] == "gp"]
        others += [max(gps, key=lambda r: r["lpd"])] if gps else []
        verdicts = []
        for other in others:
            diff = net["lpd"] - other["lpd"]
            word = "beats" if diff > 0 else "does NOT beat"
            verdicts.append(f"{word} {other['model']} (lpd {other['lpd']:.3f}, "
                            f"difference {diff:+.3f})")  # fmt: skip
        lines.append(f"- {name}: the network (best m = {net['m']}, lpd "
                     f"{net['lpd']:.3f}) " + "; ".join(verdicts) + ".")  # fmt: skip
        for r in (r for r in here if r["m"] == "variable"):
            share = r["extra"]["posterior_m"]
            mode = int(np.argmax(share)) + 1
            lines.append(
                f"  With m sampled (1..8): lpd {r['lpd']:.3f}, "
                f"{r['lpd'] - net['lpd']:+.3f} against the best fixed m; posterior "
                f"mode m = {mode} ({share[mode - 1]:.2f} of the draws).")  # fmt: skip
    lines += ["", BASELINE_END, ""]
    return "\n".join(lines)


def _runs_lines(meta) -> list[str]:
    """One line per run whose rows the table holds, when there are several."""
    runs = meta.get("runs", [])
    if len(runs) < 2:
        return []
    lines = ["", "The rows come from these runs (data sets, start, 1-min load average "
             "at start and end):", ""]  # fmt: skip
    for run in runs:
        note = f"; {run['note']}" if run.get("note") else ""
        load = f"{run['load_start']:.1f} -> {run['load_end']:.1f}"
        names = ", ".join(run["datasets"])
        lines.append(f"- {names}: {run['date']}, load {load}{note}")
    return lines


BASELINE_START, BASELINE_END = "<!-- baselines -->", "<!-- /baselines -->"


def write_baselines(rows, meta) -> None:
    """Merge the rows into ``OUT/bayes.json`` (replacing earlier baseline rows,
    adding ``m``/``default_settings`` to the older sampler rows, ``lpd`` null where
    that run did not measure it) and the section into ``OUT/bayes.md``."""
    path = OUT / "bayes.json"
    payload = json.loads(path.read_text()) if path.exists() else {"rows": []}
    hidden = {name: d[4] for name, d in datasets().items()}
    kept, names = [], {r["dataset"] for r in rows}
    for r in payload["rows"]:
        if r.get("baseline") and r["dataset"] in names:
            continue
        r.setdefault("m", hidden.get(r["dataset"]))
        r.setdefault("lpd", None)
        r.setdefault("default_settings", False)
        kept.append(r)
    payload["rows"] = kept + [{**r, "baseline": True} for r in rows]
    metas = payload.get("baselines_meta", {})
    metas = metas if "runs" in metas else {"runs": []}
    metas["runs"] = [m for m in metas["runs"] if not set(m["datasets"]) & names]
    metas["runs"].append({**meta, "datasets": sorted(names)})
    payload["baselines_meta"] = metas
    path.write_text(json.dumps(payload, indent=1, default=str))
    rows = [r for r in payload["rows"] if r.get("baseline")]
    order = list(BASELINE_DATA.values())
    rows.sort(key=lambda r: order.index(r["dataset"]))
    meta = {**meta, "runs": metas["runs"]}
    md_path = OUT / "bayes.md"
    text = md_path.read_text() if md_path.exists() else ""
    if BASELINE_START in text:
        head, rest = text.split(BASELINE_START, 1)
        text = head + rest.split(BASELINE_END, 1)[-1].lstrip("\n")
    section = baselines_markdown(rows, meta)
    md_path.write_text(text.rstrip("\n") + "\n\n" + section)
    print(section)
    posterior_m_figure(rows)


def run_baselines(quick: bool, names=BASELINE_NAMES) -> None:
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": cpu_model(),
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", ""),
        "load_start": os.getloadavg()[0],
        "quick": quick,
        "gp_nuts": GP_NUTS["quick" if quick else "full"],
    }
    rows = baselines(quick, names)
    meta["load_end"] = os.getloadavg()[0]
    write_baselines(list(rows), meta)
    _partial_path(names).unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small settings; files go to results/bayes_quick/",
    )
    parser.add_argument(
        "--skip-sbc", action="store_true", help="skip the calibration runs"
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="only the sweep time against n and m: results/bayes_scaling.*",
    )
    parser.add_argument(
        "--default-fit",
        action="store_true",
        help="only the wall time of default fits, cold and warm: "
        "results/bayes_default_fit.*",
    )
    parser.add_argument(
        "--baselines",
        action="store_true",
        help="only the fixed-m, GP, NNGP and linear rows, merged into bayes.*",
    )
    parser.add_argument(
        "--baseline-data",
        nargs="+",
        choices=list(BASELINE_DATA.values()),
        default=list(BASELINE_DATA.values()),
        help="with --baselines: only these data sets (their rows are replaced)",
    )
    parser.add_argument(
        "--default-command",
        action="store_true",
        help="only the whole `jaxseq bayes fit` command, cold and from the disk "
        "cache: added to results/bayes_default_fit.*",
    )
    parser.add_argument("--pairs", type=int, default=3,
                        help="with --default-command: runs per size")  # fmt: skip
    parser.add_argument(
        "--before",
        help="with --default-command: a folder holding an earlier `jaxseq` "
        "package, run alternately with this one",
    )
    parser.add_argument(
        "--nuts", action="store_true", help="with --default-command: one cold NUTS run"
    )
    parser.add_argument(
        "--command-stages",
        action="store_true",
        help="the stages of the `jaxseq bayes fit` command (imports, tracing, "
        "compiling, sampling, plots), cold and cached: "
        "results/bayes_command_stages.* (--pairs, --before as above)",
    )
    parser.add_argument("--default-fit-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.default_fit_child:
        name, sampler, fits = args.default_fit_child
        default_fit_child(name, sampler, int(fits))
        return
    if args.default_fit:
        default_fit()
        return
    if args.default_command:
        default_command(args.pairs, args.before, args.nuts)
        return
    if args.command_stages:
        command_stages(args.pairs, args.before)
        return
    if args.scaling:
        scaling()
        return
    cfg = QUICK if args.quick else FULL
    global OUT
    OUT = RESULTS / "bayes_quick" if args.quick else RESULTS
    OUT.mkdir(parents=True, exist_ok=True)
    if args.baselines:
        run_baselines(args.quick, tuple(args.baseline_data))
        return
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": cpu_model(),
        "jax": jax.__version__,
        "numpyro": numpyro.__version__,
        "load_start": os.getloadavg()[0],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "gibbs": cfg["gibbs"],
        "nuts": cfg["nuts"],
    }
    rows, results, preds, draws = [], {}, {}, {}
    for name, data in datasets().items():
        for sampler in ("gibbs", "nuts"):
            row, result, pred, inv = run_one(name, sampler, data, cfg[sampler])
            rows.append(row)
            results[(name, sampler)], preds[(name, sampler)] = result, pred
            draws[(name, sampler)] = inv
            print(json.dumps({k: row[k] for k in row if k != "extra"}), flush=True)
    for name in ("synth_m4", "synth_m6"):
        band_figure(results, name)
    for sampler in ("gibbs", "nuts"):
        fig = plot_diagnostics(
            draws[("synth_m4", sampler)], title=f"synth_m4, {sampler}"
        )
        save(fig, OUT / f"bayes_trace_synth_m4_{sampler}.png")
    sunspot_figure(results[("sunspots", "gibbs")])
    diabetes_figure(results, preds)
    ridge = ridge_vs_posterior(results[("synth_m4", "gibbs")])
    clf = classification(args.quick)
    print(json.dumps(clf), flush=True)
    sbc_runs = {}
    if not args.skip_sbc:
        reps = cfg["sbc_reps"]
        sbc_runs["default moves"] = sbc(reps, kind=moves.DEFAULT)
        sbc_runs["default + prior proposal"] = sbc(reps, kind=moves.DEFAULT + "+prior")
        sbc_runs["seed's literal order (invalid)"] = sbc(
            reps, kind="rw+scale+flip+prior", step=seed_order_step
        )
        sbc_figure(sbc_runs)
        for label, run in sbc_runs.items():
            print(label, json.dumps(run["pvalues"]), flush=True)
    meta["load_end"] = os.getloadavg()[0]
    report = markdown(rows, sbc_runs, ridge, clf, meta, args.quick)
    (OUT / "bayes.md").write_text(report)
    sbc_json = {
        k: {
            "pvalues": v["pvalues"],
            "reps": int(v["ranks"].shape[0]),
            "seconds": v["seconds"],
        }
        for k, v in sbc_runs.items()
    }
    payload = {
        "rows": rows,
        "sbc": sbc_json,
        "ridge": ridge,
        "classification": clf,
        "meta": meta,
    }
    (OUT / "bayes.json").write_text(json.dumps(payload, indent=1, default=str))
    print(report)
    run_baselines(args.quick)  # the fixed-m / GP / linear rows, merged in


if __name__ == "__main__":
    main()
