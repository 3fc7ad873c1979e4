"""``jaxseq train text --data PATH``, ``jaxseq predict`` and ``jaxseq eval``
with your own texts: a folder of class folders named ham and spam, a CSV file
with its own column names (one epoch of the bag-of-words model, the quickest to
compile, on 20 texts); the class names saved with the model; and the data
options refused before any work."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from jaxseq.models import cli, cli_train

SPAM = ["win cash now", "free prize", "claim your reward", "cheap pills", "act now"]
HAM = ["lunch at noon", "see you soon", "the meeting notes", "call me later", "ok"]


def texts(classes=("ham", "spam")) -> list[tuple[str, str]]:
    """20 (class, text) pairs, 10 of each class."""
    return [
        (c, f"{t} {i}")
        for i in range(2)
        for c, ts in zip(classes, (HAM, SPAM), strict=True)
        for t in ts
    ]


def folder(root: Path, classes=("ham", "spam")) -> Path:
    for i, (label, text) in enumerate(texts(classes)):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i}.txt").write_text(text)
    return root


def csv_file(root: Path, header: str = "text,label") -> Path:
    root.mkdir(parents=True)
    path = root / "messages.csv"
    rows = [f'"{text}",{label}' for label, text in texts(("no", "yes"))]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def fake_model(root: Path) -> str:
    """A directory that passes RUN_DIR's check (parsing only)."""
    (root / "model").mkdir(parents=True)
    (root / "model" / "jaxseq.json").write_text("{}")
    return str(root)


TINY = ["--model", "bow", "--epochs", "1", "--maxlen", "8", "--batch-size", "8"]


@pytest.fixture(scope="module")
def ham_spam(tmp_path_factory):
    """``jaxseq train text`` on a folder with classes ham and spam."""
    root = tmp_path_factory.mktemp("ham_spam")
    data, out = folder(root / "data"), root / "run"
    argv = ["text", *TINY, "--data", str(data), "--out", str(out)]
    assert cli_train.train_main([*argv, "--no-checkpoints", "--quiet"]) == 0
    return data, out


@pytest.mark.slow
def test_class_names_are_saved_and_reported(ham_spam, capsys, tmp_path):
    data, out = ham_spam
    capsys.readouterr()
    result = json.loads((out / "result.json").read_text())
    assert result["task"] == "text" and result["classes"] == ["ham", "spam"]
    # 20% of the 20 texts (seed 0) are the test split; the same in eval
    assert result["test"]["count"] == 4 and result["data"] == str(data)
    config = json.loads((out / "model" / "jaxseq.json").read_text())["config"]
    assert config["label_names"] == ["ham", "spam"]
    # predict names the classes, in plain text and JSON
    texts_ = ["win a free prize now", "lunch at noon?"]
    assert cli.predict_main([str(out), *texts_, "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] in ("ham", "spam") for line in lines] == [True] * 2
    assert all(0.5 <= float(line.split("\t")[1]) <= 1.0 for line in lines)
    assert cli.predict_main([str(out), *texts_, "--json", "--quiet"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(set(r["probabilities"]) == {"ham", "spam"} for r in rows)
    for r, line in zip(rows, lines, strict=True):
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)
        assert line.startswith(f"{r['label']}\t")
    # eval reads the folder with the model's classes
    assert cli.eval_main([str(out), "--data", str(data), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "on 4 texts of classes ham and spam" in printed
    assert f"accuracy {result['test']['accuracy']:.4f}" in printed
    assert cli.eval_main([str(out), "--data", str(data), "--split", "all",
                          "--json", "--quiet"]) == 0  # fmt: skip
    scored = json.loads(capsys.readouterr().out)
    assert scored["count"] == 20 and scored["classes"] == ["ham", "spam"]


@pytest.mark.slow
def test_eval_refuses_data_of_other_classes(ham_spam, capsys, tmp_path):
    _, out = ham_spam
    capsys.readouterr()
    other = str(folder(tmp_path / "other", classes=("neg", "pos")))
    assert cli.eval_main([str(out), "--data", other, "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no class folder ['ham', 'spam']" in err
    assert "the model's classes 'ham' (0) and 'spam' (1)" in err
    assert cli.eval_main([str(out), "--data", "sample", "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert "its classes are 'neg' (0) and 'pos' (1), the model's 'ham' (0)" in err


@pytest.mark.slow
def test_csv_with_its_own_columns_and_holdout(tmp_path: Path, capsys):
    """The task name imdb takes your own data too; the columns and the share
    held out come from the command line, and eval reads the same split."""
    data = str(csv_file(tmp_path / "data", header="body,kind"))
    out = tmp_path / "run"
    columns = ["--text-column", "body", "--label-column", "kind", "--holdout", "0.25"]
    argv = ["imdb", *TINY, "--data", data, *columns, "--out", str(out)]
    assert cli_train.train_main([*argv, "--no-checkpoints", "--quiet"]) == 0
    capsys.readouterr()
    result = json.loads((out / "result.json").read_text())
    assert result["test"]["count"] == 5 and result["classes"] == ["no", "yes"]
    assert result["data_options"]["text_column"] == "body"
    assert cli.eval_main([str(out), "--data", data, *columns, "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "on 5 texts of classes no and yes" in printed
    assert f"accuracy {result['test']['accuracy']:.4f}" in printed


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if a command reads data: option errors come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("data was loaded before the options were checked")

    from jaxseq.data import imdb, labelled

    for module, name in [(imdb, "load_sample"), (imdb, "load_tfds"),
                         (labelled, "load")]:  # fmt: skip
        monkeypatch.setattr(module, name, refuse)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["text"], "argument --data: required for the task text"),
        (["text", "--data", "FOLDER", "--text-column", "body"],
         "argument --text-column: applies to a .csv file, got --data FOLDER "
         "(a folder of class folders)"),
        (["imdb", "--label-column", "kind"],
         "argument --label-column: applies to a .csv file, got --data sample"),
        (["text", "--data", "CSV", "--text-column", " "],
         "argument --text-column: expected a column name, got ' '"),
        (["imdb", "--holdout", "0.3"],
         "argument --holdout: --data sample (the shipped IMDb sample) has its own "
         "test split"),
        (["text", "--data", "SPLIT", "--holdout", "0.3"], "(a folder with train/ "
         "and test/) has its own test split"),
        (["text", "--data", "CSV", "--holdout", "1"],
         "argument --holdout: expected a number strictly between 0 and 1"),
        (["text", "--data", "CSV", "--split-by", "movie"],
         "argument --split-by: 'movie' needs movie ids"),
    ],
)  # fmt: skip
def test_train_data_options_are_checked_before_any_work(
    tmp_path: Path, capsys, no_data, argv, message
):
    for split in ("train", "test"):
        folder(tmp_path / "split" / split)
    paths = {
        "FOLDER": str(folder(tmp_path / "folder")),
        "CSV": str(csv_file(tmp_path / "csv")),
        "SPLIT": str(tmp_path / "split"),
    }
    argv = [paths.get(a, a) for a in argv] + ["--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit, match="2"):
        cli_train.train_main(argv)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("jaxseq train: error: ")
    for name, path in paths.items():
        message = message.replace(name, path)
    assert message in err
    assert not (tmp_path / "run").exists()


def test_eval_split_all_only_for_a_source_without_splits(tmp_path, capsys, no_data):
    model = fake_model(tmp_path / "run")
    with pytest.raises(SystemExit, match="2"):
        cli.eval_main([model, "--data", "sample", "--split", "all"])
    err = capsys.readouterr().err
    assert "argument --split: 'all' applies to a source without train/test" in err
    assert "pass --split train or --split test" in err
    data = str(csv_file(tmp_path / "csv"))
    with pytest.raises(SystemExit, match="2"):
        cli.eval_main([model, "--data", data, "--split", "all", "--holdout", "0.3"])
    assert "argument --holdout: applies to --split train or test" in (
        capsys.readouterr().err
    )


def test_imdb_defaults_to_the_sample_and_text_needs_data(tmp_path, monkeypatch):
    """The task chooses the default --data (text has none: tested above)."""
    seen = []

    def stop(source, split, options, **kwargs):
        seen.append((source, split, options))
        raise ValueError("stop here")

    monkeypatch.setattr(cli_train, "load_split", stop)
    monkeypatch.chdir(tmp_path)
    assert cli_train.train_main(["imdb", "--no-checkpoints", "--quiet"]) == 1
    assert seen[-1][:2] == ("sample", "train")
    data = str(csv_file(tmp_path / "csv"))
    assert cli_train.train_main(["text", "--data", data, "--quiet"]) == 1
    assert seen[-1][0] == data and seen[-1][2] == cli.DataOptions()


def test_data_layout_is_checked_before_any_work(tmp_path: Path, capsys):
    (tmp_path / "train" / "neg").mkdir(parents=True)
    (tmp_path / "train" / "neg" / "1.txt").write_text("x")
    argv = ["text", "--data", str(tmp_path), "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit, match="2"):
        cli_train.train_main([*argv, "--quiet"])
    assert "holds a train/ folder but no" in capsys.readouterr().err
    (tmp_path / "train").rename(tmp_path / "notes")  # one class folder: when read
    assert cli_train.train_main([*argv, "--no-checkpoints", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "expected 2 class folders (the classifiers are binary), found 1" in err
    assert not (tmp_path / "run" / "model").exists()


def test_csv_errors_are_one_line_naming_file_and_line(tmp_path: Path, capsys):
    path = tmp_path / "reviews.csv"
    path.write_text("review,label\nfine,1\n")
    argv = ["text", "--data", str(path), "--out", str(tmp_path / "run"), "--quiet"]
    assert cli_train.train_main([*argv, "--no-checkpoints"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"{path}:1: the column 'text' (text_column) is missing" in err[0]


def test_load_split_all_and_the_held_out_split(tmp_path: Path):
    data = str(csv_file(tmp_path / "data"))
    whole = cli.load_split(data, "all")
    train, test = cli.load_split(data, "train"), cli.load_split(data, "test")
    assert len(whole) == 20 and (len(train), len(test)) == (16, 4)
    assert sorted(train.texts + test.texts) == sorted(whole.texts)
    quarter = cli.load_split(data, "test", cli.DataOptions(holdout=0.25))
    assert len(quarter) == 5
    with pytest.raises(cli.CommandError, match="--data: .* does not exist"):
        cli.load_split(str(tmp_path / "missing.csv"), "train")


def test_the_loaders_of_your_own_texts_log_through_jaxseq_data(tmp_path, capsys):
    """The command line configures jaxseq.data, the parent of the IMDb loaders'
    log and of the neutral jaxseq.data.labelled."""
    from jaxseq.data import labelled

    root = folder(tmp_path / "data")
    (root / "ham" / "notes.md").write_text("not a text")
    saved = {
        name: (log.handlers[:], log.level, log.propagate)
        for name in ("jaxseq.models", "jaxseq.data")
        for log in [logging.getLogger(name)]
    }
    try:
        cli.setup_logging(quiet=True)
        labelled.load_folder(root)
        err = capsys.readouterr().err
    finally:
        for name, (handlers, level, propagate) in saved.items():
            log = logging.getLogger(name)
            log.handlers[:], log.level, log.propagate = handlers, level, propagate
    assert "jaxseq: " in err and "skipped 1 files that do not end in .txt" in err
    assert logging.getLogger("jaxseq.data.labelled").parent.name == "jaxseq.data"


@pytest.mark.parametrize("main", [cli_train.train_main, cli.eval_main])
def test_help_of_data_names_every_source(capsys, main):
    with pytest.raises(SystemExit, match="0"):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--data DATA 'sample' (shipped), 'tfds', an aclImdb_v1.tar.gz" in out
    assert "a folder of class folders (DIR/<class>/*.txt, optionally" in out
    assert "a .csv file with columns text and label" in out
    for flag in ("--text-column", "--label-column", "--holdout", "--strict-utf8"):
        assert flag in out
