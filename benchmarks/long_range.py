"""Long-range dependencies: Elman vs LSTM vs GRU, with and without gradient clipping.

The question (the seed's claim): repeated multiplication by the recurrent matrix
makes Elman's gradient vanish or explode over long lags, so Elman nets fail as the
dependency grows, while LSTM and GRU gates keep a path open. Measured here:

- the adding problem (``jaxseq.tasks.adding_problem``) at T = 50, 100, 200, 400:
  held-out MSE after a fixed training budget, against the trivial baseline 1/6
  (predict 1.0), for each cell with and without ``optax.clip_by_global_norm``;
- the copy task (``jaxseq.tasks.copy_task``) at a few delays: recall accuracy
  against chance ``1 / num_symbols`` (with clipping);
- gradient flow at initialisation and after training (``jaxseq.diagnostics``):
  ``||dL/dh_t||`` and ``||ds_T/ds_{T-k}||`` against the lag.

Every run: Adam (optionally chained after ``clip_by_global_norm``), a fresh batch
per step generated on device from ``fold_in(key, step)``, one seed, a fixed number
of steps; the metric is measured once on 1024 held-out examples.

Writes ``benchmarks/results/long_range.{md,json}`` and ``long_range_*.png``
(``--quick`` writes ``long_range_quick.*`` instead, for a smoke test).

    python benchmarks/long_range.py            # about 30-45 min on 2 CPU cores
    python benchmarks/long_range.py --quick    # about 2 min
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _machine import describe

import jaxseq
from jaxseq import diagnostics as dg
from jaxseq import tasks

CELLS = ("elman", "lstm", "gru")
RESULTS = Path(__file__).resolve().parent / "results"
SOLVED = 0.1  # "learned": metric within 10% of the baseline's MSE (R^2 > 0.9)
HAND_WRITTEN = "<!-- hand-written: kept by --report-only -->"


# --------------------------------------------------------------------------- model


def make_model(name: str, hidden: int, inputs: int, outputs: int, key: jax.Array):
    cell = getattr(jaxseq.cells, name)(hidden)
    k_cell, k_out = jax.random.split(key)
    w = jax.nn.initializers.glorot_uniform()(k_out, (hidden, outputs), jnp.float32)
    return cell, {"cell": cell.init(k_cell, inputs), "w": w, "b": jnp.zeros(outputs)}


def adding_loss(cell, params, xs, ys):
    carry, _ = jaxseq.rnn(cell, params["cell"], xs)
    pred = (carry.h @ params["w"] + params["b"])[:, 0]
    return jnp.mean(jnp.square(pred - ys))


def copy_logits(cell, params, xs):
    _, hs = jaxseq.rnn(cell, params["cell"], xs)
    return hs @ params["w"] + params["b"]


def copy_loss(cell, params, xs, ys):
    logits = copy_logits(cell, params, xs)
    return optax.softmax_cross_entropy_with_integer_labels(logits, ys).mean()


# --------------------------------------------------------------------------- tasks


class Task:
    """One task at one length: batches, loss, the held-out metric and baseline."""

    def __init__(self, kind: str, length: int, args: argparse.Namespace):
        self.kind, self.length, self.args = kind, length, args
        if kind == "adding":
            self.inputs, self.outputs = 2, 1
            self.baseline, self.metric_name = tasks.ADDING_BASELINE_MSE, "mse"
        else:
            self.inputs, self.outputs = args.symbols + 2, args.symbols + 1
            self.baseline = tasks.copy_chance_accuracy(args.symbols)
            self.metric_name = "recall_accuracy"

    def batch(self, key: jax.Array, n: int):
        if self.kind == "adding":
            return tasks.adding_problem(key, n, self.length)
        a = self.args
        return tasks.copy_task(
            key, n, self.length, num_symbols=a.symbols, copy_length=a.copy_length
        )

    def loss(self, cell, params, xs, ys):
        fn = adding_loss if self.kind == "adding" else copy_loss
        return fn(cell, params, xs, ys)

    def metric(self, cell, params, xs, ys) -> float:
        if self.kind == "adding":
            return float(jax.jit(lambda p: adding_loss(cell, p, xs, ys))(params))
        k = self.args.copy_length
        logits = jax.jit(lambda p: copy_logits(cell, p, xs))(params)
        return float(jnp.mean(logits[:, -k:].argmax(-1) == ys[:, -k:]))

    def solved(self, metric: float) -> bool:
        if not math.isfinite(metric):
            return False
        if self.kind == "adding":
            return metric < SOLVED * self.baseline
        return metric > 0.9


# --------------------------------------------------------------------------- train


def train(task: Task, name: str, clip: bool, args, log) -> dict[str, Any]:
    key = jax.random.key(args.seed)
    k_init, k_data, k_eval = jax.random.split(key, 3)
    cell, params = make_model(name, args.hidden, task.inputs, task.outputs, k_init)
    init_params = params
    adam = optax.adam(args.lr)
    opt = optax.chain(optax.clip_by_global_norm(args.clip), adam) if clip else adam
    state = opt.init(params)

    @jax.jit
    def step(params, state, k):
        xs, ys = task.batch(k, args.batch)
        loss, grads = jax.value_and_grad(lambda p: task.loss(cell, p, xs, ys))(params)
        updates, state = opt.update(grads, state, params)
        return (
            optax.apply_updates(params, updates),
            state,
            loss,
            optax.global_norm(grads),
        )

    tag = f"{task.kind} T={task.length} {name} {'clip' if clip else 'no-clip'}"
    start, losses, gnorms = time.perf_counter(), [], []
    for i in range(args.steps):
        params, state, loss, gnorm = step(params, state, jax.random.fold_in(k_data, i))
        if (i + 1) % args.log_every == 0 or i + 1 == args.steps:
            losses.append(float(loss))
            gnorms.append(float(gnorm))
            elapsed = time.perf_counter() - start
            log(
                f"  [{tag}] step {i + 1}/{args.steps} loss {losses[-1]:.4f} "
                f"|grad| {gnorms[-1]:.3g} ({elapsed:.0f}s)"
            )
    xs, ys = task.batch(k_eval, args.eval_size)
    metric = task.metric(cell, params, xs, ys)
    seconds = time.perf_counter() - start
    row = {
        "task": task.kind,
        "T": task.length,
        "cell": name,
        "clip": clip,
        "metric": metric if math.isfinite(metric) else None,
        "baseline": task.baseline,
        "metric_name": task.metric_name,
        "solved": task.solved(metric),
        "diverged": not math.isfinite(metric),
        "final_train_loss": losses[-1] if math.isfinite(losses[-1]) else None,
        "max_logged_grad_norm": _finite_max(gnorms),
        "steps": args.steps,
        "seconds": round(seconds, 1),
    }
    log(
        f"{tag}: {task.metric_name} {metric:.4f} (baseline {task.baseline:.4f}) "
        f"in {seconds:.0f}s"
    )
    return {"row": row, "cell": cell, "init": init_params, "trained": params}


def _finite_max(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return max(finite) if finite else None


# ---------------------------------------------------------------------- diagnose


def gradient_flow(task: Task, cell, params, args) -> dict[str, np.ndarray]:
    """``||dL/dh_t||`` by lag ``[N, T]`` and ``log10 ||ds_T/ds_{T-k}||`` ``[M, T+1]``
    on held-out adding examples."""
    xs, ys = task.batch(jax.random.key(args.seed + 1), args.flow_examples)

    def loss(carry, _):
        pred = (carry.h @ params["w"] + params["b"])[:, 0]
        return jnp.mean(jnp.square(pred - ys))

    grads = jax.jit(lambda p: dg.hidden_grad_norms(cell, p, xs, loss))(params["cell"])
    xj = xs[: args.jacobian_examples]
    jac = jax.jit(lambda p: dg.jacobian_norms(cell, p, xj, log10=True))(params["cell"])
    return {"grad": np.asarray(dg.by_lag(grads)), "jac_log10": np.asarray(jac)}


def _geo_mean(rows: np.ndarray, lag: int, log10: bool) -> float | None:
    v = rows[:, lag].astype(np.float64)
    v = v if log10 else np.log10(np.where(v > 0, v, np.nan))
    v = v[np.isfinite(v)]
    return round(float(v.mean()), 2) if v.size else None


def flow_summary(t: int, name: str, stage: str, flow: dict) -> dict[str, Any]:
    return {
        "T": t,
        "cell": name,
        "stage": stage,
        "log10_grad_last": _geo_mean(flow["grad"], 0, False),
        "log10_grad_first": _geo_mean(flow["grad"], t - 1, False),
        "log10_jacobian_lag_T": _geo_mean(flow["jac_log10"], t, True),
    }


# -------------------------------------------------------------------------- plots


def _axes_grid(rows: int, cols: int, size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)


STYLES = {"elman": {"color": "C3"}, "lstm": {"color": "C0"}, "gru": {"color": "C2"}}


def plot_flow(t: int, flows: dict, path: Path) -> None:
    stages = [
        s
        for s in ("init", "trained clip", "trained no-clip")
        if any(stage == s for _, stage in flows)
    ]
    fig, axes = _axes_grid(2, len(stages), (5 * len(stages), 8))
    for j, stage in enumerate(stages):
        grads = {n: flows[(n, stage)]["grad"] for n in CELLS if (n, stage) in flows}
        jacs = {n: flows[(n, stage)]["jac_log10"] for n in CELLS if (n, stage) in flows}
        title = f"adding T={t}, {stage}"
        dg.plot_lag_curves(
            grads, ax=axes[0, j], styles=STYLES, title=f"{title}: ||dL/dh_t||"
        )
        dg.plot_lag_curves(
            jacs,
            ax=axes[1, j],
            styles=STYLES,
            log10=True,
            ylabel="||ds_T / ds_(T-k)|| (Frobenius)",
            title=f"{title}: state Jacobian",
        )
    fig.savefig(path, dpi=110)


def plot_metric(rows: list[dict], kind: str, path: Path, baseline: float) -> None:
    fig, axes = _axes_grid(1, 1, (6.4, 4.4))
    ax = axes[0, 0]
    for name in CELLS:
        for clip, style in [(True, "-"), (False, "--")]:
            pts = [
                (r["T"], r["metric"])
                for r in rows
                if (r["task"], r["cell"], r["clip"]) == (kind, name, clip)
            ]
            if not pts:
                continue
            ts, ms = zip(*pts, strict=True)
            ms = [np.nan if m is None else m for m in ms]
            label = f"{name} {'clip' if clip else 'no clip'}"
            ax.plot(ts, ms, style, marker="o", label=label, **STYLES[name])
    ax.axhline(baseline, color="0.3", lw=1, ls=":", label="trivial baseline")
    ax.set_xscale("log", base=2)
    ts = sorted({r["T"] for r in rows if r["task"] == kind})
    ax.set_xticks(ts, [str(t) for t in ts])
    ax.minorticks_off()
    ax.set_xlabel("T (sequence length)" if kind == "adding" else "T (delay)")
    ax.set_ylabel("held-out MSE" if kind == "adding" else "recall accuracy")
    if kind == "adding":
        ax.set_yscale("log")
    ax.set_title(f"{kind}: after a fixed training budget")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=110)


def plot_spectra(models: dict, t: int, path: Path) -> None:
    blocks = {"elman": "W", "lstm": "g", "gru": "n"}
    names = [n for n in CELLS if n in models]
    fig, axes = _axes_grid(1, len(names), (5 * len(names), 5))
    for ax, name in zip(axes[0], names, strict=True):
        cell, block = models[name]["cell"], blocks[name]
        eig = {
            stage: dg.recurrent_spectrum(cell, p["cell"])[block].eigenvalues
            for stage, p in models[name]["params"].items()
        }
        dg.plot_eigenvalues(eig, ax=ax, title=f"{name} ({blocks[name]} block), T={t}")
    fig.savefig(path, dpi=110)


# ------------------------------------------------------------------------ report


def markdown(result: dict, prefix: str) -> str:
    c = result["config"]
    lines = [
        "# Long-range dependencies: Elman vs LSTM vs GRU",
        "",
        "Generated by `benchmarks/long_range.py"
        + (" " + c["argv"] if c.get("argv") else "")
        + "`"
        + f" on {c['machine']} "
        f"({c['backend']}, jax {c['jax']}); total {c['minutes']:.1f} min.",
        "",
        f"Setup: hidden size {c['hidden']}, batch {c['batch']}, {c['steps']} Adam "
        f"steps (lr {c['lr']}), clipping `clip_by_global_norm({c['clip']})` chained "
        f"before Adam where `clip` is true, one seed ({c['seed']}), a fresh batch "
        f"per step, metric on {c['eval_size']} held-out examples. Adding problem: "
        "MSE, trivial baseline 1/6 (predict 1.0); 'learned' means MSE below "
        f"{SOLVED:g} x baseline. Copy task: accuracy on the {c['copy_length']} recall "
        f"steps over {c['symbols']} symbols, chance {1 / c['symbols']:.3f}; "
        "'learned' means accuracy above 0.9. 'max logged grad norm' is the largest "
        "global gradient norm (before clipping) among those logged every "
        f"{c['log_every']} steps.",
        "",
        "| task | T | cell | clip | metric | baseline | metric / baseline | "
        "learned | max logged grad norm | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        m = "diverged (NaN)" if r["metric"] is None else f"{r['metric']:.4f}"
        ratio = "-" if r["metric"] is None else f"{r['metric'] / r['baseline']:.3f}"
        g = (
            "-"
            if r["max_logged_grad_norm"] is None
            else f"{r['max_logged_grad_norm']:.3g}"
        )
        lines.append(
            f"| {r['task']} | {r['T']} | {r['cell']} | {r['clip']} | {m} | "
            f"{r['baseline']:.4f} | {ratio} | {'yes' if r['solved'] else 'no'} | "
            f"{g} | {r['seconds']} |"
        )
    lines += [
        "",
        "## Gradient flow (adding problem)",
        "",
        "Geometric means over held-out examples of `||dL/dh_t||` at the last step "
        "and at the first step (lag T-1), and of the state Jacobian "
        "`||ds_T/ds_0||` (Frobenius, lag T), as log10; empty where every value "
        "underflowed to 0.",
        "",
        "| T | cell | stage | log10 dL/dh (last) | log10 dL/dh (first) | "
        "log10 ds_T/ds_0 |",
        "|---|---|---|---|---|---|",
    ]
    for s in result["flow"]:
        v = [s[k] for k in ("log10_grad_last", "log10_grad_first")]
        v += [s["log10_jacobian_lag_T"]]
        v = ["0 (underflow)" if x is None else x for x in v]
        lines.append(
            f"| {s['T']} | {s['cell']} | {s['stage']} | {v[0]} | {v[1]} | {v[2]} |"
        )
    lines += ["", "## Figures", ""]
    lines += [f"- `{p}`" for p in result["figures"]]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------- main


QUICK = {
    "lengths": [20, 50],
    "copy_delays": [10],
    "hidden": 32,
    "batch": 32,
    "steps": 150,
    "log_every": 50,
    "eval_size": 256,
    "flow_examples": 8,
    "jacobian_examples": 2,
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a 2-minute smoke run")
    p.add_argument("--lengths", type=int, nargs="+", default=[50, 100, 200, 400])
    p.add_argument("--copy-delays", type=int, nargs="*", default=[50, 100])
    p.add_argument("--cells", nargs="+", default=list(CELLS), choices=CELLS)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--clip", type=float, default=1.0, help="global-norm threshold")
    p.add_argument(
        "--clip-modes",
        choices=["both", "clip", "none"],
        default="both",
        help="adding-problem runs with clipping, without, or both",
    )
    p.add_argument("--symbols", type=int, default=8)
    p.add_argument("--copy-length", type=int, default=10)
    p.add_argument("--eval-size", type=int, default=1024)
    p.add_argument("--flow-examples", type=int, default=32)
    p.add_argument("--jacobian-examples", type=int, default=4)
    p.add_argument("--log-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--name", default=None, help="output prefix (default long_range)")
    p.add_argument(
        "--report-only",
        type=Path,
        default=None,
        metavar="JSON",
        help="only rewrite the markdown table from a results .json",
    )
    if p.parse_known_args(argv)[0].quick:  # smaller defaults; explicit flags win
        p.set_defaults(**QUICK)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.report_only is not None:  # rewrite the .md from an existing .json
        result = json.loads(args.report_only.read_text())
        prefix, out = args.report_only.stem, args.report_only.parent
        c = result["config"]
        baselines = {"adding": tasks.ADDING_BASELINE_MSE, "copy": 1 / c["symbols"]}
        for kind, baseline in baselines.items():
            if len({r["T"] for r in result["rows"] if r["task"] == kind}) > 1:
                plot_metric(
                    result["rows"], kind, out / f"{prefix}_{kind}.png", baseline
                )
        md, kept = out / f"{prefix}.md", ""
        if md.exists() and HAND_WRITTEN in md.read_text():
            kept = "\n" + HAND_WRITTEN + md.read_text().split(HAND_WRITTEN, 1)[1]
        md.write_text(markdown(result, prefix) + kept)
        print(f"wrote {out / prefix}.md and the metric figures")
        return 0
    prefix = args.name or ("long_range_quick" if args.quick else "long_range")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    log = lambda msg: print(f"[{time.perf_counter() - start:6.0f}s] {msg}", flush=True)
    log(
        f"long_range: cells {args.cells}, adding T {args.lengths}, copy delays "
        f"{args.copy_delays}, {args.steps} steps, backend {jax.default_backend()}"
    )
    rows, flow, figures = [], [], []
    for t in args.lengths:
        task, flows, models = Task("adding", t, args), {}, {}
        for name in args.cells:
            modes = {"both": (True, False), "clip": (True,), "none": (False,)}
            for clip in modes[args.clip_modes]:
                run = train(task, name, clip, args, log)
                rows.append(run["row"])
                first = clip or args.clip_modes == "none"
                stages = (["init"] if first else []) + [
                    f"trained {'clip' if clip else 'no-clip'}"
                ]
                for stage in stages:
                    p = run["init"] if stage == "init" else run["trained"]
                    flows[(name, stage)] = gradient_flow(task, run["cell"], p, args)
                    flow.append(flow_summary(t, name, stage, flows[(name, stage)]))
                if first:
                    stages_p = {"init": run["init"], "trained": run["trained"]}
                    models[name] = {"cell": run["cell"], "params": stages_p}
        path = args.out / f"{prefix}_flow_T{t}.png"
        plot_flow(t, flows, path)
        figures.append(path.name)
        if t == args.lengths[min(1, len(args.lengths) - 1)]:
            path = args.out / f"{prefix}_eigenvalues_T{t}.png"
            plot_spectra(models, t, path)
            figures.append(path.name)
        log(f"adding T={t} done; figures so far: {figures}")
    for d in args.copy_delays:
        task = Task("copy", d, args)
        for name in args.cells:
            rows.append(train(task, name, True, args, log)["row"])
    baselines = {"adding": tasks.ADDING_BASELINE_MSE, "copy": 1 / args.symbols}
    for kind, baseline in baselines.items():
        if len({r["T"] for r in rows if r["task"] == kind}) > 1:
            path = args.out / f"{prefix}_{kind}.png"
            plot_metric(rows, kind, path, baseline)
            figures.append(path.name)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    config["argv"] = " ".join(sys.argv[1:] if argv is None else argv)
    config |= {
        "machine": f"{describe()}, "
        f"{jax.device_count()} {jax.default_backend()} device(s)",
        "backend": jax.default_backend(),
        "jax": jax.__version__,
        "optax": optax.__version__,
        "minutes": (time.perf_counter() - start) / 60,
    }
    result = {"rows": rows, "flow": flow, "config": config, "figures": figures}
    (args.out / f"{prefix}.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / f"{prefix}.md").write_text(markdown(result, prefix))
    log(f"wrote {args.out / prefix}.{{md,json}} and {len(figures)} figures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
