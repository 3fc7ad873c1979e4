"""Command line for text classifiers: the pieces every command shares (data
sources, review texts, one-line errors), ``jaxseq predict`` and ``jaxseq eval``;
``jaxseq train imdb`` is :mod:`jaxseq.models.cli_train`.

``jaxseq predict MODEL_DIR "text" ...`` prints the probability that each review
is positive; ``jaxseq eval MODEL_DIR --data PATH`` reports the accuracy on a
labelled split. Options are checked before any data is read: a bad value is
one line on stderr naming the flag, exit status 2. Errors while running (a
missing or corrupt archive, empty or non-UTF-8 text, a vocabulary that does not
match the model, a diverging run, a checkpoint of another run) are one line on
stderr with exit status 1 (``jaxseq --debug ...`` or ``JAXSEQ_DEBUG=1`` shows the
traceback); counts of truncated, empty or undecodable reviews go to the log
(stderr).
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

from .. import cli as _cli

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
    """``body()`` with errors as one line on stderr (:func:`jaxseq.cli.run_command`)."""
    return _cli.run_command(prog, body)


def data_source(text: str) -> str:
    """An ``argparse`` type for ``--data``: ``sample``, ``tfds`` or an existing path."""
    if text in ("sample", "tfds") or os.path.exists(text):
        return text
    raise argparse.ArgumentTypeError(
        f"{text} does not exist; expected 'sample', 'tfds', an aclImdb_v1.tar.gz "
        "archive or an aclImdb directory"
    )


# ------------------------------------------------------------------ data
def load_split(source: str, split: str, *, strict_utf8: bool = False) -> Any:
    """A split of IMDb from ``"sample"``, ``"tfds"`` or a path, with clear errors."""
    from ..data import imdb

    errors = "strict" if strict_utf8 else "replace"
    if source == "sample":
        return imdb.load_sample(split)
    if source == "tfds":
        return imdb.load_tfds(split, errors=errors)
    try:
        data_source(source)
    except argparse.ArgumentTypeError as err:
        raise CommandError(f"--data: {err}.") from None
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
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        raise CommandError(f"--file: {path}: {err.strerror}.") from None


# ------------------------------------------------------------------ predict
def predict_main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq predict MODEL_DIR "text" ... | --file PATH``."""
    p = _cli.Parser(
        prog="jaxseq predict",
        description="Probability that each review is positive, from a saved model.",
    )
    p.add_argument(
        "model_dir",
        type=_cli.existing_dir,
        metavar="MODEL_DIR",
        help="a directory written by jaxseq train",
    )
    p.add_argument("texts", nargs="*", help="review texts")
    p.add_argument(
        "--file",
        type=_review_file,
        help="UTF-8 file with one review per line ('-': stdin)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per review")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if bool(args.texts) == bool(args.file):
        p.error("expected review texts or --file PATH (one of them)")
    _setup_logging(args.quiet)
    return _run("jaxseq predict", lambda: _predict(args))


def _review_file(text: str) -> str:
    return text if text == "-" else _cli.existing_file(text)


def _load(model_dir: str) -> Any:
    from . import load

    if not os.path.isdir(model_dir):
        raise CommandError(f"MODEL_DIR: {model_dir} is not a directory.")
    return load(model_dir)


def _predict(args: argparse.Namespace) -> int:
    from .classifier import featurize, predict_logits

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
    p = _cli.Parser(
        prog="jaxseq eval", description="Accuracy of a saved model on a labelled split."
    )
    p.add_argument(
        "model_dir",
        type=_cli.existing_dir,
        metavar="MODEL_DIR",
        help="a directory written by jaxseq train",
    )
    p.add_argument(
        "--data", default="sample", type=data_source, help="'sample', 'tfds' or a path"
    )
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
