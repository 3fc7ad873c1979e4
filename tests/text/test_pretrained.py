"""Pretrained-vector loaders on small files written here in each format."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from jaxseq.text import Coverage, build_vocabulary, load_pretrained, word_tokenizer

# Training text -> vocabulary: film(3) good(2) bad(2) plot(1) zzz(1).
TRAIN = ["good film", "bad film good", "film plot bad zzz"]
VECTORS = {
    "film": [0.5, -1.0, 2.0],
    "Good": [1.0, 1.5, -0.5],  # only a case-folded match
    "good": [0.25, 0.0, 1.0],  # exact match wins over "Good"
    "BAD": [-2.0, 0.5, 0.125],
    "plot": [3.0, -0.75, 0.5],
    "unrelated": [9.0, 9.0, 9.0],
}


@pytest.fixture
def vocab():
    v = build_vocabulary(TRAIN, word_tokenizer())
    assert v.tokens == ("", "[UNK]", "film", "bad", "good", "plot", "zzz")
    return v


def _text_lines(header: bool) -> str:
    lines = [f"{len(VECTORS)} 3"] if header else []
    lines += [f"{w} " + " ".join(repr(x) for x in v) for w, v in VECTORS.items()]
    return "\n".join(lines) + "\n"


def write_word2vec_text(path: Path) -> Path:
    path.write_text(_text_lines(header=True), encoding="utf-8")
    return path


def write_glove(path: Path) -> Path:
    path.write_text(_text_lines(header=False), encoding="utf-8")
    return path


def write_word2vec_binary(path: Path, newline: bool = True) -> Path:
    out = f"{len(VECTORS)} 3\n".encode()
    for word, vec in VECTORS.items():
        out += (
            word.encode()
            + b" "
            + struct.pack("<3f", *vec)
            + (b"\n" if newline else b"")
        )
    path.write_bytes(out)
    return path


WRITERS = {
    "word2vec-text": write_word2vec_text,
    "glove": write_glove,
    "word2vec-binary": write_word2vec_binary,
}


@pytest.mark.parametrize("fmt", list(WRITERS))
@pytest.mark.parametrize("compressed", [False, True])
def test_formats_give_the_file_vectors(tmp_path, vocab, fmt, compressed):
    path = WRITERS[fmt](tmp_path / "vectors")
    if compressed:
        gz = tmp_path / "vectors.gz"
        gz.write_bytes(gzip.compress(path.read_bytes()))
        path = gz
    table, cov = load_pretrained(path, vocab, format=fmt, seed=3)
    assert table.shape == (7, 3) and table.dtype == np.float32
    np.testing.assert_array_equal(table[0], 0.0)  # padding
    np.testing.assert_array_equal(table[2], VECTORS["film"])
    np.testing.assert_array_equal(table[3], VECTORS["BAD"])  # case folded
    np.testing.assert_array_equal(table[4], VECTORS["good"])  # exact beats folded
    np.testing.assert_array_equal(table[5], VECTORS["plot"])
    assert cov == Coverage(
        found=4,
        missing=1,
        found_by_case_fold=1,
        token_coverage=8 / 9,
        missing_examples=("zzz",),
        dim=3,
        words_in_file=6,
    )
    assert "4/5 vocabulary tokens found" in str(cov)
    again, _ = load_pretrained(path, vocab, format=fmt, seed=3)
    np.testing.assert_array_equal(table, again)  # seeded


def test_binary_without_newlines(tmp_path, vocab):
    path = write_word2vec_binary(tmp_path / "v.bin", newline=False)
    table, cov = load_pretrained(path, vocab, format="word2vec-binary")
    np.testing.assert_array_equal(table[5], VECTORS["plot"])
    assert cov.found == 4


def test_no_case_folding(tmp_path, vocab):
    path = write_glove(tmp_path / "glove.txt")
    table, cov = load_pretrained(path, vocab, format="glove", fold_case=False)
    assert cov.found == 3 and cov.missing_examples == ("bad", "zzz")
    assert cov.found_by_case_fold == 0


def test_glove_words_with_spaces(tmp_path, vocab):
    path = tmp_path / "glove.840B.txt"
    path.write_text("film 1 2\n. . . 3 4\nplot 5 6\n", encoding="utf-8")
    table, cov = load_pretrained(path, vocab, format="glove")
    assert cov.words_in_file == 3 and cov.dim == 2
    np.testing.assert_array_equal(table[5], [5, 6])


def test_missing_rows_scaled_to_found_std(tmp_path):
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    vocab = build_vocabulary([" ".join(words)], word_tokenizer())
    found = rng.normal(0.0, 3.0, size=(200, 50))
    path = tmp_path / "big.txt"
    path.write_text(
        "".join(
            f"{w} " + " ".join(map(str, v)) + "\n"
            for w, v in zip(words[:200], found, strict=True)
        )
    )
    table, cov = load_pretrained(path, vocab, format="glove", seed=0)
    assert cov.found == 200 and cov.missing == 200
    missing_rows = table[[vocab.lookup(w) for w in words[200:]] + [1]]
    assert abs(missing_rows.std() / found.std() - 1) < 0.05
    assert abs(missing_rows.mean()) < 0.1
    other, _ = load_pretrained(path, vocab, format="glove", seed=1)
    assert not np.array_equal(other[1], table[1])


@pytest.mark.parametrize(
    ("fmt", "content", "match"),
    [
        ("word2vec-text", b"6 3\nfilm 1 2\n", r":2: expected a word and 3 numbers"),
        (
            "word2vec-text",
            b"3 2\nfilm 1 2\n",
            "announces 3 vectors but the file holds 1",
        ),
        ("word2vec-text", b"film 1 2\n", ":1: expected a word2vec header"),
        ("glove", b"film 1 x\n", ":1: bad number"),
        (
            "word2vec-binary",
            b"2 3\nfilm " + struct.pack("<3f", 1, 2, 3) + b"\nba",
            "file ends inside a word",
        ),
        (
            "word2vec-binary",
            b"1 3\nfilm " + struct.pack("<2f", 1, 2),
            r"vector 1 of 1 \('film'\) is truncated",
        ),
    ],
)
def test_malformed_files(tmp_path, vocab, fmt, content, match):
    path = tmp_path / "bad.vec"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_pretrained(path, vocab, format=fmt)


def test_no_token_found_and_other_errors(tmp_path, vocab):
    path = tmp_path / "other.txt"
    path.write_text("alpha 1 2\nbeta 3 4\n")
    with pytest.raises(
        ValueError, match="none of the 5 vocabulary tokens has a vector"
    ):
        load_pretrained(path, vocab, format="glove")
    with pytest.raises(ValueError, match="format: expected one of"):
        load_pretrained(path, vocab, format="fasttext")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="no such vector file"):
        load_pretrained(tmp_path / "absent.txt", vocab, format="glove")


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity"])
@pytest.mark.parametrize("fmt", ["glove", "word2vec-text"])
def test_non_finite_vector_is_refused_naming_the_line(tmp_path, vocab, fmt, bad):
    """One NaN used to make the std, hence every random row, NaN."""
    lines = _text_lines(header=fmt != "glove").splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("plot "))
    lines[k] = f"plot 3.0 {bad} 0.5"
    path = tmp_path / "vectors.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="expected finite numbers") as err:
        load_pretrained(path, vocab, format=fmt)
    assert f"{path}:{k + 1}:" in str(err.value) and "position 2" in str(err.value)


def test_non_finite_binary_vector_is_refused(tmp_path, vocab):
    path = tmp_path / "vectors.bin"
    path.write_bytes(
        b"2 3\nfilm " + struct.pack("<3f", 1, 2, 3) + b"\nplot "
        + struct.pack("<3f", 1, float("nan"), 3) + b"\n"
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"vector 2 \('plot'\): expected finite"):
        load_pretrained(path, vocab, format="word2vec-binary")


def test_glove_row_with_more_numbers_is_refused(tmp_path, vocab):
    """It used to load as the multi-word token 'plot 5' with the last 2 numbers."""
    path = tmp_path / "glove.txt"
    path.write_text("film 1 2\n. . . 3 4\nplot 5 6 7\n", encoding="utf-8")
    with pytest.raises(ValueError) as err:
        load_pretrained(path, vocab, format="glove")
    assert str(err.value).startswith(f"{path}:3: expected a word and 2 numbers")
    assert "the size of the vector on line 1" in str(err.value)
    assert "got 3 numbers" in str(err.value)


def test_header_dim_and_trailing_binary_data(tmp_path, vocab):
    path = tmp_path / "zero.txt"
    path.write_text("1 0\nfilm\n")
    with pytest.raises(ValueError, match=":1: expected a word2vec header .* dim >= 1"):
        load_pretrained(path, vocab, format="word2vec-text")
    binary = write_word2vec_binary(tmp_path / "v.bin")
    binary.write_bytes(binary.read_bytes() + b"extra " + struct.pack("<3f", 1, 2, 3))
    with pytest.raises(ValueError, match="more data after the 6 vectors"):
        load_pretrained(binary, vocab, format="word2vec-binary")


@pytest.mark.parametrize("fmt", list(WRITERS))
@pytest.mark.parametrize("damage", ["cut", "crc", "not gzip"])
def test_corrupt_gzip_names_the_file(tmp_path, vocab, fmt, damage):
    packed = gzip.compress(WRITERS[fmt](tmp_path / "vectors").read_bytes())
    if damage == "cut":
        packed = packed[: len(packed) - 12]
    elif damage == "crc":
        packed = packed[:-8] + bytes([packed[-8] ^ 1]) + packed[-7:]
    else:
        packed = b"plain text, not gzip"
    path = tmp_path / "vectors.gz"
    path.write_bytes(packed)
    with pytest.raises(ValueError, match="cannot decompress the file") as err:
        load_pretrained(path, vocab, format=fmt)
    assert str(err.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"fold_case": "yes"}, TypeError, "fold_case: expected a bool"),
        ({"seed": -1}, ValueError, "seed: expected an int >= 0, got -1"),
        ({"seed": 1.5}, TypeError, "seed: expected an int >= 0, got 1.5"),
        ({"max_examples": -2}, ValueError, "max_examples: expected an int >= 0"),
        ({"dtype": np.int32}, TypeError, "dtype: expected a floating dtype"),
        ({"dtype": "nope"}, TypeError, "dtype: expected a floating dtype"),
    ],
)
def test_option_errors(tmp_path, vocab, kwargs, error, match):
    path = write_glove(tmp_path / "glove.txt")
    with pytest.raises(error, match=match):
        load_pretrained(path, vocab, format="glove", **kwargs)
