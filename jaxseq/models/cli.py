"""Command line for text classifiers: ``jaxseq train imdb``, ``jaxseq predict``
and ``jaxseq eval``.

``jaxseq train imdb --model lstm --data sample`` trains a registered model on
IMDb (the shipped sample, ``tfds``, or a path to ``aclImdb_v1.tar.gz`` / an
``aclImdb`` directory), validates on whole held-out movies, evaluates on the
test split, and writes a run directory::

    runs/imdb-lstm-20250101-120000/
        model/          the saved classifier (jaxseq.json, params.npz, vocab.json)
        metrics.jsonl   one line per epoch (also metrics.csv)
        curves.png      training and validation loss and accuracy
        result.json     settings, timings and test accuracy

``jaxseq predict MODEL_DIR "text" ...`` prints the probability that each review
is positive; ``jaxseq eval MODEL_DIR --data PATH`` reports the accuracy on a
labelled split. Errors (a missing or corrupt archive, empty or non-UTF-8 text,
a vocabulary that does not match the model) are reported in one line on stderr
with exit status 1; counts of truncated, empty or undecodable reviews go to the
log (stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger("jaxseq.models")


class CommandError(Exception):
    """A user error reported as one line on stderr (exit status 1)."""


def _setup_logging(quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("jaxseq: %(message)s"))
    for name in ("jaxseq.models", "jaxseq.data.imdb"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(logging.WARNING if quiet else logging.INFO)
        log.propagate = False


def _run(prog: str, body: Callable[[], int]) -> int:
    from ..data import CorruptArchiveError, UnsafeArchiveError

    try:
        return body()
    except (
        CommandError,
        FileNotFoundError,
        CorruptArchiveError,
        UnsafeArchiveError,
        ValueError,
        ImportError,
        UnicodeError,
    ) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1


# ------------------------------------------------------------------ data
def load_split(source: str, split: str, *, strict_utf8: bool = False) -> Any:
    """A split of IMDb from ``"sample"``, ``"tfds"`` or a path, with clear errors."""
    from ..data import imdb

    errors = "strict" if strict_utf8 else "replace"
    if source == "sample":
        return imdb.load_sample(split)
    if source == "tfds":
        return imdb.load_tfds(split, errors=errors)
    if not os.path.exists(source):
        raise CommandError(
            f"--data: {source} does not exist; expected 'sample', 'tfds', an "
            "aclImdb_v1.tar.gz archive or an aclImdb directory."
        )
    return imdb.load_archive(source, split, errors=errors)


def check_texts(texts: Sequence[str], what: str = "text") -> list[str]:
    """Refuse empty (or whitespace-only) texts and strings that are not valid
    UTF-8 (lone surrogates from undecodable command-line bytes)."""
    out = []
    for i, t in enumerate(texts, 1):
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as err:
            # undecodable command-line bytes arrive as lone surrogates U+DC80..U+DCFF
            code = ord(t[err.start])
            byte = (
                f"{code - 0xDC00:#04x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
            )
            raise CommandError(
                f"{what} {i} is not valid UTF-8 (byte {byte} at position "
                f"{err.start + 1}); pass UTF-8 text."
            ) from None
        if not t.strip():
            raise CommandError(f"{what} {i} is empty; expected a review text.")
        out.append(t)
    return out


def read_lines(path: str) -> list[str]:
    """Reviews from a UTF-8 file, one per line (``-``: stdin); blank lines are
    skipped and counted in the log."""
    raw = sys.stdin.buffer.read() if path == "-" else _read_bytes(path)
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    texts, blank = [], 0
    for number, line in enumerate(lines, 1):
        try:
            line_text = line.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise CommandError(
                f"{path}: line {number} is not valid UTF-8 "
                f"(byte {line[err.start]:#04x} "
                f"at column {err.start + 1}); re-encode the file as UTF-8."
            ) from None
        if line_text:
            texts.append(line_text)
        else:
            blank += 1
    if blank:
        logger.warning("%s: skipped %d blank line(s)", path, blank)
    if not texts:
        raise CommandError(f"{path}: no review text (every line is blank).")
    return texts


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CommandError(f"--file: {path} does not exist.") from None


# ------------------------------------------------------------------ train
def _train_parser() -> argparse.ArgumentParser:
    from . import RECIPES, names

    p = argparse.ArgumentParser(
        prog="jaxseq train",
        description="Train a text classifier on IMDb (validation split by movie).",
    )
    p.add_argument("task", choices=["imdb"], help="the data set (imdb)")
    p.add_argument(
        "--model",
        default="lstm",
        choices=names(),
        help="registered model (default lstm)",
    )
    p.add_argument(
        "--data",
        default="sample",
        help="'sample' (shipped, default), 'tfds', or a path to "
        "aclImdb_v1.tar.gz / an aclImdb directory",
    )
    p.add_argument(
        "--out", default=None, help="run directory (default runs/imdb-MODEL-TIMESTAMP)"
    )
    for flag, kind, field in [
        ("--epochs", int, "epochs"),
        ("--batch-size", int, "batch_size"),
        ("--lr", float, "learning_rate"),
        ("--patience", int, "patience"),
        ("--vocab-size", int, "max_tokens"),
        ("--maxlen", int, "maxlen"),
    ]:
        p.add_argument(
            flag,
            type=kind,
            default=None,
            dest=field,
            help=f"override the recipe's {field}",
        )
    p.add_argument(
        "--truncating",
        choices=["pre", "post"],
        default=None,
        help="keep the last (pre) or first (post) maxlen tokens",
    )
    p.add_argument(
        "--no-bucketing",
        action="store_true",
        help="uniformly random batches over the full maxlen",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="model option, e.g. --option hidden=128 (JSON values)",
    )
    p.add_argument("--valid-fraction", type=float, default=0.2)
    p.add_argument(
        "--split-by",
        choices=["auto", "movie", "random"],
        default="auto",
        help="validation split; auto: by movie when movie ids are known",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--checkpoint-every",
        type=int,
        default=None,
        metavar="STEPS",
        help="checkpoint into OUT/ckpt every STEPS steps (default: every epoch); "
        "running the same command with the same --out continues from the last one",
    )
    p.add_argument("--no-checkpoints", action="store_true", help="write no checkpoints")
    p.add_argument("--no-test", action="store_true", help="skip the test evaluation")
    p.add_argument(
        "--strict-utf8",
        action="store_true",
        help="refuse reviews that are not valid UTF-8 (default: replace "
        "bad bytes and count them)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or info log")
    p.epilog = "recipes: " + ", ".join(
        f"{n} (maxlen {r.inputs.maxlen}, {r.epochs} epochs)" for n, r in RECIPES.items()
    )
    return p


def _parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--option: expected KEY=VALUE, got {pair!r}.")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        options[key] = tuple(parsed) if isinstance(parsed, list) else parsed
    return options


def recipe_from_args(args: argparse.Namespace) -> Any:
    """The model's recipe with the command line's overrides."""
    from . import RECIPES

    recipe = RECIPES[args.model]
    changes = {
        f: getattr(args, f)
        for f in ("epochs", "batch_size", "learning_rate", "patience", "max_tokens")
        if getattr(args, f) is not None
    }
    inputs = recipe.inputs
    if args.maxlen is not None:
        inputs = inputs._replace(maxlen=args.maxlen)
    if args.truncating is not None:
        inputs = inputs._replace(truncating=args.truncating)
    options = {**recipe.options, **_parse_options(args.option)}
    bucketing = recipe.bucketing and not args.no_bucketing
    return recipe._replace(
        **changes, inputs=inputs, options=options, bucketing=bucketing
    )


def _split(train: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    from ..data import imdb

    by = args.split_by
    if by == "auto":
        by = "movie" if (train.movie_ids >= 0).all() else "random"
        if by == "random":
            logger.warning(
                "validation split: movie ids unknown (tensorflow-datasets); splitting "
                "reviews at random, which overstates validation accuracy"
            )
    return imdb.validation_split(
        train, fraction=args.valid_fraction, by=by, seed=args.seed
    )


def train_main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq train imdb [options]`` (see ``--help``)."""
    args = _train_parser().parse_args(argv)
    _setup_logging(args.quiet)
    return _run("jaxseq train", lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    from ..train import latest_step
    from . import save
    from .classifier import evaluate
    from .training import train

    recipe = recipe_from_args(args)
    out = args.out or os.path.join(
        "runs", f"imdb-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    train_all = load_split(args.data, "train", strict_utf8=args.strict_utf8)
    fit, valid = _split(train_all, args)
    print(
        f"jaxseq train imdb: model {args.model}, {len(fit)} training / {len(valid)} "
        f"validation reviews from {args.data}, run directory {out}"
    )
    ckpt = None if args.no_checkpoints else os.path.join(out, "ckpt")
    last = None if ckpt is None else latest_step(ckpt)
    if last is not None:
        print(f"continuing from the checkpoint at step {last} in {ckpt}")
    result = train(
        args.model,
        fit.texts,
        fit.labels,
        valid.texts,
        valid.labels,
        recipe=recipe,
        seed=args.seed,
        log_dir=out,
        progress=not args.quiet,
        checkpoint_dir=ckpt,
        checkpoint_every=args.checkpoint_every,
    )
    summary = _summary(args, recipe, result)
    if not args.no_test:
        test = load_split(args.data, "test", strict_utf8=args.strict_utf8)
        summary["test"] = evaluate(result.classifier, test.texts, test.labels)
    model_dir = os.path.join(out, "model")
    save(model_dir, result.classifier, extra=summary, overwrite=True)
    with open(os.path.join(out, "result.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    _print_summary(summary, out, model_dir)
    return 0


def _summary(args: argparse.Namespace, recipe: Any, result: Any) -> dict[str, Any]:
    best = result.history[result.best_epoch - 1] if result.best_epoch else {}
    return {
        "model": result.classifier.model.config,
        "recipe": {**recipe._asdict(), "inputs": recipe.inputs._asdict()},
        "data": args.data,
        "seed": args.seed,
        "params": result.params,
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "valid_accuracy": best.get("valid_accuracy"),
        "sec_per_epoch": float(np.median([h["seconds"] for h in result.history])),
        "timings": result.timings,
    }


def _print_summary(summary: dict[str, Any], out: str, model_dir: str) -> None:
    valid = summary["valid_accuracy"]
    line = (
        f"validation accuracy {valid:.4f} (epoch {summary['best_epoch']})"
        if valid
        else ""
    )
    if "test" in summary:
        t = summary["test"]
        line += f"; held-out test accuracy {t['accuracy']:.4f} on {t['count']} reviews"
    print(line)
    print(f"model saved to {model_dir}")
    print(
        f"curves: {os.path.join(out, 'curves.png')}; metrics: "
        f"{os.path.join(out, 'metrics.jsonl')}"
    )


# ------------------------------------------------------------------ predict
def predict_main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq predict MODEL_DIR "text" ... | --file PATH``."""
    p = argparse.ArgumentParser(
        prog="jaxseq predict",
        description="Probability that each review is positive, from a saved model.",
    )
    p.add_argument("model_dir", help="a directory written by jaxseq train")
    p.add_argument("texts", nargs="*", help="review texts")
    p.add_argument("--file", help="UTF-8 file with one review per line ('-': stdin)")
    p.add_argument("--json", action="store_true", help="one JSON object per review")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    _setup_logging(args.quiet)
    return _run("jaxseq predict", lambda: _predict(args))


def _load(model_dir: str) -> Any:
    from . import load

    if not os.path.isdir(model_dir):
        raise CommandError(f"MODEL_DIR: {model_dir} is not a directory.")
    return load(model_dir)


def _predict(args: argparse.Namespace) -> int:
    from .classifier import featurize, predict_logits

    if bool(args.texts) == bool(args.file):
        raise CommandError("expected review texts or --file PATH (one of them).")
    texts = read_lines(args.file) if args.file else check_texts(args.texts)
    clf = _load(args.model_dir)
    features = featurize(clf.vocab, clf.inputs, texts, what="input texts")
    unknown = int((features.lengths == 0).sum())
    if unknown:
        logger.warning(
            "%d text(s) have no token; their prediction is the prior", unknown
        )
    probs = 1.0 / (1.0 + np.exp(-predict_logits(clf.model, clf.params, features)))
    for t, prob in zip(texts, probs, strict=True):
        label = "pos" if prob > 0.5 else "neg"
        if args.json:
            print(
                json.dumps(
                    {"label": label, "positive": round(float(prob), 6), "text": t}
                )
            )
        else:
            preview = t if len(t) <= 60 else t[:57] + "..."
            print(f"{label}\t{prob:.4f}\t{preview}")
    return 0


# ------------------------------------------------------------------ eval
def eval_main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq eval MODEL_DIR --data sample|tfds|PATH [--split test]``."""
    p = argparse.ArgumentParser(
        prog="jaxseq eval", description="Accuracy of a saved model on a labelled split."
    )
    p.add_argument("model_dir")
    p.add_argument("--data", default="sample", help="'sample', 'tfds' or a path")
    p.add_argument("--split", default="test", choices=["train", "test"])
    p.add_argument("--strict-utf8", action="store_true")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    _setup_logging(args.quiet)
    return _run("jaxseq eval", lambda: _eval(args))


def _eval(args: argparse.Namespace) -> int:
    from .classifier import evaluate

    clf = _load(args.model_dir)
    reviews = load_split(args.data, args.split, strict_utf8=args.strict_utf8)
    tic = time.perf_counter()
    metrics = evaluate(clf, reviews.texts, reviews.labels)
    print(
        f"{args.data} {args.split}: accuracy {metrics['accuracy']:.4f}, loss "
        f"{metrics['loss']:.4f} on {metrics['count']} reviews "
        f"({time.perf_counter() - tic:.1f}s)"
    )
    return 0
