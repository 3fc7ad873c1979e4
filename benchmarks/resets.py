"""Carry resets at document starts: the runner's resets on the fused kernel
against the old path (the ``jaxseq.lm.resettable`` wrapper, which has no fused
kernel and so runs the reference ``lax.scan``), at a word-level LM layer's size.

One LSTM layer, ``B=20, T=35, E=H=200`` (the PTB "medium" chunk), float32, a
reset in about one step in twenty. Times forward and forward+backward (the
gradient of a sum of the outputs w.r.t. the parameters and the inputs) of:

- ``fused+resets``: ``jaxseq.rnn(cell, params, xs, resets=resets)`` (``impl="auto"``);
- ``resettable-scan``: ``jaxseq.rnn(resettable(cell), params, with_resets(xs,
  resets))``;
- ``fused (no resets)``: ``jaxseq.rnn(cell, params, xs)``, the cost without resets.

Interleaved round by round on one core (XLA single-threaded), compile time
excluded (one warm-up call each), median of the rounds.

Usage::

    taskset -c 1 python benchmarks/resets.py [--rounds 30]

Writes ``benchmarks/results/resets.md`` and ``resets.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault(
    "XLA_FLAGS",
    "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
)

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _machine import describe  # noqa: E402

import jaxseq  # noqa: E402
from jaxseq.lm import resettable, with_resets  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
B, T, E, H = 20, 35, 200, 200


def variants(cell, resets):
    def new(p, x):
        return jaxseq.rnn(cell, p, x, resets=resets)[1]

    def old(p, x):
        return jaxseq.rnn(resettable(cell), p, with_resets(x, resets))[1]

    def plain(p, x):
        return jaxseq.rnn(cell, p, x)[1]

    return {"fused+resets": new, "resettable-scan": old, "fused (no resets)": plain}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    cell = jaxseq.cells.lstm(H)
    params = cell.init(jax.random.key(0), E)
    xs = jax.random.normal(jax.random.key(1), (B, T, E))
    resets = jax.random.bernoulli(jax.random.key(2), 0.05, (B, T))
    fns = {}
    for name, f in variants(cell, resets).items():
        fns[name, "fwd"] = jax.jit(f)
        fns[name, "fwd+bwd"] = jax.jit(
            jax.grad(lambda p, x, f=f: f(p, x).sum(), argnums=(0, 1))
        )
    for f in fns.values():  # compile and warm up
        jax.block_until_ready(f(params, xs))
    times = {k: [] for k in fns}
    for _ in range(args.rounds):
        for k, f in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(f(params, xs))
            times[k].append(time.perf_counter() - t0)
    med = {k: 1e3 * float(np.median(v)) for k, v in times.items()}
    machine = describe(len(os.sched_getaffinity(0)))
    lines = [
        "# Carry resets: fused kernel vs the resettable wrapper (scan)",
        "",
        f"Machine: {machine}; jax {jax.__version__}; XLA single-threaded.",
        f"One LSTM layer, B={B}, T={T}, E=H={H}, float32, "
        f"{int(resets.sum())} resets in {B * T} steps; median of {args.rounds} "
        "interleaved rounds, ms per call, compile time excluded "
        "(`benchmarks/resets.py`).",
        f"Load average over the last minute at the end: {os.getloadavg()[0]:.1f} "
        "(a shared machine: compare the ratios, not the times).",
        "",
        "| pass | fused+resets | resettable-scan | fused (no resets) | "
        "scan / fused+resets |",
        "|---|---|---|---|---|",
    ]
    for mode in ("fwd", "fwd+bwd"):
        a, b, c = (med[n, mode] for n in variants(cell, resets))
        lines.append(f"| {mode} | {a:.2f} | {b:.2f} | {c:.2f} | {b / a:.2f}x |")
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "resets.md").write_text(text)
    (RESULTS / "resets.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "sizes": {"B": B, "T": T, "E": E, "H": H},
                "resets": int(resets.sum()),
                "rounds": args.rounds,
                "loadavg_1min": os.getloadavg()[0],
                "median_ms": {f"{n} {m}": v for (n, m), v in med.items()},
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
