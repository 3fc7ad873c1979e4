"""Vocabulary fitting, ranking, and JSON persistence with corrupt-file errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxseq.text import (
    OOV_ID,
    PAD_ID,
    Vocabulary,
    build_vocabulary,
    char_tokenizer,
    load_vocabulary,
    save_vocabulary,
    vectorize,
    word_tokenizer,
)

TRAIN = ["the cat sat", "the dog sat down", "a cat, a dog; THE END", "zebra"]


def test_ranking_counts_and_ties():
    vocab = build_vocabulary(TRAIN, word_tokenizer())
    # the: 3; a, cat, dog, sat: 2 (ties by string); down, end, zebra: 1.
    assert vocab.tokens == (
        "",
        "[UNK]",
        "the",
        "a",
        "cat",
        "dog",
        "sat",
        "down",
        "end",
        "zebra",
    )
    assert vocab.counts.tolist() == [0, 0, 3, 2, 2, 2, 2, 1, 1, 1]
    assert vocab.doc_counts.tolist() == [0, 0, 3, 1, 2, 2, 2, 1, 1, 1]
    assert vocab.num_docs == 4 and len(vocab) == 10
    assert vocab.lookup("dog") == 5 and vocab.lookup("unicorn") == OOV_ID
    assert "cat" in vocab and "" not in vocab and "[UNK]" not in vocab
    assert PAD_ID == 0 and OOV_ID == 1


def test_max_size_counts_reserved_ids_and_min_freq():
    tok = word_tokenizer()
    assert build_vocabulary(TRAIN, tok, max_size=5).tokens == (
        "",
        "[UNK]",
        "the",
        "a",
        "cat",
    )
    assert build_vocabulary(TRAIN, tok, max_size=2).tokens == ("", "[UNK]")
    assert build_vocabulary(TRAIN, tok, min_freq=2).tokens[2:] == (
        "the",
        "a",
        "cat",
        "dog",
        "sat",
    )


def test_independent_of_text_order():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(50)]
    texts = [" ".join(rng.choice(words, size=8)) for _ in range(100)]
    tok = word_tokenizer()
    a = build_vocabulary(texts, tok, max_size=20)
    b = build_vocabulary([texts[i] for i in rng.permutation(100)], tok, max_size=20)
    assert a.tokens == b.tokens


def test_partial_selection_equals_full_sort():
    rng = np.random.default_rng(1)
    texts = [
        " ".join(f"t{k}" for k in rng.zipf(1.3, size=30) % 500) for _ in range(300)
    ]
    tok = word_tokenizer()
    full = build_vocabulary(texts, tok)
    for size in (3, 17, 60, 200):
        assert build_vocabulary(texts, tok, max_size=size).tokens == full.tokens[:size]


def test_reserved_token_text_maps_to_oov():
    tok = word_tokenizer(lower=False, punctuation="keep")
    vocab = build_vocabulary(["[UNK] a a"], tok)
    assert vocab.tokens == ("", "[UNK]", "a")
    assert vectorize(vocab, ["[UNK] a"], 2)[0].tolist() == [[OOV_ID, 2]]


def test_argument_errors():
    tok = word_tokenizer()
    with pytest.raises(ValueError, match="max_size: expected None or an int >= 2"):
        build_vocabulary(TRAIN, tok, max_size=1)
    with pytest.raises(ValueError, match="min_freq"):
        build_vocabulary(TRAIN, tok, min_freq=0)
    with pytest.raises(TypeError, match="single str"):
        build_vocabulary("the cat", tok)
    with pytest.raises(TypeError, match="Tokenizer"):
        build_vocabulary(TRAIN, "word")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "tok", [word_tokenizer(ngram_range=(1, 2)), char_tokenizer(punctuation="strip")]
)
def test_save_load_round_trip(tmp_path, tok):
    vocab = build_vocabulary(TRAIN + ["naïve café"], tok, max_size=30)
    path = tmp_path / "vocab.json"
    save_vocabulary(vocab, path)
    loaded = load_vocabulary(path)
    assert loaded.tokens == vocab.tokens and loaded.tokenizer == vocab.tokenizer
    np.testing.assert_array_equal(loaded.counts, vocab.counts)
    np.testing.assert_array_equal(loaded.doc_counts, vocab.doc_counts)
    assert loaded.num_docs == vocab.num_docs
    texts = ["the cat, naïvely", "down dog"]
    np.testing.assert_array_equal(
        vectorize(loaded, texts, 6)[0], vectorize(vocab, texts, 6)[0]
    )


def _saved(tmp_path) -> tuple[dict, object]:
    vocab = build_vocabulary(TRAIN, word_tokenizer())
    path = tmp_path / "vocab.json"
    save_vocabulary(vocab, path)
    return json.loads(path.read_text(encoding="utf-8")), path


def _write(path, payload) -> None:
    path.write_text(json.dumps(payload), encoding="utf-8")


def test_corrupt_json(tmp_path):
    _, path = _saved(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid vocabulary file.*corrupt JSON"):
        load_vocabulary(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="corrupt JSON"):
        load_vocabulary(path)


def test_version_mismatch(tmp_path):
    payload, path = _saved(tmp_path)
    _write(path, {**payload, "version": 2})
    with pytest.raises(ValueError, match="version: expected 1, got 2"):
        load_vocabulary(path)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format": "something.else"}, "not a jaxseq vocabulary"),
        (
            {
                "tokens": ["", "[UNK]", "a", "a"],
                "counts": [0, 0, 1, 1],
                "doc_counts": [0, 0, 1, 1],
            },
            "unique tokens, got 'a' twice",
        ),
        ({"tokens": ["[UNK]", "", "a"]}, "reserved tokens"),
        ({"counts": [0, 0, 1]}, r"counts: expected an array of shape \(10,\)"),
        ({"tokenizer": {"level": "word"}}, "tokenizer: expected the fields"),
        ({"num_docs": -3}, "num_docs"),
    ],
)
def test_inconsistent_files(tmp_path, change, match):
    payload, path = _saved(tmp_path)
    _write(path, {**payload, **change})
    with pytest.raises(ValueError, match=match) as err:
        load_vocabulary(path)
    assert str(path) in str(err.value)


def test_missing_field_and_missing_file(tmp_path):
    payload, path = _saved(tmp_path)
    del payload["doc_counts"]
    _write(path, payload)
    with pytest.raises(ValueError, match=r"lacks the fields \['doc_counts'\]"):
        load_vocabulary(path)
    with pytest.raises(FileNotFoundError):
        load_vocabulary(tmp_path / "absent.json")


def test_direct_construction_is_validated():
    with pytest.raises(ValueError, match="shape"):
        Vocabulary(
            ("", "[UNK]", "a"),
            np.zeros(2, np.int64),
            np.zeros(3, np.int64),
            1,
            word_tokenizer(),
        )


def test_directly_built_tokenizer_is_normalised():
    from jaxseq.text import Tokenizer

    vocab = build_vocabulary(["a b c"], Tokenizer(ngram_range=2))  # type: ignore[arg-type]
    assert vocab.tokenizer.ngram_range == (2, 2)
    assert vocab.tokens[2:] == ("a b", "b c")
