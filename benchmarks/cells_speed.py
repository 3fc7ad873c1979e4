"""Speed of the cells the peers lack (LayerNorm LSTM/GRU, peephole LSTM, a
learned initial state) against the plain LSTM and GRU, one layer, jaxseq only.

The peephole LSTM (the LSTM's kernel, with the peephole terms) and the LayerNorm
LSTM have fused kernels and are timed twice, ``impl="auto"`` (the kernel) and
``impl="scan"`` (``cell.step`` and autodiff); the LayerNorm GRU runs through
``cell.step`` and autodiff. The plain cells are timed both ways too, so the
table separates the cost of the extra equations from the cost of having no
hand-written backward.

Usage::

    python benchmarks/cells_speed.py            # S1 sizes, pinned to one core
    python benchmarks/cells_speed.py --size 16,50,32,64 --min-time 0.5
    python benchmarks/cells_speed.py --only "lstm (scan);peephole_lstm (scan)"

Writes ``benchmarks/results/cells_speed.md`` and ``.json``: medians of
interleaved calls (``jax.jit``-compiled, compile time excluded and reported
separately), float32, random normal inputs, both wall time and the process's CPU
time per call (``time.process_time``: on a shared machine the CPU time is the
steadier of the two). ``--only`` reruns some rows and keeps the earlier runs'
in the results files, each run under its own conditions.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cores", default="1", help="'1' (pinned to one core) or 'all'")
    p.add_argument("--size", default="32,100,64,128", help="B,T,I,H (S1 by default)")
    p.add_argument("--min-time", type=float, default=1.5, help="seconds per case")
    p.add_argument("--min-rounds", type=int, default=7)
    p.add_argument("--max-rounds", type=int, default=60)
    p.add_argument("--tag", default=None, help="suffix of the results files")
    p.add_argument(
        "--only",
        default=None,
        help="semicolon-separated row labels to rerun (the fused LSTM's always, the "
        "ratios' base); the results files keep the earlier runs",
    )
    p.add_argument("--note", default="", help="what the run is for (results files)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    return p.parse_args(argv)


ARGS = parse_args()
if ARGS.cores == "1" and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # before XLA
N_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from _machine import describe  # noqa: E402

import jaxseq  # noqa: E402
from jaxseq import cells  # noqa: E402

#: label: (cell factory of H, impl)
CASES = {
    "lstm (fused, auto)": (cells.lstm, "auto"),
    "lstm (scan)": (cells.lstm, "scan"),
    "peephole_lstm (fused, auto)": (cells.peephole_lstm, "auto"),
    "peephole_lstm (scan)": (cells.peephole_lstm, "scan"),
    "layernorm_lstm (fused, auto)": (cells.layernorm_lstm, "auto"),
    "layernorm_lstm (scan)": (cells.layernorm_lstm, "scan"),
    "learned_init(lstm)": (lambda h: cells.learned_init(cells.lstm(h)), "auto"),
    "gru (fused, auto)": (cells.gru, "auto"),
    "gru (scan)": (cells.gru, "scan"),
    "layernorm_gru": (cells.layernorm_gru, "auto"),  # its fused kernel
    "layernorm_gru (scan)": (cells.layernorm_gru, "scan"),
}


def build(factory, impl, B, T, I, H):
    cell = factory(H)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))

    def apply(p, x):
        return jaxseq.rnn(cell, p, x, impl=impl)[1]

    fwd = jax.jit(apply)
    fwdbwd = jax.jit(jax.grad(lambda p, x: apply(p, x).sum(), argnums=(0, 1)))
    return {"fwd": fwd, "fwdbwd": fwdbwd}, (params, xs)


BASE = "lstm (fused, auto)"


def selected_cases():
    """The rows to run: all, or ``--only``'s plus the base of the ratios."""
    if ARGS.only is None:
        return dict(CASES)
    labels = [k.strip() for k in ARGS.only.split(";") if k.strip()]
    unknown = [k for k in labels if k not in CASES]
    if unknown:
        raise SystemExit(
            f"--only: unknown rows {unknown}; expected any of {list(CASES)}"
        )
    return {k: v for k, v in CASES.items() if k == BASE or k in labels}


def timed(fn, args):
    """One call's (wall, CPU) seconds."""
    w0, c0 = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - w0, time.process_time() - c0


def measure(built, mode):
    """Compile times and interleaved (wall, CPU) samples of every case."""
    compile_s, samples = {}, {k: [] for k in built}
    for k, (fns, args) in built.items():
        first = timed(fns[mode], args)[0]
        compile_s[k] = max(first - timed(fns[mode], args)[0], 0.0)
    names, rounds = list(built), 0
    while rounds < ARGS.max_rounds:  # interleaved, order rotating each round
        shift = rounds % len(names)
        for k in names[shift:] + names[:shift]:
            samples[k].append(timed(built[k][0][mode], built[k][1]))
        rounds += 1
        total = min(sum(w for w, _ in v) for v in samples.values())
        if rounds >= ARGS.min_rounds and total >= ARGS.min_time:
            break
    return compile_s, samples


def rows_of(built):
    rows = []
    for mode in ("fwd", "fwdbwd"):
        compile_s, samples = measure(built, mode)
        base = float(np.median([c for _, c in samples[BASE]]))
        for k, v in samples.items():
            wall, cpu = np.array(v).T
            med = float(np.median(cpu))
            rows.append(
                {
                    "cell": k,
                    "mode": mode,
                    "median_ms": 1e3 * float(np.median(wall)),
                    "min_ms": 1e3 * float(np.min(wall)),
                    "cpu_median_ms": 1e3 * med,
                    "calls": len(v),
                    "ratio_to_fused_lstm": med / base,
                    "compile_s": compile_s[k],
                }
            )
            print(f"{mode:6s} {k:28s} cpu {1e3 * med:8.2f} ms  x{med / base:.2f}")
    return rows


def earlier_runs(path):
    """The runs already in the results file (a single-run file is one run)."""
    if ARGS.only is None or not path.exists():
        return []
    data = json.loads(path.read_text())
    return data["runs"] if "runs" in data else [data]


def table(run):
    meta, rows = run["meta"], run["rows"]
    size = meta["size"]
    has_cpu = all("cpu_median_ms" in r for r in rows)
    lines = [
        f"Machine: {meta['machine']}; backend {meta['backend']}; jax {meta['jax']}; "
        f"{meta['date']}. 1-minute load average at start/end: "
        f"{meta['load_average_1min']} (with several processes sharing the cores, "
        "compare the ratios, not the absolute times).",
        f"One layer, B={size['B']}, T={size['T']}, I={size['I']}, H={size['H']}, "
        "float32, random normal inputs; medians of interleaved jitted calls, "
        "compile time excluded (its own column). fwd+bwd: gradient of sum(ys) "
        "w.r.t. parameters and inputs. Ratio: median "
        + ("CPU time" if has_cpu else "wall time")
        + " / the fused LSTM's (impl='auto') in the same mode and run.",
    ]
    if meta.get("note"):
        lines.append(meta["note"])
    head = "| cell | mode | median ms | min ms |"
    head += " CPU median ms |" if has_cpu else ""
    lines += ["", head + " ratio to fused lstm | compile s |",
              "|---" * (head.count("|") + 1) + "|"]  # fmt: skip
    for r in rows:
        cpu = f" {r['cpu_median_ms']:.2f} |" if has_cpu else ""
        lines.append(
            f"| {r['cell']} | {r['mode']} | {r['median_ms']:.2f} | "
            f"{r['min_ms']:.2f} |{cpu} {r['ratio_to_fused_lstm']:.2f} | "
            f"{r['compile_s']:.2f} |"
        )
    return lines


def main():
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    B, T, I, H = (int(v) for v in ARGS.size.split(","))
    cases = selected_cases()
    built = {k: build(f, impl, B, T, I, H) for k, (f, impl) in cases.items()}
    rows = rows_of(built)
    meta = {
        "machine": describe(N_CORES),
        "cores": N_CORES,
        "size": {"B": B, "T": T, "I": I, "H": H},
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "date": time.strftime("%Y-%m-%d"),
        "argv": sys.argv[1:],
        # other processes on the machine: ratios within a round stay comparable,
        # absolute times do not
        "load_average_1min": [load_start, os.getloadavg()[0] if load_start else None],
        "note": ARGS.note,
    }
    out = Path(ARGS.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "cells_speed" + (f"_{ARGS.tag}" if ARGS.tag else "")
    runs = [{"meta": meta, "rows": rows}, *earlier_runs(out / f"{stem}.json")]
    (out / f"{stem}.json").write_text(json.dumps({"runs": runs}, indent=1))
    lines = ["# The cells the peers lack, against the plain LSTM and GRU", ""]
    for i, run in enumerate(runs):
        if len(runs) > 1:
            which = "latest" if i == 0 else "earlier"
            lines += [f"## Run {len(runs) - i} ({which}): {run['meta']['date']}", ""]
        lines += table(run) + [""]
    (out / f"{stem}.md").write_text("\n".join(lines))
    print(f"wrote {out / (stem + '.md')} and .json")


if __name__ == "__main__":
    main()
