"""Bag of words (counts, binary, TF-IDF) against scikit-learn with matching
settings: the same tokens and vocabulary, so only the counting and weighting are
compared."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from jaxseq.data import imdb
from jaxseq.text import bag_of_words, build_vocabulary, idf, word_tokenizer

sklearn_text = pytest.importorskip(
    "sklearn.feature_extraction.text", reason="scikit-learn is the reference"
)


@pytest.fixture(scope="module")
def corpus():
    reviews = imdb.load_sample("train")
    train, test = reviews.texts[:300], reviews.texts[300:400] + ["", "<br />"]
    return train, test


def _sklearn(cls, vocab, **kwargs):
    """A scikit-learn vectorizer with jaxseq's tokens and vocabulary (columns
    shifted by the two reserved ids, which scikit-learn does not have)."""
    mapping = {tok: i - 2 for tok, i in vocab.index.items()}
    return cls(analyzer=vocab.tokenizer, vocabulary=mapping, **kwargs)


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2)])
@pytest.mark.parametrize("binary", [False, True])
def test_counts_and_binary_match_sklearn(corpus, ngram_range, binary):
    train, test = corpus
    vocab = build_vocabulary(
        train, word_tokenizer(ngram_range=ngram_range), max_size=3000
    )
    ours = bag_of_words(vocab, test, mode="binary" if binary else "count")
    ref = _sklearn(sklearn_text.CountVectorizer, vocab, binary=binary).fit(train)
    expected = ref.transform(test).toarray()
    assert isinstance(ours, sp.csr_matrix) and ours.dtype == np.float32
    assert ours.has_sorted_indices and (ours.data != 0).all()
    np.testing.assert_array_equal(ours.toarray()[:, 2:], expected)
    assert ours[:, :2].nnz == 0  # padding and OOV columns stay empty


@pytest.mark.parametrize("norm", ["l2", None])
@pytest.mark.parametrize("smooth_idf", [True, False])
@pytest.mark.parametrize("sublinear_tf", [False, True])
def test_tfidf_matches_sklearn(corpus, norm, smooth_idf, sublinear_tf):
    train, test = corpus
    vocab = build_vocabulary(train, word_tokenizer(ngram_range=(1, 2)), min_freq=2)
    options = {"norm": norm, "smooth_idf": smooth_idf, "sublinear_tf": sublinear_tf}
    ours = bag_of_words(vocab, test, mode="tfidf", dtype=np.float64, **options)
    ref = _sklearn(sklearn_text.TfidfVectorizer, vocab, **options).fit(train)
    np.testing.assert_allclose(
        ours.toarray()[:, 2:], ref.transform(test).toarray(), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        idf(vocab, smooth_idf=smooth_idf)[2:], ref.idf_, rtol=1e-12
    )


def test_dense_equals_sparse_and_hand_example():
    vocab = build_vocabulary(["a b b", "b c"], word_tokenizer())
    assert vocab.tokens == ("", "[UNK]", "b", "a", "c")
    texts = ["b a b z", "c c c", ""]
    dense = bag_of_words(vocab, texts, sparse=False)
    assert isinstance(dense, np.ndarray)
    assert dense.tolist() == [[0, 0, 2, 1, 0], [0, 0, 0, 0, 3], [0, 0, 0, 0, 0]]
    binary = bag_of_words(vocab, texts, mode="binary", sparse=False)
    assert binary.tolist() == [[0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    tfidf = bag_of_words(vocab, texts, mode="tfidf")
    # idf = ln(3/3)+1 = 1 for b (df 2), ln(3/2)+1 for a and c; row 0 = (2, idf_a)/norm.
    idf_a = np.log(1.5) + 1
    row0 = np.array([2.0, idf_a]) / np.hypot(2.0, idf_a)
    np.testing.assert_allclose(tfidf.toarray()[0, 2:4], row0, rtol=1e-6)
    np.testing.assert_allclose(tfidf.toarray()[1, 4], 1.0, rtol=1e-6)
    assert tfidf[2].nnz == 0


def test_errors():
    vocab = build_vocabulary(["a b"], word_tokenizer())
    with pytest.raises(ValueError, match="mode: expected one of"):
        bag_of_words(vocab, ["a"], mode="tf")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="norm: expected 'l2' or None"):
        bag_of_words(vocab, ["a"], mode="tfidf", norm="l1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="single str"):
        bag_of_words(vocab, "a b")
