"""The command line of ``jaxseq train lm``: its argument parser, flag types and
the model its flags describe (checked before any data is read). The run itself
is :mod:`jaxseq.lm.cli`."""

from __future__ import annotations

import argparse
import functools
import os
from typing import Any

from .. import cli as _cli
from .stateful import CHUNKS_PER_CALL

MODELS = ("lstm", "gru", "elman", "transformer")
LM_TASK = "lm"


class CommandError(Exception):
    """A user error reported as one line on stderr (exit status 1)."""


# ------------------------------------------------------------------ arguments
def data_source(text: str) -> str:
    """``--data``: ``sample`` (the IMDb reviews shipped with jaxseq), ``tfds``,
    or an existing file or folder (plain text, or an IMDb archive/folder)."""
    if text in ("sample", "tfds") or os.path.exists(text):
        return text
    raise argparse.ArgumentTypeError(
        f"{text} does not exist; expected 'sample', 'tfds', a text file or folder "
        "of .txt files, or an IMDb archive"
    )


#: ``--dropout``: a rate in ``[0, 1)``.
rate = _cli.interval(0.0, 1.0, low_closed=True)


def _train_parser() -> argparse.ArgumentParser:
    p = _cli.Parser(
        prog="jaxseq train lm",
        description="Train a language model: stateful truncated BPTT over B\n"
        "parallel streams read in chunks of T tokens. The same command with the\n"
        "same --out continues a stopped run from its last checkpoint.",
    )
    add = p.add_argument
    add(
        "--data",
        default="sample",
        type=data_source,
        help="'sample' (IMDb reviews shipped with jaxseq), 'tfds', a UTF-8 text "
        "file (one document per line), a folder of .txt files, or an IMDb archive",
    )
    add("--level", default="char", choices=["word", "char"], help="token level")
    add("--model", default="lstm", choices=MODELS, help="the network")
    add(
        "--embed-dim",
        type=_cli.positive_int,
        default=128,
        help="embedding size (recurrent models)",
    )
    add(
        "--hidden",
        type=_cli.positive_int,
        default=128,
        help="units per layer (the transformer's width)",
    )
    add(
        "--layers",
        type=_cli.positive_int,
        default=1,
        help="stacked layers (transformer blocks)",
    )
    add(
        "--heads",
        type=_cli.positive_int,
        default=4,
        help="attention heads (transformer)",
    )
    add(
        "--tied",
        action="store_true",
        help="tie the output layer to the embedding (needs --hidden = --embed-dim)",
    )
    add(
        "--dropout",
        type=rate,
        default=0.0,
        help="dropout on embeddings, between layers and on outputs",
    )
    add(
        "--batch-size",
        type=_cli.positive_int,
        default=32,
        help="B, parallel streams per step",
    )
    add(
        "--chunk-len",
        type=_cli.positive_int,
        default=64,
        help="T, tokens per chunk (gradients flow back at most T steps)",
    )
    add("--epochs", type=_cli.positive_int, default=1, help="passes over the text")
    add("--lr", type=_cli.positive_float, default=2e-3, help="Adam learning rate")
    add("--clip", type=_cli.positive_float, default=1.0, help="gradient norm clip")
    add(
        "--vocab-size",
        type=_cli.int_at_least(4, "3 ids are reserved"),
        default=None,
        help="largest vocabulary, reserved ids included (default: 10000 words, "
        "every character)",
    )
    add(
        "--max-docs",
        type=_cli.positive_int,
        default=None,
        help="read at most this many training documents (default: all)",
    )
    add(
        "--valid-fraction",
        type=_cli.fraction,
        default=0.1,
        help="share of the training documents held out for validation",
    )
    add("--seed", type=_cli.seed, default=0, help="PRNG seed (integer)")
    add(
        "--out",
        type=_cli.output_dir,
        default=None,
        help="run directory (default runs/lm-MODEL-LEVEL-TIMESTAMP)",
    )
    add(
        "--checkpoint-every",
        type=_cli.positive_int,
        default=None,
        metavar="STEPS",
        help="checkpoint into OUT/ckpt every STEPS steps (default: each epoch)",
    )
    add(
        "--log-every",
        type=_cli.positive_int,
        default=None,
        metavar="STEPS",
        help="steps per metrics record (default: 20 records per epoch)",
    )
    add(
        "--chunks-per-call",
        type=_cli.positive_int,
        default=CHUNKS_PER_CALL,
        metavar="K",
        help="chunks trained per compiled call (fewer dispatches and host "
        "reads; the same updates)",
    )
    add(
        "--no-test",
        action="store_true",
        help="skip the evaluation on the test split (IMDb sources)",
    )
    add("--quiet", action="store_true", help="no progress bar and no info lines")
    add("--json", action="store_true", help="print result.json on stdout")
    return p


def _build_model(args: argparse.Namespace, vocab_size: int) -> Any:
    fields = (
        "model",
        "embed_dim",
        "hidden",
        "layers",
        "heads",
        "tied",
        "dropout",
        "chunk_len",
    )
    return _model(vocab_size, *(getattr(args, f) for f in fields))


# the same command line twice in one process (tests, notebooks) builds the same
# model object, so its compiled steps are reused (jaxseq.lm.stateful caches them)
@functools.lru_cache(maxsize=8)
def _model(vocab_size, model, embed_dim, hidden, layers, heads, tied, dropout, T):
    from .models import rnn_lm, transformer_lm

    if model == "transformer":
        return transformer_lm(
            vocab_size,
            dim=hidden,
            heads=heads,
            ffn=4 * hidden,
            blocks=layers,
            context=T,
            tied=tied,
            dropout=dropout,
        )
    return rnn_lm(
        vocab_size,
        cell=model,
        embed_dim=embed_dim,
        hidden=hidden,
        num_layers=layers,
        tied=tied,
        dropout=dropout,
    )


_FLAGS = {
    "hidden": "--hidden",
    "embed_dim": "--embed-dim",
    "tied": "--tied",
    "dim": "--hidden",
    "heads": "--heads",
}


def _check_model(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Build the model once (no parameters) so that inconsistent flags stop the
    command before any data is read."""
    try:
        _build_model(args, 4)
    except ValueError as err:
        message = _cli.error_line(err)
        name = message.split(":", 1)[0]
        flag = _FLAGS.get(name, f"--{name.replace('_', '-')}")
        parser.error(f"argument {flag}: {message.split(':', 1)[1].strip()}")
