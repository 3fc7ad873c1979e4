"""IMDb sentiment: every jaxseq model, the seed's lab model in Keras 3, and a
bag-of-bigrams linear baseline, on the same data, in one run.

Data: the 25,000 training reviews of the real archive (the project's
``../shared/data/aclImdb_labeled.tar.gz``, or ``--archive``), split by movie
into 80% for training and 20% for validation (model selection and early
stopping only), and the 25,000 test reviews, used once per model for the
reported accuracy. Nothing is tuned on the test set.

Rows:

- ``lab (jaxseq)``: the seed's Keras lab model on jaxseq's length-aware runner,
  trained as in the seed (Adam, batch 512, 25 epochs, the last epoch's
  weights), with :func:`jaxseq.train.fit`'s uniformly random batches;
- ``lab (keras)``: the same model in Keras 3 (JAX backend) on the same token
  ids, pre-padded as R/Keras' ``pad_sequences`` does by default (the seed's
  setting); the two are interleaved seed by seed so that both see the same
  machine load;
- ``lab (jaxseq, buckets)``: the jaxseq lab model with length-bucketed batches;
- the other registered models with their recipes (early stopping on the
  validation accuracy, best epoch's weights);
- ``bow 1-2`` (the bag-of-bigrams linear baseline), ``bow 1-3``, and a
  scikit-learn reference of the baseline;
- ``ensemble``: the average of the bag-of-n-grams model's and the best neural
  model's logits, weighted by a weight chosen on the validation split.

Writes ``benchmarks/results/imdb.md``, ``imdb.json`` and ``imdb_<model>.png``
(training curves); ``--quick`` runs a small smoke test into ``imdb_quick.*``.

Usage::

    python benchmarks/imdb.py [--archive PATH] [--quick] [--models lab,keras,bow,...]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import describe

from jaxseq.models import InputSpec

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "data" / "aclImdb_labeled.tar.gz"
RESULTS = ROOT / "benchmarks" / "results"
SEED_TABLE = {"LSTM": 0.8199, "Simple transformer": 0.8749, "RoBERTa": 0.9467}

#: Model rows in running order; ``--models`` picks a subset.
ORDER = (
    "lab",
    "keras",
    "lab_buckets",
    "bow",
    "sklearn",
    "bow3",
    "lstm",
    "gru",
    "elman",
    "stacked_lstm",
    "bilstm",
    "bigru",
    "conv1d",
    "transformer",
    "ensemble",
)

#: Benchmark rows that are not a registered model's recipe as it is
#: (``jaxseq.models.RECIPES`` holds the settings of every other row).
BENCH = {
    "lab": dict(bucketing=False),
    "lab_buckets": dict(bucketing=True),
    "bow3": dict(ngram_range=(1, 3), inputs=InputSpec(maxlen=4096, unique=True)),
}
QUICK = dict(epochs=2, patience=None, max_tokens=5_000)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def recipe_for(row: str, quick: bool):
    from jaxseq import models

    name = row.removesuffix("_buckets").removesuffix("3")
    recipe = models.RECIPES[name]
    changes = dict(BENCH.get(row, {}))
    options = {**recipe.options, **changes.pop("options", {})}
    recipe = recipe._replace(**changes, options=options)
    if quick:
        inputs = recipe.inputs._replace(maxlen=min(recipe.inputs.maxlen, 128))
        quick_changes = {
            **QUICK,
            "max_tokens": recipe.max_tokens and QUICK["max_tokens"],
        }
        recipe = recipe._replace(**quick_changes, inputs=inputs)
    return name, recipe


class Data:
    """The splits, and features cached per (tokenizer, vocabulary, inputs)."""

    def __init__(self, archive: Path, quick: bool):
        from jaxseq.data import imdb

        tic = time.perf_counter()
        train = imdb.load_archive(archive, "train")
        test = imdb.load_archive(archive, "test")
        self.read_seconds = time.perf_counter() - tic
        if quick:
            rng = np.random.default_rng(0)
            train = train.take(np.sort(rng.choice(len(train), 3000, replace=False)))
            test = test.take(np.sort(rng.choice(len(test), 2000, replace=False)))
        self.fit, self.valid = imdb.validation_split(
            train, fraction=0.2, by="movie", seed=0
        )
        self.test = test
        self.cache: dict[Any, Any] = {}
        self.timings: dict[str, float] = {}

    def features(self, recipe) -> tuple[Any, Any, Any, Any]:
        """``(vocab, f_fit, f_valid, f_test)`` for a recipe, computed once."""
        from jaxseq import models

        key = (
            tuple(recipe.ngram_range),
            recipe.max_tokens,
            recipe.min_freq,
            recipe.inputs,
        )
        if key not in self.cache:
            tic = time.perf_counter()
            vocab = models.fit_vocabulary(self.fit.texts, recipe)
            fitted = time.perf_counter() - tic
            tic = time.perf_counter()
            feats = [
                models.featurize(vocab, recipe.inputs, r.texts, what=what)
                for r, what in (
                    (self.fit, "train"),
                    (self.valid, "valid"),
                    (self.test, "test"),
                )
            ]
            seconds = time.perf_counter() - tic
            label = (
                f"{recipe.ngram_range[0]}-{recipe.ngram_range[1]}-grams, "
                f"{len(vocab):,} ids, L={recipe.inputs.maxlen}"
                + (", sets" if recipe.inputs.unique else "")
            )
            self.timings[f"vocabulary ({label})"] = round(fitted, 2)
            self.timings[
                f"vectorise all {len(self.fit) + len(self.valid) + len(self.test):,}"
                f" reviews ({label})"
            ] = round(seconds, 2)
            log(f"features {label}: vocabulary {fitted:.1f}s, vectorise {seconds:.1f}s")
            self.cache[key] = (vocab, *feats)
        return self.cache[key]


def epoch_seconds(history: list[dict[str, Any]]) -> float:
    """Median epoch time without compiling (:func:`jaxseq.train.epoch_seconds`);
    a one-epoch run's only epoch, compile included, when no other is left."""
    from jaxseq.train.history import epoch_seconds as steady

    seconds = steady(history)
    return float(history[0]["seconds"]) if seconds is None else seconds


def run_jaxseq(row: str, data: Data, quick: bool, seed: int = 0) -> dict[str, Any]:
    from jaxseq import models
    from jaxseq.train import plot_history

    name, recipe = recipe_for(row, quick)
    vocab, f_fit, f_valid, f_test = data.features(recipe)
    log(f"{row}: training ({recipe.epochs} epochs max, batch {recipe.batch_size})")
    tic, cpu = time.perf_counter(), time.process_time()
    result = models.train_features(
        name,
        vocab,
        f_fit,
        data.fit.labels,
        f_valid,
        data.valid.labels,
        recipe=recipe,
        seed=seed,
        progress=False,
    )
    train_wall, train_cpu = time.perf_counter() - tic, time.process_time() - cpu
    clf = result.classifier
    tic = time.perf_counter()
    test_logits = models.predict_logits(clf.model, clf.params, f_test)
    valid_logits = models.predict_logits(clf.model, clf.params, f_valid)
    test_seconds = time.perf_counter() - tic
    accuracy = float(((test_logits > 0) == (data.test.labels > 0)).mean())
    suffix = f"_s{seed}" if seed else ""
    plot_history(
        result.history, RESULTS / f"imdb{'_quick' if quick else ''}_{row}{suffix}.png"
    )
    best = result.history[result.best_epoch - 1]
    log(
        f"{row}: test accuracy {accuracy:.4f} (valid {best['valid_accuracy']:.4f}, "
        f"epoch {result.best_epoch}/{len(result.history)}), "
        f"{epoch_seconds(result.history):.1f} s/epoch"
    )
    return {
        "model": row,
        "test_accuracy": round(accuracy, 4),
        "valid_accuracy": round(best["valid_accuracy"], 4),
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "sec_per_epoch": round(epoch_seconds(result.history), 2),
        "params": result.params,
        "train_seconds": round(train_wall, 1),
        "train_cpu_seconds": round(train_cpu, 1),
        "predict_seconds": round(test_seconds, 1),
        "seed": seed,
        "settings": _settings(name, recipe, clf),
        "_logits": (valid_logits, test_logits),
    }


def _settings(name: str, recipe: Any, clf: Any) -> dict[str, Any]:
    return {
        "config": clf.model.config,
        "ngram_range": list(recipe.ngram_range),
        "vocabulary": len(clf.vocab),
        "maxlen": recipe.inputs.maxlen,
        "truncating": recipe.inputs.truncating,
        "unique_ids": recipe.inputs.unique,
        "epochs_max": recipe.epochs,
        "patience": recipe.patience,
        "batch_size": recipe.batch_size,
        "learning_rate": recipe.learning_rate,
        "weight_decay": recipe.weight_decay,
        "clip_norm": recipe.clip_norm,
        "bucketing": recipe.bucketing,
    }


# ------------------------------------------------------------------ Keras
def run_keras(data: Data, quick: bool, seed: int = 0) -> dict[str, Any]:
    """The seed's lab model in Keras 3 (JAX backend) on the lab model's token
    ids, pre-padded (``pad_sequences``' default in R and Python Keras)."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    _, recipe = recipe_for("lab", quick)
    vocab, f_fit, f_valid, f_test = data.features(recipe)
    x_fit, x_valid, x_test = (pre_pad(f) for f in (f_fit, f_valid, f_test))
    keras.utils.set_random_seed(seed)
    maxlen = x_fit.shape[1]
    model = _keras_lab(keras, len(vocab), maxlen)
    timer = _EpochTimer(keras)
    log(f"keras: training ({recipe.epochs} epochs, batch {recipe.batch_size})")
    tic, cpu = time.perf_counter(), time.process_time()
    fitted = model.fit(
        x_fit,
        data.fit.labels,
        epochs=recipe.epochs,
        batch_size=recipe.batch_size,
        verbose=0,
        callbacks=[timer],
        validation_data=(x_valid, data.valid.labels),
    )
    train_wall, train_cpu = time.perf_counter() - tic, time.process_time() - cpu
    probs = model.predict(x_test, batch_size=512, verbose=0)[:, 0]
    accuracy = float(((probs > 0.5) == (data.test.labels > 0)).mean())
    history = [
        {
            "epoch": i + 1,
            "seconds": s,
            **{
                f"train_{k}": v[i]
                for k, v in fitted.history.items()
                if not k.startswith("val_")
            },
            **{
                f"valid_{k[4:]}": v[i]
                for k, v in fitted.history.items()
                if k.startswith("val_")
            },
        }
        for i, s in enumerate(timer.seconds)
    ]
    from jaxseq.train import plot_history

    suffix = f"_s{seed}" if seed else ""
    plot_history(
        history, RESULTS / f"imdb{'_quick' if quick else ''}_keras{suffix}.png"
    )
    log(f"keras: test accuracy {accuracy:.4f}, {epoch_seconds(history):.1f} s/epoch")
    return {
        "model": "keras",
        "test_accuracy": round(accuracy, 4),
        "valid_accuracy": round(history[-1]["valid_accuracy"], 4),
        "epochs": len(history),
        "best_epoch": len(history),
        "sec_per_epoch": round(epoch_seconds(history), 2),
        "params": int(model.count_params()),
        "train_seconds": round(train_wall, 1),
        "train_cpu_seconds": round(train_cpu, 1),
        "seed": seed,
        "settings": {
            "keras": keras.__version__,
            "backend": keras.backend.backend(),
            "padding": "pre",
            "truncating": recipe.inputs.truncating,
            "maxlen": maxlen,
            "vocabulary": len(vocab),
            "batch_size": recipe.batch_size,
            "epochs_max": recipe.epochs,
            "optimizer": "adam (Keras defaults)",
        },
    }


def _keras_lab(keras: Any, vocab_size: int, maxlen: int) -> Any:
    """The seed's lab model in Keras, compiled as in the seed."""
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((maxlen,), dtype="int32"),
            layers.Embedding(vocab_size, 4),
            layers.LSTM(4, return_sequences=True, go_backwards=True),
            layers.GlobalAveragePooling1D(),
            layers.Dense(4, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def pre_pad(features: Any) -> np.ndarray:
    """Right-padded ids -> the same ids left-padded (Keras' ``padding="pre"``)."""
    ids, lengths = features.ids, features.lengths
    maxlen = ids.shape[1]
    cols = (np.arange(maxlen)[None, :] - (maxlen - lengths)[:, None]) % maxlen
    out = np.take_along_axis(ids, cols, axis=1)
    out[np.arange(maxlen)[None, :] < (maxlen - lengths)[:, None]] = 0
    return out


class _EpochTimer:
    """Keras callback: training time of each epoch (validation excluded)."""

    def __new__(cls, keras):
        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds: list[float] = []

            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                self.last = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(self.last - self.start)

        return Timer()


# ------------------------------------------------------------------ speed
def speed_duel(data: Data, quick: bool, rounds: int) -> dict[str, list[float]]:
    """Training epochs of the lab model, alternating between the frameworks
    round by round, so that both see the same machine load.

    Each round times one epoch of: jaxseq with uniformly random batches (the
    loop of :func:`jaxseq.train.fit`: index a permutation, run the compiled
    train step, fetch its metrics), Keras' ``model.fit(epochs=1)`` (timed from
    the epoch's start to its last batch), and jaxseq with length buckets. Both
    frameworks compile before the first round. Returns seconds per epoch.
    """
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import jax
    import keras

    from jaxseq import models
    from jaxseq.train import (
        bucket_by_length,
        bucket_lengths,
        init_state,
        make_train_step,
        sortish_batches,
    )

    _, recipe = recipe_for("lab", quick)
    vocab, f_fit, _, _ = data.features(recipe)
    labels = data.fit.labels.astype(np.float32)
    arrays = (f_fit.ids, f_fit.lengths, labels)
    model = models.build("lab", vocab_size=len(vocab))
    opt = models.optimizer(recipe)
    step = make_train_step(models.loss_function(model), opt)
    state = init_state(model.init(jax.random.key(0)), opt, jax.random.key(1))
    collate = bucket_by_length(bucket_lengths(f_fit.ids.shape[1]))
    size, rng = recipe.batch_size, np.random.default_rng(0)

    def jaxseq_epoch(batches, collate=lambda b: b):
        nonlocal state
        tic = time.perf_counter()
        for idx in batches:
            state, metrics = step(state, collate(tuple(a[idx] for a in arrays)))
            jax.device_get(metrics)
        return time.perf_counter() - tic

    def uniform():
        order = rng.permutation(len(labels))
        return [order[b * size : (b + 1) * size] for b in range(len(labels) // size)]

    k_model = _keras_lab(keras, len(vocab), f_fit.ids.shape[1])
    timer, x_fit = _EpochTimer(keras), pre_pad(f_fit)
    times: dict[str, list[float]] = {"lab": [], "keras": [], "lab_buckets": []}
    for r in range(rounds + 1):  # round 0 compiles
        t_uniform = jaxseq_epoch(uniform())
        k_model.fit(
            x_fit, labels, epochs=1, batch_size=size, verbose=0, callbacks=[timer]
        )
        t_buckets = jaxseq_epoch(sortish_batches(f_fit.lengths, size, rng), collate)
        if r:
            times["lab"].append(t_uniform)
            times["keras"].append(timer.seconds[-1])
            times["lab_buckets"].append(t_buckets)
    medians = {k: statistics.median(v) for k, v in times.items()}
    log(
        "speed duel (median s/epoch): "
        + ", ".join(f"{k} {v:.2f}" for k, v in medians.items())
    )
    return times


# ------------------------------------------------------------------ references
def run_sklearn(data: Data, quick: bool) -> dict[str, Any]:
    """scikit-learn's logistic regression on the same NB-scaled binary
    1-2-gram features as ``bow`` (C chosen on the validation split)."""
    from sklearn.linear_model import LogisticRegression

    from jaxseq import text
    from jaxseq.models.bag import feature_scale

    _, recipe = recipe_for("bow", quick)
    vocab = data.features(recipe)[0]
    tic = time.perf_counter()
    x = {
        k: text.bag_of_words(vocab, r.texts, mode="binary")
        for k, r in (("fit", data.fit), ("valid", data.valid), ("test", data.test))
    }
    f_fit = data.features(recipe)[1]
    scale = feature_scale(f_fit.ids, f_fit.lengths, data.fit.labels, len(vocab), "nb")
    x = {k: v.multiply(scale).tocsr() for k, v in x.items()}
    best = None
    for c in (0.03, 0.1, 0.3):
        clf = LogisticRegression(C=c, solver="liblinear", max_iter=1000)
        clf.fit(x["fit"], data.fit.labels)
        valid = clf.score(x["valid"], data.valid.labels)
        if best is None or valid > best[0]:
            best = (valid, c, clf)
    valid, c, clf = best
    accuracy = float(clf.score(x["test"], data.test.labels))
    log(f"sklearn: test accuracy {accuracy:.4f} (valid {valid:.4f}, C={c})")
    return {
        "model": "sklearn",
        "test_accuracy": round(accuracy, 4),
        "valid_accuracy": round(float(valid), 4),
        "epochs": None,
        "sec_per_epoch": None,
        "params": len(vocab) + 1,
        "train_seconds": round(time.perf_counter() - tic, 1),
        "settings": {
            "C": c,
            "solver": "liblinear",
            "features": "NB-scaled binary 1-2-grams",
        },
    }


def ensemble(rows: list[dict[str, Any]], data: Data) -> dict[str, Any] | None:
    """Weighted mean of the bag-of-n-grams model's and the best neural model's
    logits; the models and the weight are chosen on the validation split."""
    bags = [r for r in rows if r["model"] in ("bow", "bow3") and "_logits" in r]
    nets = [
        r
        for r in rows
        if r["model"] not in ("bow", "bow3", "keras", "sklearn") and "_logits" in r
    ]
    if not bags or not nets:
        return None
    bag = max(bags, key=lambda r: r["valid_accuracy"])
    net = max(nets, key=lambda r: r["valid_accuracy"])
    (bv, bt), (nv, nt) = bag["_logits"], net["_logits"]
    y_valid, y_test = data.valid.labels > 0, data.test.labels > 0
    scored = []
    for w in np.linspace(0.0, 1.0, 21):
        mixed = (1 - w) * bv + w * nv
        scored.append((float(((mixed > 0) == y_valid).mean()), float(w)))
    valid, w = max(scored)
    accuracy = float(((((1 - w) * bt + w * nt) > 0) == y_test).mean())
    log(
        f"ensemble {bag['model']}+{net['model']} (w={w:.2f}): "
        f"test accuracy {accuracy:.4f}"
    )
    return {
        "model": f"ensemble ({bag['model']} + {net['model']})",
        "test_accuracy": round(accuracy, 4),
        "valid_accuracy": round(valid, 4),
        "epochs": None,
        "sec_per_epoch": None,
        "params": bag["params"] + net["params"],
        "settings": {
            "members": [bag["model"], net["model"]],
            "weight_of_" + net["model"]: round(float(w), 2),
        },
    }


# ------------------------------------------------------------------ report
def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from several seeds: mean accuracy, median epoch time."""
    row = dict(runs[0])
    if len(runs) > 1:
        accs = [r["test_accuracy"] for r in runs]
        row["test_accuracy"] = round(float(np.mean(accs)), 4)
        row["test_accuracy_per_seed"] = accs
        row["valid_accuracy"] = round(
            float(np.mean([r["valid_accuracy"] for r in runs])), 4
        )
        row["sec_per_epoch"] = round(
            float(np.median([r["sec_per_epoch"] for r in runs])), 2
        )
        row["train_seconds"] = round(
            float(np.mean([r["train_seconds"] for r in runs])), 1
        )
        row["seeds"] = [r["seed"] for r in runs]
    return row


LABELS = {
    "lab": "lab model (jaxseq)",
    "keras": "lab model (Keras 3, JAX backend)",
    "lab_buckets": "lab model (jaxseq, length buckets)",
    "bow": "bag of 1-2-grams, NB logistic regression (baseline)",
    "bow3": "bag of 1-3-grams, NB logistic regression",
    "sklearn": "reference: scikit-learn LR on the baseline's features",
    "lstm": "LSTM",
    "gru": "GRU",
    "elman": "Elman RNN",
    "stacked_lstm": "2-layer LSTM",
    "bilstm": "bidirectional LSTM",
    "bigru": "bidirectional GRU",
    "conv1d": "Conv1D",
    "transformer": "simple transformer",
}


def floors(
    rows: dict[str, dict[str, Any]], duel: dict[str, list[float]] | None
) -> list[dict[str, Any]]:
    acc = {k: r["test_accuracy"] for k, r in rows.items()}
    out = []

    def add(name, value, target, met, note=""):
        out.append(
            {
                "floor": name,
                "value": value,
                "target": target,
                "met": bool(met),
                "note": note,
            }
        )

    lstms = {
        k: v
        for k, v in acc.items()
        if k in ("lab", "lab_buckets", "lstm", "stacked_lstm", "bilstm")
    }
    if lstms:
        best = max(lstms, key=lstms.get)
        add(
            "an LSTM >= 81.99% (seed)",
            lstms[best],
            0.8199,
            lstms[best] >= 0.8199,
            f"best LSTM row: {best}",
        )
    if "transformer" in acc:
        add(
            "simple transformer >= 87.49% (seed)",
            acc["transformer"],
            0.8749,
            acc["transformer"] >= 0.8749,
        )
    if "lab" in acc and "keras" in acc:
        add(
            "lab model (jaxseq) >= Keras on the same data",
            acc["lab"],
            acc["keras"],
            acc["lab"] >= acc["keras"],
            "mean over seeds",
        )
    jaxseq = {k: v for k, v in acc.items() if k not in ("keras", "sklearn", "bow")}
    if "bow" in acc and jaxseq:
        best = max(jaxseq, key=jaxseq.get)
        add(
            "best jaxseq model > bag-of-bigrams baseline",
            jaxseq[best],
            acc["bow"],
            jaxseq[best] > acc["bow"],
            f"best: {best}",
        )
        add(
            "goal: best jaxseq model >= 91.5%",
            jaxseq[best],
            0.915,
            jaxseq[best] >= 0.915,
            f"best: {best}",
        )
    if duel:
        medians = {k: statistics.median(v) for k, v in duel.items()}
        for key in ("lab", "lab_buckets"):
            ratio = medians[key] / medians["keras"]
            add(
                f"{key} faster per epoch than Keras (ratio < 1)",
                round(ratio, 3),
                1.0,
                ratio < 1.0,
                f"{medians[key]:.2f} s vs {medians['keras']:.2f} s per epoch, median "
                f"of {len(duel[key])} alternating epochs",
            )
    return out


def write_report(rows, floor_rows, meta, quick: bool) -> None:
    stem = "imdb_quick" if quick else "imdb"
    public = [
        {k: v for k, v in r.items() if not k.startswith("_")} for r in rows.values()
    ]
    payload = {
        "rows": public,
        "floors": floor_rows,
        "meta": meta,
        "seed_table": SEED_TABLE,
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps(payload, indent=1) + "\n")
    keras_sec = rows.get("keras", {}).get("sec_per_epoch")
    lines = [
        "# IMDb sentiment: jaxseq models, the seed's lab model in Keras, baselines",
        "",
        f"Generated by `python benchmarks/imdb.py{' --quick' if quick else ''}` "
        "in one run "
        f"({meta['wall_minutes']:.0f} minutes). {meta['machine']}",
        "",
        f"Data: {meta['data']}",
        "",
        "| model | test accuracy | valid accuracy | epochs (best) | s / epoch | "
        "vs Keras | params |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in rows.items():
        label = LABELS.get(key, r["model"])
        acc = f"{100 * r['test_accuracy']:.2f}%"
        if "test_accuracy_per_seed" in r:
            acc += (
                " ("
                + ", ".join(f"{100 * a:.2f}" for a in r["test_accuracy_per_seed"])
                + ")"
            )
        epochs = (
            "" if r.get("epochs") is None else f"{r['epochs']} ({r.get('best_epoch')})"
        )
        sec = "" if r.get("sec_per_epoch") is None else f"{r['sec_per_epoch']:.2f}"
        ratio = ""
        if (
            keras_sec
            and r.get("sec_per_epoch")
            and key in ("lab", "lab_buckets", "keras")
        ):
            ratio = f"{r['sec_per_epoch'] / keras_sec:.2f}"
        lines.append(
            f"| {label} | {acc} | {100 * r['valid_accuracy']:.2f}% | {epochs} | "
            f"{sec} | {ratio} | {r['params']:,} |"
        )
    lines += [
        "",
        "Seed's table (IMDb test set): "
        + ", ".join(f"{k} {100 * v:.2f}%" for k, v in SEED_TABLE.items()),
        "",
        "## Floors",
        "",
        "| floor | value | target | met | note |",
        "|---|---:|---:|:-:|---|",
    ]
    for f in floor_rows:
        lines.append(
            f"| {f['floor']} | {f['value']} | {f['target']} | "
            f"{'yes' if f['met'] else 'no'} | {f['note']} |"
        )
    duel = meta.get("speed_duel")
    if duel:
        med = {k: statistics.median(v) for k, v in duel.items()}
        lines += [
            "",
            "## Speed: the lab model, jaxseq against Keras",
            "",
            f"{len(duel['lab'])} rounds, each timing one training epoch of each in "
            "turn (same process, same data, batch 512, the seed's model; compiled "
            "beforehand), so that both see the same machine load:",
            "",
            "| training | median s / epoch | min | max | vs Keras |",
            "|---|---:|---:|---:|---:|",
        ]
        names = {
            "lab": "jaxseq, uniformly random batches (`fit`'s loop)",
            "keras": "Keras 3 `model.fit`",
            "lab_buckets": "jaxseq, length buckets",
        }
        for k, v in duel.items():
            lines.append(
                f"| {names[k]} | {med[k]:.3f} | {min(v):.3f} | {max(v):.3f} | "
                f"{med[k] / med['keras']:.2f} |"
            )
    lines += ["", "## Vectorisation and data", ""]
    lines += [f"- {k}: {v} s" for k, v in meta["timings"].items()]
    lines += [
        "",
        "## Settings",
        "",
        *meta["notes"],
        "",
        "Per-model settings (JSON, also in the `.json` file):",
        "",
    ]
    for key, r in rows.items():
        lines.append(f"- `{key}`: `{json.dumps(r.get('settings', {}))}`")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    log(f"wrote {RESULTS / (stem + '.md')} and .json")


NOTES = [
    "- Validation: 20% of the training reviews, whole movies held out "
    '(`validation_split(by="movie", seed=0)`); early stopping and the ensemble '
    "weight use it; the test set is used once per model.",
    "- Tokens: lower-cased words, HTML and punctuation removed "
    "(`word_tokenizer()`), vocabulary fitted on the training part only. Sequence "
    'models keep the last `maxlen` tokens of a review (`truncating="pre"`, Keras\' '
    "`pad_sequences` default) and pad at the end with lengths; Keras gets the same "
    "ids padded at the front (its default), without a mask, as in the seed.",
    "- Lab model, both frameworks: Adam (learning rate 1e-3, epsilon 1e-7), binary "
    "cross-entropy, batch 512, 25 epochs, last epoch's weights (the seed's protocol).",
    "- `s / epoch`: median wall time of a training epoch (validation excluded; the "
    "first, compiling epoch excluded). The machine is shared: compare rows of the "
    "same run, not across runs. `vs Keras` is the ratio to Keras' s/epoch in "
    "these runs (which ran one after the other); the speed section below "
    "alternates the frameworks epoch by epoch and is the fairer comparison.",
    "- Length buckets: batches of reviews of similar length, each trimmed to the "
    "smallest of 4 lengths (quarters of `maxlen`) holding its longest review "
    "(`Recipe(bucketing=True)`, the default of the other jaxseq rows).",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, default=DEFAULT_ARCHIVE)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3,000 training / 2,000 test reviews, maxlen 128, 2 epochs",
    )
    parser.add_argument(
        "--models",
        default=",".join(ORDER),
        help=f"comma-separated subset of {','.join(ORDER)}",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=2,
        help="seeds of the lab model rows (jaxseq and Keras)",
    )
    parser.add_argument(
        "--duel-rounds",
        type=int,
        default=10,
        help="alternating lab-model epochs (jaxseq, Keras, jaxseq buckets) timed",
    )
    args = parser.parse_args(argv)
    selected = [m for m in args.models.split(",") if m]
    unknown = sorted(set(selected) - set(ORDER))
    if unknown:
        parser.error(f"--models: unknown {unknown}; expected some of {list(ORDER)}")
    if not args.archive.exists():
        print(
            f"benchmarks/imdb.py: skipped: the IMDb archive {args.archive} is absent "
            "(pass --archive PATH to aclImdb_v1.tar.gz)."
        )
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    logging.getLogger("jaxseq.models").setLevel(logging.INFO)
    RESULTS.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    load_before = os.getloadavg()[0]
    data = Data(args.archive, args.quick)
    log(
        f"data: {len(data.fit)} train / {len(data.valid)} valid / "
        f"{len(data.test)} test "
        f"({data.read_seconds:.1f}s to read)"
    )
    runs: dict[str, list[dict[str, Any]]] = {}
    for seed in range(args.seeds):  # interleaved: the same load for both frameworks
        for row in ("lab", "keras", "lab_buckets"):
            if row in selected:
                run = (
                    run_keras(data, args.quick, seed)
                    if row == "keras"
                    else run_jaxseq(row, data, args.quick, seed)
                )
                runs.setdefault(row, []).append(run)
    for row in selected:
        if row in runs or row == "ensemble":
            continue
        runs[row] = [
            run_sklearn(data, args.quick)
            if row == "sklearn"
            else run_jaxseq(row, data, args.quick)
        ]
    duel = None
    if {"lab", "keras", "lab_buckets"} <= set(selected) and args.duel_rounds:
        duel = speed_duel(data, args.quick, args.duel_rounds)
    rows = {k: aggregate(v) for k, v in runs.items()}
    if "ensemble" in selected:
        extra = ensemble(list(rows.values()), data)
        if extra is not None:
            rows["ensemble"] = extra
    meta = {
        "wall_minutes": (time.perf_counter() - start) / 60,
        "machine": f"{describe()}, shared with other jobs "
        f"(1-minute load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end); Python "
        f"{platform.python_version()}, jax {_version('jax')}, flax "
        f"{_version('flax')}, keras {_version('keras')}.",
        "data": f"{args.archive.name}: {len(data.fit):,} training and "
        f"{len(data.valid):,} validation reviews (split by movie), "
        f"{len(data.test):,} test reviews"
        + (" (--quick subset)" if args.quick else "")
        + ".",
        "timings": {
            "read archive (train + test)": round(data.read_seconds, 2),
            **data.timings,
        },
        "notes": NOTES,
        "speed_duel": duel,
    }
    write_report(rows, floors(rows, duel), meta, args.quick)
    return 0


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


if __name__ == "__main__":
    sys.exit(main())
