"""``jaxseq generate RUN_DIR PROMPT...`` and ``jaxseq eval RUN_DIR``: the commands
that read a run directory of ``jaxseq train lm`` (:mod:`jaxseq.lm.cli`)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from .. import cli as _cli
from .cli import (
    CommandError,
    _chunks,
    _evaluate,
    _has_test,
    _log_to_stderr,
    data_source,
    load_run,
    load_splits,
    read_source,
)

#: ``--top-p``: a probability mass in ``(0, 1]``.
top_p = _cli.interval(0.0, 1.0, high_closed=True)

#: ``--tokens``' ceiling: the loop runs all its steps and keeps a key and an
#: output per step and prompt, so a mistyped count would exhaust memory
MAX_TOKENS = 100_000


def new_tokens(text: str) -> int:
    """An ``argparse`` type: ``--tokens``, an integer in ``[1, MAX_TOKENS]``."""
    expected = f"an integer in [1, {MAX_TOKENS}]"
    value = int(_cli._number(text, int, expected))
    if not 1 <= value <= MAX_TOKENS:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


# ------------------------------------------------------------------ generate
def _generate_parser() -> argparse.ArgumentParser:
    p = _cli.Parser(
        prog="jaxseq generate",
        description="Continue prompts with a language model trained by\n"
        "jaxseq train lm (one compiled loop for all prompts; a continuation\n"
        "stops at the end of a document).",
    )
    add = p.add_argument
    add(
        "run_dir",
        metavar="RUN_DIR",
        type=_cli.existing_dir,
        help="a run directory of jaxseq train lm (or its model/)",
    )
    add("prompts", metavar="PROMPT", nargs="+", help="text to continue")
    add(
        "--tokens",
        type=new_tokens,
        default=100,
        help=f"tokens to generate per prompt (at most {MAX_TOKENS})",
    )
    add(
        "--greedy", action="store_true", help="take the most likely token (no sampling)"
    )
    add(
        "--temperature",
        type=_cli.positive_float,
        default=None,
        help="divide the logits by this (> 0; default 1)",
    )
    add(
        "--top-k",
        type=_cli.positive_int,
        default=None,
        help="sample among the K most likely tokens",
    )
    add(
        "--top-p",
        type=top_p,
        default=None,
        help="sample among the most likely tokens holding this probability",
    )
    add("--seed", type=_cli.seed, default=0, help="PRNG seed (integer)")
    add("--json", action="store_true", help="one JSON object per prompt")
    add("--quiet", action="store_true", help="no info lines")
    return p


def generate_main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq generate RUN_DIR PROMPT... [options]`` (see ``--help``)."""
    parser = _generate_parser()
    args = parser.parse_args(argv)
    if args.greedy:
        given = [
            f
            for f, v in (
                ("--temperature", args.temperature),
                ("--top-k", args.top_k),
                ("--top-p", args.top_p),
            )
            if v is not None
        ]
        if given:
            parser.error(
                f"argument {given[0]}: not allowed with --greedy (greedy "
                "decoding takes the most likely token)"
            )
    for i, prompt in enumerate(args.prompts):
        if not prompt.strip():
            parser.error(
                f"argument PROMPT: expected text, got an empty prompt (prompt {i + 1})"
            )
    return _cli.run_command("jaxseq generate", lambda: _generate(args))


def _trailing_space(vocab: Any, prompt: str) -> bool:
    """Whether a character-level prompt ends with white space that the model
    should read (as one space): "This movie was " asks for the next word."""
    return (
        vocab.tokenizer.level == "char" and prompt[-1].isspace() and " " in vocab.tokens
    )


def encode_prompts(vocab: Any, prompts: Sequence[str]) -> tuple[Any, Any, list[str]]:
    """Right-padded ``[B, P]`` ids (each prompt as a document start: ``<eos>``
    then its tokens), lengths, and a note per prompt on unknown tokens.

    Raises:
        CommandError: a prompt without tokens, or whose tokens are all unknown.
    """
    import numpy as np

    from .. import text
    from .streams import EOS_ID

    rows, notes = [], []
    for i, prompt in enumerate(prompts):
        ids = text.encode(vocab, [prompt])[0]
        where = f"PROMPT {i + 1} ({prompt[:40]!r})"
        if ids.size == 0:
            raise CommandError(
                f"{where}: expected at least one token of the "
                "model's tokenizer, got none."
            )
        unknown = [
            t for t, j in zip(vocab.tokenizer(prompt), ids, strict=False) if j == 1
        ]
        if len(unknown) == ids.size:
            raise CommandError(
                f"{where}: expected some tokens of the model's vocabulary "
                f"({len(vocab)} tokens), got only unknown ones "
                f"({', '.join(map(repr, unknown[:5]))})."
            )
        notes.append(
            f"{where}: unknown to the model: {', '.join(map(repr, unknown[:5]))}"
            if unknown
            else ""
        )
        if _trailing_space(vocab, prompt):  # the tokenizer drops it
            ids = np.append(ids, vocab.tokens.index(" "))
        rows.append(np.concatenate([[EOS_ID], ids]).astype(np.int32))
    lengths = np.array([len(r) for r in rows], np.int32)
    batch = np.zeros((len(rows), int(lengths.max())), np.int32)
    for b, r in enumerate(rows):
        batch[b, : len(r)] = r
    return batch, lengths, notes


def _generate(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    from .. import text
    from .generate import generate, sampling
    from .streams import EOS_ID

    model, params, vocab, saved = load_run(args.run_dir)
    if args.top_k is not None and args.top_k > len(vocab):
        raise CommandError(
            f"--top-k {args.top_k}: expected at most the vocabulary size {len(vocab)}."
        )
    ids, lengths, notes = encode_prompts(vocab, args.prompts)
    for note in notes:
        if note and not args.quiet:
            print(f"jaxseq generate: {note}", file=sys.stderr)
    how = sampling(
        greedy=args.greedy,
        temperature=args.temperature or 1.0,
        top_k=args.top_k,
        top_p=args.top_p,
    )
    out = generate(
        model,
        params,
        jax.random.key(args.seed),
        ids,
        lengths,
        max_new_tokens=args.tokens,
        sampling=how,
        stop_tokens=[EOS_ID],
    )
    sep = "" if saved.config["level"] == "char" else " "
    for b, prompt in enumerate(args.prompts):
        row = np.asarray(out.tokens[b, : int(out.lengths[b])])
        stopped = bool(row.size and row[-1] == EOS_ID)
        words = text.decode(vocab, row[row != EOS_ID])
        continuation = sep.join(words)
        if args.json:
            print(
                json.dumps(
                    {
                        "prompt": prompt,
                        "continuation": continuation,
                        "tokens": int(row.size),
                        "end_of_document": stopped,
                    }
                )
            )
        else:
            head = prompt.rstrip() + (" " if _trailing_space(vocab, prompt) else "")
            print(head + (sep if continuation else "") + continuation)
    return 0


# ------------------------------------------------------------------ eval
def _eval_parser() -> argparse.ArgumentParser:
    p = _cli.Parser(
        prog="jaxseq eval",
        description="Perplexity of a language model trained by jaxseq train lm\n"
        "(streams read in order from the initial carry).",
    )
    add = p.add_argument
    add(
        "run_dir",
        metavar="RUN_DIR",
        type=_cli.existing_dir,
        help="a run directory of jaxseq train lm (or its model/)",
    )
    add(
        "--data",
        type=data_source,
        default=None,
        help="text to evaluate, all of it: 'sample', a text file or folder, an "
        "IMDb archive (default: the run's own held-out text)",
    )
    add(
        "--split",
        choices=["valid", "test"],
        default=None,
        help="the run's held-out split (default: test when the run's data has "
        "one, else valid); with --data: test for IMDb sources",
    )
    add("--json", action="store_true", help="print the result as JSON")
    add("--quiet", action="store_true", help="no info lines")
    return p


def eval_main(argv: Sequence[str] | None = None) -> int:
    """``jaxseq eval RUN_DIR [--data ...] [--split ...]`` for an LM run."""
    args = _eval_parser().parse_args(argv)
    _log_to_stderr()
    return _cli.run_command("jaxseq eval", lambda: _eval(args))


def _eval_texts(args: argparse.Namespace, extra: dict[str, Any]) -> tuple[list, str]:
    if args.data is not None:
        split = "test" if args.split in (None, "test") else "train"
        if not _has_test(args.data):
            return read_source(args.data), f"{args.data}"
        return read_source(args.data, split), f"{args.data} {split}"
    splits = load_splits(extra["data"], test=args.split != "valid")
    split = args.split or ("test" if "test" in splits else "valid")
    if split not in splits:
        raise CommandError(
            f"--split {split}: the run's data "
            f"({extra['data']['source']}) has no test split."
        )
    return splits[split], f"{extra['data']['source']} {split}"


def _eval(args: argparse.Namespace) -> int:
    model, params, vocab, saved = load_run(args.run_dir)
    extra = saved.extra
    texts, name = _eval_texts(args, extra)
    tic = time.perf_counter()
    chunks = _chunks(
        vocab, texts, extra["batch_size"], extra["chunk_len"], name, fit_batch=True
    )
    result = {
        **_evaluate(model, params, chunks),
        "data": name,
        "seconds": time.perf_counter() - tic,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    unit = "character" if saved.config["level"] == "char" else "word"
    print(
        f"{name}: perplexity {result['perplexity']:.3f}, "
        f"{result['bits_per_token']:.3f} bits per {unit}, on {result['tokens']} "
        f"tokens ({result['seconds']:.1f} s)"
    )
    return 0


main = generate_main

if __name__ == "__main__":  # guarded: pytest --doctest-modules imports this module
    sys.exit(main())
