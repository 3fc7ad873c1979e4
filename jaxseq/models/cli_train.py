"""``jaxseq train imdb``: train a registered model on IMDb (the shipped sample,
``tfds``, or a path to ``aclImdb_v1.tar.gz`` / an ``aclImdb`` directory),
validate on whole held-out movies, evaluate on the test split, and write a run
directory::

    runs/imdb-lstm-20250101-120000/
        model/          the saved classifier (jaxseq.json, params.npz, vocab.json)
        metrics.jsonl   one line per epoch (also metrics.csv)
        curves.png      training and validation loss and accuracy
        result.json     settings, timings and test accuracy
        ckpt/           checkpoints: the same command continues the run

Every option is checked before any data is read (a bad value: one line on
stderr naming the flag, exit status 2); errors while running are one line with
exit status 1 (see :mod:`jaxseq.models.cli`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import cli as _cli
from .cli import CommandError, _run, _setup_logging, data_source, load_split, logger

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
        type=data_source,
        help="'sample' (shipped, default), 'tfds', or a path to "
        "aclImdb_v1.tar.gz / an aclImdb directory",
    )
    p.add_argument(
        "--out",
        default=None,
        type=_cli.output_dir,
        help="run directory (default runs/imdb-MODEL-TIMESTAMP)",
    )
    vocab_size = _cli.int_at_least(2, "it counts the padding and unknown-word ids")
    for flag, kind, field in [
        ("--epochs", _cli.positive_int, "epochs"),
        ("--batch-size", _cli.positive_int, "batch_size"),
        ("--lr", _cli.positive_float, "learning_rate"),
        ("--patience", _cli.positive_int, "patience"),
        ("--vocab-size", vocab_size, "max_tokens"),
        ("--maxlen", _cli.positive_int, "maxlen"),
    ]:
        p.add_argument(
            flag,
            type=kind,
            default=None,
            dest=field,
            metavar=flag[2:].upper().replace("-", "_"),
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
        type=model_option,
        metavar="KEY=VALUE",
        help="model option, e.g. --option hidden=128 (JSON values)",
    )
    p.add_argument(
        "--valid-fraction",
        type=_cli.fraction,
        default=0.2,
        help="share of the training reviews held out for validation (default 0.2)",
    )
    p.add_argument(
        "--split-by",
        choices=["auto", "movie", "random"],
        default="auto",
        help="validation split; auto: by movie when movie ids are known",
    )
    p.add_argument("--seed", type=_cli.seed, default=0)
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
    parser = _train_parser()
    args = parser.parse_args(argv)
    _check_options(parser, args)
    _setup_logging(args.quiet)
    return _run("jaxseq train", lambda: _train(args))


def _train(args: argparse.Namespace) -> int:
    from . import save
    from .classifier import evaluate

    recipe = recipe_from_args(args)
    out = args.out or os.path.join(
        "runs", f"imdb-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    ckpt = None if args.no_checkpoints else os.path.join(out, "ckpt")
    if ckpt is not None and os.path.exists(ckpt) and not os.path.isdir(ckpt):
        raise CommandError(
            f"--out: expected {ckpt} to be a checkpoint directory, got a file; "
            "remove it or pass another --out."
        )
    train_all = load_split(args.data, "train", strict_utf8=args.strict_utf8)
    fit, valid = _split(train_all, args)
    print(
        f"jaxseq train imdb: model {args.model}, {len(fit)} training / {len(valid)} "
        f"validation reviews from {args.data}, run directory {out}"
    )
    result = _fit(args, recipe, fit, valid, out, ckpt)
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


def _fit(args, recipe, fit, valid, out: str, ckpt: str | None) -> Any:
    """:func:`~jaxseq.models.train` with the command line's wording for what
    can go wrong (a diverging run, a checkpoint of another run) and for a rerun
    that has nothing left to train."""
    from ..train import NonFiniteError, latest_step
    from ..train.checkpoint import CheckpointError
    from .training import train

    last = None if ckpt is None else latest_step(ckpt)
    if last is not None:
        print(f"continuing from the checkpoint at step {last} in {ckpt}")
    try:
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
    if last is not None and result.history and result.history[-1]["step"] <= last:
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


main = train_main

if __name__ == "__main__":  # guarded: pytest --doctest-modules imports this module
    sys.exit(main())
