"""Recurrent (variational) dropout on the fused kernels against the reference
path, and against the same cell without dropout.

For each cell (Elman, LSTM, GRU) and size, the forward+backward (the gradient of
a sum of the outputs w.r.t. the parameters and the inputs) of:

- ``dropout, scan``: ``recurrent_dropout(cell)`` with ``impl="scan"`` (the
  reference ``lax.scan`` path, which every dropout-wrapped cell ran before it
  had a fused kernel);
- ``dropout, auto``: the same cell with ``impl="auto"`` (its fused kernel);
- ``plain, auto``: the cell without dropout, ``impl="auto"``.

Process CPU time, interleaved round by round on one pinned core, compile time
excluded (one warm-up call each), median of the rounds; rate 0.25, a training
mask from ``dropout_carry``.

Usage::

    python benchmarks/recurrent_dropout.py [--rounds 15] [--cells elman,lstm,gru]

Writes ``benchmarks/results/recurrent_dropout.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {0})

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import jaxseq  # noqa: E402
from jaxseq import cells  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

RESULTS = Path(__file__).parent / "results"
#: name -> (B, T, I, H): the speed table's S1 and a word-level LM layer
SIZES = {"S1": (32, 100, 64, 128), "LM": (20, 35, 200, 200)}
FACTORIES = {"elman": cells.elman, "lstm": cells.lstm, "gru": cells.gru}
RATE = 0.25
VARIANTS = (("dropout, scan", True, "scan"), ("dropout, auto", True, "auto"),
            ("plain, auto", False, "auto"))  # fmt: skip


def _case(factory, dropout: bool, impl: str, B: int, T: int, I: int, H: int):
    """A jitted fwd+bwd function and its arguments."""
    base = factory(H)
    cell = cells.recurrent_dropout(base, RATE) if dropout else base
    params = cell.init(jax.random.key(0), I)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    if dropout:
        c0 = cells.dropout_carry(jax.random.key(2), cell, params, batch_size=B)
    else:
        c0 = jax.tree.map(
            lambda a: jnp.broadcast_to(a, (B, *a.shape)), cell.init_carry(params)
        )

    def loss(p, x, c):
        return jaxseq.rnn(cell, p, x, carry0=c, impl=impl)[1].sum()

    return jax.jit(jax.grad(loss, argnums=(0, 1))), (params, xs, c0)


def _cpu_seconds(fn, args) -> float:
    start = time.process_time()
    jax.block_until_ready(fn(*args))
    return time.process_time() - start


def run(cell: str, size: str, rounds: int) -> list[dict]:
    """Median CPU ms of each variant, interleaved with rotating order."""
    dims = SIZES[size]
    cases = {name: _case(FACTORIES[cell], d, i, *dims) for name, d, i in VARIANTS}
    for fn, args in cases.values():
        _cpu_seconds(fn, args)  # compile
    samples = {name: [] for name in cases}
    names = list(cases)
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_cpu_seconds(*cases[name]))
    plain = float(np.median(samples["plain, auto"]))
    rows = []
    for name, got in samples.items():
        ms = 1e3 * float(np.median(got))
        rows.append(
            dict(
                cell=cell,
                size=size,
                dims=dims,
                variant=name,
                cpu_ms=ms,
                vs_plain=ms / (1e3 * plain),
            )  # fmt: skip
        )
        print(
            f"{cell:6s} {size:3s} {name:14s} {ms:9.2f} ms  x{rows[-1]['vs_plain']:.2f}"
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--cells", default="elman,lstm,gru")
    args = p.parse_args()
    names = args.cells.split(",")
    for n in names:
        if n not in FACTORIES:
            p.error(f"--cells: expected names from {sorted(FACTORIES)}, got {n!r}")
    rows = [r for c in names for s in SIZES for r in run(c, s, args.rounds)]
    machine = describe(1)
    load = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = dict(machine=machine, jax=jax.__version__, rounds=args.rounds,
                rate=RATE, load=load)  # fmt: skip
    (RESULTS / "recurrent_dropout.json").write_text(
        json.dumps(dict(meta, rows=rows), indent=1) + "\n"
    )
    lines = [
        "# Recurrent dropout: fused kernels against the reference path",
        "",
        f"Machine: {machine}; jax {jax.__version__}; process CPU time, one pinned "
        f"core, median of {args.rounds} interleaved rounds, compile excluded; "
        f"rate {RATE}; load average when written {load[0]:.1f}, {load[1]:.1f}, "
        f"{load[2]:.1f}. `python benchmarks/recurrent_dropout.py`. Forward and "
        "backward (gradient of the outputs' sum w.r.t. parameters and inputs). "
        "x plain: the cell without dropout on its fused kernel.",
        "",
        "| cell | size (B, T, I, H) | variant | CPU ms | x plain |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['size']} {tuple(r['dims'])} | {r['variant']} | "
            f"{r['cpu_ms']:.2f} | {r['vs_plain']:.2f} |"
        )
    (RESULTS / "recurrent_dropout.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'recurrent_dropout.md'} and .json")


if __name__ == "__main__":
    main()
