"""The ``jaxseq`` command line: every error is one line on stderr naming the
flag, with a non-zero exit status; options are checked before any data is read.

The commands run in-process through ``jaxseq.cli.main`` (argparse's usage errors
exit through ``SystemExit``, status 2; errors while running return 1).
"""

from __future__ import annotations

import os

import pytest

from jaxseq import cli


@pytest.fixture(autouse=True)
def _no_allocator_change(monkeypatch):
    """In-process commands must not change the test process's allocator."""
    monkeypatch.setenv("JAXSEQ_RETAIN_MEMORY", "0")
    monkeypatch.delenv("JAXSEQ_DEBUG", raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """``jaxseq ARGV``: (exit status, stdout, stderr)."""
    try:
        code = cli.main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(err: str) -> str:
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if a command reads data: option errors come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("data was loaded before the options were checked")

    from jaxseq.data import imdb

    for name in ("load_sample", "load_archive", "load_tfds"):
        monkeypatch.setattr(imdb, name, refuse)


@pytest.mark.parametrize(
    ("argv", "flag", "detail"),
    [
        (["--maxlen", "0"], "--maxlen", "expected an integer >= 1, got '0'"),
        (["--vocab-size", "1"], "--vocab-size", "expected an integer >= 2"),
        (["--vocab-size", "ten"], "--vocab-size", "got 'ten'"),
        (["--lr", "-0.01"], "--lr", "expected a finite number > 0, got '-0.01'"),
        (["--lr", "nan"], "--lr", "got 'nan'"),
        (["--lr", "inf"], "--lr", "got 'inf'"),
        (["--epochs", "0"], "--epochs", "expected an integer >= 1"),
        (["--epochs", "1.5"], "--epochs", "got '1.5'"),
        (["--batch-size", "-4"], "--batch-size", "expected an integer >= 1"),
        (["--patience", "0"], "--patience", "expected an integer >= 1"),
        (["--checkpoint-every", "0"], "--checkpoint-every", "got '0'"),
        (["--seed", "-1"], "--seed", "expected an integer in [0, 2**32)"),
        (["--valid-fraction", "1.5"], "--valid-fraction", "strictly between 0 and 1"),
        (["--valid-fraction", "0"], "--valid-fraction", "strictly between 0 and 1"),
        (["--data", "MISSING"], "--data", "MISSING does not exist"),
        (["--out", "FILE"], "--out", "expected a directory, got the file FILE"),
        (["--out", "FILE/run"], "--out", "is a file, not a directory"),
        (["--option", "hidden"], "--option", "expected KEY=VALUE, got 'hidden'"),
        (["--option", "colour=1"], "--option", "unknown option(s) ['colour']"),
        (["--option", "hidden=-3"], "--option", "hidden: expected a positive int"),
        (["--epoch", "2"], "--epoch", "unrecognized arguments: --epoch 2"),
        (["--model", "rnn"], "--model", "invalid choice: 'rnn'"),
    ],
)
def test_train_option_errors_name_the_flag(
    capsys, tmp_path, no_data, argv, flag, detail
):
    """Before: ``length: expected an int >= 1`` for --maxlen 0, ``max_size``
    for --vocab-size, a traceback for --out FILE, and --lr -0.01, --epoch 2
    (abbreviated) and --checkpoint-every 0 trained."""
    (tmp_path / "file").write_text("not a directory")
    names = {
        "MISSING": str(tmp_path / "nowhere.tar.gz"),
        "FILE": str(tmp_path / "file"),
    }
    for old, new in names.items():
        argv = [a.replace(old, new) for a in argv]
        detail = detail.replace(old, new)
    code, out, err = run(capsys, "train", "imdb", "--model", "gru", *argv)
    line = one_line(err)
    assert code == 2 and out == ""
    assert line.startswith("jaxseq train: error: ") and flag in line, line
    assert detail in line, line


def test_demo_option_errors(capsys, tmp_path, no_data):
    (tmp_path / "file").write_text("")
    for argv, flag in [
        (["--epochs", "0"], "--epochs"),
        (["--learning-rate", "-1"], "--learning-rate"),
        (["--out", str(tmp_path / "file")], "--out"),
        (["--epoch", "3"], "--epoch"),
        (["--max", "10"], "--max"),  # not --maxlen
    ]:
        code, _, err = run(capsys, "demo", *argv)
        line = one_line(err)
        assert code == 2 and line.startswith("jaxseq demo: error:") and flag in line


def test_predict_and_eval_usage_errors(capsys, tmp_path):
    missing = str(tmp_path / "nowhere")
    for argv, message in [
        (["predict", missing, "text"], f"argument MODEL_DIR: {missing} does not exist"),
        (["predict", str(tmp_path)], "expected review texts or --file PATH"),
        (["predict", str(tmp_path), "--file", missing], "argument --file:"),
        (["predict", str(tmp_path), "--js", "text"], "unrecognized arguments: --js"),
        (["eval", str(tmp_path), "--data", missing], "argument --data:"),
        (["eval", str(tmp_path), "--split", "valid"], "argument --split:"),
    ]:
        code, _, err = run(capsys, *argv)
        assert code == 2 and message in one_line(err), err


def test_unknown_command_is_one_line(capsys):
    code, out, err = run(capsys, "trian", "imdb")
    assert code == 2 and out == ""
    assert "unknown command 'trian'" in one_line(err)


def _failing_demo(monkeypatch, error: BaseException) -> None:
    from jaxseq.data import imdb

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(imdb, "load_sample", fail)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ValueError("reviews.csv: line 3\nis broken"), "reviews.csv: line 3 is broken"),
        (OSError(28, "No space left on device", "runs/x"), "runs/x: No space left"),
        (FloatingPointError("loss is nan"), "loss is nan"),
        (RuntimeError("unexpected"), "internal error (RuntimeError: unexpected)"),
    ],
    ids=["multi_line", "os_error", "arithmetic", "bug"],
)
def test_runtime_errors_are_one_line(capsys, monkeypatch, tmp_path, error, expected):
    """An exception while a command runs (here: jaxseq demo, which printed raw
    tracebacks) is one line, status 1; --debug / JAXSEQ_DEBUG=1 re-raise it."""
    _failing_demo(monkeypatch, error)
    out_dir = str(tmp_path / "demo")
    code, _, err = run(capsys, "demo", "--out", out_dir, "--quiet")
    line = one_line(err)
    assert code == 1 and line.startswith("jaxseq demo: error: ")
    assert expected in line
    with pytest.raises(type(error)):
        cli.main(["--debug", "demo", "--out", out_dir])
    assert not cli.debugging()  # --debug lasts for its own command only
    monkeypatch.setenv("JAXSEQ_DEBUG", "1")
    with pytest.raises(type(error)):
        cli.main(["demo", "--out", out_dir])


def test_the_top_level_handler_covers_every_command(capsys, monkeypatch, tmp_path):
    """An exception escaping a command's own handling (here from jaxseq bayes)
    is still one line."""
    from jaxseq.bayes import cli as bayes_cli

    def fail(args):
        raise KeyError("hidden")

    monkeypatch.setattr(bayes_cli, "_fit", fail)
    data = tmp_path / "data.csv"
    data.write_text("x,y\n1,2\n")
    code, _, err = run(capsys, "bayes", "fit", "--data", str(data), "--hidden", "2")
    assert code != 0 and one_line(err).startswith("jaxseq bayes: error:")


def test_interrupt_is_one_line(capsys, monkeypatch, tmp_path):
    _failing_demo(monkeypatch, KeyboardInterrupt())
    code, _, err = run(capsys, "demo", "--out", str(tmp_path / "d"))
    assert code == 130 and one_line(err) == "jaxseq demo: interrupted"


TINY = ["--model", "lab", "--maxlen", "16", "--batch-size", "128", "--quiet",
        "--no-test"]  # fmt: skip


@pytest.mark.slow
def test_diverging_run_is_one_line_naming_lr(capsys, tmp_path, monkeypatch):
    """NonFiniteError printed a traceback; now one line naming --lr and the
    checkpoint to continue from (fit raising it is tested in tests/train)."""
    from jaxseq.models import training
    from jaxseq.train import NonFiniteError

    def diverge(*args, **kwargs):
        raise NonFiniteError("non-finite loss at step 7", step=7, checkpoint_step=6)

    monkeypatch.setattr(training, "fit", diverge)
    out = str(tmp_path / "run")
    code, _, err = run(capsys, "train", "imdb", *TINY, "--lr", "0.5", "--out", out)
    line = one_line(err)
    assert code == 1, err
    assert line.startswith("jaxseq train: error: training diverged: non-finite loss")
    assert "at step 7" in line and "--lr 0.5" in line
    assert f"last good checkpoint is step 6 in {out}" in line


@pytest.mark.slow
def test_overflowing_lr_is_one_line_naming_lr(capsys, tmp_path):
    """A finite --lr so large that the updates overflow float32."""
    out = str(tmp_path / "run")
    code, _, err = run(capsys, "train", "imdb", *TINY, "--epochs", "1", "--lr",
                       "1e30", "--out", out)  # fmt: skip
    line = one_line(err)
    # (fit refuses the optimiser, or the run diverges: either way --lr is named)
    assert code == 1 and line.startswith("jaxseq train: error:"), err
    assert "--lr 1e+30" in line


@pytest.mark.slow
def test_rerun_after_early_stopping_says_nothing_was_trained(capsys, tmp_path):
    """--lr 1e-12 leaves the float32 parameters as they are, so the second
    epoch's validation accuracy equals the first's: --patience 1 stops the run
    there. Asking for more --epochs then trains nothing, and says why."""
    out = str(tmp_path / "run")
    common = ["train", "imdb", *TINY, "--lr", "1e-12", "--patience", "1",
              "--out", out]  # fmt: skip
    code, stdout, err = run(capsys, *common, "--epochs", "4")
    assert code == 0, err
    assert "nothing trained" not in stdout
    code, stdout, err = run(capsys, *common, "--epochs", "6")
    assert code == 0, err
    assert "continuing from the checkpoint" in stdout
    assert "nothing trained: early stopping had ended this run at epoch 2" in stdout
    assert "--patience 1" in stdout and "another --out" in stdout
    assert os.path.isfile(os.path.join(out, "model", "params.npz"))


@pytest.mark.slow
def test_rerun_of_another_run_names_out(capsys, tmp_path):
    """The same --out with another --lr: the checkpoint belongs to another run;
    one line naming --out (before: the old run was silently returned)."""
    out = str(tmp_path / "run")
    common = ["train", "imdb", *TINY, "--epochs", "1", "--out", out]
    code, _, err = run(capsys, *common)
    assert code == 0, err
    code, _, err = run(capsys, *common, "--lr", "0.5")
    line = one_line(err)
    assert code == 1 and line.startswith(f"jaxseq train: error: --out {out}: ")
    assert "another run" in line and "another --out" in line
