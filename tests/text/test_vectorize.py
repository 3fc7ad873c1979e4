"""Padding/truncation on hand examples and against a plain-Python reference;
vectorise, decode and one-hot."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jaxseq.text import (
    OOV_ID,
    PAD_ID,
    bag_of_words,
    build_vocabulary,
    decode,
    encode,
    one_hot,
    pad_sequences,
    vectorize,
    word_tokenizer,
)

SEQS = [[5, 6, 7, 8, 9], [3, 4], [], [2, 3, 4]]


@pytest.mark.parametrize(
    ("padding", "truncating", "expected"),
    [
        ("post", "post", [[5, 6, 7], [3, 4, 0], [0, 0, 0], [2, 3, 4]]),
        ("post", "pre", [[7, 8, 9], [3, 4, 0], [0, 0, 0], [2, 3, 4]]),
        ("pre", "post", [[5, 6, 7], [0, 3, 4], [0, 0, 0], [2, 3, 4]]),
        ("pre", "pre", [[7, 8, 9], [0, 3, 4], [0, 0, 0], [2, 3, 4]]),
    ],
)
def test_pad_sequences_hand_examples(padding, truncating, expected):
    ids, lengths = pad_sequences(SEQS, 3, padding=padding, truncating=truncating)
    assert ids.dtype == np.int32 and lengths.dtype == np.int32
    assert ids.tolist() == expected
    assert lengths.tolist() == [3, 2, 0, 3]


def _reference(seqs, length, padding, truncating):
    rows = []
    for s in seqs:
        s = list(s)
        if len(s) > length:
            s = s[:length] if truncating == "post" else s[len(s) - length :]
        pad = [PAD_ID] * (length - len(s))
        rows.append(s + pad if padding == "post" else pad + s)
    return rows


@pytest.mark.parametrize(
    ("padding", "truncating"), list(itertools.product(["pre", "post"], repeat=2))
)
def test_pad_sequences_matches_reference(padding, truncating):
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 50, size=rng.integers(0, 12)) for _ in range(200)]
    for length in (1, 5, 11, 20):
        ids, lengths = pad_sequences(
            seqs, length, padding=padding, truncating=truncating
        )
        assert ids.tolist() == _reference(seqs, length, padding, truncating)
        assert lengths.tolist() == [min(len(s), length) for s in seqs]
        # The mask of valid positions is ids != PAD_ID on either side.
        assert ((ids != PAD_ID).sum(1) == lengths).all()


def test_pad_sequences_edge_cases():
    ids, lengths = pad_sequences([], 4)
    assert ids.shape == (0, 4) and lengths.shape == (0,)
    ids, lengths = pad_sequences([[], []], 2, value=-1)
    assert ids.tolist() == [[-1, -1], [-1, -1]] and lengths.tolist() == [0, 0]
    with pytest.raises(ValueError, match="length: expected an int >= 1, got 0"):
        pad_sequences([[1]], 0)
    with pytest.raises(ValueError, match="padding: expected 'pre' or 'post'"):
        pad_sequences([[1]], 2, padding="left")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="truncating: expected 'pre' or 'post'"):
        pad_sequences([[1]], 2, truncating=None)  # type: ignore[arg-type]


TRAIN = ["a good film", "a bad film", "good good acting"]


def test_vectorize_hand_example():
    vocab = build_vocabulary(TRAIN, word_tokenizer())
    assert vocab.tokens == ("", "[UNK]", "good", "a", "film", "acting", "bad")
    texts = ["Good film, bad ending.", "", "<br />", "A truly good film!"]
    ids, lengths = vectorize(vocab, texts, 3, padding="pre", truncating="pre")
    assert ids.tolist() == [[4, 6, OOV_ID], [0, 0, 0], [0, 0, 0], [OOV_ID, 2, 4]]
    assert lengths.tolist() == [3, 0, 0, 3]
    ids, lengths = vectorize(vocab, texts, 5)
    assert ids.tolist() == [[2, 4, 6, 1, 0], [0] * 5, [0] * 5, [3, 1, 2, 4, 0]]
    assert lengths.tolist() == [4, 0, 0, 4]
    assert decode(vocab, ids[3]) == ["a", "[UNK]", "good", "film"]
    assert [len(e) for e in encode(vocab, texts)] == [4, 0, 0, 4]


def test_vectorize_on_sample_reviews():
    from jaxseq.data import imdb

    reviews = imdb.load_sample("test")
    vocab = build_vocabulary(reviews.texts[:500], word_tokenizer(), max_size=2000)
    ids, lengths = vectorize(vocab, reviews.texts, 256)
    assert ids.shape == (1000, 256) and ids.dtype == np.int32
    assert ids.min() >= 0 and ids.max() < len(vocab)
    full = [len(vocab.tokenizer(t)) for t in reviews.texts]
    assert lengths.tolist() == [min(n, 256) for n in full]


def test_one_hot():
    ids = np.array([[2, 1, 0], [3, 3, 0]])
    out = one_hot(ids, 4)
    assert out.shape == (2, 3, 4) and out.dtype == np.float32
    assert out[0].tolist() == [[0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert one_hot(ids, 4, dtype=np.int8).sum(1).tolist() == [
        [0, 1, 1, 0],
        [0, 0, 0, 2],
    ]
    with pytest.raises(ValueError, match=r"ids: expected every id in \[0, 3\)"):
        one_hot(ids, 3)
    with pytest.raises(TypeError, match="integer"):
        one_hot(np.array([0.5]), 3)


def test_one_hot_sum_over_time_is_bag_of_words():
    vocab = build_vocabulary(TRAIN, word_tokenizer())
    texts = ["good good film", "acting is bad", "a film"]
    ids, _ = vectorize(vocab, texts, 8)
    counts = bag_of_words(vocab, texts, sparse=False)
    np.testing.assert_array_equal(one_hot(ids, len(vocab)).sum(1)[:, 2:], counts[:, 2:])


def test_vocabulary_argument_is_checked():
    with pytest.raises(TypeError, match="vocab: expected a jaxseq.text.Vocabulary"):
        vectorize({"a": 2}, ["a"], 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="vocab: expected a jaxseq.text.Vocabulary"):
        bag_of_words(None, ["a"])  # type: ignore[arg-type]
