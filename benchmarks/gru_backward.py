"""The reset-after GRU's fused gradient: its backward written over the forward's
residuals, against the same kernel stacking its gradients afresh and against the
kernel of an earlier revision.

For each size, the forward+backward (the gradient of a sum of the outputs w.r.t.
the parameters and the inputs, ``impl="auto"``) of:

- ``overwrite``: the current kernel (the reverse loop writes each step's
  pre-activation gradients over that step's residuals);
- ``stacked``: the same kernel with ``overwrite=False`` (the reverse loop stacks
  the same gradients in fresh buffers);
- ``previous``: the reset-after kernel of ``--baseline`` (a git revision; its
  ``jaxseq/cells/_gru.py`` loaded beside the current package), unless
  ``--baseline ""``.

Process CPU time, interleaved round by round (the order alternating) on one
pinned core, compile time excluded (two warm-up calls each), median and min of
the rounds; the compiled scratch memory (``temp_size_in_bytes``) and the
largest gradient difference to ``overwrite``. The load average is recorded at
the start and the end.

Usage::

    python benchmarks/gru_backward.py [--rounds 21] [--sizes S1,S2,B1]

Writes ``benchmarks/results/gru_backward.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import types
from pathlib import Path

os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {0})

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from _machine import describe  # noqa: E402

import jaxseq  # noqa: E402
from jaxseq.cells import _gru  # noqa: E402

RESULTS = Path(__file__).parent / "results"
#: name -> (B, T, I, H): the speed table's S1 and S2, and batch one
SIZES = {"S1": (32, 100, 64, 128), "S2": (128, 200, 128, 256), "B1": (1, 1000, 64, 64)}


def previous_kernel(rev: str, hidden: int):
    """The reset-after kernel of ``jaxseq/cells/_gru.py`` at git revision ``rev``,
    built on the current package (its carry and parameter types)."""
    src = subprocess.run(
        ["git", "show", f"{rev}:jaxseq/cells/_gru.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    mod = types.ModuleType("jaxseq.cells._gru_previous")
    mod.__package__ = "jaxseq.cells"
    exec(compile(src, f"{rev}:jaxseq/cells/_gru.py", "exec"), mod.__dict__)
    mod.GRUCarry, mod.GRUParams = _gru.GRUCarry, _gru.GRUParams
    return mod._kernel_reset_after(hidden)


def variants(size: tuple[int, ...], baseline: str) -> dict:
    """name -> (jitted fwd+bwd, args)."""
    B, T, I, H = size
    cell = jaxseq.cells.gru(H)
    cells = {
        "overwrite": cell,
        "stacked": cell._replace(kernel=cell.kernel._replace(overwrite=False)),
    }
    if baseline:
        cells["previous"] = cell._replace(kernel=previous_kernel(baseline, H))
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    out = {}
    for name, c in cells.items():

        def loss(p, x, c=c):
            return jaxseq.rnn(c, p, x)[1].sum()

        out[name] = (jax.jit(jax.grad(loss, argnums=(0, 1))), (params, xs))
    return out


def _cpu_seconds(fn, args) -> float:
    start = time.process_time()
    jax.block_until_ready(fn(*args))
    return time.process_time() - start


def run_size(name: str, rounds: int, baseline: str) -> list[dict]:
    fns = variants(SIZES[name], baseline)
    rows, grads = [], {}
    for v, (fn, args) in fns.items():
        temp = fn.lower(*args).compile().memory_analysis().temp_size_in_bytes
        grads[v] = fn(*args)
        jax.block_until_ready(fn(*args))
        rows.append({"size": name, "variant": v, "temp_mb": temp / 1e6})
    samples = {v: [] for v in fns}
    order = list(fns)
    for i in range(rounds):
        for v in order if i % 2 == 0 else order[::-1]:
            samples[v].append(_cpu_seconds(*fns[v]))
    ref = jax.tree.leaves(grads["overwrite"])
    base = np.median(samples["previous" if baseline else "stacked"])
    for row in rows:
        s = np.asarray(samples[row["variant"]]) * 1e3
        diff = max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(jax.tree.leaves(grads[row["variant"]]), ref, strict=True)
        )
        row.update(
            median_ms=float(np.median(s)),
            min_ms=float(np.min(s)),
            vs_base=float(np.median(s) / 1e3 / base),
            max_grad_diff=diff,
            rounds=rounds,
        )
    return rows


def write(rows: list[dict], meta: dict) -> None:
    base = "previous" if meta["baseline"] else "stacked"
    lines = [
        "# Reset-after GRU fused gradient: backward written over the residuals",
        "",
        f"Machine: {meta['machine']}; jax {meta['jax']}; process CPU time, one "
        "pinned core, interleaved rounds; load average (1 min) "
        f"{meta['load_start']:.2f} at the start, {meta['load_end']:.2f} at the "
        "end; baseline revision "
        f"`{meta['baseline'] or '-'}`; {meta['date']}.",
        "",
        "Sizes (B, T, I, H): "
        + ", ".join(f"{k} {v}" for k, v in SIZES.items() if k in meta["sizes"])
        + ". Gradient of `sum(ys)` w.r.t. the parameters and the inputs, "
        '`impl="auto"`.',
        "",
        f"| size | variant | median ms | min ms | vs {base} | scratch MB | "
        "max abs grad diff |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['variant']} | {r['median_ms']:.2f} | "
            f"{r['min_ms']:.2f} | {r['vs_base']:.3f} | {r['temp_mb']:.1f} | "
            f"{r['max_grad_diff']:.1e} |"
        )
    (RESULTS / "gru_backward.md").write_text("\n".join(lines) + "\n")
    (RESULTS / "gru_backward.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=21)
    p.add_argument("--sizes", default="S1,S2,B1")
    p.add_argument(
        "--baseline",
        default="90d7cdc",
        help="git revision whose reset-after kernel is timed as 'previous' "
        "('' to skip)",
    )
    args = p.parse_args()
    sizes = [s for s in args.sizes.split(",") if s]
    meta = {
        "machine": describe(1),
        "jax": jax.__version__,
        "baseline": args.baseline,
        "sizes": sizes,
        "load_start": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    rows = []
    for s in sizes:
        rows += run_size(s, args.rounds, args.baseline)
        for r in rows[-3:]:
            print(r, flush=True)
    meta["load_end"] = os.getloadavg()[0]
    write(rows, meta)


if __name__ == "__main__":
    main()
