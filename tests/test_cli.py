"""The ``jaxseq`` command line: every error is one line on stderr naming the
flag, with a non-zero exit status; options are checked before any data is read.

The commands run in-process through ``jaxseq.cli.main`` (argparse's usage errors
exit through ``SystemExit``, status 2; errors while running return 1).
"""

from __future__ import annotations

import argparse
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
        (["--lr", "-1"], "--lr"),
        (["--learning-rate", "0.1"], "--learning-rate"),  # one name per idea: --lr
        (["--out", str(tmp_path / "file")], "--out"),
        (["--epoch", "3"], "--epoch"),
        (["--max", "10"], "--max"),  # not --maxlen
    ]:
        code, _, err = run(capsys, "demo", *argv)
        line = one_line(err)
        assert code == 2 and line.startswith("jaxseq demo: error:") and flag in line


def test_predict_and_eval_usage_errors(capsys, tmp_path):
    missing = str(tmp_path / "nowhere")
    run_dir = tmp_path / "run"  # looks like a run directory: checked by name only
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "model" / "jaxseq.json").write_text("{}")
    run_dir = str(run_dir)
    for argv, message in [
        (["predict", missing, "text"], f"argument RUN_DIR: {missing} does not exist"),
        (["predict", str(tmp_path), "t"], "argument RUN_DIR: " + str(tmp_path)),
        (["predict", str(tmp_path), "t"], "expected a saved model"),
        (["predict", run_dir], "expected texts to classify or --file PATH"),
        (["predict", run_dir, "--file", missing], "argument --file:"),
        (["predict", run_dir, "--js", "text"], "unrecognized arguments: --js"),
        (["predict", run_dir, "a", "--threshold", "2", "b"], "argument --threshold"),
        (["eval", run_dir, "--data", missing], "argument --data:"),
        (["eval", run_dir, "--split", "valid"], "argument --split:"),
    ]:
        code, _, err = run(capsys, *argv)
        assert code == 2 and message in one_line(err), err


def test_version(capsys):
    from importlib import metadata

    expected = f"jaxseq {metadata.version('jaxseq')}"
    for argv in (["--version"], ["train", "--version"], ["predict", "--version"],
                 ["eval", "--version"], ["demo", "--version"]):  # fmt: skip
        code, out, err = run(capsys, *argv)
        assert code == 0 and out.strip() == expected, (argv, out, err)
    assert cli.version() == metadata.version("jaxseq")


#: the commands of this page; the others have their own tests
MINE = ["demo", "train", "predict", "eval"]


def _parser_of(monkeypatch, command: str, *argv: str):
    """The ``cli.Parser`` a command builds (caught when it parses)."""
    seen = []

    def catch(self, *args, **kwargs):
        seen.append(self)
        raise SystemExit(0)

    monkeypatch.setattr(cli.Parser, "parse_args", catch)
    monkeypatch.setattr(cli.Parser, "parse_intermixed_args", catch)
    with pytest.raises(SystemExit):
        cli.main([command, *argv])
    return seen[0]


@pytest.mark.parametrize("command", MINE)
def test_help_is_plain_text_with_a_default_for_every_option(
    monkeypatch, capsys, command
):
    """Every option has help; its default shows (or the help names where it
    comes from); no reST markup; nothing about "seed's"."""
    parser = _parser_of(monkeypatch, command, "imdb")
    for action in parser._actions:
        assert action.help, f"{command} {action.option_strings}: no help"
        shown = action.default is not None and action.default is not False
        if action.option_strings and shown and action.default != "==SUPPRESS==":
            text = parser.formatter_class("x")._get_help_string(action)
            assert "default" in text.lower(), (command, action.option_strings)
    monkeypatch.undo()
    code, out, _ = run(capsys, command, "--help")
    assert code == 0
    assert "``" not in out and ":func:" not in out and "seed's" not in out
    assert "--version" in out and "--quiet" in out
    if command == "demo":
        assert "--lr LR" in out and "(default: 0.003)" in out
        assert "--seed SEED" in out and "PRNG seed (integer)" in out
        assert "(default: 0)" in out


#: every command of jaxseq.cli.COMMANDS, with the arguments that reach each of
#: its parsers (train lm and bayes fit have their own)
EVERY = [
    ("demo",), ("train", "imdb"), ("train", "lm"), ("predict", "DIR"), ("eval", "DIR"),
    ("generate", "DIR"), ("forecast",), ("bayes", "fit"),
]  # fmt: skip


def _parsers(parser):
    """``parser`` and the parsers of its subcommands."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_command_is_listed_here():
    assert {command for command, *_ in EVERY} == set(cli.COMMANDS)


@pytest.mark.parametrize("argv", EVERY, ids=" ".join)
def test_every_command_answers_help_and_version(monkeypatch, capsys, argv):
    """``--help``: exit status 0, plain text (no reST markup), every option with
    help and its default shown (or named in the help), --quiet and --version;
    ``--version``: jaxseq's version, exit status 0."""
    command, *rest = argv
    rest = [a for a in rest if a != "DIR"]  # a positional: only for parsing
    parsers = list(_parsers(_parser_of(monkeypatch, command, *argv[1:])))
    monkeypatch.undo()
    monkeypatch.setenv("JAXSEQ_RETAIN_MEMORY", "0")
    for parser in parsers:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):  # each has help
                for sub in action._choices_actions:
                    assert sub.help, f"{parser.prog} {sub.dest}: no help"
                continue
            assert action.help, f"{parser.prog} {action.option_strings}: no help"
            shown = action.default not in (None, False, argparse.SUPPRESS)
            if action.option_strings and shown:
                text = parser.formatter_class("x")._get_help_string(action)
                assert "default" in text.lower(), (parser.prog, action.option_strings)
        options = {o for action in parser._actions for o in action.option_strings}
        assert "--version" in options, parser.prog
        if not parser._subparsers:  # a command that runs (not a group)
            assert "--quiet" in options and "--no-progress" not in options, parser.prog
    code, out, err = run(capsys, command, *rest, "--help")
    assert code == 0 and out.startswith(f"usage: jaxseq {command}"), err
    assert "``" not in out and ":func:" not in out and ":class:" not in out
    assert "--version" in out
    code, out, err = run(capsys, command, *rest, "--version")
    assert code == 0 and out.strip() == f"jaxseq {cli.version()}", err


def test_train_help_shows_the_recipes(capsys):
    from jaxseq import models

    code, out, _ = run(capsys, "train", "--help")
    assert code == 0
    table = out[out.index("defaults per model") :]
    rows = {line.split()[0]: line.split() for line in table.splitlines()[3:]}
    assert set(rows) == set(models.RECIPES)
    lab, lstm = models.RECIPES["lab"], models.RECIPES["lstm"]
    # model epochs batch lr patience vocab maxlen truncating
    assert rows["lab"][1:5] == [str(lab.epochs), str(lab.batch_size),
                                f"{lab.learning_rate:g}", "none"]  # fmt: skip
    assert rows["lstm"][4] == str(lstm.patience)


def test_predict_takes_options_between_texts(tmp_path):
    from jaxseq.models import cli as models_cli

    run_dir = tmp_path / "run"
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "model" / "jaxseq.json").write_text("{}")
    args = models_cli.predict_parser().parse_intermixed_args(
        [str(run_dir), "Great film.", "--json", "Dull.", "--threshold", "0.7", "Ok."]
    )
    assert args.texts == ["Great film.", "Dull.", "Ok."]
    assert args.json and args.threshold == 0.7
    assert args.model_dir == str(run_dir / "model")  # the model inside the run
    args = models_cli.predict_parser().parse_intermixed_args(
        [str(run_dir / "model"), "--", "-1 stars"]
    )
    assert args.texts == ["-1 stars"] and args.model_dir == str(run_dir / "model")


@pytest.mark.parametrize(
    ("tty", "ci", "expected"),
    [(True, None, True), (True, "true", False), (True, "0", True),
     (False, None, False)],
)  # fmt: skip
def test_progress_shows_only_where_a_person_watches(monkeypatch, tty, ci, expected):
    import io

    class Stream(io.StringIO):
        def isatty(self):
            return tty

    monkeypatch.setattr("sys.stderr", Stream())
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    assert cli.watched() is expected
    assert cli.show_progress(quiet=False) is expected
    assert cli.show_progress(quiet=True) is False


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
    # not --quiet: fit's verified resume line (stderr is no terminal: no bar)
    loud = [a for a in common if a != "--quiet"]
    code, stdout, err = run(capsys, *loud, "--epochs", "6")
    assert code == 0, err
    assert "fit: resuming from the verified checkpoint of step " in err
    assert f"in {out}/ckpt" in err and "early stopping had ended this run" in err
    assert "continuing from the checkpoint" not in stdout  # the unverified one
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
