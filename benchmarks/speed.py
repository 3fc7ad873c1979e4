"""Speed of one recurrent layer: jaxseq against Flax (linen, nnx), Equinox, Keras 3
(JAX backend) and PyTorch, in the same process, interleaved round by round.

Each implementation returns all hidden states ``[B, T, H]`` (float32). ``fwd`` is the
forward pass; ``fwdbwd`` the gradient of ``sum(ys)`` w.r.t. the parameters and the
inputs. JAX implementations run under plain ``jax.jit``; Keras through
``stateless_call`` under ``jax.jit``; torch with its thread count matched to the
cores in use. Peers that are not installed are skipped (and listed).

Usage::

    python benchmarks/speed.py                 # pinned to one core (the default)
    python benchmarks/speed.py --cores all     # all cores
    python benchmarks/speed.py --quick         # smoke run: S1 and S3, few rounds

Writes ``benchmarks/results/speed[_<tag>].md`` and ``.json`` (``{"rows": [...]}``;
see ``row()`` for the fields) so that the ratios can be recomputed by anyone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

SIZES = {  # name: (B, T, I, H)
    "S1": (32, 100, 64, 128),
    "S2": (128, 200, 128, 256),
    "S3": (512, 200, 4, 4),
    "S4": (1, 1000, 32, 64),
}
GATES = {"lstm": 4, "gru": 3, "elman": 1}
PEERS = ["flax.linen", "flax.nnx", "equinox", "keras", "torch"]
#: jaxseq's explicit strategies, timed as "jaxseq.<impl>" when asked for
JAXSEQ_VARIANTS = ("scan", "hoist", "fused", "fused_fm")
RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cores", default="1", help="'1' (pinned to core 0) or 'all'")
    p.add_argument("--sizes", default="S1,S2,S3,S4")
    p.add_argument("--cells", default="lstm,gru,elman")
    p.add_argument("--modes", default="fwd,fwdbwd")
    p.add_argument(
        "--impls",
        default="jaxseq," + ",".join(PEERS),
        help="comma list; extra variants: "
        + ", ".join(f"jaxseq.{v}" for v in JAXSEQ_VARIANTS),
    )
    p.add_argument(
        "--min-time",
        type=float,
        default=1.5,
        help="seconds of timed calls per implementation and case",
    )
    p.add_argument("--max-rounds", type=int, default=60)
    p.add_argument(
        "--min-rounds",
        type=int,
        default=9,
        help="rounds at least, however long a call takes (medians of S2 calls "
        "need them: one call there is 0.1-0.6 s)",
    )
    p.add_argument(
        "--bidirectional",
        action="store_true",
        default=True,
        help="also time a masked bidirectional case (S1 sizes)",
    )
    p.add_argument("--no-bidirectional", dest="bidirectional", action="store_false")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: S1 and S3, 0.3 s per case"
    )
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="'cpu' times calls with process CPU time (time.process_time): with the "
        "process pinned to one core it equals wall time on an idle machine, and it "
        "is robust to other processes time-sharing the core",
    )
    p.add_argument(
        "--retain-memory",
        action="store_true",
        help="call jaxseq.host.retain_memory() first: freed host memory stays in "
        "the process for every implementation in it (no per-call page faults)",
    )
    p.add_argument("--tag", default=None, help="suffix of the results files")
    p.add_argument(
        "--from-json",
        default=None,
        help="write the results files again from an earlier run's JSON (its rows "
        "and machine; e.g. after the report's text changed); times nothing",
    )
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.min_time, args.max_rounds = "S1,S3", 0.3, 8
        args.min_rounds = 3
    return args


ARGS = parse_args()
if ARGS.cores == "1" and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # before XLA/torch
N_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
if ARGS.retain_memory:  # before XLA's and torch's threads pick their malloc arenas
    import jaxseq.host  # noqa: E402

    RETAINED = jaxseq.host.retain_memory()
else:
    RETAINED = False

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from _machine import describe  # noqa: E402

import jaxseq  # noqa: E402


# ------------------------------------------------------------------ implementations
def _jax_pair(apply, params, xs):
    """(fwd, fwdbwd, args) for a pure JAX ``apply(params, xs) -> ys``."""
    fwd = jax.jit(apply)
    fwdbwd = jax.jit(jax.grad(lambda p, x: apply(p, x).sum(), argnums=(0, 1)))
    return fwd, fwdbwd, (params, xs)


def make_jaxseq(cell_name, B, T, I, H, impl="auto", bidir=False, lengths=None):
    cell = {
        "lstm": jaxseq.cells.lstm,
        "gru": jaxseq.cells.gru,
        "elman": jaxseq.cells.elman,
    }[cell_name](H)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    if bidir:
        layer = jaxseq.stack(cell, bidirectional=True)
        params = layer.init(jax.random.key(0), I)
        return _jax_pair(lambda p, x: layer.apply(p, x, lengths=lengths)[1], params, xs)
    params = cell.init(jax.random.key(0), I)
    return _jax_pair(
        lambda p, x: jaxseq.rnn(cell, p, x, lengths=lengths, impl=impl)[1], params, xs
    )


def make_flax_linen(cell_name, B, T, I, H, bidir=False, lengths=None):
    import flax.linen as nn

    mk = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell, "elman": nn.SimpleCell}
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    if bidir:
        model = nn.Bidirectional(nn.RNN(mk[cell_name](H)), nn.RNN(mk[cell_name](H)))
    else:
        model = nn.RNN(mk[cell_name](H))
    variables = model.init(jax.random.key(0), xs)
    if lengths is None:
        return _jax_pair(lambda v, x: model.apply(v, x), variables, xs)
    return _jax_pair(lambda v, x: model.apply(v, x, seq_lengths=lengths), variables, xs)


def make_flax_nnx(cell_name, B, T, I, H):
    from flax import nnx

    mk = {"lstm": nnx.OptimizedLSTMCell, "gru": nnx.GRUCell, "elman": nnx.SimpleCell}
    model = nnx.RNN(mk[cell_name](I, H, rngs=nnx.Rngs(0)), rngs=False)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)  # rest: RNG counters
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    zeros = jnp.zeros((B, H))
    carry0 = (zeros, zeros) if cell_name == "lstm" else zeros
    return _jax_pair(
        lambda p, x: nnx.merge(graphdef, p, rest)(x, initial_carry=carry0), params, xs
    )


def make_equinox(cell_name, B, T, I, H):
    import equinox as eqx

    if cell_name == "elman":
        return None  # Equinox has no simple RNN cell
    key = jax.random.key(0)
    cell = (eqx.nn.LSTMCell if cell_name == "lstm" else eqx.nn.GRUCell)(I, H, key=key)
    params, static = eqx.partition(cell, eqx.is_inexact_array)
    xs = jax.random.normal(jax.random.key(1), (B, T, I))

    def apply(p, x):
        c = eqx.combine(p, static)

        def one(seq):
            h0 = jnp.zeros(H)
            init = (h0, h0) if cell_name == "lstm" else h0

            def body(carry, xt):
                carry = c(xt, carry)
                return carry, carry[0] if cell_name == "lstm" else carry

            return jax.lax.scan(body, init, seq)[1]

        return jax.vmap(one)(x)

    return _jax_pair(apply, params, xs)


def make_keras(cell_name, B, T, I, H):
    import keras

    layer = {
        "lstm": keras.layers.LSTM,
        "gru": keras.layers.GRU,
        "elman": keras.layers.SimpleRNN,
    }[cell_name](H, return_sequences=True)
    layer.build((B, T, I))
    tv = [v.value for v in layer.trainable_variables]
    ntv = [v.value for v in layer.non_trainable_variables]
    xs = jax.random.normal(jax.random.key(1), (B, T, I))
    return _jax_pair(lambda p, x: layer.stateless_call(p, ntv, x)[0], tv, xs)


def make_torch(cell_name, B, T, I, H, bidir=False, lengths=None):
    import torch

    torch.set_num_threads(N_CORES)
    torch.manual_seed(0)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "elman": torch.nn.RNN}[
        cell_name
    ](I, H, batch_first=True, bidirectional=bidir)
    x = torch.randn(B, T, I)
    if lengths is not None:
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        n = torch.from_numpy(np.asarray(lengths))

        def run(inp):
            packed = pack_padded_sequence(
                inp, n, batch_first=True, enforce_sorted=False
            )
            return pad_packed_sequence(
                module(packed)[0], batch_first=True, total_length=T
            )[0]
    else:

        def run(inp):
            return module(inp)[0]

    def fwd(*_):
        with torch.no_grad():
            return run(x)

    xg = x.clone().requires_grad_(True)

    def fwdbwd(*_):
        module.zero_grad(set_to_none=True)
        xg.grad = None
        run(xg).sum().backward()
        return xg.grad

    return fwd, fwdbwd, ()


def factories(cell_name, size, impls):
    B, T, I, H = SIZES[size]
    table = {
        "jaxseq": lambda: make_jaxseq(cell_name, B, T, I, H),
        **{
            f"jaxseq.{impl}": partial(make_jaxseq, cell_name, B, T, I, H, impl=impl)
            for impl in JAXSEQ_VARIANTS
        },
        "flax.linen": lambda: make_flax_linen(cell_name, B, T, I, H),
        "flax.nnx": lambda: make_flax_nnx(cell_name, B, T, I, H),
        "equinox": lambda: make_equinox(cell_name, B, T, I, H),
        "keras": lambda: make_keras(cell_name, B, T, I, H),
        "torch": lambda: make_torch(cell_name, B, T, I, H),
    }
    return {k: table[k] for k in impls if k in table}


def bidir_factories(cell_name, impls):
    B, T, I, H = SIZES["S1"]
    lengths = np.random.default_rng(0).integers(T // 2, T + 1, size=B).astype(np.int32)
    lengths[0] = T
    table = {
        "jaxseq": lambda: make_jaxseq(
            cell_name, B, T, I, H, bidir=True, lengths=jnp.asarray(lengths)
        ),
        "flax.linen": lambda: make_flax_linen(
            cell_name, B, T, I, H, bidir=True, lengths=jnp.asarray(lengths)
        ),
        "torch": lambda: make_torch(cell_name, B, T, I, H, bidir=True, lengths=lengths),
    }
    return {k: table[k] for k in impls if k in table}


# ------------------------------------------------------------------ timing
def _block(out):
    return jax.block_until_ready(out) if not hasattr(out, "detach") else out


def compile_and_warm(fn, args):
    t0 = time.perf_counter()
    _block(fn(*args))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    _block(fn(*args))
    return max(first - (time.perf_counter() - t0), 0.0)


#: the peers that run on JAX (the margin floor of the fwd+bwd table is held
#: against the fastest of these)
JAX_PEERS = ("flax.linen", "flax.nnx", "equinox", "keras")


def _margin(by: dict, cell: str, size: str) -> str | None:
    """``"<cell> <size> <x>x (vs <peer>)"``: the fastest JAX peer's fwd+bwd
    median over jaxseq's, or ``None`` where either was not timed."""
    mine = by.get((cell, size, "fwdbwd", "jaxseq"))
    peers = [by.get((cell, size, "fwdbwd", p)) for p in JAX_PEERS]
    peers = [r for r in peers if r and r["median_ms"]]
    if not mine or not mine["median_ms"] or not peers:
        return None
    best = min(peers, key=lambda r: r["median_ms"])
    return (
        f"{cell} {size} {best['median_ms'] / mine['median_ms']:.2f}x "
        f"(vs {best['impl']})"
    )


def time_interleaved(fns, min_time, max_rounds):
    """Round-robin timing: one call of each implementation per round.

    The order rotates by one place each round, so every implementation follows
    every other equally often (a call that runs right after a peer that
    flushed the caches, e.g. PyTorch, is otherwise penalised every round).
    """
    clock = time.process_time if ARGS.clock == "cpu" else time.perf_counter
    samples = {k: [] for k in fns}
    names = list(fns)
    rounds = 0
    while rounds < max_rounds:
        shift = rounds % len(names)
        for name in names[shift:] + names[:shift]:
            fn, args = fns[name]
            t0 = clock()
            _block(fn(*args))
            samples[name].append(clock() - t0)
        rounds += 1
        if (
            rounds >= ARGS.min_rounds
            and min(sum(v) for v in samples.values()) >= min_time
        ):
            break
    return samples


def dot_peak():
    n = 2048
    a = jax.random.normal(jax.random.key(0), (n, n))
    f = jax.jit(lambda a, b: a @ b)
    _block(f(a, a))
    clock = time.process_time if ARGS.clock == "cpu" else time.perf_counter
    ts = []
    for _ in range(10):
        t0 = clock()
        _block(f(a, a))
        ts.append(clock() - t0)
    return 2 * n**3 / min(ts) / 1e9


def flops(cell_name, size, mode, bidir=False):
    B, T, I, H = SIZES[size]
    fwd = 2.0 * B * T * (I + H) * GATES[cell_name] * H * (2 if bidir else 1)
    return fwd if mode == "fwd" else 3.0 * fwd


# ------------------------------------------------------------------ main
def row(cell, size, mode, impl, samples, compile_s, peak, bidir=False):
    med, mn = float(np.median(samples)), float(np.min(samples))
    gflops = flops(cell, size, mode, bidir) / med / 1e9
    return {
        "cell": cell,
        "size": size + ("-bidir-masked" if bidir else ""),
        "mode": mode,
        "impl": impl,
        "median_ms": med * 1e3,
        "min_ms": mn * 1e3,
        "calls": len(samples),
        "gflops": gflops,
        "pct_peak": 100 * gflops / peak,
        "compile_s": compile_s,
    }


#: name of the untimed first place in every round (see run_case)
SLOT = "_slot"


def run_case(cell, size, modes, makers, peak, bidir=False):
    built, skipped = {}, []
    for name, make in makers.items():
        try:
            out = make()
        except ImportError as err:
            skipped.append(f"{name} ({err.name} not installed)")
            continue
        if out is not None:
            built[name] = out
    jax_names = [n for n in built if n != "torch"]
    if jax_names:
        # An unreported copy of the last JAX implementation (a peer: if compiling a
        # copy first helps anyone's compile time, it is not jaxseq's) is compiled,
        # warmed and timed first (then rotated like the rest). Measured here: in
        # a process that also runs PyTorch, whichever JAX function came first in
        # a case ran up to 20% slower than the same compiled program in any later place
        # (jaxseq impl="auto" and "scan" compile to identical HLO at S3 LSTM and
        # swapped their timings when their places were swapped; an untimed
        # function compiled and run beforehand but not timed did not help). The
        # slot, timed in every round but never reported, absorbs it.
        built = {SLOT: makers[jax_names[-1]]()} | built
    rows = []
    for mode in modes:
        fns, comp = {}, {}
        for name, (fwd, fwdbwd, args) in built.items():
            fn = fwd if mode == "fwd" else fwdbwd
            comp[name] = compile_and_warm(fn, args) if name != "torch" else None
            fns[name] = (fn, args)
        samples = time_interleaved(fns, ARGS.min_time, ARGS.max_rounds)
        case = [
            row(cell, size, mode, k, v, comp[k], peak, bidir)
            for k, v in samples.items()
            if k != SLOT
        ]
        peers = [r for r in case if not r["impl"].startswith("jaxseq")]
        best = min(peers, key=lambda r: r["median_ms"]) if peers else None
        for r in case:
            r["best_peer"] = best["impl"] if best else None
            r["ratio_to_best_peer"] = (
                r["median_ms"] / best["median_ms"] if best else None
            )
        rows += case
        line = " ".join(f"{r['impl']}={r['median_ms']:.2f}" for r in case)
        print(
            f"{cell:5s} {size}{'-bidir' if bidir else ''} {mode:6s} {line}", flush=True
        )
    return rows, skipped


def summary_lines(rows, meta):
    """The floors of the speed goals, checked on this run's rows."""
    by = {(r["cell"], r["size"], r["mode"], r["impl"]): r for r in rows}
    jx = [r for r in rows if r["impl"] == "jaxseq"]
    lines = [
        "## jaxseq against the fastest peer (this run)",
        "",
        "Ratio = jaxseq median / fastest peer's median (< 1: jaxseq is faster); "
        "compile = jaxseq's compile time / flax.linen's for the same layer.",
        "",
        "| cell | size | fwd ratio | fwd peer | fwd+bwd ratio | fwd+bwd peer "
        "| compile fwd+bwd vs linen |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = sorted({(r["cell"], r["size"]) for r in jx}, key=lambda k: (k[1], k[0]))
    for cell, size in keys:
        cells = []
        for mode in ("fwd", "fwdbwd"):
            r = by.get((cell, size, mode, "jaxseq"))
            ok = r and r["ratio_to_best_peer"]
            cells += (
                [f"{r['ratio_to_best_peer']:.2f}", r["best_peer"]] if ok else ["-", "-"]
            )
        r, lin = (
            by.get((cell, size, "fwdbwd", "jaxseq")),
            by.get((cell, size, "fwdbwd", "flax.linen")),
        )
        comp = (
            f"{r['compile_s'] / lin['compile_s']:.2f}"
            if r and lin and r["compile_s"] and lin["compile_s"]
            else "-"
        )
        lines.append(f"| {cell} | {size} | " + " | ".join(cells) + f" | {comp} |")
    ratios = [r["ratio_to_best_peer"] for r in jx if r["ratio_to_best_peer"]]

    def label(r):
        return (
            f"{r['cell']} {r['size']} {r['mode']} ({r['ratio_to_best_peer']:.2f} vs "
            f"{r['best_peer']})"
        )

    slower = [r for r in jx if r["ratio_to_best_peer"] and r["ratio_to_best_peer"] > 1]
    behind = [label(r) for r in slower]
    clear = [label(r) for r in slower if r["ratio_to_best_peer"] > 1.03]
    gated = [
        (c, s)
        for c in ("lstm", "gru")
        for s in ("S1", "S2")
        if _margin(by, c, s) is not None
    ]
    s2 = by.get(("lstm", "S2", "fwdbwd", "jaxseq"))
    lines += [
        "",
        "Floors:",
        "",
        f"- never slower than the fastest peer: {len(ratios) - len(behind)} of "
        f"{len(ratios)} cases; behind in: " + ("; ".join(behind) or "none") + ". "
        "Behind by more than 3% (about the spread of repeated runs): "
        + ("; ".join(clear) or "none")
        + ".",
        "- LSTM/GRU fwd+bwd at S1 and S2 at least 1.10x faster than the best JAX "
        f"peer ({', '.join(JAX_PEERS)}): "
        + (", ".join(_margin(by, c, s) for c, s in gated) or "not measured")
        + ".",
        "- S2 LSTM fwd+bwd at 70% of the dot peak: "
        + (f"{s2['pct_peak']:.0f}%." if s2 else "not measured."),
        "",
        f"Backend: {meta.get('backend', '?')} ({', '.join(meta.get('devices', []))}). "
        + (
            "No GPU was available to this run, so the GPU table of the speed goals "
            "(LSTM fwd+bwd against cuDNN at S2) is still to be measured."
            if meta.get("backend") == "cpu"
            else ""
        ),
        "",
        "Method: every implementation of a case runs in one process, one call "
        "each per round, the order rotated every round; an unreported copy of "
        "a peer takes the first place (see `run_case` for the measured "
        "first-place penalty it absorbs).",
        "",
        "Host memory: "
        + (
            "retained (`jaxseq.host.retain_memory()` before anything ran: freed "
            "buffers stay in the process for every implementation alike, so no "
            "call faults in fresh pages)."
            if meta.get("retain_memory")
            else "the default glibc allocator (every large buffer is a fresh mmap "
            "per call; `--retain-memory` measures the alternative)."
        ),
        "",
    ]
    return lines


def write_results(rows, meta):
    out = Path(ARGS.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "speed" + (f"_{ARGS.tag}" if ARGS.tag else "")
    (out / f"{stem}.json").write_text(
        json.dumps({"meta": meta, "rows": rows}, indent=1)
    )
    lines = [
        f"# Recurrent layer speed ({meta['cores']} core(s))",
        "",
        f"Machine: {meta['machine']}; jax {meta['jax']}; clock: {meta['clock']}; "
        "dot peak "
        f"{meta['dot_peak_gflops']:.0f} GFLOP/s (2048^3 `jnp.dot`, same cores, best of "
        "the start and the end of the run). "
        "Median and min per call in ms; ratio = median / fastest peer's median "
        "(< 1 is faster than every peer); GFLOP/s from the layer's matmul FLOPs "
        "(fwd+bwd = 3x fwd); compile = first call minus a steady call.",
        "",
    ]
    if meta["skipped"]:
        lines += ["Skipped: " + ", ".join(sorted(set(meta["skipped"]))), ""]
    lines += summary_lines(rows, meta)
    lines += [
        "## All timings",
        "",
        "| cell | size | mode | impl | median ms | min ms | ratio | GFLOP/s | % peak "
        "| compile s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r['ratio_to_best_peer']:.2f}" if r["ratio_to_best_peer"] else "-"
        comp = f"{r['compile_s']:.2f}" if r["compile_s"] is not None else "-"
        lines.append(
            f"| {r['cell']} | {r['size']} | {r['mode']} | {r['impl']} | "
            f"{r['median_ms']:.2f} | {r['min_ms']:.2f} | {ratio} | "
            f"{r['gflops']:.1f} | {r['pct_peak']:.0f} | {comp} |"
        )
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / (stem + '.md')} and .json")


def main():
    if ARGS.from_json:
        saved = json.loads(Path(ARGS.from_json).read_text())
        write_results(saved["rows"], saved["meta"])
        return
    impls = ARGS.impls.split(",")
    modes = ARGS.modes.split(",")
    peak = dot_peak()
    print(
        f"cores in use: {N_CORES}; dot peak {peak:.1f} GFLOP/s; backend "
        f"{jax.default_backend()}",
        flush=True,
    )
    rows, skipped = [], []
    for size in ARGS.sizes.split(","):
        for cell in ARGS.cells.split(","):
            r, s = run_case(cell, size, modes, factories(cell, size, impls), peak)
            rows += r
            skipped += s
    if ARGS.bidirectional:
        for cell in ARGS.cells.split(","):
            r, s = run_case(cell, "S1", modes, bidir_factories(cell, impls), peak, True)
            rows += r
            skipped += s
    # the peak once more at the end: a busy moment at the start would otherwise
    # inflate every "% peak" of the run (the best of both is the machine's peak)
    end_peak = dot_peak()
    if end_peak > peak:
        for r in rows:
            r["pct_peak"] *= peak / end_peak
        peak = end_peak
    meta = {
        "clock": ARGS.clock,
        "cores": N_CORES,
        "machine": describe(N_CORES),
        "jax": jax.__version__,
        "dot_peak_gflops": peak,
        "skipped": skipped,
        "argv": sys.argv[1:],
        "date": time.strftime("%Y-%m-%d"),
        "backend": jax.default_backend(),
        "retain_memory": RETAINED,
        "devices": [str(d) for d in jax.devices()],
    }
    write_results(rows, meta)


if __name__ == "__main__":
    main()
