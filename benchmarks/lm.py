"""Language models on IMDb reviews: jaxseq against PyTorch's word_language_model
recipe, more jaxseq models, a Kneser-Ney 3-gram floor, and generation speed.

Corpus (a fixed slice, the same for every row): the 25,000 *training* reviews
of the real archive (``../shared/data/aclImdb_labeled.tar.gz`` or
``--archive``) in the order of ``numpy.random.default_rng(0).permutation``;
whole reviews are taken in that order into the training stream until it holds
``--train-tokens`` words, then the validation stream (``train / 10`` words),
then the test stream (``train / 8``): 2M / 200k / 250k at the full size, about
WikiText-2's. Word level: ``jaxseq.text.word_tokenizer()`` (lower case, HTML
stripped), a vocabulary of the 10,000 most frequent training words plus
``[UNK]``, ``<eos>`` (and jaxseq's padding id 0, never read): ``V = 10,003``;
each review is preceded by ``<eos>`` (``jaxseq.lm.encode_stream``). Character
level: the same review order, ``char_tokenizer()``, ``--char-tokens``
characters of training text (``/10`` and ``/8`` for validation and test), the
characters seen at least 5 times in training.

Rows (test perplexity of the weights with the best validation loss):

- ``lstm (torch)``: ``benchmarks/_torch_lm.py``, PyTorch's recipe: 2-layer
  LSTM, embedding = hidden = 200, bptt 35, batch 20, SGD lr 20 divided by 4 when
  the validation loss does not improve, gradient norm clipped at 0.25, dropout
  0.2, tied weights; evaluation batch 10;
- ``lstm (jaxseq)``: the same recipe with :func:`jaxseq.lm.rnn_lm` and
  :func:`jaxseq.lm.make_stream_train_step` (optax ``clip_by_global_norm(0.25)``
  + ``sgd``), initialised as PyTorch's (``init=jaxseq.lm.TorchInit()``, every
  recurrent row); no carry resets at document starts (as PyTorch's recipe);
- ``gru``, ``elman`` (at lr 5: a tanh net is less forgiving of lr 20), untied
  ``lstm``; the causal ``transformer`` (:func:`jaxseq.lm.transformer_lm`, width
  200, 4 heads, feed-forward 400, 2 blocks, window 35, tied: about the LSTM's
  parameter count; Adam 1e-3, clip 0.25, as SGD at lr 20 diverges);
- ``lstm`` at character level (bits per character);
- ``kn3``: interpolated modified Kneser-Ney 3-gram (:mod:`jaxseq.lm.ngram`).

Speed: training tokens/s on one core, each model in its own process:
``torch.set_num_threads(1)``; JAX with ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1`` and ``taskset`` to one CPU; compile time
(``lower().compile()`` of the step) excluded and reported apart. jaxseq trains
with :func:`jaxseq.lm.training.fit_stream`'s loop: ``--chunks-per-call``
chunks per compiled call (default: ``fit_stream``'s), the rest of an epoch
one chunk a call. Tokens/s are given by wall time and by the worker's CPU time
(``time.process_time``, which other processes on a shared machine distort
less). Generation
tokens/s at batch 1, 16 and 128 (2-layer tied LSTM, sampling at temperature 1,
random prompts of 10 tokens, random weights: speed does not depend on them):
jaxseq's compiled loop (:func:`jaxseq.lm.make_generator`, compile excluded)
against a per-token Python loop in the style of PyTorch's ``generate.py`` (one
jitted step per token, the token brought to the host and fed back) and
PyTorch's own ``generate.py`` loop.

Sizes (``--jobs 2`` by default: two workers at a time, one per core):

- ``--size full`` (the default: 2M words, 2M characters, 1 epoch, about
  WikiText-2's size): measured 41.8 minutes of wall time on 2 cores (AMD EPYC Zen 5,
  shared with other jobs, 1-minute load 0.5 at the start and 5.4 at the
  end; ``benchmarks/results/lm.md``). Per-row wall times of that run: jaxseq
  LSTM 327 s, PyTorch LSTM 723 s, GRU 640 s, Elman 390 s, untied LSTM 930 s,
  character LSTM 216 s, then the transformer, the Kneser-Ney counts and the
  generation table. The 90-minute goal holds with room for a loaded machine.
- ``--size 1m`` (1M words, 1M characters; the PyTorch / jaxseq tied-LSTM pair
  2 epochs, the other rows 1): about the same core-seconds as ``full``
  (2 x 2 x 1.1M + 4 x 1.1M word-tokens); not run.
- ``--size reduced`` (150k words, 150k characters, 2 epochs): the size run
  before the full one (``benchmarks/results/lm_reduced.md``).
- ``--quick`` (20k words; a smoke test in a few minutes).

Writes ``benchmarks/results/lm.md`` and ``lm.json`` at the full size,
``lm_<size>.md`` / ``.json`` at the others (``lm_quick.*`` for ``--quick``).

Usage::

    python benchmarks/lm.py [--size full|1m|reduced] [--quick] [--epochs E]
        [--train-tokens N] [--char-tokens N] [--jobs 1|2] [--archive PATH]
        [--other-epochs E] [--workdir DIR] [--keep-from JSON]
        [--models torch,lstm,gru,...] [--chunks-per-call K]

``--other-epochs`` trains the rows other than the PyTorch / jaxseq tied-LSTM
pair for fewer epochs (each row's recipe column says how many);
``--workdir`` keeps the prepared data and each finished worker's result, so an
interrupted run started again with the same arguments reuses them;
``--keep-from lm.json`` copies an earlier result's rows of the models not run
now (marked "earlier run").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "data" / "aclImdb_labeled.tar.gz"
RESULTS = ROOT / "benchmarks" / "results"
SIZES = {
    "1m": {
        "train_tokens": 1_000_000,
        "char_tokens": 1_000_000,
        "epochs": 2,
        "other_epochs": 1,
    },
    "full": {"train_tokens": 2_000_000, "char_tokens": 2_000_000, "epochs": 1},
    "reduced": {"train_tokens": 150_000, "char_tokens": 150_000, "epochs": 2},
    "quick": {"train_tokens": 20_000, "char_tokens": 20_000, "epochs": 1},
}
RECIPE = {
    "batch": 20,
    "eval_batch": 10,
    "bptt": 35,
    "size": 200,
    "layers": 2,
    "dropout": 0.2,
    "clip": 0.25,
    "lr": 20.0,
}
ONE_CORE_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


# ---------------------------------------------------------------- data


def prepare(archive: Path, train_tokens: int, char_tokens: int, path: Path) -> dict:
    """Token ids of both levels into ``path`` (npz); returns a summary."""
    from jaxseq import text
    from jaxseq.data import imdb
    from jaxseq.lm import encode_stream, lm_vocabulary

    reviews = imdb.load_archive(archive, "train").texts
    order = np.random.default_rng(0).permutation(len(reviews))
    docs = [reviews[i] for i in order]
    out: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for level, tok, budget, vocab_opts in (
        ("word", text.word_tokenizer(), train_tokens, {"max_size": 10_003}),
        ("char", text.char_tokenizer(), char_tokens, {"min_freq": 5}),
    ):
        targets = [budget, budget // 10, budget // 8]
        splits: list[list[str]] = [[], [], []]
        k, part, count = 0, 0, 0
        while part < 3:
            if k == len(docs):
                raise ValueError(
                    f"--train-tokens: {budget} is more than the reviews hold"
                )
            splits[part].append(docs[k])
            count += len(tok(docs[k])) + 1
            k += 1
            if count >= targets[part]:
                part, count = part + 1, 0
        vocab = lm_vocabulary(splits[0], tok, **vocab_opts)
        for name, texts in zip(("train", "valid", "test"), splits, strict=True):
            ids = encode_stream(vocab, texts).ids
            out[f"{level}_{name}"] = ids
            summary[f"{level}_{name}_tokens"] = int(ids.shape[0])
            summary[f"{level}_{name}_reviews"] = len(texts)
        out[f"{level}_vocab"] = np.array(len(vocab))
        summary[f"{level}_vocab"] = len(vocab)
        unk = np.mean(out[f"{level}_test"] == 1)
        summary[f"{level}_test_unk_rate"] = round(float(unk), 4)
    np.savez(path, **out)
    return summary


# ---------------------------------------------------------------- workers


def _no_resets(c):
    from jaxseq.lm import Chunks

    return Chunks(c.inputs, c.targets, None)


def _chunk(c, i):
    from jaxseq.lm import Chunks

    return Chunks(c.inputs[i], c.targets[i], None)


def jax_train(spec: dict, data: dict) -> dict:
    """One jaxseq model trained with the recipe (runs in a pinned subprocess)."""
    import jax
    import optax

    from jaxseq import lm
    from jaxseq.lm.stateful import (
        CHUNKS_PER_CALL,
        call_plan,
        chunk_group,
        fresh_carry,
        make_stream_train_steps,
        run_span,
    )

    level = spec["level"]
    v = int(data[f"{level}_vocab"])
    r = RECIPE
    if spec["model"] == "transformer":
        model = lm.transformer_lm(
            v,
            dim=r["size"],
            heads=4,
            ffn=2 * r["size"],
            blocks=2,
            context=r["bptt"],
            tied=spec["tied"],
            dropout=r["dropout"],
        )
    else:
        model = lm.rnn_lm(
            v,
            cell=spec["model"],
            embed_dim=r["size"],
            hidden=r["size"],
            num_layers=r["layers"],
            tied=spec["tied"],
            dropout=r["dropout"],
            init=lm.TorchInit() if spec.get("init") == "torch" else None,
        )

    def stream(name, batch):
        ids = data[f"{level}_{name}"]
        s = lm.TokenStream(ids, np.zeros(ids.shape, bool))
        return _no_resets(lm.chunk_stream(s, batch, r["bptt"], vocab_size=v))

    train, valid, test = (
        stream("train", r["batch"]),
        stream("valid", r["eval_batch"]),
        stream("test", r["eval_batch"]),
    )
    inner = optax.inject_hyperparams(getattr(optax, spec["optimizer"]))
    opt = optax.chain(
        optax.clip_by_global_norm(r["clip"]), inner(learning_rate=spec["lr"])
    )
    key = jax.random.key(spec.get("seed", 0))
    params = model.init(key)
    n_params = sum(int(np.size(x)) for x in jax.tree.leaves(params))
    state = lm.init_stream_state(model, params, opt, jax.random.key(1), r["batch"])
    # the training loop of jaxseq.lm.fit_stream: chunks_per_call chunks per
    # compiled call (make_stream_train_steps), the rest of an epoch one a call
    per_call = spec.get("chunks_per_call", CHUNKS_PER_CALL)
    tic = time.perf_counter()
    step = (
        lm.make_stream_train_step(model, opt).lower(state, _chunk(train, 0)).compile()
    )
    steps = step
    if per_call > 1:
        steps = (
            make_stream_train_steps(model, opt)
            .lower(state, chunk_group(train, 0, per_call))
            .compile()
        )
    compile_seconds = time.perf_counter() - tic
    eval_step = lm.make_stream_eval_step(model)

    def evaluate(p, chunks):
        carry = model.init_carry(p, r["eval_batch"])
        total = count = 0.0
        for i in range(chunks.inputs.shape[0]):
            carry, m = eval_step(p, carry, _chunk(chunks, i))
            total, count = total + float(m["loss"]), count + float(m["count"])
        return total / count

    lr, best, best_params = spec["lr"], math.inf, None
    train_seconds, train_tokens, epochs = 0.0, 0, []
    train_cpu_seconds = 0.0
    for epoch in range(spec["epochs"]):
        state = state._replace(carry=fresh_carry(model, state.train.params, r["batch"]))
        tic, tic_cpu = time.perf_counter(), time.process_time()
        finite = True
        for a, b in call_plan(0, train.inputs.shape[0], per_call):
            state, per_step = run_span(step, steps, state, train, a, b)
            finite = finite and all(bool(m["finite"]) for m in per_step)
            train_tokens += int(np.size(train.targets[a:b]))
        jax.block_until_ready(state)
        train_seconds += time.perf_counter() - tic
        train_cpu_seconds += time.process_time() - tic_cpu
        if not finite:
            raise FloatingPointError(f"{spec}: non-finite loss")
        val = evaluate(state.train.params, valid)
        epochs.append({"epoch": epoch + 1, "lr": lr, "valid_ppl": math.exp(val)})
        if val < best:
            best = val
            best_params = jax.tree.map(lambda a: np.array(a), state.train.params)
        else:
            lr /= 4.0
            clip_state, hp = state.train.opt_state
            hp.hyperparams["learning_rate"] = jax.numpy.asarray(lr, np.float32)
    return {
        "valid_loss": best,
        "test_loss": evaluate(best_params, test),
        "params": n_params,
        "train_seconds": train_seconds,
        "train_cpu_seconds": train_cpu_seconds,
        "train_tokens": train_tokens,
        "compile_seconds": compile_seconds,
        "epochs": epochs,
    }


def jax_generate(spec: dict, data: dict) -> list[dict]:
    """Generation tokens/s: the compiled loop and a per-token Python loop."""
    import jax
    import jax.numpy as jnp

    from jaxseq import lm

    v = int(data["word_vocab"])
    model = lm.rnn_lm(
        v, cell="lstm", embed_dim=200, hidden=200, num_layers=2, tied=True
    )
    params = model.init(jax.random.key(0))
    cfg = lm.sampling(temperature=1.0)
    rows = []

    @jax.jit
    def one_step(params, carry, tok, key):
        carry, logits = model.apply(params, carry, tok[:, None])
        return carry, lm.next_token(key, logits[:, 0], cfg)

    for batch in spec["batches"]:
        prompts = jax.random.randint(jax.random.key(batch), (batch, 10), 3, v)
        lengths = jnp.full((batch,), 10, jnp.int32)
        n = spec["tokens"]
        gen = lm.make_generator(model, max_new_tokens=n, sampling=cfg)
        tic = time.perf_counter()
        jax.block_until_ready(gen(params, jax.random.key(1), prompts, lengths))
        compile_s = time.perf_counter() - tic
        best = cpu = math.inf
        for rep in range(2):
            tic, tic_cpu = time.perf_counter(), time.process_time()
            jax.block_until_ready(
                gen(params, jax.random.key(2 + rep), prompts, lengths)
            )
            best = min(best, time.perf_counter() - tic)
            cpu = min(cpu, time.process_time() - tic_cpu)
        rows.append(
            {
                "impl": "jaxseq",
                "batch": batch,
                "tokens": n * batch,
                "seconds": best,
                "tokens_per_s": n * batch / best,
                "cpu_seconds": cpu,
                "tokens_per_cpu_s": n * batch / cpu,
                "compile_seconds": compile_s,
            }
        )
        # generate.py style: one call per token, the token read on the host
        m = spec["python_tokens"]
        carry, logits = model.apply(params, model.init_carry(params, batch), prompts)
        tok = lm.next_token(jax.random.key(3), logits[:, -1], cfg)
        carry, tok = one_step(params, carry, tok, jax.random.key(4))  # compile
        keys = jax.random.split(jax.random.key(5), m)
        tic, tic_cpu = time.perf_counter(), time.process_time()
        for i in range(m):
            carry, tok = one_step(params, carry, tok, keys[i])
            tok = jnp.asarray(np.asarray(tok))  # to the host and back, per token
        sec, cpu = time.perf_counter() - tic, time.process_time() - tic_cpu
        rows.append(
            {
                "impl": "python_loop",
                "batch": batch,
                "tokens": m * batch,
                "seconds": sec,
                "tokens_per_s": m * batch / sec,
                "cpu_seconds": cpu,
                "tokens_per_cpu_s": m * batch / cpu,
            }
        )
    # the transformer (window 35, as trained here) without and with the KV cache
    tf = lm.transformer_lm(v, dim=200, heads=4, ffn=400, blocks=2, context=35)
    tf_params = tf.init(jax.random.key(0))
    for name, model_ in (
        ("transformer_window", tf),
        ("transformer_kv_cache", lm.cached(tf)),
    ):
        for batch in (1, 16):
            prompts = jax.random.randint(jax.random.key(batch), (batch, 10), 3, v)
            lengths = jnp.full((batch,), 10, jnp.int32)
            n = spec["tokens"]
            gen = lm.make_generator(model_, max_new_tokens=n, sampling=cfg)
            jax.block_until_ready(gen(tf_params, jax.random.key(1), prompts, lengths))
            tic, tic_cpu = time.perf_counter(), time.process_time()
            jax.block_until_ready(gen(tf_params, jax.random.key(2), prompts, lengths))
            sec, cpu = time.perf_counter() - tic, time.process_time() - tic_cpu
            rows.append(
                {
                    "impl": name,
                    "batch": batch,
                    "tokens": n * batch,
                    "seconds": sec,
                    "tokens_per_s": n * batch / sec,
                    "cpu_seconds": cpu,
                    "tokens_per_cpu_s": n * batch / cpu,
                }
            )
    return rows


def worker(argv: list[str]) -> None:
    data_path, spec, out = argv[0], json.loads(argv[1]), argv[2]
    data = dict(np.load(data_path))
    result = jax_generate(spec, data) if spec.get("generate") else jax_train(spec, data)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f)


def run_pinned(impl: str, spec: dict, data_path: Path, tmp: Path, cpu: int) -> Any:
    """Run one worker in a subprocess on one core; returns its JSON."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    out = tmp / f"out_{digest[:16]}_{impl}.json"
    if out.exists():  # a finished worker of an interrupted run (--workdir)
        print(f"  {impl} {spec.get('model', 'generate')}: reused {out}", flush=True)
        return json.loads(out.read_text(encoding="utf-8"))
    if impl == "torch":
        cmd = [sys.executable, str(ROOT / "benchmarks" / "_torch_lm.py")]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    cmd += [str(data_path), json.dumps(spec), str(out)]
    env = dict(
        os.environ,
        XLA_FLAGS=ONE_CORE_XLA,
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        JAX_PLATFORMS="cpu",
    )
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", str(cpu % (os.cpu_count() or 1)), *cmd]
    tic = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    print(
        f"  {impl} {spec.get('model', 'generate')} {spec.get('level', '')}: "
        f"{time.perf_counter() - tic:.0f} s",
        flush=True,
    )
    return json.loads(out.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- report


def _row(name: str, impl: str, level: str, recipe: str, res: dict) -> dict:
    bpc = res["test_loss"] / math.log(2) if level == "char" else None
    tps = (
        res["train_tokens"] / res["train_seconds"] if res.get("train_seconds") else None
    )
    cpu = res.get("train_cpu_seconds")
    return {
        "model": name,
        "level": level,
        "impl": impl,
        "recipe": recipe,
        "params": res["params"],
        "valid_ppl": math.exp(res["valid_loss"]),
        "test_ppl": math.exp(res["test_loss"]),
        "test_bpc": bpc,
        "train_tokens_per_s": tps,
        # the worker's CPU time (all its threads, on its one core): less
        # distorted than wall time by other processes on the machine
        "train_tokens_per_cpu_s": res["train_tokens"] / cpu if cpu else None,
        "compile_seconds": res.get("compile_seconds"),
        "train_seconds": res.get("train_seconds"),
        "epochs": res.get("epochs"),
    }


def _keep(earlier: dict, rows: list, gen: list) -> tuple[list, list]:
    """Rows and generation entries of an earlier result not produced by this
    run, appended (rows marked in their recipe)."""
    done = {(r["model"], r["impl"], r["level"]) for r in rows}
    mark = " (earlier run)"
    kept = [
        {**r, "recipe": r["recipe"].removesuffix(mark) + mark}
        for r in earlier["rows"]
        if (r["model"], r["impl"], r["level"]) not in done
    ]
    return rows + kept, gen or earlier.get("generation", [])


def _fmt(x: Any, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def write(result: dict, stem: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    rows, gen, d = result["rows"], result["generation"], result["data"]
    lines = [
        f"# Language models on IMDb reviews ({result['size']} size)",
        "",
        f"CPU: {result['cpu']}. Load: {result['load']}.",
        f"Conditions: {result['conditions']}",
        *([f"Note: {result['note']}"] if result.get("note") else []),
        "",
        "Data (fixed slice, see `benchmarks/lm.py`): word level "
        f"{d['word_train_tokens']:,} / {d['word_valid_tokens']:,} / "
        f"{d['word_test_tokens']:,} train / valid / test "
        f"tokens ({d['word_train_reviews']:,} / {d['word_valid_reviews']:,} / "
        f"{d['word_test_reviews']:,} reviews), V = {d['word_vocab']:,} "
        f"(test `[UNK]` rate {d['word_test_unk_rate']:.2%}); character level "
        f"{d['char_train_tokens']:,} / {d['char_valid_tokens']:,} / "
        f"{d['char_test_tokens']:,} characters, V = {d['char_vocab']}.",
        "",
        "| model | level | impl | recipe | params | valid ppl | test ppl | test bpc "
        "| train tokens/s (1 core) | train tokens per CPU-s | compile s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['level']} | {r['impl']} | {r['recipe']} | "
            f"{r['params']:,} | {_fmt(r['valid_ppl'], 2)} | {_fmt(r['test_ppl'], 2)} | "
            f"{_fmt(r['test_bpc'], 3)} | {_fmt(r['train_tokens_per_s'], 0)} | "
            f"{_fmt(r.get('train_tokens_per_cpu_s'), 0)} | "
            f"{_fmt(r['compile_seconds'], 1)} |"
        )
    lines += ["", "Ratios (jaxseq / PyTorch, same recipe, same tokens, same run):", ""]
    for k, v in result["ratios"].items():
        lines.append(f"- {k}: {v:.3f}")
    lines += [
        "",
        f"Generation ({result['generation_note']}):",
        "",
        "| impl | batch | tokens/s (wall) | tokens per CPU-second |",
        "|---|---:|---:|---:|",
    ]
    for g in gen:
        lines.append(
            f"| {g['impl']} | {g['batch']} | {g['tokens_per_s']:,.0f} | "
            f"{_fmt(g.get('tokens_per_cpu_s'), 0)} |"
        )
    lines += ["", f"Total wall time: {result['wall_seconds'] / 60:.1f} min.", ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    ap.add_argument("--size", choices=sorted(SIZES), default="full")
    ap.add_argument("--quick", action="store_true", help="--size quick")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--train-tokens", type=int)
    ap.add_argument("--char-tokens", type=int)
    ap.add_argument("--jobs", type=int, default=2, choices=(1, 2))
    ap.add_argument(
        "--other-epochs",
        type=int,
        help="epochs of the rows other than the torch/jaxseq tied LSTM pair",
    )
    ap.add_argument(
        "--chunks-per-call",
        type=int,
        help="jaxseq's chunks per compiled train call (default: fit_stream's; "
        "1: one call per chunk)",
    )
    ap.add_argument("--note", default="", help="a sentence on how this run went")
    ap.add_argument(
        "--workdir",
        type=Path,
        help="keep data and finished workers here; a rerun reuses them",
    )
    ap.add_argument(
        "--models", default="torch,lstm,gru,elman,untied,transformer,char,kn3,gen"
    )
    ap.add_argument(
        "--keep-from",
        type=Path,
        help="an earlier lm.json: its rows (and generation entries) of models "
        "not run now are copied, marked 'earlier run' in the recipe column",
    )
    args = ap.parse_args()
    size = "quick" if args.quick else args.size
    cfg = dict(SIZES[size])
    for k in ("epochs", "train_tokens", "char_tokens"):
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    wanted = set(args.models.split(","))
    from _machine import describe

    t0 = time.perf_counter()
    load0 = os.getloadavg()
    tmp = args.workdir or Path(tempfile.mkdtemp(prefix="jaxseq_lm_bench_"))
    tmp.mkdir(parents=True, exist_ok=True)
    data_path, summary_path = tmp / "data.npz", tmp / "data.json"
    if data_path.exists() and summary_path.exists():
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    else:
        print(f"preparing data ({cfg}) ...", flush=True)
        summary = prepare(
            args.archive, cfg["train_tokens"], cfg["char_tokens"], data_path
        )
        summary_path.write_text(json.dumps(summary), encoding="utf-8")
    print(json.dumps(summary), flush=True)
    epochs = cfg["epochs"]
    # "init": PyTorch's initialisation (jaxseq.lm.TorchInit) for the recurrent
    # rows; it also keeps results of runs made before it apart (--workdir)
    from jaxseq.lm.stateful import CHUNKS_PER_CALL

    base = {
        **RECIPE,
        "epochs": epochs,
        "optimizer": "sgd",
        "tied": True,
        "init": "torch",
        # jaxseq's chunks per compiled call (fit_stream's default); it also
        # keeps results of runs made before it apart (--workdir)
        "chunks_per_call": args.chunks_per_call or CHUNKS_PER_CALL,
    }
    recipe = f"{epochs} ep, SGD lr 20 /4 on stall, clip 0.25, drop 0.2, bptt 35, B 20"
    pair_recipe = recipe
    if args.other_epochs is not None:
        cfg["other_epochs"] = args.other_epochs
    if cfg.get("other_epochs") is not None:
        epochs = cfg["other_epochs"]
        recipe = recipe.replace(f"{cfg['epochs']} ep", f"{epochs} ep")
    trecipe = f"{epochs} ep, Adam 1e-3 /4 on stall, clip 0.25, drop 0.2, window 35"
    trecipe += ", B 20, tied"
    other = {**base, "epochs": epochs}
    # --models entry: (row name, impl, level, recipe, spec), in the table's order
    catalogue = {
        "torch": ("lstm", "torch", "word", pair_recipe + ", tied", base),
        "lstm": ("lstm", "jaxseq", "word", pair_recipe + ", tied", base),
        "gru": ("gru", "jaxseq", "word", recipe + ", tied", other),
        "elman": (
            "elman",
            "jaxseq",
            "word",
            recipe.replace("lr 20", "lr 5") + ", tied",
            {**other, "lr": 5.0},
        ),
        "untied": (
            "lstm-untied",
            "jaxseq",
            "word",
            recipe + ", untied",
            {**other, "tied": False},
        ),
        "transformer": (
            "transformer",
            "jaxseq",
            "word",
            trecipe,
            {**other, "optimizer": "adam", "lr": 1e-3},
        ),
        "char": ("lstm", "jaxseq", "char", recipe + ", tied", other),
    }
    listed = args.models.split(",")
    jobs = []  # (name, impl, level, recipe, spec), in the order --models lists them
    for entry in sorted(wanted & set(catalogue), key=listed.index):
        name, impl, level, rec, spec = catalogue[entry]
        model = "transformer" if name == "transformer" else name.split("-")[0]
        jobs.append((name, impl, level, rec, {**spec, "model": model, "level": level}))
    gen_specs = []
    if "gen" in wanted:
        n = 20 if size == "quick" else 100
        g = {"generate": True, "batches": [1, 16, 128], "tokens": n, "python_tokens": n}
        g["clock"] = "wall+cpu"  # both clocks (results before it: wall only)
        gen_specs = [("jaxseq", g), ("torch", g)]

    def run_job(i_job):
        i, job = i_job
        return run_pinned(job[1], job[4], data_path, tmp, i % max(1, args.jobs))

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run_job, enumerate(jobs)))
        gen_results = list(
            pool.map(
                lambda ig: run_pinned(
                    ig[1][0], ig[1][1], data_path, tmp, ig[0] % args.jobs
                ),
                enumerate(gen_specs),
            )
        )
    rows = [_row(j[0], j[1], j[2], j[3], r) for j, r in zip(jobs, results, strict=True)]
    if "kn3" in wanted:
        from jaxseq.lm.ngram import fit_kneser_ney, kn_log_probs

        data = dict(np.load(data_path))
        for level in ("word", "char"):
            tic = time.perf_counter()
            kn = fit_kneser_ney(
                data[f"{level}_train"], int(data[f"{level}_vocab"]), order=3
            )
            fit_s = time.perf_counter() - tic
            losses = [
                -float(np.mean(kn_log_probs(kn, data[f"{level}_{s}"])))
                for s in ("valid", "test")
            ]
            n_par = int(sum(o.keys.size for o in kn.orders))
            res = {
                "valid_loss": losses[0],
                "test_loss": losses[1],
                "params": n_par,
                "train_tokens": int(data[f"{level}_train"].size),
                "train_seconds": fit_s,
                "compile_seconds": None,
            }
            rows.append(
                _row(
                    "kn3",
                    "numpy",
                    level,
                    "interpolated modified Kneser-Ney, "
                    "n-grams counted (params = stored n-grams)",
                    res,
                )
            )
    ratios = {}
    by = {(r["model"], r["impl"], r["level"]): r for r in rows}
    t, j = by.get(("lstm", "torch", "word")), by.get(("lstm", "jaxseq", "word"))
    if t and j:
        ratios["test ppl (jaxseq / torch; floor <= 1.02)"] = (
            j["test_ppl"] / t["test_ppl"]
        )
        ratios["train tokens/s (jaxseq / torch; floor >= 1)"] = (
            j["train_tokens_per_s"] / t["train_tokens_per_s"]
        )
        if j.get("train_tokens_per_cpu_s") and t.get("train_tokens_per_cpu_s"):
            ratios["train tokens per CPU-second (jaxseq / torch)"] = (
                j["train_tokens_per_cpu_s"] / t["train_tokens_per_cpu_s"]
            )
    gen = [g for res in gen_results for g in res]
    if args.keep_from is not None:
        rows, gen = _keep(json.loads(args.keep_from.read_text()), rows, gen)
    gb = {(g["impl"], g["batch"]): g["tokens_per_s"] for g in gen}
    for b in (1, 16):
        if ("transformer_kv_cache", b) in gb and ("transformer_window", b) in gb:
            ratios[
                f"transformer generation batch {b} (KV cache / window recompute)"
            ] = gb[("transformer_kv_cache", b)] / gb[("transformer_window", b)]
    cb = {(g["impl"], g["batch"]): g.get("tokens_per_cpu_s") for g in gen}
    for b in (1, 16, 128):
        pair = cb.get(("jaxseq", b)), cb.get(("python_loop", b))
        if None not in pair:
            ratios[
                f"generation batch {b} (compiled / JAX Python loop, CPU time; "
                "floor >= 5 at 1)"
            ] = pair[0] / pair[1]
        pair = cb.get(("jaxseq", b)), cb.get(("torch_python_loop", b))
        if None not in pair:
            ratios[
                f"generation batch {b} (compiled / PyTorch generate.py loop, CPU time)"
            ] = pair[0] / pair[1]
    for b in (1, 16, 128):
        if ("jaxseq", b) in gb and ("python_loop", b) in gb:
            ratios[
                f"generation batch {b} (compiled / JAX Python loop; floor >= 5 at 1)"
            ] = gb[("jaxseq", b)] / gb[("python_loop", b)]
        if ("jaxseq", b) in gb and ("torch_python_loop", b) in gb:
            ratios[f"generation batch {b} (compiled / PyTorch generate.py loop)"] = (
                gb[("jaxseq", b)] / gb[("torch_python_loop", b)]
            )
    load1 = os.getloadavg()
    result = {
        "size": size if cfg == {**SIZES[size]} else f"{size}, modified: {cfg}",
        "config": cfg,
        "cpu": describe(),
        "load": (
            f"1-min load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the "
            "end (the 2 cores shared with other processes)"
        ),
        "conditions": (
            "each model in its own process pinned to one core "
            f"(torch.set_num_threads(1); XLA_FLAGS='{ONE_CORE_XLA}', taskset), "
            f"--jobs {args.jobs}; training tokens/s = training tokens / time in "
            "train steps (compile excluded; evaluation excluded); perplexities of "
            "the best-validation weights; KN 'train tokens/s' is counting speed "
            "(NumPy, one process)."
        ),
        "note": args.note,
        "data": summary,
        "rows": rows,
        "ratios": ratios,
        "generation": gen,
        "generation_note": (
            "2-layer tied LSTM, V = word vocabulary, random weights, temperature-1 "
            "sampling, 10-token prompts; compiled loop: best of 2 calls, compile "
            "excluded; Python loops: one call per token, token read back on the host; "
            "tokens per CPU-second: the process's CPU time (time.process_time), "
            "which a loaded machine distorts less than wall time"
        ),
        "wall_seconds": time.perf_counter() - t0,
    }
    stem = "lm" if size == "full" else f"lm_{size}"
    write(result, stem)
    print((RESULTS / f"{stem}.md").read_text())


if __name__ == "__main__":
    main()
