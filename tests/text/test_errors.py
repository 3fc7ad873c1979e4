"""Malformed inputs to the text functions: each is refused with an error that
names the argument, the expected and the received value."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq.text import (
    build_vocabulary,
    decode,
    embedding_init,
    idf,
    ngrams,
    one_hot,
    pad_sequences,
    standardize,
    word_tokenizer,
)


@pytest.mark.parametrize(
    ("texts", "match"),
    [
        ([], "texts: expected at least one training text, got an empty sequence"),
        ([""], "texts: expected text with tokens, got 1 text"),
        (["!!", " <br />"], "texts: expected text with tokens, got 2 text"),
    ],
)
def test_build_vocabulary_needs_tokens(texts, match):
    with pytest.raises(ValueError, match=match):
        build_vocabulary(texts, word_tokenizer())


@pytest.mark.parametrize(
    ("sequences", "error", "match"),
    [
        ([[1, [2, 3]]], TypeError, r"sequences\[0\]: expected a flat sequence .* "
         r"nested list \[1, \[2, 3\]\]"),
        ([[4], [[1, 2], [3, 4]]], TypeError, r"sequences\[1\]: expected a flat "
         r"sequence .* of shape \(2, 2\)"),
        ([[1], [1.5]], TypeError, r"sequences\[1\]: expected integer ids, got "
         "dtype float64"),
        ([np.array([1.0, 2.0])], TypeError, "expected integer ids, got dtype float"),
        ([[True]], TypeError, "expected integer ids, got dtype bool"),
        (["ab"], TypeError, r"sequences\[0\]: expected a flat sequence .* str 'ab'"),
        ("abc", TypeError, "sequences: expected a sequence of id sequences"),
        (iter([[1]]), TypeError, "sequences: expected a sequence .* got list_iter"),
        (np.arange(3), TypeError, r"sequences: .* array of shape \(3,\)"),
        ([[1], [2**31]], ValueError, r"sequences\[1\]: expected int32 ids, got "
         "2147483648"),
    ],
)  # fmt: skip
def test_pad_sequences_refuses_malformed_ids(sequences, error, match):
    with pytest.raises(error, match=match):
        pad_sequences(sequences, 3)


def test_pad_sequences_accepts_arrays_and_empty_rows():
    ids, lengths = pad_sequences(np.array([[1, 2, 3], [4, 5, 6]], np.int64), 2)
    assert ids.tolist() == [[1, 2], [4, 5]] and ids.dtype == np.int32
    ids, lengths = pad_sequences([np.zeros(0), [7]], 2, value=-1)
    assert ids.tolist() == [[-1, -1], [7, -1]] and lengths.tolist() == [0, 1]
    for value in (1.5, 2**31, True):
        with pytest.raises(ValueError, match="value: expected an int32 padding id"):
            pad_sequences([[1]], 2, value=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("vocab_size", [0, -3, 4.0, True, "4", None])
def test_one_hot_refuses_bad_vocab_size(vocab_size):
    with pytest.raises(ValueError, match="vocab_size: expected an int >= 1") as err:
        one_hot(np.array([1, 2]), vocab_size)  # type: ignore[arg-type]
    assert repr(vocab_size) in str(err.value)


def test_decode_checks_ids():
    vocab = build_vocabulary(["good film"], word_tokenizer())
    assert decode(vocab, np.array([2, 3, 0, 1])) == ["film", "good", "[UNK]"]
    # A negative id used to index from the end and return a wrong token.
    with pytest.raises(ValueError, match=r"ids: expected every id in \[0, 4\) .* -1"):
        decode(vocab, [2, -1])
    with pytest.raises(ValueError, match=r"got 9"):
        decode(vocab, [9])
    with pytest.raises(TypeError, match="ids: expected integer ids, got dtype float"):
        decode(vocab, [2.0])
    with pytest.raises(TypeError, match="vocab: expected a jaxseq.text.Vocabulary"):
        decode(["a"], [1])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"key": 0}, TypeError, "key: expected a PRNG key .* got int"),
        ({"scale": -0.1}, ValueError, "scale: expected a finite number >= 0"),
        ({"scale": float("nan")}, ValueError, "scale: expected a finite number"),
        ({"padding_id": 0.5}, ValueError, "padding_id: expected None or an id"),
        ({"dim": 2.0}, ValueError, "dim: expected an int >= 1, got 2.0"),
        ({"dtype": jnp.int8}, TypeError, "dtype: expected a floating dtype"),
        ({"dtype": "no-such-type"}, TypeError, "dtype: expected a floating dtype"),
    ],
)
def test_embedding_init_refuses_bad_arguments(kwargs, error, match):
    args = {"key": jax.random.key(0), "vocab_size": 5, "dim": 3, **kwargs}
    with pytest.raises(error, match=match):
        embedding_init(**args)


def test_embedding_init_accepts_raw_keys():
    table = embedding_init(jax.random.PRNGKey(0), 5, 3)
    assert table.shape == (5, 3)


def test_tokenizer_helpers_check_their_input():
    assert ngrams(["a", "b"], (1, 2)) == ["a", "b", "a b"]
    with pytest.raises(TypeError, match="tokens: expected a sequence of strings"):
        ngrams("abc", (1, 2))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"tokens\[1\]: expected str, got int"):
        ngrams(["a", 1], (1, 2))  # type: ignore[list-item]
    with pytest.raises(ValueError, match="ngram_range: expected a pair"):
        ngrams(["a"], 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ngram_range: expected"):
        ngrams(["a"], (0, 2))
    with pytest.raises(TypeError, match="text: expected str, got bytes"):
        standardize(b"Hello")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="vocab: expected a jaxseq.text.Vocabulary"):
        idf({"a": 2})  # type: ignore[arg-type]
