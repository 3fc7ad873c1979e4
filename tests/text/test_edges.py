"""Edges of the text pipeline: a batch given where one sequence is expected,
empty documents, the smallest lengths."""

from __future__ import annotations

import numpy as np
import pytest

from jaxseq import text


@pytest.fixture
def vocab():
    return text.build_vocabulary(["a good film", "a dull film"], text.word_tokenizer())


def test_decode_refuses_a_batch(vocab):
    """A batch [N, L] (what vectorize returns) is not one sequence: decoding it
    whole would run its rows together."""
    ids, _ = text.vectorize(vocab, ["a good film", "dull"], 4)
    with pytest.raises(ValueError, match=r"ids: expected one sequence of ids \[L\], "
                       r"got shape \(2, 4\)"):  # fmt: skip
        text.decode(vocab, ids)
    rows = [text.decode(vocab, row) for row in ids]
    assert rows == [["a", "good", "film"], ["dull"]]
    assert text.decode(vocab, np.int32(2)) == [vocab.tokens[2]]  # one id: a token


def test_empty_documents_vectorise_to_padding(vocab):
    ids, lengths = text.vectorize(vocab, ["", "   ", "film"], 1)
    assert lengths.tolist() == [0, 0, 1]
    assert ids.tolist() == [[0], [0], [vocab.tokens.index("film")]]
    counts = text.bag_of_words(vocab, ["", "film film"], sparse=False, norm=None)
    expected = np.zeros((2, len(vocab)))
    expected[1, vocab.tokens.index("film")] = 2
    assert np.array_equal(counts, expected)
    empty, n = text.vectorize(vocab, [], 3)
    assert empty.shape == (0, 3) and n.shape == (0,)
