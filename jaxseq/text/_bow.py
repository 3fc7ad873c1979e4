"""Bag of words: counts, binary presence or TF-IDF, as sparse CSR or dense.

Column ``j`` is vocabulary id ``j``, the same ids :func:`~jaxseq.text.vectorize`
uses, so columns 0 (padding) and 1 (out of vocabulary) are always zero:
out-of-vocabulary tokens are not counted (as in scikit-learn); their number per
text is ``(ids == OOV_ID).sum(1)`` from ``vectorize``. For n-grams, fit the
vocabulary with an n-gram tokenizer, e.g. ``word_tokenizer(ngram_range=(1, 2))``.

TF-IDF follows scikit-learn's ``TfidfVectorizer`` defaults, with the document
frequencies of the training texts stored in the vocabulary:

.. math::

    \\mathrm{idf}(t) = \\ln\\frac{1 + n}{1 + \\mathrm{df}(t)} + 1, \\qquad
    x_{d,t} = \\mathrm{tf}(t, d)\\,\\mathrm{idf}(t)

(``smooth_idf=False`` drops the two ``1 +``), with ``tf`` the raw count
(``1 + ln(count)`` with ``sublinear_tf=True``), then each row scaled to unit L2
norm (``norm="l2"``; ``norm=None`` skips it). ``n`` is the number of training
texts and ``df(t)`` the number of them that hold ``t``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np
import scipy.sparse as sp
from jaxtyping import Float

from ._tokenize import check_texts, paused_gc, tokenizer_function
from ._vocab import NUM_RESERVED, Vocabulary, check_vocabulary

Mode = Literal["count", "binary", "tfidf"]
_MODES = ("count", "binary", "tfidf")


def bag_of_words(
    vocab: Vocabulary,
    texts: Sequence[str],
    *,
    mode: Mode = "count",
    sparse: bool = True,
    norm: Literal["l2"] | None = "l2",
    sublinear_tf: bool = False,
    smooth_idf: bool = True,
    dtype: type = np.float32,
) -> sp.csr_matrix | Float[np.ndarray, "N V"]:
    """Bag-of-words matrix ``[N, V]`` of ``texts`` over ``vocab``.

    Args:
        vocab: the fitted :class:`Vocabulary` (its tokenizer is used).
        texts: ``N`` texts.
        mode: ``"count"`` (occurrences), ``"binary"`` (1 if present) or
            ``"tfidf"`` (see the module docstring).
        sparse: return a ``scipy.sparse.csr_matrix`` (default) or a dense array.
        norm: TF-IDF row normalisation, ``"l2"`` or ``None`` (tfidf only).
        sublinear_tf: TF-IDF with ``1 + ln(count)`` (tfidf only).
        smooth_idf: add one to ``n`` and ``df`` (tfidf only).
        dtype: output dtype.

    Returns:
        CSR matrix (sorted indices, no explicit zeros) or dense array,
        ``[N, len(vocab)]``.

    Raises:
        ValueError: on an unknown ``mode`` or ``norm``.

    Examples:
        >>> from jaxseq.text import bag_of_words, build_vocabulary, word_tokenizer
        >>> vocab = build_vocabulary(["a b b", "b c"], word_tokenizer())
        >>> vocab.tokens
        ('', '[UNK]', 'b', 'a', 'c')
        >>> bag_of_words(vocab, ["b a b z"], sparse=False).tolist()
        [[0.0, 0.0, 2.0, 1.0, 0.0]]
    """
    if mode not in _MODES:
        raise ValueError(f"mode: expected one of {_MODES}, got {mode!r}.")
    if norm not in ("l2", None):
        raise ValueError(f"norm: expected 'l2' or None, got {norm!r}.")
    counts = count_matrix(vocab, texts)
    if mode == "binary":
        counts.data[:] = 1
    elif mode == "tfidf":
        counts = _tfidf(vocab, counts, norm, sublinear_tf, smooth_idf)
    out = counts.astype(dtype)
    return out if sparse else out.toarray()


def count_matrix(vocab: Vocabulary, texts: Sequence[str]) -> sp.csr_matrix:
    """Token counts as a float64 CSR matrix ``[N, len(vocab)]`` (the building
    block of :func:`bag_of_words`)."""
    texts = check_texts(texts)
    fn = tokenizer_function(check_vocabulary(vocab).tokenizer)
    get = vocab.index.get
    cols: list[np.ndarray] = []
    with paused_gc():
        for text in texts:
            tokens = fn(text)
            ids = np.fromiter(
                map(get, tokens, itertools.repeat(-1)),
                dtype=np.int64,
                count=len(tokens),
            )
            cols.append(ids[ids >= NUM_RESERVED])
    sizes = np.fromiter(map(len, cols), dtype=np.int64, count=len(cols))
    col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    row = np.repeat(np.arange(len(texts)), sizes)
    data = np.ones(col.shape, dtype=np.float64)
    # COO -> CSR sums the duplicate (row, col) entries: the counts.
    out = sp.csr_matrix((data, (row, col)), shape=(len(texts), len(vocab)))
    out.sum_duplicates()
    out.sort_indices()
    return out


def idf(vocab: Vocabulary, *, smooth_idf: bool = True) -> Float[np.ndarray, " V"]:
    """Inverse document frequency of every id (0 for the reserved ids).

    Raises:
        ValueError: with ``smooth_idf=False`` when a token has zero document
            frequency (a vocabulary not built by :func:`build_vocabulary`).
    """
    n = float(check_vocabulary(vocab).num_docs)
    df = vocab.doc_counts[NUM_RESERVED:].astype(np.float64)
    if smooth_idf:
        n, df = n + 1.0, df + 1.0
    elif (df == 0).any():
        raise ValueError(
            "smooth_idf: a token has document frequency 0, so its idf is infinite; "
            "use smooth_idf=True."
        )
    out = np.zeros(len(vocab), dtype=np.float64)
    out[NUM_RESERVED:] = np.log(n / df) + 1.0
    return out


def _tfidf(
    vocab: Vocabulary,
    counts: sp.csr_matrix,
    norm: str | None,
    sublinear_tf: bool,
    smooth_idf: bool,
) -> sp.csr_matrix:
    out = counts.copy()
    if sublinear_tf:
        out.data = 1.0 + np.log(out.data)
    out.data *= idf(vocab, smooth_idf=smooth_idf)[out.indices]
    if norm == "l2":
        sq = np.asarray(out.multiply(out).sum(axis=1)).ravel()
        scale = np.where(sq > 0, 1.0 / np.sqrt(np.where(sq > 0, sq, 1.0)), 0.0)
        out.data *= np.repeat(scale, np.diff(out.indptr))
    return out
