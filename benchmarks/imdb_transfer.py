"""IMDb: does a language model make a better classifier? (Dai & Le, 2015;
Howard & Ruder, 2018, "ULMFiT".)

Two arms, the same architecture, the same data, the same machine, the same
wall-clock budget:

- ``LSTM lm-pretrained (ULMFiT recipe)``: a recurrent LM
  (:func:`jaxseq.lm.rnn_lm`, tied embedding, PyTorch word_language_model's
  initialisation and SGD at lr 20 with clipping at 0.25, as
  ``benchmarks/lm.py``; Adam drove the LSTM into saturation in trials) is
  trained by stateful truncated BPTT (:func:`jaxseq.lm.make_stream_train_step`,
  document resets) on the
  *training* reviews only for ``--pretrain-seconds``; its embedding and LSTM
  layers start the classifier (:func:`jaxseq.lm.transfer_params`), which is
  fine-tuned for ``--finetune-epochs`` with ULMFiT's recipe
  (:func:`jaxseq.lm.fine_tuning`: discriminative rates ``/ 2.6`` per layer
  group, gradual unfreezing, slanted triangular schedule);
- ``LSTM from scratch (same budget)``: the same classifier from a random
  initialisation, Adam at 1e-3 with clipping (the recurrent models' recipe of
  ``benchmarks/imdb.py``), trained for as long as the first arm took to
  pretrain and fine-tune (wall time of the training steps, compilation
  included; validation passes excluded from both).

Data: the 25,000 training reviews of ``../shared/data/aclImdb_labeled.tar.gz``
split by movie (``validation_split(by="movie", seed=0)``: 80% to train, 20%
to validate, as ``benchmarks/imdb.py``); one vocabulary fitted on the training
part (:func:`jaxseq.lm.lm_vocabulary`, the most frequent words plus
``<eos>``) for the LM and both classifiers; each review the classifiers read is
``<eos>`` and its last ``maxlen - 1`` tokens (:func:`jaxseq.lm.classifier_features`).
Each arm keeps the parameters of its best validation accuracy (measured every
half epoch); the 25,000 test reviews are used once per arm.

Writes ``benchmarks/results/imdb_transfer.md``, ``.json`` and
``imdb_transfer.png`` (validation accuracy against training seconds), and
merges the two rows into ``benchmarks/results/imdb.json`` and a delimited
section of ``imdb.md`` (replacing earlier rows of the same names).
``--quick``: the sample shipped with jaxseq (2,000 / 1,000 reviews), tiny
sizes, into ``imdb_transfer_quick.*`` (nothing merged), in about a minute.

Usage::

    python benchmarks/imdb_transfer.py [--quick] [--archive PATH]
        [--pretrain-seconds S] [--finetune-epochs E]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from _machine import describe

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "data" / "aclImdb_labeled.tar.gz"
RESULTS = ROOT / "benchmarks" / "results"
PRETRAINED = "LSTM lm-pretrained (ULMFiT recipe)"
SCRATCH = "LSTM from scratch (same budget)"
START, END = "<!-- imdb_transfer:start -->", "<!-- imdb_transfer:end -->"
GOAL = 0.915
SAMPLE = "the shipped sample (jaxseq/datasets/imdb_sample.jsonl.gz)"


class Sizes(NamedTuple):
    """The run's sizes (chosen from measured throughput, see the module)."""

    vocab: int = 10_000  # ids, padding, [UNK] and <eos> included
    embed: int = 128
    hidden: int = 128
    layers: int = 1
    maxlen: int = 400  # <eos> + the last 399 tokens of a review
    lm_batch: int = 64
    bptt: int = 64
    batch: int = 64
    head: tuple[int, ...] = (50,)
    dropout: float = 0.3  # the classifier's (both arms)
    lm_dropout: float = 0.2
    lm_lr: float = 20.0  # SGD, PyTorch word_language_model's recipe
    lm_clip: float = 0.25
    finetune_lr: float = 1e-2  # the head's peak rate (ULMFiT's)
    scratch_lr: float = 1e-3


FULL = Sizes()
QUICK = Sizes(vocab=2_000, embed=32, hidden=32, maxlen=128, lm_batch=16, bptt=32)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_data(archive: Path, quick: bool):
    from jaxseq.data import imdb

    if quick:
        train, test = imdb.load_sample("train"), imdb.load_sample("test")
    else:
        train = imdb.load_archive(archive, "train")
        test = imdb.load_archive(archive, "test")
    fit, valid = imdb.validation_split(train, fraction=0.2, by="movie", seed=0)
    return fit, valid, test


# ------------------------------------------------------------------ pretraining
def pretrain(lm, fit_texts, valid_texts, vocab, sizes: Sizes, seconds: float, seed):
    """Stateful TBPTT over the shuffled training reviews for ``seconds`` of
    wall time (compilation included); returns the parameters and a record."""
    import jax
    import optax

    from jaxseq import lm as jlm

    order = np.random.default_rng(seed).permutation(len(fit_texts))
    stream = jlm.encode_stream(vocab, [fit_texts[i] for i in order])
    chunks = jlm.chunk_stream(stream, sizes.lm_batch, sizes.bptt)
    valid = jlm.chunk_stream(
        jlm.encode_stream(vocab, list(valid_texts[:500])), 16, sizes.bptt
    )
    opt = optax.chain(optax.clip_by_global_norm(sizes.lm_clip), optax.sgd(sizes.lm_lr))
    k_init, k_run = jax.random.split(jax.random.key(seed))
    state = jlm.init_stream_state(
        lm, lm.init(k_init), opt, k_run, batch_size=sizes.lm_batch
    )
    step = jlm.make_stream_train_step(lm, opt)
    tic = time.perf_counter()
    done, loss_sum, count, first = 0, 0.0, 0.0, None
    while time.perf_counter() - tic < seconds:
        i = done % chunks.num_chunks
        if i == 0:  # a new pass: every stream from its initial state
            state = state._replace(
                carry=jlm.fresh_carry(lm, state.train.params, sizes.lm_batch)
            )
        state, metrics = step(state, chunks.chunk(i))
        m = jax.device_get(metrics)
        if first is None:
            first = time.perf_counter() - tic
        if not m["finite"]:
            raise FloatingPointError(f"LM pretraining: non-finite loss at step {done}")
        loss_sum, count = loss_sum + float(m["loss"]), count + float(m["count"])
        done += 1
        if done % 200 == 0:
            log(f"  LM step {done}: train perplexity {np.exp(loss_sum / count):.1f}")
            loss_sum, count = 0.0, 0.0
    wall = time.perf_counter() - tic
    params = jax.device_get(state.train.params)
    tic = time.perf_counter()
    v = jlm.evaluate_stream(lm, params, valid)
    record = {
        "seconds": round(wall, 1),
        "compile_and_first_step_seconds": round(first or 0.0, 1),
        "steps": done,
        "tokens": done * sizes.lm_batch * sizes.bptt,
        "passes_over_training_stream": round(done / chunks.num_chunks, 3),
        "training_stream_tokens": int(np.size(stream.ids)),
        "valid_perplexity": round(v["perplexity"], 1),
        "valid_reviews": min(500, len(valid_texts)),
        "valid_eval_seconds": round(time.perf_counter() - tic, 1),
    }
    log(
        f"LM: {done} steps, {record['tokens']:,} tokens "
        f"({record['passes_over_training_stream']:.2f} passes) in {wall:.0f} s, "
        f"valid perplexity {v['perplexity']:.1f}"
    )
    return params, record


# ------------------------------------------------------------------ classifiers
def train_classifier(
    model, params, opt, fit, valid, sizes: Sizes, *, steps=None, seconds=None, seed
):
    """Minibatch training (length-bucketed batches) until ``steps`` updates or
    ``seconds`` of training wall time; validation accuracy every half epoch
    (its time excluded). Returns the best validation epoch's parameters, the
    curve ``[(train_seconds, valid_accuracy)]`` and a record."""
    import jax

    from jaxseq import models
    from jaxseq.train import (
        bucket_by_length,
        bucket_lengths,
        init_state,
        make_train_step,
        sortish_batches,
    )

    (f_fit, y_fit), (f_valid, y_valid) = fit, valid
    step = make_train_step(models.loss_function(model), opt)
    state = init_state(params, opt, jax.random.key(seed + 1))
    collate = bucket_by_length(bucket_lengths(f_fit.ids.shape[1]))
    rng = np.random.default_rng(seed)
    arrays = (f_fit.ids, f_fit.lengths, y_fit.astype(np.float32))
    per_epoch = len(y_fit) // sizes.batch
    eval_every = max(1, per_epoch // 2)
    curve, best, best_params = [], -1.0, None
    trained, done, first = 0.0, 0, None

    def validate():
        nonlocal best, best_params
        p = jax.device_get(state.params)
        logits = models.predict_logits(model, p, f_valid)
        acc = float(((logits > 0) == (y_valid > 0)).mean())
        curve.append((round(trained, 1), round(acc, 4)))
        if acc > best:
            best, best_params = acc, p
        log(f"  step {done} ({done / per_epoch:.2f} epochs, {trained:.0f} s): "
            f"valid accuracy {acc:.4f}")  # fmt: skip

    batches: list[np.ndarray] = []
    while True:
        if steps is not None and done >= steps:
            break
        if seconds is not None and trained >= seconds:
            break
        if not batches:
            batches = sortish_batches(f_fit.lengths, sizes.batch, rng)
        idx = batches.pop()
        tic = time.perf_counter()
        state, metrics = step(state, collate(tuple(a[idx] for a in arrays)))
        m = jax.device_get(metrics)
        trained += time.perf_counter() - tic
        if first is None:
            first = trained
        if not m["finite"]:
            raise FloatingPointError(f"classifier: non-finite loss at step {done}")
        done += 1
        if done % eval_every == 0:
            validate()
    if not curve or curve[-1][0] != round(trained, 1):
        validate()
    record = {
        "train_seconds": round(trained, 1),
        "compile_and_first_step_seconds": round(first or 0.0, 1),
        "steps": done,
        "epochs": round(done / per_epoch, 2),
        "best_valid_accuracy": round(best, 4),
        "best_at_train_seconds": next(s for s, a in curve if a == round(best, 4)),
    }
    return best_params, curve, record


def test_accuracy(model, params, f_test, y_test) -> float:
    from jaxseq import models

    logits = models.predict_logits(model, params, f_test)
    return float(((logits > 0) == (y_test > 0)).mean())


# ------------------------------------------------------------------ report
def plot(curves: dict[str, list], pretrain_seconds: float, path: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.axvspan(0, pretrain_seconds, color="0.9", label="LM pretraining")
    for name, (offset, curve, style) in curves.items():
        xs = [offset + s for s, _ in curve]
        ax.plot(xs, [100 * a for _, a in curve], style, label=name)
    ax.set_xlabel("training wall time (s; validation passes excluded)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def merge_into_imdb(rows: list[dict], section: list[str]) -> None:
    """Replace (or add) the two rows in ``imdb.json`` and the delimited
    section of ``imdb.md``."""
    names = {r["model"] for r in rows}
    path = RESULTS / "imdb.json"
    payload = json.loads(path.read_text()) if path.exists() else {"rows": []}
    payload["rows"] = [r for r in payload["rows"] if r.get("model") not in names]
    payload["rows"] += rows
    path.write_text(json.dumps(payload, indent=1) + "\n")
    md = RESULTS / "imdb.md"
    old = md.read_text() if md.exists() else ""
    block = "\n".join([START, *section, END])
    if START in old and END in old:
        head, rest = old.split(START, 1)
        new = head + block + rest.split(END, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    md.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument("--quick", action="store_true", help="shipped sample, tiny")
    parser.add_argument("--pretrain-seconds", type=float, default=None)
    parser.add_argument("--finetune-epochs", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.quick and not args.archive.exists():
        print(
            f"benchmarks/imdb_transfer.py: skipped: the IMDb archive {args.archive} "
            "is absent (pass --archive PATH, or --quick for the shipped sample)."
        )
        return 0
    import jax

    from jaxseq import lm as jlm
    from jaxseq import models, text

    sizes = QUICK if args.quick else FULL
    pre_s = args.pretrain_seconds or (15.0 if args.quick else 480.0)
    ft_epochs = args.finetune_epochs or (5.0 if args.quick else 2.0)
    stem = "imdb_transfer_quick" if args.quick else "imdb_transfer"
    start, load_start = time.perf_counter(), os.getloadavg()
    loads = {"start": [round(x, 2) for x in load_start]}

    tic = time.perf_counter()
    fit, valid, test = load_data(args.archive, args.quick)
    vocab = jlm.lm_vocabulary(fit.texts, text.word_tokenizer(), max_size=sizes.vocab)
    feats = {
        k: jlm.classifier_features(vocab, r.texts, sizes.maxlen, what=k)
        for k, r in (("train", fit), ("valid", valid), ("test", test))
    }
    data_seconds = time.perf_counter() - tic
    log(
        f"data: {len(fit)} train / {len(valid)} valid / {len(test)} test reviews, "
        f"vocabulary {len(vocab)}, {data_seconds:.0f} s"
    )
    fit_xy = (feats["train"], fit.labels)
    valid_xy = (feats["valid"], valid.labels)

    # arm 1: pretrain, transfer, fine-tune
    lm = jlm.rnn_lm(
        len(vocab),
        embed_dim=sizes.embed,
        hidden=sizes.hidden,
        num_layers=sizes.layers,
        tied=sizes.embed == sizes.hidden,
        dropout=sizes.lm_dropout,
        init=jlm.TorchInit(),
    )
    log(f"LM pretraining for {pre_s:.0f} s (training reviews only)")
    lm_params, lm_record = pretrain(
        lm, fit.texts, valid.texts, vocab, sizes, pre_s, args.seed
    )
    loads["after_pretraining"] = [round(x, 2) for x in os.getloadavg()]
    model = jlm.classifier_for(lm, head=sizes.head, dropout=sizes.dropout)
    params = jlm.transfer_params(lm, lm_params, model, jax.random.key(args.seed + 7))
    per_epoch = len(fit) // sizes.batch
    ft_steps = int(round(ft_epochs * per_epoch))
    groups = max(jax.tree.leaves(jlm.layer_groups(params))) + 1
    recipe = jlm.FineTuning(
        learning_rate=sizes.finetune_lr,
        decay=2.6,
        unfreeze_every=max(1, per_epoch // (groups - 1)),
        schedule=jlm.SlantedTriangular(cut_frac=0.1, ratio=32.0),
        clip_norm=1.0,
    )
    opt = jlm.fine_tuning(params, recipe, ft_steps)
    log(f"fine-tuning: {ft_steps} steps ({ft_epochs} epochs), {groups} layer groups")
    ft_params, ft_curve, ft_record = train_classifier(
        model, params, opt, fit_xy, valid_xy, sizes, steps=ft_steps, seed=args.seed
    )
    loads["after_fine_tuning"] = [round(x, 2) for x in os.getloadavg()]
    budget = lm_record["seconds"] + ft_record["train_seconds"]
    acc_pre = test_accuracy(model, ft_params, feats["test"], test.labels)
    log(f"{PRETRAINED}: test accuracy {acc_pre:.4f}, budget {budget:.0f} s")

    # arm 2: the same classifier from scratch, for the same time
    scratch0 = model.init(jax.random.key(args.seed + 7))
    recipe_s = models.RECIPES["lstm"]._replace(learning_rate=sizes.scratch_lr)
    log(f"from scratch for {budget:.0f} s of training")
    sc_params, sc_curve, sc_record = train_classifier(
        model,
        scratch0,
        models.optimizer(recipe_s),
        fit_xy,
        valid_xy,
        sizes,
        seconds=budget,
        seed=args.seed,
    )
    loads["end"] = [round(x, 2) for x in os.getloadavg()]
    acc_sc = test_accuracy(model, sc_params, feats["test"], test.labels)
    log(f"{SCRATCH}: test accuracy {acc_sc:.4f}")

    wall = (time.perf_counter() - start) / 60
    n_params = models.count_params(params)
    machine = (
        f"{describe()}, shared with other jobs; Python {platform.python_version()}, "
        f"jax {jax.__version__}"
    )
    settings = {
        "sizes": {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in sizes._asdict().items()
        },
        "classifier": model.config,
        "lm": lm.config,
        "fine_tuning": {
            "peak_lr_head": recipe.learning_rate,
            "decay_per_group": recipe.decay,
            "groups": "0 head, 1 top LSTM, ..., embedding last",
            "unfreeze_every_steps": recipe.unfreeze_every,
            "slanted_triangular": recipe.schedule._asdict(),
            "optimizer": "adam per group, global-norm clip 1.0",
            "epochs": ft_epochs,
        },
        "scratch": {"optimizer": f"adam {sizes.scratch_lr}, clip 1.0, constant"},
        "lm_pretraining": {
            "optimizer": f"sgd {sizes.lm_lr}, clip {sizes.lm_clip}, TorchInit",
            "batch": sizes.lm_batch,
            "bptt": sizes.bptt,
            "resets": "at every review's <eos>",
        },
    }
    rows = [
        {
            "model": PRETRAINED,
            "test_accuracy": round(acc_pre, 4),
            "valid_accuracy": ft_record["best_valid_accuracy"],
            "epochs": ft_record["epochs"],
            "budget_seconds": round(budget, 1),
            "pretrain_seconds": lm_record["seconds"],
            "train_seconds": ft_record["train_seconds"],
            "params": n_params,
            "lm": lm_record,
            "settings": settings,
        },
        {
            "model": SCRATCH,
            "test_accuracy": round(acc_sc, 4),
            "valid_accuracy": sc_record["best_valid_accuracy"],
            "epochs": sc_record["epochs"],
            "budget_seconds": sc_record["train_seconds"],
            "train_seconds": sc_record["train_seconds"],
            "params": n_params,
        },
    ]
    data_line = (
        f"{SAMPLE if args.quick else args.archive.name}: "
        f"{len(fit):,} training and {len(valid):,} validation reviews (split by "
        f"movie), {len(test):,} test reviews; vocabulary {len(vocab):,} ids fitted "
        f"on the training part."
    )
    cores = os.cpu_count()
    meta = {
        "machine": machine,
        "cpu": describe(),
        "load_average_1_5_15": loads,
        "wall_minutes": round(wall, 1),
        "data": data_line,
        "data_seconds": round(data_seconds, 1),
        "quick": args.quick,
    }
    result = {
        "rows": rows,
        "curves": {PRETRAINED: ft_curve, SCRATCH: sc_curve},
        "fine_tuning": ft_record,
        "scratch": sc_record,
        "meta": meta,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=1) + "\n")
    title = (
        f"IMDb validation accuracy: LM-pretrained vs from scratch\n"
        f"(same {budget:.0f} s training budget, {cores} cores)"
    )
    plot(
        {
            PRETRAINED: (lm_record["seconds"], ft_curve, "o-"),
            SCRATCH: (0.0, sc_curve, "s--"),
        },
        lm_record["seconds"],
        RESULTS / f"{stem}.png",
        title,
    )
    gap = GOAL - acc_pre
    table = [
        "| model | test accuracy | best valid accuracy | training budget (s) | "
        "epochs | params |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        table.append(
            f"| {r['model']} | {100 * r['test_accuracy']:.2f}% | "
            f"{100 * r['valid_accuracy']:.2f}% | {r['budget_seconds']:.0f}"
            + (
                f" ({r['pretrain_seconds']:.0f} LM + {r['train_seconds']:.0f} "
                "fine-tuning)"
                if "pretrain_seconds" in r
                else ""
            )
            + f" | {r['epochs']} | {r['params']:,} |"
        )
    conditions = (
        f"Budget: training wall time on {cores} cores shared with other jobs "
        f"(1-minute load average {loads['start'][0]} at the start, "
        f"{loads['after_pretraining'][0]} after pretraining, "
        f"{loads['after_fine_tuning'][0]} after fine-tuning, {loads['end'][0]} at "
        "the end), compilation included, validation passes excluded. "
        f"{describe()}."
    )
    verdict = (
        f"Pretrained minus scratch: {100 * (acc_pre - acc_sc):+.2f} points; "
        "goal 91.5%: "
        + ("met." if acc_pre >= GOAL else f"not met ({100 * gap:.2f} points short).")
    )
    lm_line = (
        f"LM: {lm_record['steps']:,} steps of {sizes.lm_batch} x {sizes.bptt} "
        f"tokens ({lm_record['tokens']:,} tokens, "
        f"{lm_record['passes_over_training_stream']:.2f} passes over the "
        f"{lm_record['training_stream_tokens']:,}-token training stream), "
        f"validation perplexity {lm_record['valid_perplexity']} "
        f"({lm_record['valid_reviews']} validation reviews)."
    )
    flag = " --quick" if args.quick else ""
    md = [
        "# IMDb: LM pretraining -> classifier (ULMFiT recipe) against the same "
        "classifier from scratch",
        "",
        f"Generated by `python benchmarks/imdb_transfer.py{flag}` "
        f"in one run ({wall:.0f} minutes). {machine}.",
        "",
        f"Data: {data_line}",
        "",
        *table,
        "",
        verdict,
        "",
        conditions,
        "",
        lm_line,
        "",
        f"![validation accuracy against training seconds]({stem}.png)",
        "",
        "## Settings",
        "",
        f"- Architecture (both arms): embedding {sizes.embed}, {sizes.layers} x "
        f"LSTM {sizes.hidden}, mean+max pooling, Dense {list(sizes.head)} relu, "
        f"dropout {sizes.dropout}; reviews as `<eos>` + their last "
        f"{sizes.maxlen - 1} tokens; batches of {sizes.batch} reviews of similar "
        "length in 4 length buckets.",
        f"- LM: the same embedding and LSTM layers, tied readout, dropout "
        f"{sizes.lm_dropout}, PyTorch word_language_model's initialisation and "
        f"SGD (lr {sizes.lm_lr}, clip {sizes.lm_clip}), stateful TBPTT "
        f"(batch {sizes.lm_batch}, {sizes.bptt} steps), state reset at every "
        "review, training reviews only (shuffled), for "
        f"{pre_s:.0f} s.",
        f"- Fine-tuning: {ft_epochs} epochs ({ft_steps} steps); layer groups "
        f"(head, top LSTM, ..., embedding) at peak rates {sizes.finetune_lr} / "
        f"2.6^g (Adam each), group g unfrozen from step g x "
        f"{recipe.unfreeze_every}, slanted triangular schedule (cut_frac 0.1, "
        "ratio 32), clip 1.0.",
        f"- From scratch: Adam {sizes.scratch_lr} constant, clip 1.0, trained "
        "until its training time reached the pretrained arm's budget.",
        "- Both arms: the parameters of the best validation accuracy (every half "
        "epoch and at the end); the test set used once per arm.",
        "",
    ]
    (RESULTS / f"{stem}.md").write_text("\n".join(md) + "\n")
    if not args.quick:
        section = [
            "",
            "## LM pretraining -> classifier (`benchmarks/imdb_transfer.py`)",
            "",
            *table,
            "",
            verdict + " " + conditions,
            "Details: [imdb_transfer.md](imdb_transfer.md).",
            "",
        ]
        merge_into_imdb(
            [{k: v for k, v in r.items() if k != "settings"} for r in rows], section
        )
    log(f"wrote {RESULTS / stem}.md, .json, .png ({wall:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
