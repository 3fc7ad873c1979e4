"""CSV files of labelled texts (:func:`jaxseq.data.labelled.load_csv`): what the
csv module accepts, label values, and errors that name ``file:line``."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytest

from jaxseq.data import Reviews, labelled


def write(tmp_path: Path, content: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def test_quoting_extra_columns_bom_crlf_and_blank_lines(tmp_path: Path):
    path = write(
        tmp_path,
        b"\xef\xbb\xbfid,label,text\r\n"
        b'1,pos,"Great, really great"\r\n'
        b"\r\n"
        b'2,neg,"Two\r\nlines, and ""quotes"""\r\n'
        b"3,pos,  padded  \r\n",
    )
    got = labelled.load_csv(path)
    assert isinstance(got, Reviews)
    assert got.texts == ["Great, really great", 'Two\r\nlines, and "quotes"', "padded"]
    assert got.labels.tolist() == [1, 0, 1] and got.label_names == ("neg", "pos")
    assert (got.movie_ids == -1).all()


def test_numeric_labels_and_class_names(tmp_path: Path):
    path = write(tmp_path, "text,label\nyes,1\nno,0\nsure, 1 \n")
    got = labelled.load_csv(path)
    assert got.labels.tolist() == [1, 0, 1] and got.label_names == ("0", "1")
    only_ones = write(tmp_path, "text,label\nyes,1\n", "ones.csv")
    assert labelled.load_csv(only_ones).labels.tolist() == [1]  # 0/1 need no pair
    names = write(tmp_path, "text,label\nwin,spam\nhi,ham\nbuy,spam\n", "names.csv")
    assert labelled.load_csv(names).labels.tolist() == [1, 0, 1]  # ham < spam
    got = labelled.load_csv(names, class_names=("spam", "ham"))
    assert got.labels.tolist() == [0, 1, 0] and got.label_names == ("spam", "ham")


def test_named_columns_and_tsv(tmp_path: Path):
    path = write(tmp_path, "review\tsentiment\nGood, fine\tpos\nBad\tneg\n", "d.tsv")
    got = labelled.load_csv(
        path, text_column="review", label_column="sentiment", delimiter="\t"
    )
    assert got.texts == ["Good, fine", "Bad"] and got.labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match="delimiter: expected one character"):
        labelled.load_csv(path, delimiter="\t\t")


@pytest.mark.parametrize(
    ("content", "kwargs", "match"),
    [
        (
            "review,label\na,0\n",
            {},
            r"data\.csv:1: the column 'text' \(text_column\) is missing in the "
            r"header line; its columns are \['review', 'label'\]",
        ),
        (
            "text,text,label\na,b,0\n",
            {},
            r"data\.csv:1: the column 'text' \(text_column\) appears twice",
        ),
        ("text,label\na,0\nb,1\n", {"label_column": "y"}, r"'y' \(label_column\)"),
        (
            "text,label\na,0\nb,c,1\n",
            {},
            r"data\.csv:3: 3 fields, expected 2 as in the header line",
        ),
        ("text,label\na,0\nb\n", {}, r"data\.csv:3: 1 fields, expected 2"),
        ("text,label\na,0\n  ,1\n", {}, r"data\.csv:3: empty text in column 'text'"),
        ("text,label\na,0\nb,\n", {}, r"data\.csv:3: empty label in column 'label'"),
        (
            'text,label\n"two\nlines",0\n"x",1,2\n',
            {},
            r"data\.csv:4: 3 fields",  # line numbers count the physical lines
        ),
        (
            "text,label\na,pos\nb,neg\nc,maybe\n",
            {"class_names": ("neg", "pos")},
            r"data\.csv:4: unknown label 'maybe' in column 'label'; expected one "
            r"of \['neg', 'pos'\]",
        ),
        (
            "text,label\na,pos\nb,neg\nc,maybe\n",
            {},
            r"expected 2 label values in column 'label' \(the classifiers are "
            r"binary\), found 3: 'maybe' \(line 4\), 'neg' \(line 3\), 'pos' "
            r"\(line 2\)",
        ),
        ("text,label\na,pos\nb,pos\n", {}, r"found 1: 'pos' \(line 2\)"),
        ("text,label\na,0\nb,1\nc,2\n", {}, r"found 3: '0' \(line 2\)"),
        ("text,label\n", {}, r"data\.csv: no row after the header line"),
        ("", {}, r"data\.csv:1: no header line"),
        (
            'text,label\n"a"b,0\n',
            {},
            r"data\.csv:2: malformed CSV \(',' expected after '\"'\)",
        ),
        (
            'text,label\nfine,1\n"never closed,0\nmore,1\n',
            {},
            r"data\.csv:3: malformed CSV \(unexpected end of data\)",
        ),
    ],
)
def test_errors_name_the_line(tmp_path: Path, content, kwargs, match):
    path = write(tmp_path, content)
    with pytest.raises(ValueError, match=match):
        labelled.load_csv(path, **kwargs)


def test_invalid_utf8(tmp_path: Path, caplog):
    path = write(tmp_path, b"text,label\nok,0\nbad \xff,1\nalso \xfe bad,1\n")
    with pytest.raises(
        ValueError, match=r"data\.csv:3: expected UTF-8 text, got the byte 0xff"
    ):
        labelled.load_csv(path, errors="strict")
    with caplog.at_level(logging.WARNING, logger="jaxseq.data.labelled"):
        got = labelled.load_csv(path)
    assert got.texts == ["ok", "bad \ufffd", "also \ufffd bad"]
    assert "2 lines were not valid UTF-8 (the first is line 3)" in caplog.text


def test_long_fields(tmp_path: Path):
    long = "word " * 40_000  # 200,000 characters: over the csv module's default
    limit = csv.field_size_limit()
    got = labelled.load_csv(write(tmp_path, f"text,label\n{long},1\nshort,0\n"))
    assert got.texts == [long.strip(), "short"]
    assert csv.field_size_limit() == limit  # restored


def test_missing_file_and_load(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no such CSV file"):
        labelled.load_csv(tmp_path / "missing.csv")
    rows = "".join(f"text {i},{i % 2}\n" for i in range(10))
    path = write(tmp_path, "text,label\n" + rows)
    train, test = labelled.load(path, "train"), labelled.load(path, "test")
    assert len(train) == 8 and len(test) == 2
    assert sorted(train.texts + test.texts) == sorted(labelled.load(path).texts)
    one = write(tmp_path, "text,label\nalone,1\n", "one.csv")
    with pytest.raises(ValueError, match="holds 1 text.*at least 2 are needed"):
        labelled.load(one, "train")
