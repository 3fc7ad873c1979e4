"""Memory and time of the gradient through long sequences, with and without
gradient checkpointing (``jaxseq.rnn(..., remat=k)``).

For T from 1k to 100k steps (LSTM, B=8, I=32, H=64, float32) the script compiles
the gradient of ``sum(ys)`` w.r.t. parameters and inputs and reports XLA's own
accounting of the program's scratch memory (``memory_analysis().temp_size``, the
buffers the backward pass keeps alive: exact, not sampled) and the median wall
time per call; ``remat`` is
``None`` (store every step) or ``round(sqrt(T))``.

Usage::

    python benchmarks/memory.py            # T = 1k, 3k, 10k, 30k, 100k
    python benchmarks/memory.py --quick    # T = 1k, 10k

Writes ``benchmarks/results/memory.md`` and ``memory.json`` and a PNG.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _machine import describe  # noqa: E402

import jaxseq  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
B, I, H = 8, 32, 64


def measure(time_steps: int, remat: int | None, impl: str, reps: int) -> dict:
    cell = jaxseq.cells.lstm(H)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, time_steps, I))

    def loss(p, x):
        return jaxseq.rnn(cell, p, x, impl=impl, remat=remat)[1].sum()

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    compiled = grad.lower(params, xs).compile()
    temp = compiled.memory_analysis().temp_size_in_bytes
    jax.block_until_ready(compiled(params, xs))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(params, xs))
        times.append(time.perf_counter() - t0)
    return {
        "T": time_steps,
        "remat": remat,
        "impl": impl,
        "temp_mb": temp / 2**20,
        "median_s": float(np.median(times)),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--impls", default="auto,scan")
    args = p.parse_args(argv)
    lengths = [1000, 10000] if args.quick else [1000, 3000, 10000, 30000, 100000]
    rows = []
    for impl in args.impls.split(","):
        for n in lengths:
            for remat in (None, round(math.sqrt(n))):
                r = measure(n, remat, impl, reps=2 if n >= 30000 else 3)
                rows.append(r)
                print(
                    f"{impl:5s} T={n:6d} remat={str(remat):5s} temp "
                    f"{r['temp_mb']:9.1f} MB  time {r['median_s']:.3f} s",
                    flush=True,
                )
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {
        "B": B,
        "I": I,
        "H": H,
        "cell": "lstm",
        "jax": jax.__version__,
        "machine": describe(),
    }
    (RESULTS / "memory.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1)
    )
    lines = [
        "# Gradient memory and time vs sequence length",
        "",
        f"LSTM, B={B}, I={I}, H={H}, float32, gradient w.r.t. parameters and "
        "inputs. `temp MB` is XLA's scratch allocation for the compiled "
        "gradient (exact); `remat` = sqrt(T) keeps one carry per block and "
        "recomputes each block in the backward pass. "
        f"CPU: {meta['machine']}.",
        "",
        "| impl | T | remat | temp MB | time s | time ratio vs no remat |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = next(
            b
            for b in rows
            if b["impl"] == r["impl"] and b["T"] == r["T"] and b["remat"] is None
        )
        lines.append(
            f"| {r['impl']} | {r['T']} | {r['remat'] or '-'} | "
            f"{r['temp_mb']:.1f} | {r['median_s']:.3f} | "
            f"{r['median_s'] / base['median_s']:.2f} |"
        )
    (RESULTS / "memory.md").write_text("\n".join(lines) + "\n")
    _plot(rows)
    print(f"wrote {RESULTS / 'memory.md'}")
    return 0


def _plot(rows) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for impl in sorted({r["impl"] for r in rows}):
        for remat, style in ((False, "-o"), (True, "--s")):
            rs = [
                r
                for r in rows
                if r["impl"] == impl and (r["remat"] is not None) == remat
            ]
            label = f"{impl}{' + remat sqrt(T)' if remat else ''}"
            a.loglog(
                [r["T"] for r in rs], [r["temp_mb"] for r in rs], style, label=label
            )
            b.loglog(
                [r["T"] for r in rs], [r["median_s"] for r in rs], style, label=label
            )
    a.set(xlabel="T (steps)", ylabel="XLA scratch memory (MB)", title="memory")
    b.set(xlabel="T (steps)", ylabel="seconds per gradient", title="time")
    a.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "memory.png", dpi=120)


if __name__ == "__main__":
    sys.exit(main())
