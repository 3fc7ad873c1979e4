"""``jaxseq train imdb --data PATH`` and ``jaxseq eval --data PATH`` with your
own texts: a folder of class folders and a CSV file (one epoch of the
bag-of-words model, the quickest to compile, on 20 texts), and ``--data`` refusing a layout it cannot read before any
work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jaxseq.models import cli, cli_train

POS = ["good fun film", "great acting", "a fine story", "loved it", "so good"]
NEG = ["bad dull film", "awful acting", "a poor story", "hated it", "so bad"]


def texts() -> list[tuple[str, str]]:
    """20 (class, text) pairs, 10 of each class."""
    return [
        (c, f"{t} {i}")
        for i in range(2)
        for c, ts in (("pos", POS), ("neg", NEG))
        for t in ts
    ]


def folder(root: Path) -> Path:
    for i, (label, text) in enumerate(texts()):
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / f"{i}.txt").write_text(text)
    return root


def csv_file(root: Path) -> Path:
    root.mkdir(parents=True)
    path = root / "reviews.csv"
    rows = [f'"{text}",{1 if label == "pos" else 0}' for label, text in texts()]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("make", [folder, csv_file], ids=["folder", "csv"])
def test_train_and_eval_on_your_own_texts(tmp_path: Path, make, capsys):
    data = str(make(tmp_path / "data"))
    out = tmp_path / "run"
    argv = ["imdb", "--model", "bow", "--data", data, "--epochs", "1"]
    argv += ["--maxlen", "8", "--batch-size", "8", "--out", str(out)]
    assert cli_train.train_main([*argv, "--no-checkpoints", "--quiet"]) == 0
    capsys.readouterr()
    result = json.loads((out / "result.json").read_text())
    # 20% of the 20 texts (seed 0) are the test split; the same in eval
    assert result["test"]["count"] == 4 and result["data"] == data
    assert cli.eval_main([str(out / "model"), "--data", data, "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "on 4 reviews" in printed
    assert f"accuracy {result['test']['accuracy']:.4f}" in printed


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"train/neg/1.txt": "x"}, "holds a train/ folder but no"),
        ({"notes.txt": "x"}, None),  # a folder: refused when read (no classes)
    ],
)
def test_data_layout_is_checked_before_any_work(tmp_path: Path, capsys, files, message):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    argv = ["imdb", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--quiet"]
    if message is None:
        assert cli_train.train_main([*argv, "--no-checkpoints"]) == 1
        err = capsys.readouterr().err
        assert "expected 2 class folders (the classifiers are binary), found 0" in err
    else:
        with pytest.raises(SystemExit, match="2"):
            cli_train.train_main(argv)
        assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "model").exists()


def test_csv_errors_are_one_line_naming_file_and_line(tmp_path: Path, capsys):
    path = tmp_path / "reviews.csv"
    path.write_text("review,label\nfine,1\n")
    argv = ["imdb", "--data", str(path), "--out", str(tmp_path / "run"), "--quiet"]
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
    with pytest.raises(cli.CommandError, match="--data: .* does not exist"):
        cli.load_split(str(tmp_path / "missing.csv"), "train")
