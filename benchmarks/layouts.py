"""Which of jaxseq's own implementations is fastest at which size: the data behind
``impl="auto"`` (``jaxseq._runner._plan``).

For a grid of (B, T, I, H) and each cell, times forward and forward+backward of
``jaxseq.rnn`` with every implementation (``scan``: autodiff reference; ``fused``:
hand-written backward, batch-major steps; ``fused_fm``: the same, feature-major
steps; ``hoist``: batch-major with the input projection computed up front;
``fm_autodiff``: feature-major forward, autodiff gradient of ``scan``) and what
``auto`` chose, interleaved round by round, pinned to one core.

Usage::

    python benchmarks/layouts.py [--quick] [--clock wall|cpu]
    python benchmarks/layouts.py --masked-reverse --cells lstm --clock cpu

Writes ``benchmarks/results/layouts.md`` and ``layouts.json`` (``--tag T``:
``layouts_T.*``). With
``--masked-reverse`` the sequences have lengths (log-normal, median about T/2.2,
clipped to [5, T], as IMDb reviews under ``maxlen``) and run backwards, as in the
seed's IMDb lab model, at the lab model's sizes; results in
``layouts_masked_reverse.md``/``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # before XLA

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _machine import describe  # noqa: E402

import jaxseq  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
GRID = [  # (B, T, I, H)
    (512, 200, 4, 4),
    (512, 200, 4, 8),
    (512, 200, 4, 16),
    (256, 100, 16, 32),
    (64, 100, 32, 64),
    (32, 100, 64, 128),
    (128, 200, 128, 256),
    (1, 1000, 32, 64),
]
#: the seed's IMDb lab model's LSTM (B=512, H=4) at two review lengths
MASKED_REVERSE_GRID = [(512, 200, 4, 4), (512, 400, 4, 4)]
IMPLS = ("scan", "fused", "fused_fm", "hoist", "fm_autodiff", "auto")


def lengths_like_reviews(B, T):
    rng = np.random.default_rng(0)
    return np.clip(rng.lognormal(np.log(T / 2.2), 0.7, B), 5, T).astype(np.int32)


def build(cell_name, B, T, I, H, impl, masked_reverse=False):
    cell = getattr(jaxseq.cells, cell_name)(H)
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    lengths = lengths_like_reviews(B, T) if masked_reverse else None

    def ys(p, x):
        return jaxseq.rnn(cell, p, x, lengths=lengths, reverse=masked_reverse,
                          impl=impl)[1]  # fmt: skip

    fwd = jax.jit(ys)
    bwd = jax.jit(jax.grad(lambda p, x: ys(p, x).sum(), argnums=(0, 1)))
    return {"fwd": (fwd, (params, xs)), "fwdbwd": (bwd, (params, xs))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    ap.add_argument("--cells", default="lstm,gru,elman")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument(
        "--masked-reverse",
        action="store_true",
        help="sequences with lengths, read backwards (the IMDb lab model's case)",
    )
    ap.add_argument(
        "--tag",
        default=None,
        help="suffix of the results files (keeps another CPU's table beside this "
        "one, e.g. --tag zen5)",
    )
    args = ap.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    grid = GRID[:1] + GRID[5:6] if args.quick else GRID
    name = "layouts"
    if args.masked_reverse:
        grid, name = MASKED_REVERSE_GRID, "layouts_masked_reverse"
    if args.tag:
        name += f"_{args.tag}"
    rows = []
    for B, T, I, H in grid:
        for cell_name in args.cells.split(","):
            fns = {
                impl: build(cell_name, B, T, I, H, impl, args.masked_reverse)
                for impl in IMPLS
            }
            for mode in ("fwd", "fwdbwd"):
                calls = {impl: fns[impl][mode] for impl in IMPLS}
                for fn, a in calls.values():
                    jax.block_until_ready(fn(*a))
                samples = {impl: [] for impl in IMPLS}
                for r in range(3 if args.quick else args.rounds):
                    order = IMPLS[r % len(IMPLS) :] + IMPLS[: r % len(IMPLS)]
                    for impl in order:  # rotated: no call always follows the same
                        fn, a = calls[impl]
                        t0 = clock()
                        jax.block_until_ready(fn(*a))
                        samples[impl].append(clock() - t0)
                med = {k: float(np.median(v)) * 1e3 for k, v in samples.items()}
                best = min((k for k in IMPLS if k != "auto"), key=med.get)
                rows.append(
                    {
                        "B": B,
                        "T": T,
                        "I": I,
                        "H": H,
                        "cell": cell_name,
                        "mode": mode,
                        "median_ms": med,
                        "best": best,
                        "auto_over_best": med["auto"] / med[best],
                    }
                )
                print(
                    f"B={B:4d} T={T:4d} I={I:3d} H={H:3d} {cell_name:5s} {mode:6s} "
                    + " ".join(f"{k}={v:.2f}" for k, v in med.items())
                    + f"  best={best}",
                    flush=True,
                )
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"clock": args.clock, "jax": jax.__version__, "cores": 1}
    meta["machine"] = describe(1)
    meta["masked_reverse"] = args.masked_reverse
    (RESULTS / f"{name}.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1)
    )
    head = (
        "| B | T | I | H | cell | mode | " + " | ".join(IMPLS) + " | best | auto/best |"
    )
    lines = [
        "# Implementation by size (one core)",
        "",
        f"Median ms per call ({args.clock} clock), jax {jax.__version__}, "
        f"{meta['machine']}. "
        "`auto` is what `jaxseq.rnn` does by default; auto/best > 1 marks a size "
        "where its rule misses the fastest variant."
        + (
            " Sequences with lengths (log-normal, median about T/2.2), read "
            "backwards, as in the IMDb lab model."
            if args.masked_reverse
            else ""
        ),
        "",
        head,
        "|" + "---|" * (len(IMPLS) + 8),
    ]
    for r in rows:
        lines.append(
            f"| {r['B']} | {r['T']} | {r['I']} | {r['H']} | {r['cell']} | "
            f"{r['mode']} | "
            + " | ".join(f"{r['median_ms'][k]:.2f}" for k in IMPLS)
            + f" | {r['best']} | {r['auto_over_best']:.2f} |"
        )
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / f'{name}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
