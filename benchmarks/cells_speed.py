"""Speed of the cells without a fused kernel (LayerNorm LSTM/GRU, peephole LSTM,
a learned initial state) against the plain LSTM and GRU, one layer, jaxseq only.

The new cells run through ``cell.step`` and autodiff (``lax.scan``); the plain
cells are timed twice: ``impl="auto"`` (their fused kernels) and ``impl="scan"``
(the same autodiff path as the new cells), so the table separates the cost of the
extra equations from the cost of having no hand-written backward.

Usage::

    python benchmarks/cells_speed.py            # S1 sizes, pinned to one core
    python benchmarks/cells_speed.py --size 16,50,32,64 --min-time 0.5

Writes ``benchmarks/results/cells_speed.md`` and ``.json``: medians of
interleaved calls (``jax.jit``-compiled, compile time excluded and reported
separately), float32, random normal inputs.
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
    "peephole_lstm": (cells.peephole_lstm, "auto"),
    "layernorm_lstm": (cells.layernorm_lstm, "auto"),
    "learned_init(lstm)": (lambda h: cells.learned_init(cells.lstm(h)), "auto"),
    "gru (fused, auto)": (cells.gru, "auto"),
    "gru (scan)": (cells.gru, "scan"),
    "layernorm_gru": (cells.layernorm_gru, "auto"),
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


def main():
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    B, T, I, H = (int(v) for v in ARGS.size.split(","))
    built = {k: build(f, impl, B, T, I, H) for k, (f, impl) in CASES.items()}
    rows = []
    for mode in ("fwd", "fwdbwd"):
        compile_s, samples = {}, {k: [] for k in built}
        for k, (fns, args) in built.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fns[mode](*args))
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            jax.block_until_ready(fns[mode](*args))
            compile_s[k] = max(first - (time.perf_counter() - t0), 0.0)
        names, rounds = list(built), 0
        while rounds < ARGS.max_rounds:  # interleaved, order rotating each round
            shift = rounds % len(names)
            for k in names[shift:] + names[:shift]:
                fns, args = built[k]
                t0 = time.perf_counter()
                jax.block_until_ready(fns[mode](*args))
                samples[k].append(time.perf_counter() - t0)
            rounds += 1
            if rounds >= ARGS.min_rounds and min(map(sum, samples.values())) >= (
                ARGS.min_time
            ):
                break
        base = float(np.median(samples["lstm (fused, auto)"]))
        for k, v in samples.items():
            med = float(np.median(v))
            rows.append(
                {
                    "cell": k,
                    "mode": mode,
                    "median_ms": 1e3 * med,
                    "min_ms": 1e3 * float(np.min(v)),
                    "calls": len(v),
                    "ratio_to_fused_lstm": med / base,
                    "compile_s": compile_s[k],
                }
            )
            print(f"{mode:6s} {k:20s} {1e3 * med:8.2f} ms  x{med / base:.2f}")
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
    }
    out = Path(ARGS.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "cells_speed" + (f"_{ARGS.tag}" if ARGS.tag else "")
    data = {"meta": meta, "rows": rows}
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1))
    lines = [
        "# Cells without a fused kernel, against the plain LSTM and GRU",
        "",
        f"Machine: {meta['machine']}; backend {meta['backend']}; jax {meta['jax']}; "
        f"{meta['date']}. 1-minute load average at start/end: "
        f"{meta['load_average_1min']} (with several processes sharing the cores, "
        "compare the ratios, not the absolute times).",
        f"One layer, B={B}, T={T}, I={I}, H={H}, float32, random normal inputs; "
        "medians of interleaved jitted calls, compile time excluded (its own "
        "column). fwd+bwd: gradient of sum(ys) w.r.t. parameters and inputs. "
        "Ratio: median / the fused LSTM's (impl='auto') in the same mode.",
        "",
        "| cell | mode | median ms | min ms | ratio to fused lstm | compile s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['mode']} | {r['median_ms']:.2f} | "
            f"{r['min_ms']:.2f} | {r['ratio_to_fused_lstm']:.2f} | "
            f"{r['compile_s']:.2f} |"
        )
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / (stem + '.md')} and .json")


if __name__ == "__main__":
    main()
