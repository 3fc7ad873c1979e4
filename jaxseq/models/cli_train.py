"""``jaxseq train text --data PATH`` (your own labelled texts: a folder of class
folders or a .csv file) and ``jaxseq train imdb`` (IMDb: the shipped sample by
default, ``tfds``, or ``aclImdb_v1.tar.gz`` / an ``aclImdb`` directory): train a
registered model, validate on held-out texts (IMDb: whole held-out movies),
evaluate on the test split, and write a run directory::

    runs/text-lstm-20250101-120000/     (runs/imdb-... for imdb)
        model/          the saved classifier (jaxseq.json with its class
                        names, params.npz, vocab.json)
        metrics.jsonl   one line per epoch (also metrics.csv)
        curves.png      training and validation loss and accuracy per epoch
        result.json     settings, classes, timings and test accuracy
                        (compile_seconds: the first step, compile included;
                        sec_per_epoch: the median epoch after the first)
        ckpt/           checkpoints: the same command continues the run

The two tasks share every option; the task chooses the default --data and the
wording. Every option is checked before any data is read (a bad value: one
line on stderr naming the flag, exit status 2); errors while running are one
line with exit status 1 (see :mod:`jaxseq.models.cli`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import cli as _cli
from ..train.history import epoch_seconds
from .cli import (
    CommandError,
    _names,
    _run,
    add_data_arguments,
    data_options,
    load_split,
    logger,
    setup_logging,
    source_kind,
)

__all__ = ["main", "train_main", "recipe_from_args"]


def model_option(text: str) -> tuple[str, Any]:
    """An ``argparse`` type for ``--option KEY=VALUE`` (VALUE as JSON when it
    parses, else the string; JSON lists become tuples)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value
    return key, tuple(parsed) if isinstance(parsed, list) else parsed


def _train_parser() -> argparse.ArgumentParser:
    from . import RECIPES, names

    p = _cli.Parser(
        prog="jaxseq train",
        description=__doc__,
        epilog=_recipe_table(RECIPES),
    )
    p.add_argument(
        "task",
        choices=list(TASKS) + ["lm"],
        help="text (a classifier of your own labelled texts, --data required), "
        "imdb (a classifier of movie reviews, --data sample by default) or lm (a "
        "language model: jaxseq train lm --help)",
    )
    p.add_argument("--model", default="lstm", choices=names(), help="registered model")
    add_data_arguments(
        p,
        default=None,
        what="texts",
        note=f"default: {TASKS['imdb']} for imdb; required for text",
    )
    p.add_argument(
        "--out",
        default=None,
        type=_cli.output_dir,
        help="run directory (default runs/TASK-MODEL-TIMESTAMP)",
    )
    vocab_size = _cli.int_at_least(2, "it counts the padding and unknown-word ids")
    recipe = "default: the model's recipe, in the table below"
    for flag, kind, field, what in [
        ("--epochs", _cli.positive_int, "epochs", "most epochs"),
        ("--batch-size", _cli.positive_int, "batch_size", "texts per update"),
        ("--lr", _cli.positive_float, "learning_rate", "Adam's learning rate"),
        (
            "--patience",
            _cli.positive_int,
            "patience",
            "stop after this many epochs without a better validation accuracy",
        ),
        ("--vocab-size", vocab_size, "max_tokens", "vocabulary size"),
        ("--maxlen", _cli.positive_int, "maxlen", "tokens kept per text"),
    ]:
        p.add_argument(
            flag,
            type=kind,
            default=None,
            dest=field,
            metavar=flag[2:].upper().replace("-", "_"),
            help=f"{what} ({recipe})",
        )
    p.add_argument(
        "--truncating",
        choices=["pre", "post"],
        default=None,
        help=f"keep the last (pre) or first (post) maxlen tokens ({recipe})",
    )
    p.add_argument(
        "--no-bucketing",
        action="store_true",
        help="uniformly random batches over the full maxlen (default: batches of "
        "similar lengths, trimmed to one of 4 bucket lengths)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        type=model_option,
        metavar="KEY=VALUE",
        help="model option, e.g. --option hidden=128 (JSON values; repeat the "
        "flag for more; default: the model's own)",
    )
    p.add_argument(
        "--valid-fraction",
        type=_cli.fraction,
        default=0.2,
        help="share of the training texts held out for validation",
    )
    p.add_argument(
        "--split-by",
        choices=["auto", "movie", "random"],
        default="auto",
        help="validation split; auto: by movie when movie ids are known (the "
        "IMDb sample, archive or aclImdb directory), else at random",
    )
    p.add_argument(
        "--seed",
        type=_cli.seed,
        default=0,
        help="PRNG seed (integer): parameters, dropout, data order, validation split",
    )
    p.add_argument(
        "--checkpoint-every",
        type=_cli.positive_int,
        default=None,
        metavar="STEPS",
        help="checkpoint into OUT/ckpt every STEPS steps (default: every epoch); "
        "running the same command with the same --out continues from the last one",
    )
    p.add_argument("--no-checkpoints", action="store_true", help="write no checkpoints")
    p.add_argument("--no-test", action="store_true", help="skip the test evaluation")
    _cli.add_quiet(p)
    return p


def _recipe_table(recipes: dict[str, Any]) -> str:
    """The recipes' defaults as a plain-text table (the help's epilog)."""
    head = ("model", "epochs", "batch", "lr", "patience", "vocab", "maxlen", "trunc")
    rows = [head] + [
        (
            name,
            str(r.epochs),
            str(r.batch_size),
            f"{r.learning_rate:g}",
            "none" if r.patience is None else str(r.patience),
            "all" if r.max_tokens is None else f"{r.max_tokens:,}",
            str(r.inputs.maxlen),
            r.inputs.truncating,
        )
        for name, r in recipes.items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return (
        "defaults per model (its recipe; the flags above override them;\n"
        "patience none: all epochs, the last one kept):\n  " + "\n  ".join(lines)
    )


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
    options = {**recipe.options, **dict(args.option)}
    bucketing = recipe.bucketing and not args.no_bucketing
    return recipe._replace(
        **changes, inputs=inputs, options=options, bucketing=bucketing
    )


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Build the model once with the ``--option`` values (no parameters are
    made), so that an unknown option or a bad value stops the command before any
    data is read."""
    from . import build

    if not args.option:
        return
    recipe = recipe_from_args(args)
    try:
        build(args.model, vocab_size=recipe.max_tokens or 2, **recipe.options)
    except (ValueError, TypeError) as err:
        given = " ".join(f"{k}={v!r}" for k, v in args.option)
        parser.error(f"argument --option ({given}): {_cli.error_line(err).rstrip('.')}")


def _split(train: Any, args: argparse.Namespace) -> tuple[Any, Any]:
    from ..data import imdb

    by = args.split_by
    if by == "auto":
        by = "movie" if (train.movie_ids >= 0).all() else "random"
        if by == "random" and args.data == "tfds":
            logger.warning(
                "validation split: movie ids unknown (tensorflow-datasets); splitting "
                "reviews at random, which overstates validation accuracy"
            )
        elif by == "random":
            logger.info(
                "validation split: %g of the %d training texts at random (seed %d)",
                args.valid_fraction,
                len(train),
                args.seed,
            )
    return imdb.validation_split(
        train, fraction=args.valid_fraction, by=by, seed=args.seed
    )


#: classifier task -> its default --data (None: --data is required)
TASKS: dict[str, str | None] = {"text": None, "imdb": "sample"}
#: --data kinds that know each review's movie (--split-by movie)
_MOVIE_KINDS = ("sample", "archive", "imdb")


def train_main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq train text|imdb [options]`` (see ``--help``); ``jaxseq train
    lm`` is :mod:`jaxseq.lm.cli`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "lm":
        from ..lm.cli import train_main as lm_train_main

        return lm_train_main(argv[1:])
    parser = _train_parser()
    args = parser.parse_args(argv)
    if args.data is None:
        args.data = TASKS[args.task]
    if args.data is None:
        parser.error(
            f"argument --data: required for the task {args.task} (a folder of "
            "class folders or a .csv file; jaxseq train imdb uses the shipped "
            "IMDb sample)"
        )
    options = data_options(parser, args)
    if args.split_by == "movie" and source_kind(args.data) not in _MOVIE_KINDS:
        parser.error(
            f"argument --split-by: 'movie' needs movie ids, which --data "
            f"{args.data} does not have (the IMDb sample, archive or aclImdb "
            "directory have them); pass --split-by random or auto"
        )
    _check_options(parser, args)
    setup_logging(args.quiet)
    return _run("jaxseq train", lambda: _train(args, options))


def _train(args: argparse.Namespace, options: Any) -> int:
    from . import save
    from .classifier import evaluate

    recipe = recipe_from_args(args)
    out = args.out or os.path.join(
        "runs", f"{args.task}-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    ckpt = None if args.no_checkpoints else os.path.join(out, "ckpt")
    if ckpt is not None and os.path.exists(ckpt) and not os.path.isdir(ckpt):
        raise CommandError(
            f"--out: expected {ckpt} to be a checkpoint directory, got a file; "
            "remove it or pass another --out."
        )
    train_all = load_split(args.data, "train", options)
    _check_both_classes(args.data, train_all)
    fit, valid = _split(train_all, args)
    classes = " and ".join(train_all.label_names)
    print(
        f"jaxseq train {args.task}: model {args.model}, {len(fit)} training / "
        f"{len(valid)} validation {_texts(args)} (classes {classes}) from "
        f"{args.data}, run directory {out}"
    )
    result = _fit(args, recipe, fit, valid, out, ckpt, train_all.label_names)
    summary = _summary(args, recipe, result, options)
    if not args.no_test:
        test = load_split(args.data, "test", options, class_names=train_all.label_names)
        summary["test"] = evaluate(result.classifier, test.texts, test.labels)
    model_dir = os.path.join(out, "model")
    save(model_dir, result.classifier, extra=summary, overwrite=True)
    with open(os.path.join(out, "result.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    _print_summary(summary, out, model_dir)
    return 0


def _check_both_classes(source: str, train: Any) -> None:
    """Refuse training texts of one class only (nothing to tell apart)."""
    import numpy as np

    counts = np.bincount(train.labels, minlength=len(train.label_names))
    if (counts == 0).any():
        missing = [n for n, c in zip(train.label_names, counts, strict=True) if not c]
        found = ", ".join(
            f"{c} of class {n!r}"
            for n, c in zip(train.label_names, counts, strict=True)
            if c
        )
        raise CommandError(
            f"--data {source}: expected training texts of every class "
            f"({_names(train.label_names)}), got none of class "
            f"{', '.join(map(repr, missing))} ({found})."
        )


def _texts(args: argparse.Namespace) -> str:
    return "reviews" if args.task == "imdb" else "texts"


def _fit(args, recipe, fit, valid, out: str, ckpt: str | None, label_names) -> Any:
    """:func:`~jaxseq.models.train` with the command line's wording for what
    can go wrong (a diverging run, a checkpoint of another run) and for a rerun
    that has nothing left to train."""
    from ..train import NonFiniteError
    from ..train.checkpoint import CheckpointError
    from .training import train

    try:
        result = train(
            args.model,
            fit.texts,
            fit.labels,
            valid.texts,
            valid.labels,
            recipe=recipe,
            label_names=label_names,
            seed=args.seed,
            log_dir=out,
            title=f"jaxseq train {args.task} --model {args.model} (data: "
            f"{args.data}; {len(fit):,} training / {len(valid):,} validation "
            f"{_texts(args)})",
            progress=False if args.quiet else None,
            checkpoint_dir=ckpt,
            checkpoint_every=args.checkpoint_every,
        )
    except NonFiniteError as err:
        kept = (
            f"the last good checkpoint is step {err.checkpoint_step} in {ckpt}"
            if err.checkpoint_step is not None and ckpt is not None
            else "no checkpoint was kept"
        )
        raise CommandError(
            f"training diverged: non-finite loss or gradient at step {err.step} "
            f"(not applied) with --lr {recipe.learning_rate:g}; {kept}. Train again "
            "with a lower --lr (a new run: another --out)."
        ) from err
    except CheckpointError as err:
        # fit's wording names its argument; the command's is --out
        message = _cli.error_line(err).removeprefix("checkpoint_dir: ")
        message = message.replace("another checkpoint_dir", "another --out")
        raise CommandError(f"--out {out}: {message}") from err
    except ValueError as err:
        if not str(err).startswith("optimizer:"):
            raise
        # fit refuses an optimiser whose updates overflow; the command's knob is --lr
        message = _cli.error_line(err).removeprefix("optimizer: ")
        raise CommandError(f"--lr {recipe.learning_rate:g}: {message}") from err
    if "compile" not in result.timings:  # no step ran: the run was complete
        _nothing_trained(result, recipe, ckpt)
    return result


def _nothing_trained(result: Any, recipe: Any, ckpt: str | None) -> None:
    epochs = len(result.history)
    if result.stopped_early:
        print(
            f"nothing trained: early stopping had ended this run at epoch {epochs} "
            f"(--patience {recipe.patience}: no better validation accuracy since "
            f"epoch {result.best_epoch}), so --epochs {recipe.epochs} adds none; "
            f"the model is that run's best epoch. To train further, start a new run "
            f"(another --out, or remove {ckpt})."
        )
    else:
        print(
            f"nothing trained: the run in {ckpt} already has its {epochs} epochs; "
            "pass a larger --epochs to continue it."
        )


def _summary(
    args: argparse.Namespace, recipe: Any, result: Any, options: Any
) -> dict[str, Any]:
    best = result.history[result.best_epoch - 1] if result.best_epoch else {}
    return {
        "task": args.task,
        "model": result.classifier.model.config,
        "recipe": {**recipe._asdict(), "inputs": recipe.inputs._asdict()},
        "data": args.data,
        "data_options": options._asdict(),
        "classes": list(result.classifier.label_names),
        "seed": args.seed,
        "params": result.params,
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "valid_accuracy": best.get("valid_accuracy"),
        "compile_seconds": result.timings.get("compile"),
        "first_epoch_seconds": result.history[0]["seconds"] if result.history else None,
        "sec_per_epoch": epoch_seconds(result.history),
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
        line += f"; held-out test accuracy {t['accuracy']:.4f} on {t['count']} texts"
    print(line)
    print(_timing_line(summary))
    print(f"model saved to {model_dir}")
    print(
        f"curves: {os.path.join(out, 'curves.png')}; metrics: "
        f"{os.path.join(out, 'metrics.jsonl')}"
    )


def _timing_line(summary: dict[str, Any]) -> str:
    compile_, first = summary["compile_seconds"], summary["first_epoch_seconds"]
    per_epoch = summary["sec_per_epoch"]
    parts = [] if compile_ is None else [f"compiling {compile_:.1f} s (first step)"]
    if first is not None:
        parts.append(f"epoch 1 {first:.1f} s (compiling included)")
    if per_epoch is not None:
        parts.append(f"{per_epoch:.1f} s per epoch after the first (median)")
    return "time: " + "; ".join(parts) if parts else "time: no step ran"


main = train_main

if __name__ == "__main__":  # guarded: pytest --doctest-modules imports this module
    sys.exit(main())
