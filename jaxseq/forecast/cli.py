"""``jaxseq forecast``: forecast the series of a CSV file with a recurrent net.

Usage::

    jaxseq forecast --data series.csv --horizon 12 --model lstm --period 12
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import numpy as np


def _orders(text: str) -> int | tuple[int, ...]:
    """``--linear``: one integer >= 0, or several comma-separated."""
    from jaxseq.cli import int_at_least

    one = int_at_least(0)
    parts = [one(t.strip()) for t in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


DESCRIPTION = """\
Train one recurrent forecaster over every series column of a CSV file (a global
model, per-series scaling fitted on the training part), evaluate it with rolling
origins against the naive and seasonal-naive methods (and AutoARIMA/AutoETS with
--baselines, which need statsforecast), then refit on all the data and forecast
--horizon steps past the end. Writes OUT/forecasts.csv, OUT/metrics.csv and
.json, OUT/<series>.png and, from jaxseq.train.fit, OUT/train/ (metrics.jsonl,
curves.png) and OUT/ckpt/ (checkpoints; a rerun resumes from them), and
OUT/train_holdout/, OUT/ckpt_holdout/ for the run that calibrates the intervals
(with --transform auto, one of each per transform: OUT/train_level/,
OUT/train_holdout_diff/, ...)."""

EXAMPLES = """\
examples:
  jaxseq forecast --data sunspots.csv --time year --horizon 10 --window 30
  jaxseq forecast --data sales.csv --horizon 12 --period 12 --season 12 \\
      --model gru --strategy seq2seq --head quantile --baselines autoarima,autoets

The CSV needs a header row and one numeric column per series; --time names a
column of strictly increasing time stamps (numbers such as years, or ISO dates
such as 2020-03-01; monthly or yearly dates continue on the calendar); a
constant column is refused. Missing values (empty, NA or NaN cells) are refused,
naming file:line and column, unless --missing mask: then the
net leaves them out of its loss and the metrics leave them out too (AutoARIMA and
AutoETS refuse them). The nets model each series' values or first differences
(--transform; auto trains both and pools them per series by their errors on
the last --holdout values of the training part, --combine), and their 80/90%
intervals are calibrated on the same values, per horizon step (split conformal,
docs/forecast.md)."""


def _parser() -> argparse.ArgumentParser:
    from jaxseq.cli import (
        Parser,
        add_quiet,
        existing_file,
        int_at_least,
        output_dir,
        positive_int,
        seed,
    )

    from .models import STRATEGIES
    from .recurrent import CELLS, HEADS

    p = Parser(
        prog="jaxseq forecast",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = p.add_argument
    add(
        "--data",
        required=True,
        type=lambda t: Path(existing_file(t)),
        help="CSV file with a header row",
    )
    add("--time", help="time-stamp column (default: rows are consecutive steps)")
    add("--columns", help="comma-separated series columns (default: all others)")
    add("--horizon", required=True, type=positive_int, help="steps to forecast")
    add("--model", choices=sorted(CELLS), default="lstm", help="cell")
    add(
        "--strategy",
        choices=STRATEGIES,
        default="direct",
        help="multi-step strategy",
    )
    add(
        "--head",
        choices=sorted(HEADS),
        default="gaussian",
        help="output distribution",
    )
    add("--window", type=positive_int, default=24, help="input steps")
    add("--hidden", type=positive_int, default=32, help="hidden units")
    add("--layers", type=positive_int, default=1, help="stacked layers")
    add("--dropout", type=float, default=0.0, help="between layers")
    add("--steps", type=positive_int, default=1500, help="Adam updates")
    add(
        "--ensemble",
        type=positive_int,
        default=1,
        help="networks from different seeds, trained as one vmapped program "
        "(median of their forecasts)",
    )
    add(
        "--transform",
        choices=("auto", "level", "diff"),
        default="auto",
        help="model the values, their first differences, or choose per series "
        "on the held-out values (auto; level where values are missing)",
    )
    add(
        "--combine",
        choices=("pool", "mean", "choose"),
        default="pool",
        help="with --transform auto: average the transforms' nets per series "
        "where their held-out errors are within 10%% of the best, else take the "
        "best (pool), always average (mean) or always take the best (choose)",
    )
    add(
        "--linear",
        type=_orders,
        default=0,
        help="last inputs read by a linear autoregressive highway beside the "
        "net (direct strategy; 0: none); several, comma-separated (0,24): one "
        "net per order and transform, weighed per series like --transform auto",
    )
    add("--period", type=float, help="add sin/cos calendar inputs of this period")
    add(
        "--season",
        type=positive_int,
        default=1,
        help="seasonal period of MASE and seasonal naive",
    )
    add(
        "--origins",
        type=int_at_least(0),
        default=3,
        help="rolling origins of the evaluation, 0 to skip it",
    )
    add(
        "--baselines",
        default="naive,snaive",
        help="comma-separated: naive, snaive, autoarima, autoets",
    )
    add(
        "--holdout",
        type=int_at_least(0),
        help="values at the end of the training part held out to choose the "
        "transform and calibrate the intervals, 0 for none (default: "
        "max(2 x horizon, a quarter of the shortest training part))",
    )
    add(
        "--calibration",
        choices=("split", "rolling", "aci"),
        default="aci",
        help="interval calibration: split conformal on the held-out values; "
        "rolling: also the realised errors of earlier origins' forecasts; aci "
        "(default): rolling with adaptive conformal inference per series",
    )
    add(
        "--gamma",
        type=float,
        default=0.05,
        help="adaptive conformal inference's step size (with --calibration aci)",
    )
    add(
        "--pool-steps",
        action="store_true",
        help="pool the horizon steps' conformal scores, each over its step's "
        "median (steadier factors from few origins; docs/forecast.md)",
    )
    add(
        "--missing",
        choices=("refuse", "mask"),
        default="refuse",
        help="empty/NA/NaN cells: refuse them (naming file:line) or mask them",
    )
    add("--seed", type=seed, default=0, help="PRNG seed (integer)")
    add(
        "--out",
        type=lambda t: Path(output_dir(t)),
        default=Path("forecast_out"),
        help="output folder",
    )
    add_quiet(p)
    return p


def main(argv: list[str]) -> int:
    """Entry point of ``jaxseq forecast``; returns the exit status."""
    args = _parser().parse_args(argv)
    names: list[str] = []
    try:
        return _run(args, names)
    except (ValueError, TypeError, OSError, ImportError) as err:
        # the library numbers series; here each is a CSV column with a name
        message = re.sub(
            r"series\[(\d+)\]",
            lambda m: (
                f"{args.data} column {names[int(m[1])]!r}"
                if int(m[1]) < len(names)
                else m[0]
            ),
            str(err),
        )
        # a library argument at the start of a message is a flag here
        head = re.match(r"(\w+):", message)
        if head and head[1] in _FLAGS:
            message = f"{_FLAGS[head[1]]} ({head[1]}){message[len(head[1]) :]}"
        print(f"jaxseq forecast: error: {message}", file=sys.stderr)
        return 2


#: library argument names -> the flags that set them
_FLAGS = {
    "num_origins": "--origins",
    "horizon": "--horizon",
    "window": "--window",
    "season": "--season",
    "period": "--period",
    "holdout": "--holdout",
    "gamma": "--gamma",
    "ensemble": "--ensemble",
    "steps": "--steps",
    "hidden": "--hidden",
    "num_layers": "--layers",
    "linear": "--linear",
}


def _baselines(names: str, season: int):
    from . import baselines

    table = {
        "naive": baselines.naive,
        "snaive": lambda: baselines.seasonal_naive(season),
        "autoarima": lambda: baselines.auto_arima(season),
        "autoets": lambda: baselines.auto_ets(season),
    }
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    for name in chosen:
        if name not in table:
            raise ValueError(
                f"--baselines: expected names from {sorted(table)}, got {name!r}."
            )
    try:
        return [table[n]() for n in chosen]
    except ImportError as err:
        raise ImportError(
            f"--baselines: autoarima/autoets need statsforecast (pip install "
            f"'statsforecast>=2.1'), got {err}."
        ) from err


def _run(args, names: list[str]) -> int:
    from jaxseq.cli import show_progress

    from .data import read_csv
    from .evaluate import evaluate
    from .recurrent import RecurrentConfig, recurrent

    if not 0.0 <= args.dropout < 1.0:
        raise ValueError(f"--dropout: expected a rate in [0, 1), got {args.dropout}.")
    columns = args.columns.split(",") if args.columns else None
    missing = args.missing == "mask"
    table = read_csv(args.data, time=args.time, columns=columns, missing=missing)
    names.extend(table.names)
    for name, values in zip(table.names, table.values, strict=True):
        seen = values[np.isfinite(values)]
        if seen.size and np.all(seen == seen[0]):
            raise ValueError(
                f"{args.data}: column {name!r}: expected a series that varies, got "
                f"the constant {seen[0]:g} in every row (a constant needs no model; "
                f"leave it out with --columns)."
            )
    series = dict(zip(table.names, table.values, strict=True))
    config = RecurrentConfig(
        cell=args.model,
        hidden=args.hidden,
        num_layers=args.layers,
        dropout=args.dropout,
        strategy=args.strategy,
        head=args.head,
        window=args.window,
        period=args.period,
        steps=args.steps,
        ensemble=args.ensemble,
        seed=args.seed,
        holdout=args.holdout,
        transform=args.transform,
        combine=args.combine,
        linear=args.linear,
        calibration=args.calibration,
        gamma=args.gamma,
        pool_steps=args.pool_steps,
    )
    methods = _baselines(args.baselines, args.season)
    args.out.mkdir(parents=True, exist_ok=True)
    progress = show_progress(args.quiet)
    info = (lambda *_: None) if args.quiet else print
    info(f"data: {args.data}: {len(series)} series, {table.values.shape[1]} steps")
    if args.origins > 0:
        model = recurrent(config, args.horizon, progress=progress)
        rows = evaluate(
            [model, *methods],
            series,
            horizon=args.horizon,
            num_origins=args.origins,
            season=args.season,
            missing=missing,
        )
        _write_metrics(args.out, rows)
    final = recurrent(
        config,
        args.horizon,
        progress=progress,
        checkpoint_dir=(args.out / "ckpt").resolve(),
        log_dir=args.out / "train",
    )
    values = list(series.values())
    state = final.fit(values)
    fc = final.forecast(state, list(enumerate(values)), args.horizon)
    time = np.arange(table.values.shape[1]) if table.time is None else table.time
    _write_forecasts(args, table.names, time, values, fc)
    info(f"wrote {args.out}/forecasts.csv and one PNG per series")
    return 0


def _write_metrics(out: Path, rows) -> None:
    keys = [
        "series",
        "method",
        "horizon",
        "origins",
        "mase",
        "smape",
        "rmse",
        "coverage80",
        "coverage90",
        "wis",
        "fit_seconds",
    ]
    (out / "metrics.json").write_text(json.dumps({"rows": rows}, indent=1))
    with open(out / "metrics.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, keys)
        writer.writeheader()
        writer.writerows(rows)
    print(f"{'series':<14} {'method':<14} {'MASE':>7} {'sMAPE':>7} {'cov90':>6}")
    for r in rows:
        cov = "-" if r["coverage90"] is None else f"{r['coverage90']:.2f}"
        print(
            f"{r['series'][:14]:<14} {r['method']:<14} {r['mase']:7.3f} "
            f"{r['smape']:7.2f} {cov:>6}"
        )


def _write_forecasts(args, names, time, values, fc) -> None:
    from .data import future_stamps
    from .plots import plot_forecast

    future = future_stamps(time, args.horizon)
    shown = [str(t) if future.dtype.kind == "M" else f"{t:g}" for t in future]
    with open(args.out / "forecasts.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "series",
                "step",
                "time",
                "mean",
                "lower80",
                "upper80",
                "lower90",
                "upper90",
            ]
        )
        for i, name in enumerate(names):
            for h in range(args.horizon):
                writer.writerow(
                    [name, h + 1, shown[h]]
                    + [
                        f"{v:.6g}"
                        for v in (
                            fc.mean[i, h],
                            fc.lower[0.8][i, h],
                            fc.upper[0.8][i, h],
                            fc.lower[0.9][i, h],
                            fc.upper[0.9][i, h],
                        )
                    ]
                )
    for i, name in enumerate(names):
        bands = {p: (fc.lower[p][i], fc.upper[p][i]) for p in fc.lower}
        plot_forecast(
            args.out / f"{_safe(name)}.png",
            time=time,
            history=values[i],
            forecasts={f"jaxseq-{args.model}": (future, fc.mean[i], bands)},
            title=f"{name}: {args.horizon}-step forecast ({args.strategy})",
            units=name,
            time_label=args.time or "step",
            history_tail=max(8 * args.horizon, args.window),
        )


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "series"
