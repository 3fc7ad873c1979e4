"""``jaxseq bayes``: fit the Bayesian shallow network to a CSV file.

Usage::

    jaxseq bayes fit --data file.csv --hidden 4 --sampler gibbs

Errors are one line on stderr naming the flag (or the file and line): a bad flag
value exits with status 2 before any data is read, a problem found while running
(unreadable data, a constant column, ...) with status 1.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..cli import (
    Parser,
    add_quiet,
    existing_file,
    fraction,
    int_at_least,
    interval,
    output_dir,
    positive_int,
    seed,
)

PROG = "jaxseq bayes"

DESCRIPTION = """\
Fit y = b0 + sum_j beta_j * logistic(x' gamma_j) + N(0, sigma^2) with the
Muller-Rios Insua hierarchical prior (inputs and response standardised; data-scaled
default prior) by the blocked Gibbs/Metropolis sampler or NUTS. Prints a summary of
label-invariant quantities (sigma, training log-likelihood, f at three inputs) with
R-hat and bulk/tail ESS, warns (on stderr) about divergent NUTS transitions, NUTS
trees cut at the maximum depth, R-hat > 1.01 and ESS < 100 per chain, and writes
to --out the posterior samples, band.png (posterior mean, credible band of f and
predictive interval at --prob, held-out points) and trace.png (traces and rank
histograms of the summarised quantities per chain)."""

EXAMPLES = """\
examples:
  jaxseq bayes fit --data data.csv --hidden 4 --sampler gibbs
  jaxseq bayes fit --data data.csv --target y --inputs x1,x2 --hidden 3 --sampler nuts
  jaxseq bayes fit --data sunspots.csv --target sunspots --ar 3 --hidden 4 --holdout 0.2
  jaxseq bayes fit --data data.csv --hidden auto --max-hidden 6   # m sampled, 1..6

The CSV needs a header row; every used cell must be a finite number. Samples are
saved on the standardised scale together with the scaler (NPZ keys: site names,
x_mean, x_scale, y_mean, y_scale), or with --format netcdf (needs arviz) as ArviZ
InferenceData in original units: posterior, sample_stats, log_likelihood (for
arviz.loo), observed_data and constant_data (Fit.to_arviz)."""


GP_DESCRIPTION = """\
Fit a Gaussian-process regression (jaxseq.bayes.gp; inputs and response
standardised) to the same data as `fit`, the network's baseline: prints the
hyperparameters in original units and, with --holdout, the held-out RMSE,
predictive coverage and mean log predictive density.

example:
  jaxseq bayes gp --data data.csv --kernel se --holdout 0.2"""


def _kernel(text: str) -> str:
    """``--kernel``: a name of :data:`jaxseq.bayes.gp.KERNELS`."""
    from .gp import kernel_from_name

    try:
        kernel_from_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("kernel: ")) from None
    return text


#: ``--holdout``: a fraction in ``[0, 1)`` (0: nothing held out).
_holdout = interval(0.0, 1.0, low_closed=True)


def _hidden(text: str) -> int | str:
    """``--hidden``: a positive integer or ``auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return positive_int(text)
    except argparse.ArgumentTypeError:
        try:
            int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected an integer >= 1 or 'auto', got {text!r}"
            ) from None
        raise


def _hidden_units(args):
    """``fit``'s ``hidden``: an int, or a ``HiddenUnits`` for ``--hidden auto``."""
    from .dimension import HiddenUnits, check_hidden_units

    if args.hidden != "auto":
        if args.max_hidden is not None:
            raise ValueError(
                f"--max-hidden: expected only with --hidden auto, got --hidden "
                f"{args.hidden} --max-hidden {args.max_hidden}."
            )
        return args.hidden
    m_max = 8 if args.max_hidden is None else args.max_hidden
    return check_hidden_units(HiddenUnits(max=m_max))


def _about(result) -> str:
    if result.dimension is None:
        return f"{result.sampler}, {result.hidden} hidden units"
    return f"{result.sampler}, 1..{result.hidden} hidden units (m sampled)"


def _proposal(text: str) -> str:
    from .moves import parse_moves

    try:
        parse_moves(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("proposal: ")) from None
    return text


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    """The data flags that ``fit`` and ``gp`` share."""
    p.add_argument(
        "--data", required=True, type=existing_file, help="CSV file with a header row"
    )
    p.add_argument("--target", help="response column (default: the last column)")
    p.add_argument(
        "--inputs", help="comma-separated input columns (default: all others)"
    )
    p.add_argument(
        "--ar",
        type=int_at_least(0),
        default=0,
        metavar="K",
        help="non-linear AR(K): inputs are the K previous target values",
    )


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
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
    _add_data_flags(p)
    p.add_argument(
        "--hidden",
        type=_hidden,
        required=True,
        help="number of hidden units m, or 'auto': m sampled (Gibbs) on "
        "1..--max-hidden with a truncated Poisson(3) prior",
    )
    p.add_argument(
        "--max-hidden",
        type=positive_int,
        default=None,
        metavar="M",
        help="largest m with --hidden auto (default 8)",
    )
    p.add_argument(
        "--sampler",
        choices=("gibbs", "nuts"),
        default="gibbs",
        help="blocked Gibbs/Metropolis sampler or NUTS",
    )
    p.add_argument(
        "--proposal",
        metavar="MOVES",
        type=_proposal,
        default="rw+scale+flip+hmc+group+sigma_beta",
        help="Gibbs Metropolis moves, '+'-joined: per unit rw, scale, flip, prior; "
        "per sweep hmc, group, sigma_beta",
    )
    p.add_argument("--no-bias", action="store_true", help="drop the output bias b0")
    p.add_argument(
        "--warmup",
        type=int_at_least(0),
        default=1000,
        help="warm-up iterations per chain",
    )
    p.add_argument(
        "--samples",
        type=positive_int,
        default=1000,
        help="draws kept per chain",
    )
    p.add_argument("--chains", type=positive_int, default=4, help="number of chains")
    p.add_argument("--seed", type=seed, default=0, help="PRNG seed (integer)")
    p.add_argument(
        "--target-accept",
        type=fraction,
        default=0.8,
        metavar="P",
        help="NUTS step-size target acceptance in (0, 1)",
    )
    p.add_argument(
        "--max-tree-depth",
        type=positive_int,
        default=10,
        metavar="D",
        help="NUTS maximum tree depth",
    )
    p.add_argument(
        "--holdout",
        type=_holdout,
        default=0.0,
        metavar="FRAC",
        help="hold out this fraction (random rows; the last rows with --ar) "
        "and report predictive coverage on it",
    )
    p.add_argument(
        "--prob",
        type=fraction,
        default=0.9,
        help="probability of the credible and predictive bands",
    )
    p.add_argument(
        "--out",
        type=output_dir,
        default="bayes_fit",
        help="output folder",
    )
    p.add_argument(
        "--format",
        choices=("npz", "netcdf"),
        default="npz",
        help="samples file: npz (standardised scale and the scaler) or netcdf "
        "(ArviZ InferenceData in original units, with sample stats and the "
        "pointwise log-likelihood; needs arviz)",
    )
    add_quiet(p)
    p.set_defaults(usage_error=p.error)  # errors found after parsing name `fit`
    g = sub.add_parser(
        "gp",
        help="fit a Gaussian-process regression baseline to a CSV file",
        description=GP_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_data_flags(g)
    g.add_argument(
        "--kernel",
        type=_kernel,
        default="matern52",
        help="covariance function: se (squared exponential), matern32 or matern52",
    )
    g.add_argument(
        "--method",
        choices=("ml2", "nuts"),
        default="ml2",
        help="hyperparameters by type-II maximum likelihood or NUTS",
    )
    g.add_argument("--seed", type=seed, default=0, help="PRNG seed (integer)")
    g.add_argument(
        "--holdout",
        type=_holdout,
        default=0.0,
        metavar="FRAC",
        help="hold out this fraction (random rows; the last rows with --ar) and "
        "report RMSE, predictive coverage and log predictive density on it",
    )
    g.add_argument(
        "--prob",
        type=fraction,
        default=0.9,
        help="probability of the predictive intervals",
    )
    add_quiet(g)
    g.set_defaults(usage_error=g.error, format="npz", out=None)
    return parser


def main(argv: list[str]) -> int:
    """Entry point of ``jaxseq bayes``; returns the exit status (0 done, 1 an
    error while running, 2 a bad flag)."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.data = Path(args.data)
    args.out = None if args.out is None else Path(args.out)
    try:
        _check_flags(args)
    except ValueError as err:
        args.usage_error(str(err))
    try:
        return _fit(args) if args.command == "fit" else _gp(args)
    except (ValueError, TypeError, OSError) as err:
        print(f"{PROG} {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 1


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.filename and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip())


def _check_flags(args) -> None:
    """Checks that involve more than one flag, before anything is read or run
    (each flag's own value is checked by its argparse type)."""
    if args.format == "netcdf":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                import arviz  # noqa: F401
        except ImportError:
            raise ValueError(
                "argument --format: netcdf needs arviz (pip install arviz), which "
                "is not installed"
            ) from None
    if args.ar and args.inputs:
        raise ValueError(
            f"argument --inputs: expected no input columns with --ar {args.ar} "
            f"(the inputs are the lagged target), got {args.inputs!r}"
        )


def _load(args):
    from .datasets import load_csv, read_rows
    from .models import lagged

    header = read_rows(args.data)[0]
    inputs = [c.strip() for c in args.inputs.split(",")] if args.inputs else None
    flags = [("--target", args.target)] + [("--inputs", c) for c in inputs or []]
    for flag, name in flags:
        if name is not None and name not in header:
            raise ValueError(
                f"{flag}: expected a column of {args.data} (one of {header}), got "
                f"{name!r}."
            )
    if args.ar:
        _, series, _, target = load_csv(args.data, target=args.target, inputs=[])
        if series.shape[0] <= args.ar + 1:
            raise ValueError(
                f"--ar: expected fewer lags than {series.shape[0] - 1} (the series "
                f"in {args.data} has {series.shape[0]} values), got {args.ar}."
            )
        x, y = lagged(series, args.ar)
        return x, y, [f"{target}[t-{k}]" for k in range(1, args.ar + 1)], target
    x, y, names, target = load_csv(args.data, target=args.target, inputs=inputs)
    _check_columns(args.data, x, y, names, target)
    return x, y, names, target


def _check_columns(path, x, y, names, target) -> None:
    """Name the column (not ``x[:, j]``) when the data cannot be standardised."""
    if y.shape[0] < 3:
        raise ValueError(f"{path}: expected at least 3 data rows, got {y.shape[0]}.")
    for j, name in enumerate(names):
        if np.ptp(x[:, j]) == 0:
            raise ValueError(
                f"{path}: input column {name!r} is constant (= {x[0, j]:g}); leave "
                "it out with --inputs."
            )
    if np.ptp(y) == 0:
        raise ValueError(
            f"{path}: target column {target!r} is constant (= {y[0]:g}); nothing "
            "to fit."
        )


def _split(args, x, y):
    n_test = int(round(args.holdout * y.shape[0]))
    if n_test == 0:
        return x, y, None, None
    if args.ar:
        idx = np.arange(y.shape[0])
    else:
        idx = np.random.default_rng(args.seed).permutation(y.shape[0])
    train, test = np.sort(idx[:-n_test]), np.sort(idx[-n_test:])
    return x[train], y[train], x[test], y[test]


def _keys(seed: int, count: int) -> list:
    """``count`` PRNG keys (JAX's default implementation) for ``--seed``, made on
    the host from NumPy's ``SeedSequence(seed)``: ``jax.random.split`` would
    compile three small programs before the sampler's."""
    import jax

    shape = jax.eval_shape(lambda: jax.random.key_data(jax.random.key(0))).shape
    words = np.random.SeedSequence(seed).generate_state(count * int(np.prod(shape)))
    words = words.reshape(count, *shape)
    return [jax.random.wrap_key_data(w) for w in words]


def _import_later_stages():
    """Import what the command needs after the fit: Matplotlib with
    :mod:`jaxseq.bayes.plots`, and :mod:`jaxseq.bayes.diagnostics` (NumPyro).
    For a background thread: it runs while XLA compiles or runs the sampler,
    which releases the GIL."""
    from matplotlib.backends import backend_agg  # noqa: F401  (savefig's canvas)

    from . import diagnostics, plots  # noqa: F401


def _fit(args) -> int:
    from .driver import cpu_devices_per_core

    # One CPU device per core, so the Gibbs chains run on all cores (docs/bayes.md);
    # only possible before JAX's backend starts, a no-op after. (NUTS keeps
    # NumPyro's choice on one device.)
    if args.sampler == "gibbs":
        cpu_devices_per_core()
    # One worker thread: the later stages' imports now, the trace plot after the fit.
    with ThreadPoolExecutor(1, thread_name_prefix="jaxseq-plots") as plotter:
        imported = plotter.submit(_import_later_stages)
        return _fit_and_plot(args, plotter, imported)


def _fit_and_plot(args, plotter: ThreadPoolExecutor, imported: Future) -> int:
    from ..cli import show_progress
    from .driver import enable_compile_cache
    from .infer import ConvergenceWarning, NutsOptions, fit
    from .predict import predict

    hidden = _hidden_units(args)
    x, y, names, target = _load(args)
    x_train, y_train, x_test, y_test = _split(args, x, y)
    if not args.quiet:
        print(
            f"data: {args.data} n={y_train.shape[0]} inputs={names} target={target!r}"
            + (f" held out={y_test.shape[0]}" if y_test is not None else "")
        )
        print(
            f"sampler: {args.sampler} hidden={args.hidden} chains={args.chains} "
            f"warmup={args.warmup} samples={args.samples}",
            flush=True,
        )
    if y_train.shape[0] < 3:
        raise ValueError(
            f"--holdout: expected at least 3 training rows to remain, got "
            f"{y_train.shape[0]} of {y.shape[0]} with --holdout {args.holdout}."
        )
    key, k_pred, k_test = _keys(args.seed, 3)
    # Compiled programs persist under ~/.cache/jaxseq/jax (JAXSEQ_COMPILE_CACHE=0
    # turns this off), so a second run skips compiling (docs/bayes.md).
    enable_compile_cache()
    with warnings.catch_warnings():
        # Printed below from result.warnings, once each, as WARNING lines.
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = fit(
            key,
            x_train,
            y_train,
            hidden=hidden,
            sampler=args.sampler,
            bias=not args.no_bias,
            num_warmup=args.warmup,
            num_samples=args.samples,
            num_chains=args.chains,
            proposal=args.proposal,
            nuts=NutsOptions(args.target_accept, args.max_tree_depth),
            progress=show_progress(args.quiet),
        )
    print(f"time: {result.wall_s:.1f} s ({result.compile_s:.1f} s compiling)")
    imported.result()  # an import error surfaces here
    from . import diagnostics as diag

    _report_sampler(result, args.max_tree_depth)
    if result.dimension is not None:
        m = np.asarray(result.samples["m"]).ravel()
        freq = np.bincount(m, minlength=result.hidden + 1)[1:] / m.size
        shown = ", ".join(f"{k + 1}: {f:.3f}" for k, f in enumerate(freq))
        print(f"posterior of m (share of draws): {shown}")
    x_ref = diag.reference_inputs(result.x)
    draws = diag.label_invariant(result, x_ref)
    if result.samples["prec"].shape[1] >= 4:
        rows = diag.summary(draws)
        print("label-invariant posterior summary (original units):")
        print(diag.format_summary(rows, x_ref=x_ref, input_names=names))
    for message in result.warnings:
        print(f"WARNING: {message}", file=sys.stderr, flush=True)
    if not result.warnings:
        print(
            "convergence: no divergences or tree-depth limits (NUTS), R-hat <= 1.01 "
            "and ESS >= 100 per chain for all quantities"
        )
    if x_test is not None:
        pred = predict(k_test, result, x_test, prob=args.prob)
        cov = diag.coverage(y_test, pred.lower, pred.upper)
        rmse = float(np.sqrt(np.mean((pred.mean - y_test) ** 2)))
        print(
            f"held out: RMSE {rmse:.4g}, {args.prob:.0%} predictive coverage {cov:.3f}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    # The trace plot is drawn on the worker thread while this one computes the
    # band's predictions (NumPy and XLA release the GIL); Matplotlib's Agg
    # renderer lets one figure draw at a time, so the figures stay separate.
    trace = plotter.submit(_save_trace, result, draws, x_ref, args, names, target)
    path = _save_samples(result, args.out, args.format, names)
    held_out = None if x_test is None else (x_test, y_test)
    band = _save_band(k_pred, result, args, names, target, held_out)
    print(f"wrote {path}, {band} and {trace.result()}")
    return 0


def _gp(args) -> int:
    import jax

    from . import diagnostics as diag
    from .gp import (
        fit_gp,
        fit_gp_nuts,
        gp_log_predictive_density,
        kernel_from_name,
        predict_gp,
    )

    kernel = kernel_from_name(args.kernel, "--kernel")
    x, y, names, target = _load(args)
    x_train, y_train, x_test, y_test = _split(args, x, y)
    if y_train.shape[0] < 3:
        raise ValueError(
            f"--holdout: expected at least 3 training rows to remain, got "
            f"{y_train.shape[0]} of {y.shape[0]} with --holdout {args.holdout}."
        )
    if not args.quiet:
        print(
            f"data: {args.data} n={y_train.shape[0]} inputs={names} target={target!r}"
            + (f" held out={y_test.shape[0]}" if y_test is not None else ""),
            flush=True,
        )
    key = jax.random.key(args.seed)
    if args.method == "ml2":
        result = fit_gp(key, x_train, y_train, kernel)
    else:
        result = fit_gp_nuts(key, x_train, y_train, kernel)
    sc, params = result.scaler, result.params
    amplitude = sc.y_scale * np.asarray(params.amplitude).mean()
    noise = sc.y_scale * np.asarray(params.noise).mean()
    length = np.asarray(params.length_scale).mean(0) * np.asarray(sc.x_scale)
    print(
        f"gp: kernel {args.kernel}, {args.method}; time {result.wall_s:.1f} s "
        f"({result.compile_s:.1f} s compiling)"
    )
    what = "posterior means, " if args.method == "nuts" else ""
    print(
        f"hyperparameters ({what}original units): amplitude {amplitude:.4g}, "
        f"length scale {np.array2string(np.atleast_1d(length), precision=4)}, "
        f"noise sd {noise:.4g}"
    )
    if x_test is not None:
        pred = predict_gp(result, x_test, prob=args.prob)
        cov = diag.coverage(y_test, pred.lower, pred.upper)
        rmse = float(np.sqrt(np.mean((pred.mean - y_test) ** 2)))
        lpd = float(np.mean(gp_log_predictive_density(result, x_test, y_test)))
        print(
            f"held out: RMSE {rmse:.4g}, {args.prob:.0%} predictive coverage "
            f"{cov:.3f}, mean log predictive density {lpd:.4g}"
        )
    return 0


def _report_sampler(result, max_tree_depth: int) -> None:
    extra = result.extra
    if result.sampler == "gibbs":
        rates = []
        for name, rate in extra.items():
            if not np.all(np.isnan(rate)):
                mean = np.atleast_1d(np.nanmean(rate, axis=(0, 1)))
                rates.append(f"{name[7:]} " + "/".join(f"{r:.2f}" for r in mean))
        print("acceptance (per unit where applicable): " + ", ".join(rates))
    else:
        steps = extra["num_steps"]
        at_limit = np.mean(steps >= 2 ** (max_tree_depth - 1))
        print(
            f"divergences: {int(extra['diverging'].sum())} of {steps.size}, mean "
            f"leapfrog steps {steps.mean():.0f} (max {steps.max()}), "
            f"{at_limit:.1%} of trees at the depth limit {max_tree_depth}"
        )


def _save_samples(result, out: Path, fmt: str, names=None) -> Path:
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
    path = out / "samples.nc"
    result.to_arviz(input_names=names).to_netcdf(str(path))
    return path


def _save_band(key, result, args, names, target, held_out) -> Path:
    from matplotlib.figure import Figure

    from .plots import plot_band, plot_observed, save
    from .predict import predict

    about = _about(result)
    if result.x.shape[1] == 1:
        fig = Figure(figsize=(8, 4.5), layout="constrained")
        ax = fig.subplots()
        grid = np.linspace(result.x.min(), result.x.max(), 200)[:, None]
        if held_out is not None:
            both = np.concatenate([grid[:, 0], np.ravel(held_out[0])])
            grid = np.linspace(both.min(), both.max(), 200)[:, None]
        pred = predict(key, result, grid, prob=args.prob)
        plot_band(ax, grid, pred, x=result.x, y=result.y, held_out=held_out)
        ax.set_xlabel(names[0])
        ax.set_ylabel(target)
        ax.set_title(
            f"{target} against {names[0]} ({about}):\nposterior mean of f, "
            f"{args.prob:.0%} credible band of f, {args.prob:.0%} predictive interval"
        )
        return save(fig, args.out / "band.png")
    panels = [("training data", result.y, result.x)]
    if held_out is not None:
        panels.append(("held-out data", held_out[1], held_out[0]))
    fig = Figure(figsize=(8, 4.5 * len(panels)), layout="constrained")
    for ax, (what, y, x) in zip(fig.subplots(len(panels), 1, squeeze=False)[:, 0],
                                panels, strict=True):  # fmt: skip
        plot_observed(
            ax,
            y,
            predict(key, result, x, prob=args.prob),
            title=f"{target}, {what} ({about}): {args.prob:.0%} predictive intervals",
        )
        ax.set_ylabel(target)
    return save(fig, args.out / "band.png")


def _save_trace(result, draws, x_ref, args, names, target) -> Path:
    from .plots import plot_diagnostics, save

    shown, units = {}, {}
    for name, value in draws.items():
        if name.startswith("f[") and len(names) == 1:  # name the input on the axis
            name = f"f({names[0]}={x_ref[int(name[2:-1]), 0]:.3g})"
        shown[name], units[name] = value, f"units of {target}"
    units["loglik"] = "nats, training data"
    units["m"] = "hidden units"
    note = "" if len(names) == 1 else "\nf[i]: f at the inputs listed under the summary"
    chains, size = draws["sigma"].shape
    fig = plot_diagnostics(
        shown,
        units=units,
        title=f"{_about(result)}: {chains} chains of "
        f"{size} draws after {args.warmup} warm-up iterations{note}",
    )
    return save(fig, args.out / "trace.png")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
