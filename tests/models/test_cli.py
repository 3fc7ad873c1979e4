"""``jaxseq train imdb`` / ``predict`` / ``eval``: end to end on the shipped sample
(real subprocesses, tiny settings) and the errors for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxseq import text
from jaxseq.models import cli, cli_train

ROOT = Path(__file__).resolve().parents[2]
# a module-scoped training run (~1 min on 2 cores) serves most tests here
pytestmark = pytest.mark.slow


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A lab model trained for one epoch by the command line."""
    cwd = tmp_path_factory.mktemp("cli")
    done = run(
        "jaxseq.models.cli_train",
        "imdb",
        "--model",
        "lab",
        "--data",
        "sample",
        "--epochs",
        "1",
        "--maxlen",
        "32",
        "--batch-size",
        "64",
        "--out",
        "runs/lab",
        "--quiet",
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    assert "held-out test accuracy" in done.stdout
    assert "model saved to runs/lab/model" in done.stdout
    return cwd / "runs" / "lab"


def test_train_writes_a_run_directory(run_dir):
    for name in ("curves.png", "metrics.jsonl", "metrics.csv", "result.json"):
        assert (run_dir / name).is_file(), name
    for name in ("jaxseq.json", "params.npz", "vocab.json"):
        assert (run_dir / "model" / name).is_file(), name
    result = json.loads((run_dir / "result.json").read_text())
    assert result["model"]["name"] == "lab" and result["epochs"] == 1
    assert result["recipe"]["inputs"]["maxlen"] == 32
    assert result["test"]["count"] == 1000
    # one epoch: no step time apart from compiling (sec_per_epoch is the median
    # epoch after the first); compiling is reported apart
    assert result["sec_per_epoch"] is None
    assert 0 < result["compile_seconds"] < result["first_epoch_seconds"]
    assert result["timings"]["compile"] == result["compile_seconds"]


def test_predict_and_eval_read_the_saved_model(run_dir, capsys):
    """The run directory (or the model/ inside it); options between the texts."""
    done = run(
        "jaxseq.models.cli_predict",
        str(run_dir),
        "A great film.",
        "--json",
        "Dull and far too long.",
        cwd=run_dir,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["A great film.", "Dull and far too long."]
    positive = [r["probabilities"]["pos"] for r in rows]
    assert all(set(r["probabilities"]) == {"neg", "pos"} for r in rows)
    assert all(0.0 <= p <= 1.0 for p in positive)
    for r in rows:
        assert abs(sum(r["probabilities"].values()) - 1.0) < 1e-5
    assert [r["label"] for r in rows] == ["pos" if p > 0.5 else "neg" for p in positive]
    # the same probabilities from Python
    from jaxseq import models

    clf = models.load(run_dir)
    assert clf.label_names == ("neg", "pos")
    predicted = clf.predict([r["text"] for r in rows])
    np.testing.assert_allclose(predicted.probability, positive, atol=1e-6)
    assert predicted.label_name == [r["label"] for r in rows]
    assert cli.eval_main([str(run_dir / "model"), "--data", "sample", "--quiet"]) == 0
    assert "sample test: accuracy" in capsys.readouterr().out
    assert cli.eval_main([str(run_dir), "--quiet", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["count"] == 1000 and 0.0 <= scored["accuracy"] <= 1.0


def test_predict_reads_a_utf8_file_and_counts_blank_lines(run_dir, tmp_path, capsys):
    reviews = tmp_path / "reviews.txt"
    reviews.write_text(
        "Loved it, café scenes and all.\n\nHated it.\n", encoding="utf-8"
    )
    assert cli.predict_main([str(run_dir / "model"), "--file", str(reviews)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 2
    assert "skipped 1 blank line(s)" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["MODEL", "   "], "text 1 is empty"),
        (["MODEL", "fine", "bad \udcff byte"], "text 2 is not valid UTF-8 (byte 0xff"),
    ],
)
def test_predict_errors(run_dir, capsys, argv, message):
    """(Usage errors, checked before the model is read, exit with status 2:
    tests/test_cli.py.)"""
    argv = [str(run_dir / "model") if a == "MODEL" else a for a in argv]
    assert cli.predict_main(argv) == 1
    assert message in capsys.readouterr().err


def test_non_utf8_file_names_the_line(run_dir, tmp_path, capsys):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"good\n" + "caf\u00e9 cr\u00e8me\n".encode("latin-1"))
    assert cli.predict_main([str(run_dir / "model"), "--file", str(bad)]) == 1
    assert (
        "line 2 is not valid UTF-8 (byte 0xe9 at column 4)" in capsys.readouterr().err
    )


def test_vocabulary_model_mismatch(run_dir, tmp_path, capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(run_dir / "model", model)
    vocab = text.load_vocabulary(model / "vocab.json")
    text.save_vocabulary(
        text.build_vocabulary(["just four words"], vocab.tokenizer),
        model / "vocab.json",
    )
    assert cli.predict_main([str(model), "a review"]) == 1
    assert "vocabulary/model mismatch" in capsys.readouterr().err


def test_missing_and_corrupt_archives(tmp_path, capsys):
    missing = str(tmp_path / "aclImdb_v1.tar.gz")
    with pytest.raises(SystemExit, match="2"):  # checked when parsing
        cli_train.train_main(["imdb", "--data", missing, "--quiet"])
    assert f"--data: {missing} does not exist" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(64))
    assert cli_train.train_main(["imdb", "--data", str(corrupt), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "jaxseq train: error:" in err and str(corrupt) in err


def test_bad_model_options(capsys):
    """Checked when parsing, before any data is read (exit status 2)."""
    for option, message in [
        ("hidden", "--option: expected KEY=VALUE, got 'hidden'"),
        ("colour=1", "unknown option(s) ['colour']"),
    ]:
        with pytest.raises(SystemExit, match="2"):
            cli_train.train_main(["imdb", "--model", "gru", "--option", option])
        assert message in capsys.readouterr().err


def _train_lab(
    cwd: Path, out: str, epochs: int, *flags: str
) -> subprocess.CompletedProcess:
    done = run(
        "jaxseq.models.cli_train", "imdb", "--model", "lab", "--data", "sample",
        "--epochs", str(epochs), "--maxlen", "32", "--batch-size", "64",
        "--out", out, "--no-test", *flags, cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_train_continues_from_its_checkpoint(tmp_path):
    """One epoch (1,599 reviews, batch 64: 24 steps), then the same command
    asking for two continues from that epoch's checkpoint and ends where a
    two-epoch run ends, bit for bit."""
    _train_lab(tmp_path, "runs/a", 1, "--quiet")
    again = _train_lab(tmp_path, "runs/a", 2)  # not --quiet: status lines
    assert "fit: resuming from the verified checkpoint of step 24 in " in again.stderr
    assert "runs/a/ckpt (epoch 2, batch 1 of 24)" in again.stderr
    # stderr is no terminal here: lines, no bar; compiling is its own stage
    assert "fit: compiling the training step ... done in " in again.stderr
    assert "epoch 2 (step 48):" in again.stderr and "\r" not in again.stderr
    assert "continuing from the checkpoint" not in again.stdout  # (unverified)
    # epoch 2 started a call (compiling): no step time to report
    result = json.loads((tmp_path / "runs" / "a" / "result.json").read_text())
    assert result["sec_per_epoch"] is None and result["compile_seconds"] > 0
    _train_lab(tmp_path, "runs/b", 2, "--quiet")
    a, b = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    history = [
        [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        for d in (a, b)
    ]
    keys = ("epoch", "step", "train_loss", "valid_accuracy")
    assert [[r[k] for k in keys] for r in history[0]] == [
        [r[k] for k in keys] for r in history[1]
    ]
    assert len(history[0]) == 2
    with (
        np.load(a / "model" / "params.npz") as pa,
        np.load(b / "model" / "params.npz") as pb,
    ):
        assert sorted(pa.files) == sorted(pb.files)
        for name in pa.files:
            np.testing.assert_array_equal(pa[name], pb[name], err_msg=name)
