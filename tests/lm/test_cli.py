"""``jaxseq train lm``, ``jaxseq generate`` and ``jaxseq eval`` on an LM run:
a run killed (SIGKILL) after a checkpoint resumes to the bits of an
uninterrupted run; bad options are one line naming the flag."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxseq import cli
from jaxseq.lm import init_stream_state
from jaxseq.lm.cli import load_run, optimizer
from jaxseq.lm.training import restore_stream

KILL_AT = 24  # the step after whose checkpoint the first run is killed
TRAIN = [
    "train",
    "lm",
    "--data",
    "sample",
    "--level",
    "char",
    "--model",
    "elman",
    "--max-docs",
    "4",
    "--hidden",
    "8",
    "--embed-dim",
    "8",
    "--batch-size",
    "4",
    "--chunk-len",
    "32",
    "--epochs",
    "2",
    "--checkpoint-every",
    "12",
    "--log-every",
    "5",
    "--chunks-per-call",
    "3",  # spans of 5 steps: a 3-chunk call, then 2 one-chunk calls
    "--no-test",
    "--quiet",
]

# run the command in a fresh process that SIGKILLs itself once the checkpoint of
# step KILL_AT is on disk (no cleanup, no flush: what a kill -9 leaves)
_KILLER = """
import os, signal, sys
from jaxseq.train._resume import RunCheckpoints
save = RunCheckpoints.save
def save_then_die(self, state, *args, **kwargs):
    save(self, state, *args, **kwargs)
    if int(state.step) == {step}:
        self.manager.wait_until_finished()
        os.kill(os.getpid(), signal.SIGKILL)
RunCheckpoints.save = save_then_die
from jaxseq.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _final(run: str, step: int | None = None):
    model, params, _, saved = load_run(run)
    extra = saved.extra
    opt = optimizer(extra["optimizer"]["lr"], extra["optimizer"]["clip"])
    like = init_stream_state(model, params, opt, jax.random.key(0), extra["batch_size"])
    state, meta = restore_stream(os.path.join(run, "ckpt"), like, step=step)
    return state, meta


def _assert_same_bits(a, b):
    leaves_a = jax.tree_util.tree_flatten_with_path(a)[0]
    leaves_b = jax.tree.leaves(b)
    assert len(leaves_a) == len(leaves_b)
    for (path, x), y in zip(leaves_a, leaves_b, strict=True):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape, jax.tree_util.keystr(path)
        assert x.tobytes() == y.tobytes(), jax.tree_util.keystr(path)


def _records(run: str) -> list[dict]:
    with open(os.path.join(run, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_bits(tmp_path, capsys):
    killed, whole = str(tmp_path / "killed"), str(tmp_path / "whole")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLER.format(step=KILL_AT), *TRAIN, "--out", killed],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:  # meanwhile, the run never interrupted
        assert cli.main([*TRAIN, "--out", whole]) == 0
    finally:
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, stderr
    assert os.path.isdir(os.path.join(killed, "ckpt", str(KILL_AT)))
    assert not os.path.exists(os.path.join(killed, "model"))  # it never got there

    assert cli.main([*TRAIN, "--out", killed]) == 0  # the same command continues
    capsys.readouterr()
    with open(os.path.join(killed, "result.json")) as f:
        assert json.load(f)["resumed_from"] == KILL_AT

    steps = sorted(int(s) for s in os.listdir(os.path.join(whole, "ckpt")))
    for step in (steps[0], None):  # one mid-epoch (carry in flight), the last
        (s1, m1), (s2, m2) = _final(killed, step), _final(whole, step)
        _assert_same_bits(s1.train, s2.train)  # params, optimiser, step, key
        _assert_same_bits(s1.carry, s2.carry)  # the streams' carry
        assert m1["position"] == m2["position"]  # the data position
    assert m1["position"]["epoch"] == 2 and m1["position"]["chunk"] == 0
    mid = _final(whole, steps[0])[1]["position"]
    assert mid["chunk"] != 0, "the mid-run checkpoint should fall inside an epoch"
    assert _records(killed) == _records(whole)


def _usage_error(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--chunk-len", "0"], "--chunk-len"),
        (["--batch-size", "-2"], "--batch-size"),
        (["--lr", "0"], "--lr"),
        (["--dropout", "1"], "--dropout"),
        (["--level", "byte"], "--level"),
        (["--tied", "--hidden", "16", "--embed-dim", "8"], "--tied"),
        (["--model", "transformer", "--hidden", "10", "--heads", "4"], "--hidden"),
        (["--vocab-size", "3"], "--vocab-size"),
        (["--data", "/nonexistent/text.txt"], "--data"),
    ],
)
def test_train_flags_refused_before_any_work(argv, flag, capsys):
    err = _usage_error(["train", "lm", *argv], capsys)
    assert f"argument {flag}" in err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny word-level run on a plain-text file (seconds)."""
    root = tmp_path_factory.mktemp("lm")
    corpus = root / "corpus.txt"
    lines = ["the cat sat on the mat", "a dog sat on a log", "the dog saw the cat"]
    corpus.write_text("\n".join(lines * 8) + "\n", encoding="utf-8")
    out = str(root / "run")
    argv = [
        "train",
        "lm",
        "--data",
        str(corpus),
        "--level",
        "word",
        "--model",
        "gru",
        "--hidden",
        "8",
        "--embed-dim",
        "8",
        "--batch-size",
        "2",
        "--chunk-len",
        "8",
        "--quiet",
        "--out",
        out,
    ]
    assert cli.main(argv) == 0
    return out, str(corpus), argv


@pytest.mark.slow
def test_generate_and_eval_errors(tiny_run, capsys):
    run, corpus, argv = tiny_run
    capsys.readouterr()
    cases = [
        (["--temperature", "0"], "argument --temperature"),
        (["--temperature", "-1"], "argument --temperature"),
        (["--top-k", "0"], "argument --top-k"),
        (["--top-p", "0"], "argument --top-p"),
        (["--top-p", "1.5"], "argument --top-p"),
        (["--greedy", "--top-k", "3"], "argument --top-k: not allowed with --greedy"),
        (["--tokens", "0"], "argument --tokens"),
    ]
    for extra, message in cases:
        assert message in _usage_error(["generate", run, "the", *extra], capsys)
    assert "empty prompt" in _usage_error(["generate", run, " "], capsys)

    def run_error(argv) -> str:
        assert cli.main(argv) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        return err

    assert "--top-k 999: expected at most the vocabulary size" in run_error(
        ["generate", run, "the", "--top-k", "999"]
    )
    assert "only unknown ones ('zebra', 'quux')" in run_error(
        ["generate", run, "zebra quux"]
    )
    assert "expected at least one token" in run_error(["generate", run, "<br />"])
    assert "short.txt text has 4 tokens, fewer than the 9" in run_error(
        ["eval", run, "--data", _short_file(corpus)]
    )
    assert "has no test split" in run_error(["eval", run, "--split", "test"])
    # the same --out with another model: its checkpoint is refused, named
    other = [a if a != "gru" else "elman" for a in argv]
    err = run_error(other)
    assert f"--out {run}: " in err and "holds a checkpoint of another run" in err

    # greedy decoding is deterministic; a word-level continuation is words
    assert cli.main(["generate", run, "the cat", "--greedy", "--tokens", "5"]) == 0
    first = capsys.readouterr().out
    assert cli.main(["generate", run, "the cat", "--greedy", "--tokens", "5"]) == 0
    assert capsys.readouterr().out == first and first.startswith("the cat")
    # a batch of prompts, sampled; --json
    assert (
        cli.main(
            [
                "generate",
                run,
                "the dog",
                "a",
                "--tokens",
                "6",
                "--top-k",
                "3",
                "--top-p",
                "0.9",
                "--seed",
                "3",
                "--json",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["prompt"] for r in rows] == ["the dog", "a"]
    assert all(1 <= r["tokens"] <= 6 for r in rows)
    # eval on the run's held-out text gives the validation perplexity of the run
    assert cli.main(["eval", run, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    with open(os.path.join(run, "result.json")) as f:
        valid = json.load(f)["valid"]
    assert np.isclose(result["perplexity"], valid["perplexity"], rtol=1e-5)


def _short_file(corpus: str) -> str:
    short = os.path.join(os.path.dirname(corpus), "short.txt")
    with open(short, "w", encoding="utf-8") as f:
        f.write("the cat\n")
    return short


def test_short_training_text_names_the_flags(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b\nc d\n", encoding="utf-8")
    argv = [
        "train",
        "lm",
        "--data",
        str(corpus),
        "--level",
        "word",
        "--quiet",
        "--batch-size",
        "4",
        "--chunk-len",
        "8",
        "--out",
        str(tmp_path / "r"),
    ]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert "--batch-size 4 x (--chunk-len 8 + 1): the training text has" in err


@pytest.mark.parametrize(
    "module, make",
    [
        ("cli", "_train_parser"),
        ("cli_generate", "_generate_parser"),
        ("cli_generate", "_eval_parser"),
    ],
)
def test_help_shows_a_default_for_every_option(module, make):
    import importlib

    parser = getattr(importlib.import_module(f"jaxseq.lm.{module}"), make)()
    for action in parser._actions:
        assert action.help, action.option_strings
        shown = action.default not in (None, False, "==SUPPRESS==")
        if action.option_strings and shown:
            text = parser.formatter_class("x")._get_help_string(action)
            assert "default" in text.lower(), action.option_strings
    out = parser.format_help()
    assert "``" not in out and "--quiet" in out and "--version" in out


def test_prompts_encode_as_document_starts():
    from jaxseq import text
    from jaxseq.lm import EOS_ID, lm_vocabulary
    from jaxseq.lm.cli import CommandError
    from jaxseq.lm.cli_generate import encode_prompts

    vocab = lm_vocabulary(["a cab", "bad"], text.char_tokenizer(lower=False))
    ids, lengths, notes = encode_prompts(vocab, ["ab ", "xa"])
    assert lengths.tolist() == [4, 3] and (ids[:, 0] == EOS_ID).all()
    assert text.decode(vocab, ids[0, 1:]) == ["a", "b", " "]  # the space is read
    assert ids[1, 3] == 0 and ids[1, 1] == 1 and "'x'" in notes[1] and not notes[0]
    with pytest.raises(CommandError, match=r"PROMPT 1 \('zz'\): .* only unknown"):
        encode_prompts(vocab, ["zz"])
