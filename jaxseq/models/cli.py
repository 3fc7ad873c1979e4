"""Command line for text classifiers: the pieces every command shares (data
sources and their options, texts, one-line errors), ``jaxseq predict`` and
``jaxseq eval``; ``jaxseq train text|imdb`` is :mod:`jaxseq.models.cli_train`.

``jaxseq predict RUN_DIR "text" ...`` prints each text's class (the class names
saved with the model: IMDb's neg and pos, or your data's) and its probability
(RUN_DIR: a run directory of ``jaxseq train`` or ``jaxseq demo``, or the
``model/`` inside it; options may come anywhere between the texts);
``jaxseq eval RUN_DIR --data PATH`` reports the accuracy on a labelled split,
read with the model's class names. Options are checked before any data is
read: a bad value is one line on stderr naming the flag, exit status 2. Errors
while running (a missing or corrupt archive, empty or non-UTF-8 text, a
vocabulary that does not match the model, data of other classes, a diverging
run, a checkpoint of another run) are one line on stderr with exit status 1
(``jaxseq --debug ...`` or ``JAXSEQ_DEBUG=1`` shows the traceback); counts of
truncated, empty or undecodable texts go to the log (stderr).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from .. import cli as _cli

logger = logging.getLogger("jaxseq.models")


class CommandError(Exception):
    """A user error reported as one line on stderr (exit status 1)."""


def setup_logging(quiet: bool) -> None:
    """Log lines of the classifiers (``jaxseq.models``) and of every data loader
    (``jaxseq.data`` and its children: ``jaxseq.data.imdb``,
    ``jaxseq.data.labelled``) to stderr as ``jaxseq: message``; ``--quiet``
    keeps warnings only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("jaxseq: %(message)s"))
    for name in ("jaxseq.models", "jaxseq.data"):
        log = logging.getLogger(name)
        log.handlers[:] = [handler]
        log.setLevel(logging.WARNING if quiet else logging.INFO)
        log.propagate = False


def _run(prog: str, body: Callable[[], int]) -> int:
    """``body()`` with errors as one line on stderr (:func:`jaxseq.cli.run_command`)."""
    return _cli.run_command(prog, body)


#: --data's help: what it takes
DATA_HELP = (
    "'sample' (shipped), 'tfds', an aclImdb_v1.tar.gz archive or aclImdb "
    "directory, a folder of class folders (DIR/<class>/*.txt, optionally "
    "DIR/train and DIR/test), or a .csv file with columns text and label"
)
#: kinds of --data that hold their own train and test splits
_SPLIT_KINDS = ("sample", "tfds", "archive", "imdb", "split_folder")


class DataOptions(NamedTuple):
    """How the command line reads ``--data`` (the flags besides ``--data``).

    Attributes:
        holdout: share of a source without its own split (a folder of class
            folders, a CSV file) held out as its test split (``--holdout``).
        text_column, label_column: a CSV file's columns (``--text-column``,
            ``--label-column``).
        strict_utf8: refuse invalid UTF-8 instead of replacing the bytes
            (``--strict-utf8``).
    """

    holdout: float = 0.2
    text_column: str = "text"
    label_column: str = "label"
    strict_utf8: bool = False


def data_source(text: str) -> str:
    """An ``argparse`` type for ``--data``: ``sample``; ``tfds``, refused at once
    when it can neither be read nor prepared here
    (:func:`jaxseq.data.imdb.check_tfds`); or an existing path: an IMDb archive
    or ``aclImdb`` directory, a folder of class folders (with or without
    ``train/`` and ``test/``), or a ``.csv`` file with columns ``text`` and
    ``label`` (:func:`jaxseq.data.labelled.layout`)."""
    from ..data import imdb

    if text == "sample":
        return text
    if text == "tfds":
        try:
            imdb.check_tfds()
        except (ImportError, OSError) as err:
            raise argparse.ArgumentTypeError(
                f"tfds: {str(err).rstrip('.')}; instead pass --data "
                "PATH/aclImdb_v1.tar.gz (the original archive), --data DIR (a "
                "folder of class folders, DIR/<class>/*.txt), --data FILE.csv "
                "(columns text and label) or --data sample (shipped)"
            ) from None
        return text
    if not os.path.exists(text):
        raise argparse.ArgumentTypeError(f"{text} does not exist; expected {DATA_HELP}")
    source_kind(text)
    return text


def source_kind(source: str) -> str:
    """``"sample"``, ``"tfds"``, or the :func:`~jaxseq.data.labelled.layout` of
    a path (``"archive"``, ``"imdb"``, ``"csv"``, ``"folder"``,
    ``"split_folder"``), from names only (no data is read); a layout it cannot
    read is an ``argparse.ArgumentTypeError``."""
    from ..data import labelled

    if source in ("sample", "tfds"):
        return source
    try:
        return labelled.layout(source)
    except (ValueError, OSError) as err:
        raise argparse.ArgumentTypeError(str(err).rstrip(".")) from None


def add_data_arguments(
    p: argparse.ArgumentParser,
    *,
    default: str | None,
    what: str = "texts",
    note: str = "required",
) -> None:
    """``--data`` (default ``default``; ``None``: ``note`` says what),
    ``--text-column``, ``--label-column``, ``--holdout`` and ``--strict-utf8``;
    check them with :func:`data_options` before reading any data."""
    p.add_argument(
        "--data",
        default=default,
        type=data_source,
        metavar="DATA",
        help=DATA_HELP + ("" if default else f" ({note})"),
    )
    defaults = DataOptions()
    p.add_argument(
        "--text-column",
        default=None,
        metavar="NAME",
        help=f"a .csv file's column of texts (default: {defaults.text_column})",
    )
    p.add_argument(
        "--label-column",
        default=None,
        metavar="NAME",
        help=f"a .csv file's column of labels (default: {defaults.label_column})",
    )
    p.add_argument(
        "--holdout",
        type=_cli.fraction,
        default=None,
        metavar="FRACTION",
        help="share of a source without train/test splits (a folder of class "
        "folders, a .csv file) held out as its test split, drawn with seed 0, the "
        f"same on every run (default: {defaults.holdout:g})",
    )
    p.add_argument(
        "--strict-utf8",
        action="store_true",
        help=f"refuse {what} that are not valid UTF-8 (default: replace bad "
        "bytes and count them)",
    )


def data_options(
    parser: argparse.ArgumentParser, args: argparse.Namespace, split: str = "train"
) -> DataOptions:
    """The :class:`DataOptions` of ``args``, after checking that they fit
    ``--data`` (names only, no data read): a usage error (exit status 2)
    for ``--text-column``/``--label-column`` without a .csv file, ``--holdout``
    or split ``"all"`` for a source with its own train and test splits."""
    if args.data is None:
        parser.error(f"argument --data: required (expected {DATA_HELP})")
    kind = source_kind(args.data)
    for flag in ("text_column", "label_column"):
        value = getattr(args, flag)
        if value is not None and kind != "csv":
            parser.error(
                f"argument --{flag.replace('_', '-')}: applies to a .csv file, "
                f"got --data {args.data} ({_KIND_WORDS[kind]})"
            )
        if value is not None and not value.strip():
            parser.error(
                f"argument --{flag.replace('_', '-')}: expected a column name, "
                f"got {value!r}"
            )
    own_split = kind in _SPLIT_KINDS
    if args.holdout is not None and own_split:
        parser.error(
            f"argument --holdout: --data {args.data} ({_KIND_WORDS[kind]}) has "
            "its own test split; --holdout applies to a folder of class folders "
            "or a .csv file"
        )
    if split == "all" and args.holdout is not None:
        parser.error(
            "argument --holdout: applies to --split train or test (--split all "
            "reads every text)"
        )
    if split == "all" and own_split:
        parser.error(
            f"argument --split: 'all' applies to a source without train/test "
            f"splits (a folder of class folders, a .csv file); --data {args.data} "
            f"({_KIND_WORDS[kind]}) has its own: pass --split train or --split test"
        )
    defaults = DataOptions()
    return DataOptions(
        holdout=defaults.holdout if args.holdout is None else args.holdout,
        text_column=args.text_column or defaults.text_column,
        label_column=args.label_column or defaults.label_column,
        strict_utf8=args.strict_utf8,
    )


_KIND_WORDS = {
    "sample": "the shipped IMDb sample",
    "tfds": "IMDb from tensorflow-datasets",
    "archive": "an IMDb archive",
    "imdb": "an aclImdb directory",
    "split_folder": "a folder with train/ and test/",
    "folder": "a folder of class folders",
    "csv": "a .csv file",
}


# ------------------------------------------------------------------ data
def load_split(
    source: str,
    split: str,
    options: DataOptions | None = None,
    *,
    class_names: Sequence[str] | None = None,
) -> Any:
    """A split (``"train"``, ``"test"``; ``"all"``: every text of a source
    without its own split) of the labelled texts that ``--data`` names, with
    clear errors. A folder of class folders or a CSV file without its own split
    has ``options.holdout`` (default: :class:`DataOptions`'s 0.2) of its texts
    (drawn with seed 0, the same on every run) held out as its test split
    (:func:`jaxseq.data.labelled.load`).
    ``class_names`` (a saved model's) fix the label ids of a folder or CSV file;
    for the IMDb sources they must be ``("neg", "pos")``."""
    from ..data import imdb, labelled

    options = DataOptions() if options is None else options
    try:
        kind = source_kind(data_source(source))
    except argparse.ArgumentTypeError as err:
        raise CommandError(f"--data: {err}.") from None
    errors = "strict" if options.strict_utf8 else "replace"
    if kind in ("sample", "tfds", "archive", "imdb"):  # IMDb: known before reading
        _check_classes(source, imdb.LABEL_NAMES, class_names)
    if kind == "sample":
        reviews = imdb.load_sample(split)
    elif kind == "tfds":
        reviews = imdb.load_tfds(split, errors=errors)
    elif kind in ("archive", "imdb"):
        reviews = labelled.load(source, split, errors=errors)
    else:
        extra: dict[str, Any] = {"errors": errors}
        if class_names is not None:
            extra["class_names"] = tuple(class_names)
        if kind == "csv":
            extra.update(
                text_column=options.text_column, label_column=options.label_column
            )
        whole = split == "all"
        try:
            reviews = labelled.load(
                source, None if whole else split, holdout=options.holdout, **extra
            )
        except ValueError as err:
            if class_names is None:
                raise
            raise CommandError(
                f"--data {source}: {_cli.error_line(err).rstrip('.')} (read with "
                f"the model's classes {_names(class_names)})."
            ) from err
    _check_classes(source, reviews.label_names, class_names)
    return reviews


def _check_classes(
    source: str, found: Sequence[str], expected: Sequence[str] | None
) -> None:
    if expected is not None and tuple(found) != tuple(expected):
        raise CommandError(
            f"--data {source}: its classes are {_names(found)}, the model's "
            f"{_names(expected)}; evaluate on data with the model's classes."
        )


def _names(names: Sequence[str]) -> str:
    return " and ".join(f"{n!r} ({i})" for i, n in enumerate(names))


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
            raise CommandError(f"{what} {i} is empty; expected a text to classify.")
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
        raise CommandError(f"{path}: no text to classify (every line is blank).")
    return texts


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, IsADirectoryError, PermissionError) as err:
        raise CommandError(f"--file: {path}: {err.strerror}.") from None


# ------------------------------------------------------------------ predict
def model_location(text: str) -> str:
    """An ``argparse`` type: a saved model's directory, or a run directory
    holding one in ``model/`` (:func:`jaxseq.models.classifier.model_dir`)."""
    from ..lm.cli import model_dir_of
    from .classifier import model_dir

    _cli.existing_dir(text)
    if model_dir_of(text) is not None:
        raise argparse.ArgumentTypeError(
            f"expected a classifier's run directory, got {text!r}, a language "
            "model's (jaxseq train lm): continue text with jaxseq generate, score "
            "it with jaxseq eval"
        )
    try:
        return model_dir(text)
    except FileNotFoundError as err:
        raise argparse.ArgumentTypeError(str(err).rstrip(".")) from None


def _model_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "model_dir",
        type=model_location,
        metavar="RUN_DIR",
        help="a run directory written by jaxseq train or jaxseq demo, or the "
        "model/ directory inside it",
    )


def _threshold(text: str) -> float:
    expected = "a number in [0, 1]"
    value = float(_cli._number(text, float, expected))
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def predict_parser() -> argparse.ArgumentParser:
    """The ``jaxseq predict`` command line (parse with ``parse_intermixed_args``:
    options may come between the texts)."""
    p = _cli.Parser(
        prog="jaxseq predict",
        description="The class of each text and its probability, from a saved "
        "model (IMDb's\nclasses are neg and pos; a model trained on your own data "
        "has its classes).\nOptions may come anywhere, also between the texts; "
        "texts that start with '-'\ngo after '--'.",
        epilog='example: jaxseq predict runs/demo-lab "What a film!" --json '
        '"Dull and far too long."',
    )
    _model_argument(p)
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts to classify")
    p.add_argument(
        "--file",
        type=_review_file,
        help="UTF-8 file with one text per line ('-': stdin), instead of TEXTs",
    )
    p.add_argument(
        "--threshold",
        type=_threshold,
        default=0.5,
        help="a text gets the second class (label 1: pos for IMDb) where that "
        "class's probability exceeds this",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='one JSON object per text: {"label": class, "probabilities": '
        '{class: probability, ...}, "text"}',
    )
    _cli.add_quiet(p)
    return p


def predict_main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq predict RUN_DIR "text" ... | --file PATH``."""
    p = predict_parser()
    args = p.parse_intermixed_args(argv)
    if bool(args.texts) == bool(args.file):
        p.error("expected texts to classify or --file PATH (one of them)")
    setup_logging(args.quiet)
    return _run("jaxseq predict", lambda: _predict(args))


def _review_file(text: str) -> str:
    return text if text == "-" else _cli.existing_file(text)


def _load(model_dir: str) -> Any:
    from . import load

    if not os.path.isdir(model_dir):
        raise CommandError(f"RUN_DIR: {model_dir} is not a directory.")
    return load(model_dir)


def _predict(args: argparse.Namespace) -> int:
    texts = read_lines(args.file) if args.file else check_texts(args.texts)
    clf = _load(args.model_dir)
    predictions = clf.predict(texts, threshold=args.threshold)
    rows = zip(texts, predictions.probability, predictions.label_name, strict=True)
    for t, p1, name in rows:
        probabilities = dict(zip(clf.label_names, (1.0 - p1, p1), strict=True))
        if args.json:
            rounded = {k: round(float(v), 6) for k, v in probabilities.items()}
            print(json.dumps({"label": name, "probabilities": rounded, "text": t}))
        else:
            preview = t if len(t) <= 60 else t[:57] + "..."
            print(f"{name}\t{probabilities[name]:.4f}\t{preview}")
    return 0


# ------------------------------------------------------------------ eval
def eval_parser() -> argparse.ArgumentParser:
    """The ``jaxseq eval`` command line."""
    p = _cli.Parser(
        prog="jaxseq eval",
        description="Accuracy of a saved model on labelled texts (a folder or "
        ".csv file is read\nwith the model's class names, so label ids agree).",
    )
    _model_argument(p)
    add_data_arguments(p, default="sample")
    p.add_argument(
        "--split",
        default="test",
        choices=["train", "test", "all"],
        help="which labelled split to score (all: every text of a folder or .csv "
        "file, for data the model never saw)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='one JSON object: {"data", "split", "classes", "accuracy", "loss", '
        '"count", "seconds"}',
    )
    _cli.add_quiet(p)
    return p


def eval_main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq eval RUN_DIR --data sample|tfds|PATH [--split test]``."""
    parser = eval_parser()
    args = parser.parse_args(argv)
    options = data_options(parser, args, args.split)
    setup_logging(args.quiet)
    return _run("jaxseq eval", lambda: _eval(args, options))


def _eval(args: argparse.Namespace, options: DataOptions) -> int:
    from .classifier import evaluate

    clf = _load(args.model_dir)
    reviews = load_split(args.data, args.split, options, class_names=clf.label_names)
    tic = time.perf_counter()
    metrics = evaluate(clf, reviews.texts, reviews.labels)
    seconds = time.perf_counter() - tic
    classes = list(clf.label_names)
    if args.json:
        print(
            json.dumps(
                {
                    "data": args.data,
                    "split": args.split,
                    "classes": classes,
                    **metrics,
                    "seconds": seconds,
                }
            )
        )
        return 0
    print(
        f"{args.data} {args.split}: accuracy {metrics['accuracy']:.4f}, loss "
        f"{metrics['loss']:.4f} on {metrics['count']} texts of classes "
        f"{' and '.join(classes)} ({seconds:.1f}s)"
    )
    return 0
