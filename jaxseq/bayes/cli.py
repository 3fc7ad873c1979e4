"""``jaxseq bayes``: fit the Bayesian shallow network to a CSV file.

Usage::

    jaxseq bayes fit --data file.csv --hidden 4 --sampler gibbs
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

DESCRIPTION = """\
Fit y = b0 + sum_j beta_j * logistic(x' gamma_j) + N(0, sigma^2) with the
Muller-Rios Insua hierarchical prior (inputs and response standardised; data-scaled
default prior) by the blocked Gibbs/Metropolis sampler or NUTS. Prints a summary of
label-invariant quantities (sigma, training log-likelihood, f at three inputs) with
R-hat and bulk/tail ESS, warns when R-hat > 1.01 or ESS < 100 per chain, and writes
the posterior samples and a predictive-band PNG to --out."""

EXAMPLES = """\
examples:
  jaxseq bayes fit --data data.csv --hidden 4 --sampler gibbs
  jaxseq bayes fit --data data.csv --target y --inputs x1,x2 --hidden 3 --sampler nuts
  jaxseq bayes fit --data sunspots.csv --target sunspots --ar 3 --hidden 4 --holdout 0.2

The CSV needs a header row; every used cell must be a finite number. Samples are
saved on the standardised scale together with the scaler (NPZ keys: site names,
x_mean, x_scale, y_mean, y_scale), or as an ArviZ NetCDF file (--format netcdf,
needs arviz)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxseq bayes",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "fit",
        help="fit the network to a CSV file",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--data", required=True, type=Path, help="CSV file with a header row"
    )
    p.add_argument("--target", help="response column (default: the last column)")
    p.add_argument(
        "--inputs", help="comma-separated input columns (default: all others)"
    )
    p.add_argument(
        "--ar",
        type=int,
        default=0,
        metavar="K",
        help="non-linear AR(K): inputs are the K previous target values",
    )
    p.add_argument("--hidden", type=int, required=True, help="number of hidden units m")
    p.add_argument(
        "--sampler",
        choices=("gibbs", "nuts"),
        default="gibbs",
        help="blocked Gibbs/Metropolis (default) or NUTS",
    )
    p.add_argument(
        "--proposal",
        metavar="MOVES",
        default="rw+scale+flip+hmc+group+sigma_beta",
        help="Gibbs Metropolis moves, '+'-joined: per unit rw, scale, flip, prior; "
        "per sweep hmc, group, sigma_beta "
        "(default rw+scale+flip+hmc+group+sigma_beta)",
    )
    p.add_argument("--no-bias", action="store_true", help="drop the output bias b0")
    p.add_argument(
        "--warmup",
        type=int,
        default=1000,
        help="warm-up iterations per chain (default 1000)",
    )
    p.add_argument(
        "--samples", type=int, default=1000, help="draws kept per chain (default 1000)"
    )
    p.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    p.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        metavar="FRAC",
        help="hold out this fraction (random rows; the last rows with --ar) "
        "and report predictive coverage on it",
    )
    p.add_argument(
        "--prob",
        type=float,
        default=0.9,
        help="probability of the credible and predictive bands (default 0.9)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("bayes_fit"),
        help="output folder (default ./bayes_fit)",
    )
    p.add_argument(
        "--format",
        choices=("npz", "netcdf"),
        default="npz",
        help="samples file format (default npz)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str]) -> int:
    """Entry point of ``jaxseq bayes``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _fit(args)
    except (ValueError, TypeError, OSError) as err:
        print(f"jaxseq bayes: error: {err}", file=sys.stderr)
        return 2


def _load(args):
    from .datasets import load_csv
    from .models import lagged

    inputs = args.inputs.split(",") if args.inputs else None
    if args.ar:
        if inputs:
            raise ValueError("--inputs: expected no input columns with --ar, got some.")
        _, series, _, target = load_csv(args.data, target=args.target, inputs=[])
        x, y = lagged(series, args.ar)
        return x, y, [f"{target}[t-{k}]" for k in range(1, args.ar + 1)], target
    return load_csv(args.data, target=args.target, inputs=inputs)


def _split(args, x, y):
    if not 0.0 <= args.holdout < 1.0:
        raise ValueError(
            f"--holdout: expected a fraction in [0, 1), got {args.holdout}."
        )
    n_test = int(round(args.holdout * y.shape[0]))
    if n_test == 0:
        return x, y, None, None
    if args.ar:
        idx = np.arange(y.shape[0])
    else:
        idx = np.random.default_rng(args.seed).permutation(y.shape[0])
    train, test = np.sort(idx[:-n_test]), np.sort(idx[-n_test:])
    return x[train], y[train], x[test], y[test]


def _fit(args) -> int:
    import jax

    from . import diagnostics as diag
    from .infer import fit
    from .predict import predict

    x, y, names, target = _load(args)
    x_train, y_train, x_test, y_test = _split(args, x, y)
    print(
        f"data: {args.data} n={y_train.shape[0]} inputs={names} target={target!r}"
        + (f" held out={y_test.shape[0]}" if y_test is not None else "")
    )
    print(
        f"sampler: {args.sampler} hidden={args.hidden} chains={args.chains} "
        f"warmup={args.warmup} samples={args.samples}",
        flush=True,
    )
    key, k_pred, k_test = jax.random.split(jax.random.key(args.seed), 3)
    result = fit(
        key,
        x_train,
        y_train,
        hidden=args.hidden,
        sampler=args.sampler,
        bias=not args.no_bias,
        num_warmup=args.warmup,
        num_samples=args.samples,
        num_chains=args.chains,
        proposal=args.proposal,
        progress_bar=not args.no_progress,
    )
    print(f"time: {result.wall_s:.1f} s ({result.compile_s:.1f} s compiling)")
    _report_sampler(result)
    rows = diag.summary(diag.label_invariant(result))
    print("label-invariant posterior summary (original units):")
    print(diag.format_summary(rows))
    problems = diag.convergence_warnings(rows, args.chains)
    for message in problems:
        print(f"WARNING: {message}", file=sys.stderr)
    if not problems:
        print("convergence: R-hat <= 1.01 and ESS >= 100 per chain for all quantities")
    if x_test is not None:
        pred = predict(k_test, result, x_test, prob=args.prob)
        cov = diag.coverage(y_test, pred.lower, pred.upper)
        rmse = float(np.sqrt(np.mean((pred.mean - y_test) ** 2)))
        print(
            f"held out: RMSE {rmse:.4g}, {args.prob:.0%} predictive coverage {cov:.3f}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    path = _save_samples(result, args.out, args.format)
    png = _save_band(k_pred, result, args, names, target)
    print(f"wrote {path} and {png}")
    return 0


def _report_sampler(result) -> None:
    extra = result.extra
    if result.sampler == "gibbs":
        rates = []
        for name, rate in extra.items():
            if not np.all(np.isnan(rate)):
                mean = np.atleast_1d(np.nanmean(rate, axis=(0, 1)))
                rates.append(f"{name[7:]} " + "/".join(f"{r:.2f}" for r in mean))
        print("acceptance (per unit where applicable): " + ", ".join(rates))
    else:
        depth_cap = extra["num_steps"].max()
        print(
            f"divergences: {int(extra['diverging'].sum())}, mean leapfrog steps "
            f"{extra['num_steps'].mean():.0f} (max {depth_cap})"
        )


def _save_samples(result, out: Path, fmt: str) -> Path:
    scaler = {
        "x_mean": result.scaler.x_mean,
        "x_scale": result.scaler.x_scale,
        "y_mean": result.scaler.y_mean,
        "y_scale": result.scaler.y_scale,
    }
    if fmt == "npz":
        path = out / "samples.npz"
        np.savez(path, **result.samples, **scaler)
        return path
    with warnings.catch_warnings():
        # ArviZ announces its 1.0 refactor with a FutureWarning on import.
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    data = az.from_dict(posterior=dict(result.samples), constant_data=scaler)
    path = out / "samples.nc"
    data.to_netcdf(str(path))
    return path


def _save_band(key, result, args, names, target) -> Path:
    from matplotlib.figure import Figure

    from .plots import plot_band, plot_observed, save
    from .predict import predict

    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    if result.x.shape[1] == 1:
        grid = np.linspace(result.x.min(), result.x.max(), 200)[:, None]
        plot_band(
            ax, grid, predict(key, result, grid, prob=args.prob), x=result.x, y=result.y
        )
        ax.set_xlabel(names[0])
        ax.set_ylabel(target)
    else:
        plot_observed(
            ax,
            result.y,
            predict(key, result, result.x, prob=args.prob),
            title=f"{target}: training data, {args.prob:.0%} intervals",
        )
    return save(fig, args.out / "band.png")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
