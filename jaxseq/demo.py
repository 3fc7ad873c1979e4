"""``jaxseq demo``: the Keras IMDb lab model, trained on the reviews shipped with
jaxseq (no download, no arguments needed).

The model is the lab's Keras model, layer for layer::

    Embedding(vocab, 4) -> LSTM(4, return_sequences, go_backwards)
    -> global average pooling over the valid steps -> Dense(4, relu)
    -> Dense(1, sigmoid)

run on jaxseq's length-aware runner (``reverse=True`` with the review lengths
is ``go_backwards`` without reading the padding). It trains with Adam on 1,600
of the sample's 2,000 training reviews, keeps the epoch with the best accuracy
on the other 400 (whole movies held out), and reports the accuracy on the
sample's 1,000 test reviews. The sample is small, so the demo uses smaller
batches than the lab's 512 (more updates per epoch); ``jaxseq train imdb
--model lab --data aclImdb_v1.tar.gz`` runs the lab's settings on the full
data set.

Writes ``runs/demo-lab/``: ``model/`` (configuration, parameters and
vocabulary), ``metrics.jsonl``, ``metrics.csv`` and ``curves.png``;
``jaxseq predict runs/demo-lab "a review"`` reuses the model.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence


def parser() -> argparse.ArgumentParser:
    """The ``jaxseq demo`` command line."""
    from . import cli

    p = cli.Parser(prog="jaxseq demo", description=__doc__)
    p.add_argument("--epochs", type=cli.positive_int, default=25, help="epochs")
    p.add_argument(
        "--batch-size", type=cli.positive_int, default=32, help="reviews per update"
    )
    p.add_argument(
        "--lr", type=cli.positive_float, default=3e-3, help="Adam's learning rate"
    )
    p.add_argument(
        "--maxlen",
        type=cli.positive_int,
        default=400,
        help="tokens kept per review (its last ones)",
    )
    p.add_argument(
        "--seed",
        type=cli.seed,
        default=0,
        help="PRNG seed (integer): parameters, data order and validation split",
    )
    p.add_argument(
        "--out",
        type=cli.output_dir,
        default=os.path.join("runs", "demo-lab"),
        help="run directory",
    )
    cli.add_quiet(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Train the lab model on the shipped sample and report held-out accuracy."""
    from . import cli

    args = parser().parse_args(argv)
    return cli.run_command("jaxseq demo", lambda: _demo(args))


def _demo(args: argparse.Namespace) -> int:
    import jax

    from . import models
    from .data import imdb
    from .models.cli import setup_logging
    from .train.history import epoch_seconds

    setup_logging(quiet=True)
    start = time.perf_counter()
    train_all, test = imdb.load_sample("train"), imdb.load_sample("test")
    fit, valid = imdb.validation_split(
        train_all, fraction=0.2, by="movie", seed=args.seed
    )
    recipe = models.RECIPES["lab"]._replace(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        patience=args.epochs,  # keep the best validation epoch, never stop early
        inputs=models.InputSpec(maxlen=args.maxlen, truncating="pre"),
    )
    print(
        f"jaxseq demo: the Keras lab model (Embedding 4 -> LSTM 4 backwards -> mean "
        f"-> Dense 4 -> Dense 1) on {len(fit)} IMDb sample reviews ({len(valid)} for "
        f"validation, by movie), backend {jax.default_backend()}"
    )
    result = models.train(
        "lab",
        fit.texts,
        fit.labels,
        valid.texts,
        valid.labels,
        recipe=recipe,
        seed=args.seed,
        log_dir=args.out,
        progress=False if args.quiet else None,
        title=f"jaxseq demo: lab model, IMDb sample ({len(fit)} training reviews)",
    )
    test_metrics = models.evaluate(result.classifier, test.texts, test.labels)
    model_dir = os.path.join(args.out, "model")
    models.save(
        model_dir, result.classifier, extra={"test": test_metrics}, overwrite=True
    )
    best = result.history[result.best_epoch - 1]
    print(
        f"held-out test accuracy {test_metrics['accuracy']:.3f} on "
        f"{test_metrics['count']} reviews (chance 0.5); validation accuracy "
        f"{best['valid_accuracy']:.3f} at epoch {result.best_epoch} of "
        f"{len(result.history)}; {result.params:,} parameters"
    )
    per_epoch = epoch_seconds(result.history)
    print(
        f"time: {time.perf_counter() - start:.0f} s in all; compiling "
        f"{result.timings['compile']:.1f} s (first step), then "
        + ("n/a" if per_epoch is None else f"{per_epoch:.2f} s")
        + " per epoch (median after the first)"
    )
    print(f"curves:  {os.path.join(args.out, 'curves.png')}")
    print(f"metrics: {os.path.join(args.out, 'metrics.jsonl')}")
    print(f'model:   {model_dir}  (try: jaxseq predict {args.out} "What a film!")')
    return 0
