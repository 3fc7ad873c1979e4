"""Recurrent forecasters against naive, seasonal naive, AutoARIMA, AutoETS and the
Bayesian non-linear AR, on real series that ship with packages (issue 17).

Series (fixed horizon H, season m of MASE and seasonal naive, rolling origins
``ORIGINS`` spaced H apart, the last ending at the series' end; everything before
the first origin is the training part, fitted once):

==============  ==========================================  ===  ===  ============
name            source                                       H    m   length
==============  ==========================================  ===  ===  ============
sunspots        jaxseq/datasets (yearly 1700-2008)           10   1*   309
co2             statsmodels co2, weekly -> monthly means     12   12   526
airpassengers   statsforecast.utils.AirPassengers            12   12   144
nile            statsmodels nile (yearly flow 1871-1970)     5    1    100
elnino          statsmodels elnino (monthly SST 1950-2010)   12   12   732
macro:<name>    statsmodels macrodata, 12 quarterly series   8    4    203
                (one global model over all twelve)
==============  ==========================================  ===  ===  ============

(*) sunspots' seasonal naive uses the 11-year cycle.

    python benchmarks/forecast.py --quick   # sunspots and air passengers, short runs
    python benchmarks/forecast.py           # everything; writes results/forecast.*
    python benchmarks/forecast.py --cells gru,lstm --series nile,macro
    python benchmarks/forecast.py --simulated   # coverage on simulated series

The nets use :class:`jaxseq.forecast.RecurrentConfig`'s defaults for the
target transform (``"auto"``: one net on the values and one on the first
differences, pooled per series: averaged where their held-out errors on the
training part's last windows are within 10%, else the better one) and the
calibration (``calibration="aci"``: conformal per horizon step on every origin
of the training part's last ``max(2H, T/4)`` values, and at each later origin
also on the realised errors of the forecasts from every earlier origin whose
values are observed, with adaptive conformal inference per series, gamma
0.05), with ``ENSEMBLE`` seeds per net (one vmapped run, median) and the
linear highway's candidate orders ``LINEAR`` (below). Each net's row also
holds ``coverage80_split``, ``coverage90_split`` and ``wis_split``: the same
fitted nets' forecasts with the held-out (split conformal) factors only.

Needs statsforecast and statsmodels (``pip install "statsforecast>=2.1"
"statsmodels>=0.14"``); without them only the shipped series and the naive
methods run.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402

from jaxseq import forecast as fc  # noqa: E402
from jaxseq.bayes import load_sunspots  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ORIGINS = 4
#: Adam steps of each recurrent net in the full run (each transform's net is
#: trained on the training part less its held-out values, to weigh the
#: transforms and measure the conformal factors; those with weight are then
#: retrained on the whole training part)
STEPS = 400
#: seeds per net, trained as one vmapped program and combined by the median
ENSEMBLE = 5
#: the linear highway's candidate orders (``"W"``: the window): each transform
#: is tried without and with an AR(W) highway, weighed per series like the
#: transforms on held-out windows of the training part
LINEAR = (0, "W")
#: a one-hot of the series as input (global models)
SERIES_INPUT = False
HAVE_SF = importlib.util.find_spec("statsforecast") is not None
HAVE_SM = importlib.util.find_spec("statsmodels") is not None


def datasets(quick: bool) -> list[dict]:
    """Groups of series evaluated together: name -> values, horizon, season."""
    groups = [
        dict(
            series={"sunspots": load_sunspots()[1]},
            horizon=10,
            season=1,
            snaive=11,
            period=None,
            window=30,
        )
    ]
    if HAVE_SF:
        from statsforecast.utils import AirPassengers

        groups.append(
            dict(
                series={"airpassengers": np.asarray(AirPassengers, float)},
                horizon=12,
                season=12,
                snaive=12,
                period=12,
                window=36,
            )
        )
    if quick or not HAVE_SM:
        return groups
    import statsmodels.api as sm

    co2 = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean()
    co2 = co2.interpolate().to_numpy()  # 5 empty months of 526, linear fill
    nile = sm.datasets.nile.load_pandas().data["volume"].to_numpy(float)
    elnino = sm.datasets.elnino.load_pandas().data.iloc[:, 1:].to_numpy(float).ravel()
    macro = sm.datasets.macrodata.load_pandas().data.drop(columns=["year", "quarter"])
    groups[:0] = [
        dict(
            series={f"macro:{c}": macro[c].to_numpy(float) for c in macro},
            horizon=8,
            season=4,
            snaive=4,
            period=4,
            window=16,
        ),
    ]
    groups += [
        dict(
            series={"co2": co2}, horizon=12, season=12, snaive=12, period=12, window=36
        ),
        dict(
            series={"nile": nile}, horizon=5, season=1, snaive=1, period=None, window=15
        ),
        dict(
            series={"elnino": elnino},
            horizon=12,
            season=12,
            snaive=12,
            period=12,
            window=36,
        ),
    ]
    return groups


#: series short and non-seasonal enough for the Bayesian NAR's NUTS run to be
#: worth its minutes in the full run (--quick: every single series it reaches);
#: sunspots' run (9 min idle) is left out to keep the run under 25 min
BAYES_SERIES = ("nile",)


def net_config(group: dict, quick: bool, cell: str) -> fc.RecurrentConfig:
    """The recurrent forecaster's settings for ``group``."""
    return fc.RecurrentConfig(
        cell=cell,
        hidden=32,
        window=group["window"],
        period=group["period"],
        steps=400 if quick else STEPS,
        strategy="direct",
        ensemble=ENSEMBLE,
        linear=tuple(group["window"] if p == "W" else p for p in LINEAR),
        series_input=SERIES_INPUT and len(group["series"]) > 1,
    )


def methods(group: dict, quick: bool, bayes: bool, cells=("gru",)) -> list[fc.Method]:
    h, m = group["horizon"], group["snaive"]
    out = [fc.recurrent(net_config(group, quick, cell), h) for cell in cells]
    out += [fc.naive(), fc.seasonal_naive(m)]
    if HAVE_SF:
        out += [fc.auto_arima(group["season"]), fc.auto_ets(group["season"])]
    single = len(group["series"]) == 1
    if bayes and single and (quick or next(iter(group["series"])) in BAYES_SERIES):
        out.append(
            fc.bayes_nar(
                min(group["window"], 6),
                4,
                key=jax.random.key(0),
                num_warmup=200,
                num_samples=200,
            )
        )
    return out


#: simulated processes of ``--simulated`` (not used to design the calibration):
#: ``SIM_SERIES`` independent series of ``SIM_LENGTH`` values each, one global
#: net per process, ``SIM_ORIGINS`` rolling origins ``SIM_HORIZON`` apart
SIM_SERIES, SIM_LENGTH, SIM_HORIZON, SIM_ORIGINS = 4, 360, 6, 20


def _ar2(rng, n):
    y, e = np.zeros(n + 100), rng.normal(size=n + 100)
    for t in range(2, n + 100):
        y[t] = 0.6 * y[t - 1] - 0.3 * y[t - 2] + e[t]
    return y[100:]


def _nar(rng, n):  # non-linear AR: y_t = 0.6 y_{t-1} + 0.8 sin(y_{t-2}) + e_t
    y, e = np.zeros(n + 100), rng.normal(size=n + 100)
    for t in range(2, n + 100):
        y[t] = 0.6 * y[t - 1] + 0.8 * np.sin(y[t - 2]) + e[t]
    return y[100:]


def _seasonal_trend(rng, n):  # linear trend, period 12, AR(1) noise
    t, u, e = np.arange(n), np.zeros(n), rng.normal(size=n)
    for k in range(1, n):
        u[k] = 0.5 * u[k - 1] + e[k]
    return 0.05 * t + 2.0 * np.sin(2 * np.pi * t / 12) + u


def _garch(rng, n):  # AR(1) with GARCH(1,1) noise: volatility regimes
    y, eps, s2 = np.zeros(n + 100), np.zeros(n + 100), np.full(n + 100, 1.0)
    for t in range(1, n + 100):
        s2[t] = 0.05 + 0.1 * eps[t - 1] ** 2 + 0.85 * s2[t - 1]
        eps[t] = np.sqrt(s2[t]) * rng.normal()
        y[t] = 0.5 * y[t - 1] + eps[t]
    return y[100:]


SIMULATED = {
    "ar2": (_ar2, None),
    "nar": (_nar, None),
    "seasonal_trend": (_seasonal_trend, 12),
    "garch": (_garch, None),
}


def simulated(seed: int = 0) -> list[dict]:
    """90%/80% coverage of the recurrent forecaster (the benchmark's settings)
    on each simulated process, calibrated with ACI (the default) and split
    conformal (one fit per process)."""
    rows = []
    for name, (draw, period) in SIMULATED.items():
        rng = np.random.default_rng(seed)
        series = {f"{name}{i}": draw(rng, SIM_LENGTH) for i in range(SIM_SERIES)}
        group = dict(series=series, period=period, window=24 if period else 16)
        config = net_config(group, False, "gru")
        states = []
        start = time.process_time()
        for calibration in ("aci", "split"):
            method = fc.recurrent(config._replace(calibration=calibration), SIM_HORIZON)
            fit = method.fit
            method = method._replace(
                fit=lambda parts, fit=fit, states=states: (
                    states[0] if states else states.append(fit(parts)) or states[0]
                )
            )
            got = fc.evaluate(
                [method],
                series,
                horizon=SIM_HORIZON,
                num_origins=SIM_ORIGINS,
                season=period or 1,
            )
            n = sum(r["origins"] * r["horizon"] for r in got)
            pool = lambda key, got=got, n=n: (
                sum(r[key] * r["origins"] * r["horizon"] for r in got) / n
            )
            rows.append(
                dict(
                    process=name,
                    calibration=calibration,
                    values=n,
                    coverage90=pool("coverage90"),
                    coverage80=pool("coverage80"),
                    mase=float(np.mean([r["mase"] for r in got])),
                    wis=float(np.mean([r["wis"] for r in got])),
                )
            )
            print(rows[-1], flush=True)
        rows[-1]["cpu_seconds"] = time.process_time() - start
    return rows


def write_simulated(rows: list[dict], seconds: float) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    (RESULTS / "forecast_simulated.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "# Forecasting benchmark: interval coverage on simulated series",
        "",
        f"Machine: {describe()}; load average when written {load}, on 2 cores. "
        f"Total {seconds / 60:.1f} min wall. Each process: {SIM_SERIES} "
        f"independent series of {SIM_LENGTH} values (seed 0), one global "
        f"jaxseq-gru fit (the benchmark's settings), {SIM_ORIGINS} rolling "
        f"origins {SIM_HORIZON} apart (horizon {SIM_HORIZON}): "
        f"{SIM_SERIES * SIM_ORIGINS * SIM_HORIZON} forecast values; the same "
        "fitted nets and points for both calibrations.",
        "",
        "| process | calibration | values | cov90 | cov80 | MASE | WIS/scale |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['process']} | {r['calibration']} | {r['values']} "
            f"| {r['coverage90']:.3f} | {r['coverage80']:.3f} | {r['mase']:.3f} "
            f"| {r['wis']:.3f} |"
        )
    (RESULTS / "forecast_simulated.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def run(quick: bool, bayes: bool, cells, only) -> list[dict]:
    rows, start = [], time.perf_counter()
    for group in datasets(quick):
        names = ", ".join(group["series"])
        if only and not any(n.split(":")[0] in only for n in group["series"]):
            continue
        for method in methods(group, quick, bayes, cells):
            print(f"[{time.strftime('%H:%M:%S')}] {names}: {method.name}", flush=True)
            states = []
            net = method.name.startswith("jaxseq-")
            if net:  # keep the fitted state for the split-conformal twin
                fit = method.fit
                method = method._replace(
                    fit=lambda parts, fit=fit, states=states: (
                        states.append(fit(parts)) or states[-1]
                    )
                )
            evaluate = functools.partial(
                fc.evaluate,
                series=group["series"],
                horizon=group["horizon"],
                num_origins=ORIGINS,
                season=group["season"],
            )
            got = evaluate([method])
            if net:
                cell = method.name.removeprefix("jaxseq-")
                config = net_config(group, quick, cell)._replace(calibration="split")
                twin = fc.recurrent(config, group["horizon"])
                twin = twin._replace(fit=lambda parts, states=states: states[0])
                for row, other in zip(got, evaluate([twin]), strict=True):
                    assert row["mase"] == other["mase"]  # calibration: intervals only
                    for key in ("coverage80", "coverage90", "wis"):
                        row[f"{key}_split"] = other[key]
            rows += got
        write(rows, quick, time.perf_counter() - start, final=False, only=only)
    return rows


def _summary(rows: list[dict]) -> list[str]:
    """Per-method means over series, coverage pooled over every forecast value,
    and the issue's goals: the best jaxseq net against the better of
    AutoARIMA/AutoETS on each series."""
    by = {}
    for r in rows:
        by.setdefault(r["method"], []).append(r)
    lines = [
        "| method | mean MASE | mean cov80 | mean cov90 | pooled cov90 | mean fit s |",
        "|---|---|---|---|---|---|",
    ]
    for method, rs in by.items():
        cov = [r["coverage90"] for r in rs if r["coverage90"] is not None]
        cov8 = [r["coverage80"] for r in rs if r["coverage80"] is not None]
        n = [r["origins"] * r["horizon"] for r in rs if r["coverage90"] is not None]
        pooled = np.dot(cov, n) / np.sum(n)
        lines.append(
            f"| {method} | {np.mean([r['mase'] for r in rs]):.3f} | "
            f"{np.mean(cov8):.3f} | {np.mean(cov):.3f} | {pooled:.3f} | "
            f"{np.mean([r['fit_seconds'] for r in rs]):.2f} |"
        )
    series = list(dict.fromkeys(r["series"] for r in rows))
    get = {(r["series"], r["method"]): r for r in rows}
    nets = [m for m in by if m.startswith("jaxseq-")]
    stats = [m for m in ("autoarima", "autoets") if m in by]
    if not (nets and stats):
        return lines
    best_net = min(nets, key=lambda m: np.mean([r["mase"] for r in by[m]]))
    lines += [
        "",
        f"## Goals (best net over all series: {best_net})",
        "",
        "| series | best net MASE | its MASE / snaive MASE | better statistical "
        "| its MASE | ratio net / statistical |",
        "|---|---|---|---|---|---|",
    ]
    ratios = []
    for name in series:
        net = get[name, best_net]["mase"]
        stat = min(stats, key=lambda m: get[name, m]["mase"])
        ratios.append(net / get[name, stat]["mase"])
        lines.append(
            f"| {name} | {net:.3f} | {net / get[name, 'snaive']['mase']:.2f} | "
            f"{stat} | {get[name, stat]['mase']:.3f} | {ratios[-1]:.2f} |"
        )
    better = [min(get[n, m]["mase"] for m in stats) for n in series]
    beats = sum(get[n, best_net]["mase"] < get[n, "snaive"]["mase"] for n in series)
    over = [n for n, r in zip(series, ratios, strict=True) if r > 1.2]
    cov = np.array([get[n, best_net]["coverage90"] for n in series])
    count = np.array(
        [get[n, best_net]["origins"] * get[n, best_net]["horizon"] for n in series]
    )
    lines += [
        "",
        f"Mean MASE over the {len(series)} series: {best_net} "
        f"{np.mean([get[n, best_net]['mase'] for n in series]):.3f}, the better "
        f"of AutoARIMA/AutoETS per series {np.mean(better):.3f}, AutoARIMA "
        f"{np.mean([get[n, 'autoarima']['mase'] for n in series]):.3f}; "
        f"{best_net} above 1.2x it on {len(over)} series "
        f"({', '.join(over) or 'none'}; worst ratio {max(ratios):.2f}); better "
        f"than seasonal naive on {beats}/{len(series)}; 90% coverage per series "
        f"{cov.min():.2f}-{cov.max():.2f}, pooled "
        f"{np.dot(cov, count) / count.sum():.2f}.",
    ]
    return lines + _coverage_by_group(series, get, best_net)


def _coverage_by_group(series, get, net) -> list[str]:
    """``net``'s 90%/80% coverage pooled over the forecast values of each group
    (``macro`` for ``macro:*``, ``single`` for the others), with its calibration
    and with the held-out (split conformal) factors only."""
    if "coverage90_split" not in get[series[0], net]:
        return []
    groups = {"single": [], "macro": [], "all": []}
    for name in series:
        groups["macro" if name.startswith("macro:") else "single"].append(name)
        groups["all"].append(name)
    lines = [
        "",
        f"## {net}: coverage per group (same nets and points; calibration)",
        "",
        "| group | values | cov90 | cov90 split | cov80 | cov80 split "
        "| mean WIS/scale | split |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group, names in groups.items():
        if not names:
            continue
        rs = [get[n, net] for n in names]
        count = np.array([r["origins"] * r["horizon"] for r in rs])
        pool = lambda key, rs=rs, count=count: (
            np.dot([r[key] for r in rs], count) / count.sum()
        )
        lines.append(
            f"| {group} | {count.sum()} | {pool('coverage90'):.3f} | "
            f"{pool('coverage90_split'):.3f} | {pool('coverage80'):.3f} | "
            f"{pool('coverage80_split'):.3f} | "
            f"{np.mean([r['wis'] for r in rs]):.3f} | "
            f"{np.mean([r['wis_split'] for r in rs]):.3f} |"
        )
    return lines


def write(
    rows: list[dict], quick: bool, seconds: float, final: bool = True, only=None
) -> None:
    stem = "forecast_quick" if quick else "forecast"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    (RESULTS / f"{stem}.json").write_text(json.dumps({"rows": rows}, indent=1))
    lines = [
        f"# Forecasting benchmark{' (--quick)' if quick else ''}",
        "",
        f"Machine: {describe()}; shared with other jobs (fit times are wall "
        f"clock under load; load average when written {load}, on 2 cores). "
        f"Total {seconds / 60:.1f} min, compile time included"
        + ("." if final else " so far (partial: the run has not finished).")
        + (f" Subset: {', '.join(only)} only." if only else ""),
        f"Rolling origins: {ORIGINS} per series, H apart, the last ending "
        "at the series' end; one fit per method on the training part "
        "(everything before the first origin), no refit between origins.",
        f"jaxseq nets: direct strategy, Gaussian head, hidden 32, "
        f"{400 if quick else STEPS} Adam steps, median of {ENSEMBLE} seeds "
        "(one vmapped run); candidates: a net on the values and one on the "
        "first differences, each without and with a linear AR(W) highway "
        f"(linear={LINEAR}, W the window)"
        + (", global models with a one-hot series input" if SERIES_INPUT else "")
        + "; pooled per series (the mean of the candidates whose mean absolute "
        "errors on held-out windows of the training part are within 10% of "
        "the best; combine='pool'); intervals calibrated "
        "per horizon step by conformal prediction on every origin of the "
        "training part's last max(2H, T/4) values and, at each later origin, "
        "the realised errors of the forecasts from every earlier origin whose "
        "values are observed, with adaptive conformal inference per series "
        "(calibration='aci', gamma 0.05); held-out errors scored against the "
        "refitted nets' interval widths on the same windows (docs/forecast.md). "
        "The 'split' columns below: the "
        "same nets with the held-out factors only. bayes-nar: "
        + ("every single series." if quick else f"{', '.join(BAYES_SERIES)} only."),
        "",
        "| series | method | H | MASE | sMAPE | RMSE | cov80 | cov90 | cov90 split "
        "| WIS/scale | fit s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    fmt = lambda v, f: "-" if v is None else format(v, f)
    for r in rows:
        lines.append(
            f"| {r['series']} | {r['method']} | {r['horizon']} | {r['mase']:.3f} | "
            f"{r['smape']:.1f} | {r['rmse']:.4g} | {fmt(r['coverage80'], '.2f')} | "
            f"{fmt(r['coverage90'], '.2f')} | "
            f"{fmt(r.get('coverage90_split'), '.2f')} | {fmt(r['wis'], '.3f')} | "
            f"{r['fit_seconds']:.2f} |"
        )
    lines += ["", "## Means over series", "", *_summary(rows), ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))
    if final:
        print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="two series, short training (writes forecast_quick.*)",
    )
    parser.add_argument(
        "--no-bayes",
        action="store_true",
        help="skip the Bayesian non-linear AR (NUTS, slowest)",
    )
    parser.add_argument(
        "--cells", default="gru", help="comma-separated nets: gru, lstm, elman"
    )
    parser.add_argument(
        "--series",
        default="",
        help="comma-separated subset: sunspots, airpassengers, co2, nile, elnino, "
        "macro (results then say so)",
    )
    parser.add_argument(
        "--simulated",
        action="store_true",
        help="interval coverage on simulated series (writes forecast_simulated.*)",
    )
    args = parser.parse_args()
    if args.simulated:
        start = time.perf_counter()
        write_simulated(simulated(), time.perf_counter() - start)
        return
    only = tuple(n for n in args.series.split(",") if n)
    cells = tuple(n for n in args.cells.split(",") if n)
    start = time.perf_counter()
    rows = run(args.quick, not args.no_bayes, cells, only)
    write(rows, args.quick, time.perf_counter() - start, only=only)


if __name__ == "__main__":
    main()
