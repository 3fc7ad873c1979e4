"""Folders of labelled texts (Keras' ``text_dataset_from_directory`` layout),
:func:`jaxseq.data.labelled.layout` and :func:`jaxseq.data.labelled.load`."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from jaxseq.data import Reviews, labelled

from .conftest import tiny_files, write_dir, write_tar


def make(root: Path, files: dict[str, bytes | str]) -> Path:
    return write_dir(
        root, {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    )


SPAM = {
    "spam/b.txt": "  WIN money now!\n",
    "spam/a.txt": "Cheap pills",
    "ham/2.txt": "Lunch at noon?",
    "ham/10.txt": "See you tomorrow",
    "ham/old/1.txt": "Nested folders count too",
}


def test_class_folders_sorted_give_the_label_ids(tmp_path: Path, caplog):
    make(tmp_path, {**SPAM, "ham/notes.md": "not a text", "ham/.hidden.txt": "x"})
    make(tmp_path, {".ipynb_checkpoints/x.txt": "a hidden folder is no class"})
    with caplog.at_level(logging.WARNING, logger="jaxseq.data.labelled"):
        got = labelled.load_folder(tmp_path)
    assert isinstance(got, Reviews)
    assert got.label_names == ("ham", "spam")
    # class by class, each by path; whitespace stripped
    assert got.texts == [
        "See you tomorrow",
        "Lunch at noon?",
        "Nested folders count too",
        "Cheap pills",
        "WIN money now!",
    ]
    assert got.labels.tolist() == [0, 0, 0, 1, 1]
    assert (got.movie_ids == -1).all() and (got.ratings == -1).all()
    assert "skipped 1 files that do not end in .txt" in caplog.text
    assert "notes.md" in caplog.text


def test_class_names_set_the_order_and_pick_two(tmp_path: Path):
    make(tmp_path, {**SPAM, "unsure/c.txt": "maybe"})
    got = labelled.load_folder(tmp_path, class_names=("spam", "ham"))
    assert got.label_names == ("spam", "ham")
    assert got.labels.tolist() == [0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match=r"no class folder \['eggs'\]"):
        labelled.load_folder(tmp_path, class_names=("ham", "eggs"))
    with pytest.raises(ValueError, match="class_names: expected two distinct"):
        labelled.load_folder(tmp_path, class_names=("ham", "ham"))


@pytest.mark.parametrize(
    ("files", "match"),
    [
        (
            {**SPAM, "unsure/c.txt": "maybe"},
            r"expected 2 class folders \(the classifiers are binary\), found 3: "
            r"\['ham', 'spam', 'unsure'\]",
        ),
        ({"spam/a.txt": "x"}, r"found 1: \['spam'\]"),
        ({"spam/a.txt": "x", "ham/a.md": "y"}, r"ham: no \.txt file"),
        ({"a.txt": "no folders"}, r"found 0: \[\]"),
    ],
)
def test_refuses_other_than_two_classes(tmp_path: Path, files, match):
    make(tmp_path, files)
    with pytest.raises(ValueError, match=match) as info:
        labelled.load_folder(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_utf8_and_empty_files(tmp_path: Path, caplog):
    make(
        tmp_path,
        {"neg/a.txt": b"bad \xff byte", "neg/b.txt": b"  \n", "pos/c.txt": "ok"},
    )
    with caplog.at_level(logging.WARNING, logger="jaxseq.data.labelled"):
        got = labelled.load_folder(tmp_path)
    assert got.texts == ["bad \ufffd byte", "", "ok"]
    assert "1 of 3 texts were not valid UTF-8" in caplog.text
    assert "1 texts are empty; they are kept" in caplog.text
    with pytest.raises(ValueError, match=r"neg/a\.txt: not valid UTF-8"):
        labelled.load_folder(tmp_path, errors="strict")
    with pytest.raises(ValueError, match="errors: expected 'replace' or 'strict'"):
        labelled.load_folder(tmp_path, errors="ignore")  # type: ignore[arg-type]


def test_split_folders(tmp_path: Path):
    make(
        tmp_path,
        {
            "train/neg/1.txt": "bad",
            "train/pos/1.txt": "good",
            "train/pos/2.txt": "great",
            "test/neg/1.txt": "awful",
            "test/pos/1.txt": "fine",
        },
    )
    assert labelled.layout(tmp_path) == "split_folder"
    train = labelled.load_folder(tmp_path, "train")
    test = labelled.load(tmp_path, "test")
    assert train.texts == ["bad", "good", "great"] and train.labels.tolist() == [
        0,
        1,
        1,
    ]
    assert test.texts == ["awful", "fine"] and test.labels.tolist() == [0, 1]
    with pytest.raises(ValueError, match="holds train/ and test/ folders; pass split"):
        labelled.load_folder(tmp_path)
    with pytest.raises(ValueError, match="has its own train and test splits"):
        labelled.load(tmp_path)
    with pytest.raises(ValueError, match="split: expected 'train', 'test' or None"):
        labelled.load_folder(tmp_path, "valid")  # type: ignore[arg-type]


def test_split_folders_must_hold_the_same_classes(tmp_path: Path):
    make(
        tmp_path,
        {
            "train/neg/1.txt": "bad",
            "train/pos/1.txt": "good",
            "test/neutral/1.txt": "meh",
            "test/pos/1.txt": "fine",
        },
    )
    # label ids would silently differ (neutral 0 in test, neg 0 in train)
    with pytest.raises(ValueError, match=r"holds the classes \['neg', 'pos'\] but"):
        labelled.load_folder(tmp_path, "train")
    with pytest.raises(ValueError, match=r"\['neutral', 'pos'\] but .*train/ holds"):
        labelled.load_folder(tmp_path, "test")


def test_layout(tmp_path: Path):
    (tmp_path / "reviews.CSV").write_text("text,label\na,0\n")
    assert labelled.layout(tmp_path / "reviews.CSV") == "csv"
    archive = write_tar(tmp_path / "aclImdb_v1.tar.gz", tiny_files())
    assert labelled.layout(archive) == "archive"
    write_dir(tmp_path / "extracted", tiny_files())
    assert labelled.layout(tmp_path / "extracted") == "imdb"
    assert labelled.layout(tmp_path / "extracted" / "aclImdb") == "imdb"
    make(tmp_path / "mine", SPAM)
    assert labelled.layout(tmp_path / "mine") == "folder"
    make(tmp_path / "half", {"train/neg/1.txt": "x", "train/pos/1.txt": "y"})
    with pytest.raises(ValueError, match=r"holds a train/ folder but no .*half/test/"):
        labelled.layout(tmp_path / "half")
    with pytest.raises(FileNotFoundError, match="no such file or directory"):
        labelled.layout(tmp_path / "missing")
    with pytest.raises(TypeError, match="path: expected a file or directory path"):
        labelled.layout(3)  # type: ignore[arg-type]


def test_load_holds_out_a_fixed_test_split(tmp_path: Path, caplog):
    files = {f"{'pos' if i % 2 else 'neg'}/{i}.txt": f"text {i}" for i in range(20)}
    make(tmp_path, files)
    whole = labelled.load(tmp_path)
    with caplog.at_level(logging.INFO, logger="jaxseq.data.labelled"):
        train = labelled.load(tmp_path, "train")
    test = labelled.load(tmp_path, "test")
    assert "4 of its 20 texts (holdout 0.2, seed 0) are the test split" in caplog.text
    assert len(train) == 16 and len(test) == 4
    assert sorted(train.texts + test.texts) == sorted(whole.texts)
    assert test.texts == labelled.load(tmp_path, "test").texts  # the same every time
    other = labelled.load(tmp_path, "test", holdout=0.5, seed=1)
    assert len(other) == 10
    pairs = dict(zip(whole.texts, whole.labels.tolist(), strict=True))
    assert all(pairs[t] == y for t, y in zip(test.texts, test.labels, strict=True))
    assert train.label_names == test.label_names == ("neg", "pos")


def test_load_reads_imdb_layouts_with_load_archive(tmp_path: Path):
    archive = write_tar(tmp_path / "aclImdb_v1.tar.gz", tiny_files())
    got = labelled.load(archive, "test")
    assert got.texts == ["Not good at all.", "Very good.", "Superb acting!"]
    assert got.movie_ids.tolist() == [100, 100, 102]  # the archive's movie ids


def test_reviews_check_label_names_and_labels():
    unknown = np.full(2, -1)
    with pytest.raises(ValueError, match="label_names: expected two distinct names"):
        Reviews(["a", "b"], np.array([0, 1]), unknown, unknown, unknown, ("a",))
    with pytest.raises(ValueError, match=r"labels: expected 0 or 1 .* got 2"):
        Reviews(["a", "b"], np.array([0, 2]), unknown, unknown, unknown)
    got = Reviews(["a", "b"], np.array([0, 1]), unknown, unknown, unknown, ["x", "y"])
    assert got.take([1]).label_names == ("x", "y")
