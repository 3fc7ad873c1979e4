"""Language models from the command line: ``jaxseq train lm``, ``jaxseq generate``
and ``jaxseq eval`` on an LM run directory.

``jaxseq train lm --data sample|PATH --level word|char --model lstm ...`` trains
with stateful truncated BPTT (:func:`jaxseq.lm.training.fit_stream`) and
writes a run directory::

    runs/lm-lstm-char-20250101-120000/
        model/           the model (jaxseq.json, params.npz, vocab.json)
        metrics.jsonl    one record per --log-every steps (also metrics.csv)
        perplexity.png   training and validation perplexity by update step
        result.json      settings, timings, validation (and test) perplexity
        ckpt/            checkpoints (parameters, optimiser, carry, position)

Running the same command with the same ``--out`` continues from the newest
verified checkpoint, to the same bits as a run never interrupted.
``jaxseq generate RUN_DIR "prompt" ...`` continues prompts; ``jaxseq eval
RUN_DIR`` reports perplexity. Every option is checked before any data is read
(a bad value: one line on stderr naming the flag, exit status 2); errors while
running are one line with exit status 1.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import cli as _cli
from .cli_args import (
    LM_TASK,
    MODELS,
    CommandError,
    _build_model,
    _check_model,
    _train_parser,
    data_source,
    rate,
)

__all__ = [
    "LM_TASK",
    "MODELS",
    "CommandError",
    "data_source",
    "eval_main",
    "is_lm_run",
    "load_run",
    "load_splits",
    "main",
    "model_dir_of",
    "optimizer",
    "rate",
    "read_source",
    "train_main",
]


# ------------------------------------------------------------------ data
def _split_docs(texts: list[str], fraction: float, seed: int) -> tuple[list, list]:
    """Hold out ``fraction`` of the documents (a seeded draw; order kept)."""
    import numpy as np

    n = len(texts)
    n_valid = max(1, round(fraction * n))
    if n - n_valid < 1:
        raise CommandError(
            f"--valid-fraction {fraction:g}: expected at least one training "
            f"document besides the {n_valid} held out, got {n} documents."
        )
    held = np.zeros(n, bool)
    held[np.random.default_rng(seed).choice(n, n_valid, replace=False)] = True
    return [t for t, h in zip(texts, held, strict=True) if not h], [
        t for t, h in zip(texts, held, strict=True) if h
    ]


def _has_test(source: str) -> bool:
    from pathlib import Path

    p = Path(source)
    return (
        source in ("sample", "tfds")
        or (p.is_file() and p.name.endswith((".tar.gz", ".tgz")))
        or (p.is_dir() and (p / "train").is_dir() and (p / "test").is_dir())
    )


def read_source(source: str, split: str = "train") -> list[str]:
    """:func:`jaxseq.lm.streams.load_texts`, its errors naming ``--data``."""
    from .streams import load_texts

    try:
        return load_texts(source, split)
    except (ValueError, FileNotFoundError) as err:
        message = _cli.error_line(err).removeprefix("path: ")
        raise CommandError(f"--data {source}: {message}") from err


def _log_to_stderr() -> None:
    """Warnings of the text readers (logger ``jaxseq.lm``: bytes that are not
    UTF-8) as ``jaxseq: message`` lines on stderr."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("jaxseq: %(message)s"))
    log = logging.getLogger("jaxseq.lm")
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING)
    log.propagate = False


def load_splits(data: dict[str, Any], *, test: bool = True) -> dict[str, list[str]]:
    """The run's documents: ``train`` and ``valid`` (a seeded split of the
    training documents), and (``test``) ``test`` when the source has a test
    split (IMDb). ``data``: ``{"source", "max_docs", "valid_fraction", "seed"}``."""
    texts = read_source(data["source"], "train")
    if data["max_docs"] is not None:
        texts = texts[: data["max_docs"]]
    train, valid = _split_docs(texts, data["valid_fraction"], data["seed"])
    out = {"train": train, "valid": valid}
    if test and _has_test(data["source"]):
        texts = read_source(data["source"], "test")
        out["test"] = texts if data["max_docs"] is None else texts[: data["max_docs"]]
    return out


def _tokenizer(level: str) -> Any:
    from .. import text

    # words: lower-cased, punctuation as tokens; characters: case kept
    if level == "word":
        return text.word_tokenizer(punctuation="split")
    return text.char_tokenizer(lower=False)


def _chunks(vocab, texts, batch_size, chunk_len, what: str, *, fit_batch=False):
    """Chunks of a split; ``fit_batch``: fewer streams when the text is short
    (evaluation), never fewer than one."""
    from .streams import chunk_stream, encode_stream

    stream = encode_stream(vocab, texts)
    n = int(stream.ids.shape[0])
    if fit_batch:
        batch_size = max(1, min(batch_size, (n - 1) // (chunk_len + 1)))
    need = batch_size * (chunk_len + 1)
    if n < need:
        raise CommandError(
            f"--batch-size {batch_size} x (--chunk-len {chunk_len} + 1): the "
            f"{what} text has {n} tokens, fewer than the {need} that one chunk "
            f"per stream needs; lower --batch-size or --chunk-len, or give more "
            "text."
        )
    return chunk_stream(stream, batch_size, chunk_len, vocab_size=len(vocab))


# ------------------------------------------------------------------ train
def train_main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq train lm [options]`` (see ``--help``)."""
    parser = _train_parser()
    args = parser.parse_args(argv)
    _check_model(parser, args)
    _log_to_stderr()
    return _cli.run_command("jaxseq train lm", lambda: _train(args))


def _info(args: argparse.Namespace, message: str) -> None:
    if not args.quiet:
        print(message, file=sys.stderr)


def _train(args: argparse.Namespace) -> int:
    from .. import io
    from .streams import lm_vocabulary

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = args.out or os.path.join("runs", f"lm-{args.model}-{args.level}-{stamp}")
    data = {
        "source": args.data,
        "max_docs": args.max_docs,
        "valid_fraction": args.valid_fraction,
        "seed": args.seed,
    }
    splits = load_splits(data, test=not args.no_test)
    max_size = args.vocab_size or (10_000 if args.level == "word" else None)
    vocab = lm_vocabulary(splits["train"], _tokenizer(args.level), max_size=max_size)
    B, T = args.batch_size, args.chunk_len
    train = _chunks(vocab, splits["train"], B, T, "training")
    valid = _chunks(vocab, splits["valid"], B, T, "validation", fit_batch=True)
    _info(
        args,
        f"jaxseq train lm: {args.model} on {args.level}s of {args.data}: "
        f"{len(splits['train'])} training / {len(splits['valid'])} validation "
        f"documents, vocabulary {len(vocab)}, {train.num_chunks} chunks of {B} x "
        f"{T} per epoch; run directory {out}",
    )
    model = _build_model(args, len(vocab))
    fit = _fit(args, model, train, valid, out)
    summary = _summary(args, data, model, vocab, fit, train)
    if "test" in splits:
        test = _chunks(vocab, splits["test"], B, T, "test", fit_batch=True)
        summary["test"] = _evaluate(model, fit.state.train.params, test)
    config = {"task": LM_TASK, "level": args.level, "lm": model.config}
    io.save(
        os.path.join(out, "model"),
        config=config,
        params=fit.state.train.params,
        vocab=vocab,
        extra=summary,
        overwrite=True,
    )
    with open(os.path.join(out, "result.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    _report(args, summary, out)
    return 0


@functools.lru_cache(maxsize=8)
def optimizer(lr: float, clip: float) -> Any:
    """The optimiser of ``jaxseq train lm``: global-norm clipping, then Adam."""
    import optax

    return optax.chain(optax.clip_by_global_norm(clip), optax.adam(lr))


def _fit(args, model, train, valid, out: str) -> Any:
    import jax

    from ..train.checkpoint import CheckpointError
    from .stateful import init_stream_state
    from .training import Checkpoints, fit_stream, write_records

    opt = optimizer(args.lr, args.clip)
    key = jax.random.key(args.seed)
    k_init, k_run = jax.random.split(key)
    params = jax.jit(model.init)(k_init)  # one compilation, not one per op
    state = init_stream_state(model, params, opt, k_run, train.inputs.shape[1])
    data = os.path.basename(os.path.normpath(args.data))
    title = (
        f"Perplexity of a{'n' if args.model in ('lstm', 'elman') else ''} "
        f"{args.model.upper() if args.model != 'transformer' else args.model} "
        f"LM, {args.level}s of {data} (B = {args.batch_size}, T = "
        f"{args.chunk_len})"
    )
    log_every = args.log_every or max(1, train.num_chunks // 20)
    # not --epochs: it may grow, to continue a finished run
    options = {"model": model.config, "lr": args.lr, "clip": args.clip}
    try:
        fit = fit_stream(
            model,
            opt,
            state,
            train,
            epochs=args.epochs,
            valid=valid,
            log_every=log_every,
            checkpoints=Checkpoints(os.path.join(out, "ckpt"), args.checkpoint_every),
            on_record=lambda h: write_records(
                h, out, title, plot="valid_loss" in h[-1]
            ),
            options=options,
            progress=not args.quiet and _cli.watched(),
            chunks_per_call=args.chunks_per_call,
        )
    except CheckpointError as err:
        message = _cli.error_line(err).removeprefix("checkpoint_dir: ")
        message = message.replace("another checkpoint_dir", "another --out")
        raise CommandError(f"--out {out}: {message}") from err
    except FloatingPointError as err:
        raise CommandError(
            f"training diverged ({_cli.error_line(err)}); train again with a "
            f"lower --lr than {args.lr:g} (a new run: another --out)."
        ) from err
    if fit.resumed_from is not None and not fit.compile_seconds:
        done = int(fit.state.train.step) // train.num_chunks
        _info(
            args,
            f"nothing trained: the run in {out} already has {done} epoch(s) "
            f"(--epochs {args.epochs}); pass a larger --epochs to continue it.",
        )
    return fit


def _evaluate(model, params, chunks) -> dict[str, Any]:
    from .stateful import evaluate_stream

    result = evaluate_stream(model, params, chunks)
    return {**result, "tokens": int(chunks.targets.size)}


def _summary(args, data, model, vocab, fit, train) -> dict[str, Any]:
    from ..models import count_params

    last = fit.history[-1] if fit.history else {}
    steps = int(fit.state.train.step)
    tokens = int(train.targets[0].size)
    return {
        "task": LM_TASK,
        "level": args.level,
        "model": model.config,
        "params": int(count_params(fit.state.train.params)),
        "vocab_size": len(vocab),
        "data": data,
        "optimizer": {"name": "adam", "lr": args.lr, "clip": args.clip},
        "batch_size": args.batch_size,
        "chunk_len": args.chunk_len,
        # the epochs trained: more than --epochs when a longer run is resumed
        "epochs": steps // train.num_chunks,
        "steps": steps,
        "resumed_from": fit.resumed_from,
        "valid": {
            k.removeprefix("valid_"): v
            for k, v in last.items()
            if k.startswith("valid_")
        },
        "compile_seconds": fit.compile_seconds,
        "train_seconds": fit.train_seconds,
        "train_tokens_per_s": (
            (steps - (fit.resumed_from or 0)) * tokens / fit.train_seconds
            if fit.train_seconds
            else None
        ),
    }


def _report(args, summary: dict[str, Any], out: str) -> None:
    if args.json:
        print(json.dumps(summary))
        return
    unit = "character" if args.level == "char" else "word"
    parts = []
    for split in ("valid", "test"):
        if split in summary:
            r = summary[split]
            parts.append(
                f"{'validation' if split == 'valid' else 'test'} perplexity "
                f"{r['perplexity']:.3f} ({r['bits_per_token']:.3f} bits per {unit})"
            )
    print("; ".join(parts))
    speed = summary["train_tokens_per_s"]
    print(
        f"{summary['steps']} steps; compile {summary['compile_seconds']:.1f} s, "
        f"training {summary['train_seconds']:.1f} s"
        + (f" ({speed:,.0f} tokens/s)" if speed else "")
    )
    print(
        f"model saved to {os.path.join(out, 'model')}; curve: "
        f"{os.path.join(out, 'perplexity.png')}; metrics: "
        f"{os.path.join(out, 'metrics.jsonl')}"
    )


# ------------------------------------------------------------------ run dirs
def model_dir_of(path: str) -> str | None:
    """The saved LM in ``path`` (a run directory or its ``model/``), or ``None``
    when ``path`` holds no language model (cheap: reads one JSON file)."""
    for d in (os.path.join(path, "model"), path):
        try:
            with open(os.path.join(d, "jaxseq.json"), encoding="utf-8") as f:
                header = json.load(f)
        except (OSError, ValueError):
            continue
        config = header.get("config") if isinstance(header, dict) else None
        if isinstance(config, dict) and config.get("task") == LM_TASK:
            return d
    return None


def is_lm_run(argv: Sequence[str]) -> bool:
    """Whether a command line's first positional argument is an LM run
    directory (how ``jaxseq eval`` picks this module)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    return first is not None and model_dir_of(first) is not None


@functools.lru_cache(maxsize=8)
def _model_of(config: str) -> Any:
    """The model of a JSON config; the same config gives the same object, whose
    compiled steps and generation loops are then reused in one process."""
    from .models import from_config

    return from_config(json.loads(config))


def load_run(path: str) -> tuple[Any, Any, Any, dict[str, Any]]:
    """``(model, params, vocab, saved)`` of the LM saved in a run directory
    (``saved``: :class:`jaxseq.io.Saved`, with ``config`` and ``extra``)."""
    from .. import io
    from .loss import Readout

    where = model_dir_of(path)
    if where is None:
        raise CommandError(
            f"RUN_DIR {path}: expected a directory written by jaxseq train lm (with "
            "model/jaxseq.json of a language model), got none."
        )
    saved = io.load(where, types={"Readout": Readout})
    model = _model_of(json.dumps(saved.config["lm"], sort_keys=True))
    if saved.vocab is None or len(saved.vocab) != model.vocab_size:
        got = None if saved.vocab is None else len(saved.vocab)
        raise CommandError(
            f"RUN_DIR {path}: expected a vocabulary of {model.vocab_size} tokens "
            f"(the model's), got {got}."
        )
    return model, saved.params, saved.vocab, saved


def eval_main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq eval RUN_DIR`` for an LM run (:mod:`jaxseq.lm.cli_generate`)."""
    from .cli_generate import eval_main as main

    return main(argv)


main = train_main
