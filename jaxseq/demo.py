"""``jaxseq demo``: the seed's IMDb lab model, trained on the reviews shipped
with jaxseq (no download, no arguments).

The model is the Keras lab model of the seed, layer for layer::

    Embedding(vocab, 4) -> LSTM(4, return_sequences, go_backwards)
    -> global average pooling over the valid steps -> Dense(4, relu)
    -> Dense(1, sigmoid)

run on jaxseq's length-aware runner (``reverse=True`` with the review lengths
is ``go_backwards`` without reading the padding). It trains with Adam on 1,600
of the sample's 2,000 training reviews, keeps the epoch with the best accuracy
on the other 400 (whole movies held out), and reports the accuracy on the
sample's 1,000 test reviews. The sample is small, so the demo uses smaller
batches than the seed's 512 (more updates per epoch); ``jaxseq train imdb
--model lab --data aclImdb_v1.tar.gz`` runs the seed's settings on the full
data set.

Writes ``runs/demo-lab/``: ``model/`` (configuration, parameters and
vocabulary; ``jaxseq predict runs/demo-lab/model "a review"`` reuses it),
``metrics.jsonl``, ``metrics.csv`` and ``curves.png``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Train the lab model on the shipped sample and report held-out accuracy."""
    from . import cli

    parser = cli.Parser(
        prog="jaxseq demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--epochs", type=cli.positive_int, default=25, help="epochs (default 25)"
    )
    parser.add_argument(
        "--batch-size", type=cli.positive_int, default=32, help="default 32"
    )
    parser.add_argument(
        "--learning-rate", type=cli.positive_float, default=3e-3, help="default 3e-3"
    )
    parser.add_argument(
        "--maxlen", type=cli.positive_int, default=400, help="tokens per review"
    )
    parser.add_argument("--seed", type=cli.seed, default=0)
    parser.add_argument(
        "--out",
        type=cli.output_dir,
        default=os.path.join("runs", "demo-lab"),
        help="run directory (default runs/demo-lab)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    return cli.run_command("jaxseq demo", lambda: _demo(args))


def _demo(args: argparse.Namespace) -> int:
    import jax

    from . import models
    from .data import imdb
    from .models.cli import _setup_logging

    _setup_logging(quiet=True)
    start = time.perf_counter()
    train_all, test = imdb.load_sample("train"), imdb.load_sample("test")
    fit, valid = imdb.validation_split(
        train_all, fraction=0.2, by="movie", seed=args.seed
    )
    recipe = models.RECIPES["lab"]._replace(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.epochs,  # keep the best validation epoch, never stop early
        inputs=models.InputSpec(maxlen=args.maxlen, truncating="pre"),
    )
    print(
        f"jaxseq demo: the seed's lab model (Embedding 4 -> LSTM 4 backwards -> mean "
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
        progress=not args.quiet,
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
        f"{len(result.history)}; {result.params:,} parameters; "
        f"{time.perf_counter() - start:.0f}s"
    )
    print(f"curves:  {os.path.join(args.out, 'curves.png')}")
    print(f"metrics: {os.path.join(args.out, 'metrics.jsonl')}")
    print(f'model:   {model_dir}  (try: jaxseq predict {model_dir} "What a film!")')
    return 0
