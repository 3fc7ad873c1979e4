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
0.05; one quantile and one ACI level per step), with ``ENSEMBLE`` seeds
per net (one vmapped run, median) and the linear highway's candidate
orders ``LINEAR`` (below), and the classical candidates ``CLASSICAL``
(a direct linear AR per series, weighed with the nets on the same held-out
windows; alone where the best net does not beat it by more than 10%:
``RecurrentConfig.fallback``; each net row's ``weights``, ``net_weight`` and
``held_out_mae`` say which candidates a series used). Each net's row also
holds ``coverage80_split``, ``coverage90_split`` and ``wis_split``: the same
fitted nets' forecasts with the held-out (split conformal) factors only, and
the same with ``_pooled`` / ``_split_pooled``: the steps' scores normalised
by their medians and pooled (``pool_steps=True``; ``TWINS``).

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
#: classical candidates beside the nets (a direct linear AR per series, on the
#: values or on the differences as the KPSS test says, order by AIC up to the
#: window), weighed per series with the nets on the same held-out windows of
#: the training part (``fallback``: the AR alone where it ties the best net)
CLASSICAL = ("ar",)
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


def net_name(cell: str, classical: tuple[str, ...]) -> str:
    """A net row's method: ``jaxseq-<cell>`` for the nets alone,
    ``jaxseq-<cell>+ar`` with the classical candidates beside them."""
    return f"jaxseq-{cell}" + "".join(f"+{c}" for c in classical)


def parse_net_name(name: str) -> tuple[str, tuple[str, ...]]:
    """``(cell, classical)`` of a :func:`net_name`."""
    cell, *classical = name.removeprefix("jaxseq-").split("+")
    return cell, tuple(classical)


def net_config(
    group: dict, quick: bool, cell: str, classical: tuple[str, ...] = ()
) -> fc.RecurrentConfig:
    """The recurrent forecaster's settings for ``group`` (``classical``: the
    classical candidates weighed beside the nets)."""
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
        classical=classical,
    )


def methods(group: dict, quick: bool, bayes: bool, cells=("gru",)) -> list[fc.Method]:
    h, m = group["horizon"], group["snaive"]
    out = [  # the nets alone, then with the classical candidates beside them
        fc.recurrent(net_config(group, quick, cell, extra), h, net_name(cell, extra))
        for cell in cells
        for extra in ((), CLASSICAL)
    ]
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


def _shift(rng, n):  # AR(1) whose noise sd and mean jump 5/6 into the series
    y, e = np.zeros(n + 100), rng.normal(size=n + 100)
    cut = 100 + (5 * n) // 6
    for t in range(1, n + 100):
        sd, mu = (2.5, 1.5) if t >= cut else (1.0, 0.0)
        y[t] = mu + 0.5 * (y[t - 1] - mu) + sd * e[t]
    return y[100:]


#: process -> (draw, period, series, length, origins, per_series): the short
#: variant has 96 values per series, and its factors come from each series'
#: own 16 held-out origins (``per_series``: the few scores per step of a
#: single short series, as the Nile's); the regime shift's jump falls in the
#: middle of the test origins
SIMULATED = {
    "ar2": (_ar2, None, SIM_SERIES, SIM_LENGTH, SIM_ORIGINS, False),
    "nar": (_nar, None, SIM_SERIES, SIM_LENGTH, SIM_ORIGINS, False),
    "seasonal_trend": (_seasonal_trend, 12, SIM_SERIES, SIM_LENGTH, SIM_ORIGINS, False),
    "garch": (_garch, None, SIM_SERIES, SIM_LENGTH, SIM_ORIGINS, False),
    "short_ar2": (_ar2, None, 32, 96, 4, True),
    "shift": (_shift, None, SIM_SERIES, SIM_LENGTH, SIM_ORIGINS, False),
}

#: the calibrations compared on the same fitted nets: (name, calibration,
#: pool_steps, gamma multiplier); "aci"/"split": one quantile (and ACI level)
#: per step (the default); "*-pooled": the steps' scores normalised by their
#: medians and pooled, one ACI level per series moved by gamma / H per score;
#: "aci-pooled-gammaH": the same level moved by gamma per score
SIM_CALIBRATIONS = (
    ("aci", "aci", False, 1),
    ("aci-pooled", "aci", True, 1),
    ("aci-pooled-gammaH", "aci", True, SIM_HORIZON),
    ("split", "split", False, 1),
    ("split-pooled", "split", True, 1),
)


def _refactored(state, config: fc.RecurrentConfig):
    """``state`` with its held-out factors recomputed for ``config``'s
    ``pool_steps`` (the same scores; the factors are fixed at fit)."""
    if not config.per_series:
        factors = fc.score_factors(state.scores, config.per_step, config.pool_steps)
        return state._replace(factors=factors)
    rows = [state.score_series == i for i in range(len(state.lengths))]
    per = [
        fc.score_factors(
            {p: s[r] for p, s in state.scores.items()},
            config.per_step,
            config.pool_steps,
        )
        for r in rows
    ]
    factors = {p: np.stack([f[p] for f in per]) for p in per[0]}
    return state._replace(factors=factors)


def simulated(seed: int = 0, only=()) -> list[dict]:
    """90%/80% coverage of the recurrent forecaster (the benchmark's settings)
    on each simulated process, calibrated as in ``SIM_CALIBRATIONS`` (one fit
    per process)."""
    rows = []
    for name, spec in SIMULATED.items():
        draw, period, count, length, num_origins, per_series = spec
        if only and name not in only:
            continue
        rng = np.random.default_rng(seed)
        series = {f"{name}{i}": draw(rng, length) for i in range(count)}
        group = dict(series=series, period=period, window=24 if period else 16)
        config = net_config(group, False, "gru", CLASSICAL)._replace(
            per_series=per_series
        )
        states = []
        start = time.process_time()
        for label, calibration, pool, times in SIM_CALIBRATIONS:
            cfg = config._replace(
                calibration=calibration, pool_steps=pool, gamma=config.gamma * times
            )
            method = fc.recurrent(cfg, SIM_HORIZON)
            fit = method.fit
            method = method._replace(
                fit=lambda parts, fit=fit, states=states, cfg=cfg: _refactored(
                    states[0] if states else states.append(fit(parts)) or states[0],
                    cfg,
                )
            )
            got = fc.evaluate(
                [method],
                series,
                horizon=SIM_HORIZON,
                num_origins=num_origins,
                season=period or 1,
            )
            n = sum(r["origins"] * r["horizon"] for r in got)
            pool_ = lambda key, got=got, n=n: (
                sum(r[key] * r["origins"] * r["horizon"] for r in got) / n
            )
            rows.append(
                dict(
                    process=name,
                    calibration=label,
                    values=n,
                    series=count,
                    length=length,
                    per_series=per_series,
                    coverage90=pool_("coverage90"),
                    coverage80=pool_("coverage80"),
                    # spread over series of each series' coverage (binomial
                    # sd alone: sqrt(0.09 / values per series))
                    coverage90_sd=float(np.std([r["coverage90"] for r in got])),
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
        f"Total {seconds / 60:.1f} min wall. Each process: independent series "
        "(seed 0), one global jaxseq-gru fit (the benchmark's settings: the nets "
        "and the AR candidate with the fallback), rolling "
        f"origins {SIM_HORIZON} apart (horizon {SIM_HORIZON}); the same fitted "
        "nets and points for every calibration. Calibrations: 'aci' (default: "
        "one quantile and one ACI level per step, gamma 0.05), 'aci-pooled' "
        "(the steps' scores divided by their medians and pooled, one ACI "
        "level per series moved by gamma / H = 0.05 / 6 per score), "
        "'aci-pooled-gammaH' (the same, 0.05 per score), 'split' / "
        "'split-pooled' (the held-out factors only, per step or pooled). "
        "cov90 sd: the spread over series of each series' 90% coverage. "
        "short_ar2: AR(2), 32 series of 96 values, each series' factors "
        "from its own 13 held-out origins (per_series); shift: AR(1) whose "
        "noise sd (x2.5) and mean (+1.5) jump half-way through the test "
        "origins.",
        "",
        "| process | series x length | calibration | values | cov90 | cov90 sd "
        "| cov80 | MASE | WIS/scale |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['process']} | {r['series']} x {r['length']} | "
            f"{r['calibration']} | {r['values']} "
            f"| {r['coverage90']:.3f} | {r['coverage90_sd']:.3f} "
            f"| {r['coverage80']:.3f} | {r['mase']:.3f} "
            f"| {r['wis']:.3f} |"
        )
    (RESULTS / "forecast_simulated.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


#: the same fitted nets recalibrated, beside each net's row (key suffix ->
#: calibration, pool_steps): held-out factors only, and the steps' normalised
#: scores pooled (online and held-out)
TWINS = {
    "split": ("split", False),
    "pooled": ("aci", True),
    "split_pooled": ("split", True),
}


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
                for i, row in enumerate(got):
                    row.update(_candidate_weights(states[0], i))
                cell, extra = parse_net_name(method.name)
                for suffix, (calibration, pool) in TWINS.items():
                    config = net_config(group, quick, cell, extra)._replace(
                        calibration=calibration, pool_steps=pool
                    )
                    twin = fc.recurrent(config, group["horizon"])
                    twin = twin._replace(
                        fit=lambda parts, states=states, config=config: _refactored(
                            states[0], config
                        )
                    )
                    for row, other in zip(got, evaluate([twin]), strict=True):
                        assert row["mase"] == other["mase"]  # intervals only
                        for key in ("coverage80", "coverage90", "wis"):
                            row[f"{key}_{suffix}"] = other[key]
            rows += got
        write(rows, quick, time.perf_counter() - start, final=False, only=only)
    return rows


def _candidate_weights(state, i: int) -> dict:
    """Series ``i``'s weight of each candidate of a fitted recurrent state
    (nets named by transform and highway order, then the classical models),
    their held-out mean absolute errors, and the nets' total weight."""
    labels = [
        tr.name + (f"+ar{p}" if p else "")
        for tr, p in zip(state.transforms, state.linear, strict=True)
    ] + [c.name for c in state.classical]
    nets = len(state.transforms)
    out = {
        "weights": dict(zip(labels, map(float, state.weights[i]), strict=True)),
        "net_weight": float(np.sum(state.weights[i, :nets])),
    }
    if state.errors is not None:
        errors = map(float, state.errors[i])
        out["held_out_mae"] = dict(zip(labels, errors, strict=True))
    return out


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
    out = list(lines)
    for net in sorted(nets, key=lambda m: np.mean([r["mase"] for r in by[m]])):
        out += _goals(net, series, get, stats)
    return out


def _goals(method: str, series, get, stats) -> list[str]:
    """The issue's goals for the net rows ``method`` against the better of
    AutoARIMA/AutoETS on each series, its coverage by group and its candidates'
    weights."""
    lines = [
        "",
        f"## Goals: {method}",
        "",
        "| series | net MASE | its MASE / snaive MASE | better statistical "
        "| its MASE | ratio net / statistical |",
        "|---|---|---|---|---|---|",
    ]
    ratios = []
    for name in series:
        net = get[name, method]["mase"]
        stat = min(stats, key=lambda m: get[name, m]["mase"])
        ratios.append(net / get[name, stat]["mase"])
        lines.append(
            f"| {name} | {net:.3f} | {net / get[name, 'snaive']['mase']:.2f} | "
            f"{stat} | {get[name, stat]['mase']:.3f} | {ratios[-1]:.2f} |"
        )
    better = [min(get[n, m]["mase"] for m in stats) for n in series]
    beats = sum(get[n, method]["mase"] < get[n, "snaive"]["mase"] for n in series)
    over = [n for n, r in zip(series, ratios, strict=True) if r > 1.2]
    cov = np.array([get[n, method]["coverage90"] for n in series])
    count = np.array(
        [get[n, method]["origins"] * get[n, method]["horizon"] for n in series]
    )
    lines += [
        "",
        f"Mean MASE over the {len(series)} series: {method} "
        f"{np.mean([get[n, method]['mase'] for n in series]):.3f}, the better "
        f"of AutoARIMA/AutoETS per series {np.mean(better):.3f}, AutoARIMA "
        f"{np.mean([get[n, 'autoarima']['mase'] for n in series]):.3f}; "
        f"{method} above 1.2x it on {len(over)} series "
        f"({', '.join(over) or 'none'}; worst ratio {max(ratios):.2f}); better "
        f"than seasonal naive on {beats}/{len(series)}; 90% coverage per series "
        f"{cov.min():.2f}-{cov.max():.2f}, pooled "
        f"{np.dot(cov, count) / count.sum():.2f}.",
    ]
    return (
        lines
        + _coverage_by_group(series, get, method)
        + _weights_table(series, get, method)
    )


def _weights_table(series, get, net) -> list[str]:
    """Each series' weight of ``net``'s candidates (held-out validation on
    the training part), and the recurrent nets' share of it."""
    if "weights" not in get[series[0], net]:
        return []
    lines = [
        "",
        f"## {net}: candidates weighed per series (held-out windows of the "
        "training part)",
        "",
        "| series | nets' weight | candidates with weight (held-out MAE) |",
        "|---|---|---|",
    ]
    for name in series:
        r = get[name, net]
        mae = r.get("held_out_mae", {})
        used = ", ".join(
            f"{k} {w:.2f}" + (f" ({mae[k]:.4g})" if k in mae else "")
            for k, w in r["weights"].items()
            if w > 0
        )
        lines.append(f"| {name} | {r['net_weight']:.2f} | {used} |")
    return lines


def _coverage_by_group(series, get, net) -> list[str]:
    """``net``'s 90%/80% coverage pooled over the forecast values of each group
    (``macro`` for ``macro:*``, ``single`` for the others), with its calibration
    and its ``TWINS``' (held-out factors only; the steps pooled)."""
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
        "| group | values | cov90 | cov90 split | cov90 pooled | cov90 split pooled "
        "| cov80 | cov80 split | cov80 pooled | mean WIS/scale | split | pooled "
        "| split pooled |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for group, names in groups.items():
        if not names:
            continue
        rs = [get[n, net] for n in names]
        count = np.array([r["origins"] * r["horizon"] for r in rs])
        pool = lambda key, rs=rs, count=count: (
            np.dot([r[key] for r in rs], count) / count.sum()
        )
        wis = lambda key, rs=rs: np.mean([r[key] for r in rs])
        lines.append(
            f"| {group} | {count.sum()} | {pool('coverage90'):.3f} | "
            f"{pool('coverage90_split'):.3f} | {pool('coverage90_pooled'):.3f} | "
            f"{pool('coverage90_split_pooled'):.3f} | {pool('coverage80'):.3f} | "
            f"{pool('coverage80_split'):.3f} | {pool('coverage80_pooled'):.3f} | "
            f"{wis('wis'):.3f} | {wis('wis_split'):.3f} | {wis('wis_pooled'):.3f} | "
            f"{wis('wis_split_pooled'):.3f} |"
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
        + "; two rows per net: jaxseq-<cell> the nets alone, and "
        + f"jaxseq-<cell>+{'+'.join(CLASSICAL)} with classical candidates beside "
        + f"the nets: {', '.join(CLASSICAL)} "
        "(a direct linear AR per series, on the values or, where the KPSS test "
        "rejects level stationarity at 5%, on the first differences; order by "
        "AIC up to W); pooled per series (the mean of the candidates whose mean "
        "absolute errors on held-out windows of the training part are within "
        "10% of the best; combine='pool'), and where the best classical "
        "model's held-out error is within 10% of the best net's, the classical "
        "model alone (fallback=True; the table at the end gives each series' "
        "weights); intervals calibrated "
        "per horizon step by conformal prediction on every origin of the "
        "training part's last max(2H, T/4) values and, at each later origin, "
        "the realised errors of the forecasts from every earlier origin whose "
        "values are observed, with adaptive conformal inference per series "
        "(calibration='aci', gamma 0.05); held-out errors scored against the "
        "refitted nets' interval widths on the same windows (docs/forecast.md). "
        "The 'split' columns below: the "
        "same nets with the held-out factors only; 'pooled' (group table): "
        "each step's scores divided by their median and pooled over the "
        "steps, one ACI level per series (pool_steps=True, not the default). "
        "bayes-nar: "
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
    only = tuple(n for n in args.series.split(",") if n)
    if args.simulated:
        start = time.perf_counter()
        write_simulated(simulated(only=only), time.perf_counter() - start)
        return
    cells = tuple(n for n in args.cells.split(",") if n)
    start = time.perf_counter()
    rows = run(args.quick, not args.no_bayes, cells, only)
    write(rows, args.quick, time.perf_counter() - start, only=only)


if __name__ == "__main__":
    main()
