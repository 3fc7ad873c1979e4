"""Token streams for language modelling: texts -> one stream -> ``B`` parallel
streams read in consecutive chunks of ``T`` steps (the "batchify" layout of
every LM recipe, e.g. PyTorch's word_language_model).

Layout of the stream. Each document is preceded by the boundary token
:data:`EOS_TOKEN` (id :data:`EOS_ID`) and the stream ends with one more::

    <eos> d1_1 d1_2 ... <eos> d2_1 ... <eos>

so the model reads ``<eos>`` and predicts a document's first token, and predicts
``<eos>`` after its last one. ``starts`` marks the position of each document's
leading ``<eos>``: a stateful model resets its carry *before* the step whose
input is that token (Haiku's ``ResetCore`` semantics), which makes every
document's predictions independent of the documents before it.

Vocabularies are fitted on training text only (:func:`lm_vocabulary`, which is
:func:`jaxseq.text.build_vocabulary` plus the boundary token); ids ``0`` (padding)
and ``1`` (out of vocabulary) keep their meaning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from .. import text
from .._utf8 import decode_utf8
from ..text import Tokenizer, Vocabulary
from ._checks import check_ids, check_positive

logger = logging.getLogger("jaxseq.lm")

EOS_TOKEN = "<eos>"
EOS_ID = 2
SplitBy = Literal["line", "paragraph", "file"]


class TokenStream(NamedTuple):
    """Token ids and document starts, aligned.

    Attributes:
        ids: int32 ``[N]`` (one stream) or ``[B, L]`` (after :func:`batchify`).
        starts: bool, same shape: true at each document's leading ``<eos>``.
    """

    ids: np.ndarray
    starts: np.ndarray


class Chunks(NamedTuple):
    """``n`` consecutive chunks of ``B`` parallel streams, ``T`` steps each.

    Attributes:
        inputs: int32 ``[n, B, T]``; ``inputs[i, b]`` continues ``inputs[i-1, b]``.
        targets: int32 ``[n, B, T]``, the next tokens (``inputs`` shifted by one).
        resets: bool ``[n, B, T]``, true where a document starts at the input.
    """

    inputs: np.ndarray
    targets: np.ndarray
    resets: np.ndarray

    def chunk(self, i: int) -> Chunks:
        """Chunk ``i`` as a batch ``(inputs [B, T], targets, resets)``."""
        return Chunks(self.inputs[i], self.targets[i], self.resets[i])

    @property
    def num_chunks(self) -> int:
        """``n``."""
        return int(self.inputs.shape[0])


def lm_vocabulary(
    texts: Sequence[str],
    tokenizer: Tokenizer,
    *,
    max_size: int | None = None,
    min_freq: int = 1,
) -> Vocabulary:
    """A vocabulary fitted on (training) ``texts`` with ``<eos>`` at id 2.

    Args:
        texts: the training texts only.
        tokenizer: ``jaxseq.text.word_tokenizer()`` or ``char_tokenizer()``.
        max_size: largest number of ids, the three reserved ids (padding,
            ``[UNK]``, ``<eos>``) included.
        min_freq: smallest count for a token to be kept.

    Examples:
        >>> from jaxseq import text
        >>> from jaxseq.lm import lm_vocabulary
        >>> vocab = lm_vocabulary(["a b b", "c b"], text.word_tokenizer())
        >>> vocab.tokens
        ('', '[UNK]', '<eos>', 'b', 'a', 'c')
    """
    if max_size is not None and (
        isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 3
    ):
        raise ValueError(
            f"max_size: expected None or an int >= 3 (padding, [UNK] and <eos> are "
            f"reserved), got {max_size!r}."
        )
    base = text.build_vocabulary(
        texts,
        tokenizer,
        max_size=None if max_size is None else max_size - 1,
        min_freq=min_freq,
    )
    keep = [i for i, tok in enumerate(base.tokens) if i >= 2 and tok != EOS_TOKEN]
    if max_size is not None:
        keep = keep[: max_size - 3]
    return Vocabulary(
        tokens=(*base.tokens[:2], EOS_TOKEN, *(base.tokens[i] for i in keep)),
        counts=np.array([0, 0, base.num_docs, *base.counts[keep]], np.int64),
        doc_counts=np.array([0, 0, base.num_docs, *base.doc_counts[keep]], np.int64),
        num_docs=base.num_docs,
        tokenizer=base.tokenizer,
    )


def check_lm_vocabulary(vocab: Vocabulary) -> Vocabulary:
    """Refuse a vocabulary without ``<eos>`` at id 2."""
    if not isinstance(vocab, Vocabulary):
        raise TypeError(
            f"vocab: expected a jaxseq.text.Vocabulary, got {type(vocab).__name__}."
        )
    if len(vocab) <= EOS_ID or vocab.tokens[EOS_ID] != EOS_TOKEN:
        got = vocab.tokens[EOS_ID] if len(vocab) > EOS_ID else None
        raise ValueError(
            f"vocab: expected {EOS_TOKEN!r} at id {EOS_ID} (build it with "
            f"jaxseq.lm.lm_vocabulary), got {got!r}."
        )
    return vocab


def encode_stream(vocab: Vocabulary, texts: Sequence[str]) -> TokenStream:
    """One stream ``<eos> doc_1 <eos> doc_2 ... <eos>`` of int32 ids.

    Examples:
        >>> from jaxseq import text
        >>> from jaxseq.lm import encode_stream, lm_vocabulary
        >>> vocab = lm_vocabulary(["a b", "b"], text.word_tokenizer())
        >>> s = encode_stream(vocab, ["a b", "b z"])
        >>> s.ids.tolist(), s.starts.astype(int).tolist()
        ([2, 4, 3, 2, 3, 1, 2], [1, 0, 0, 1, 0, 0, 0])
    """
    check_lm_vocabulary(vocab)
    docs = text.encode(vocab, texts)
    if not docs:
        raise ValueError("texts: expected at least one document, got none.")
    parts, starts = [], []
    for d in docs:
        parts += [np.array([EOS_ID], np.int32), d]
        s = np.zeros(len(d) + 1, bool)
        s[0] = True
        starts.append(s)
    parts.append(np.array([EOS_ID], np.int32))
    starts.append(np.zeros(1, bool))
    return TokenStream(np.concatenate(parts), np.concatenate(starts))


def batchify(stream: TokenStream, batch_size: int) -> TokenStream:
    """Cut a stream ``[N]`` into ``B`` contiguous rows ``[B, N // B]`` (the tail
    that does not fill a row is dropped, as in PyTorch's recipe)."""
    check_positive("batch_size", batch_size)
    ids, starts = np.asarray(stream.ids), np.asarray(stream.starts, bool)
    if ids.ndim != 1 or starts.shape != ids.shape:
        raise ValueError(
            f"stream: expected ids and starts of one shape [N], got {ids.shape} and "
            f"{starts.shape}."
        )
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(
            f"stream.ids: expected integer token ids, got dtype {ids.dtype}."
        )
    width = ids.shape[0] // batch_size
    if width == 0:
        raise ValueError(
            f"batch_size: expected at most the stream length {ids.shape[0]}, got "
            f"{batch_size}."
        )
    cut = batch_size * width
    return TokenStream(
        ids[:cut].reshape(batch_size, width), starts[:cut].reshape(batch_size, width)
    )


def chunk_stream(
    stream: TokenStream,
    batch_size: int,
    chunk_len: int,
    *,
    vocab_size: int | None = None,
) -> Chunks:
    """Batchify ``stream`` and read it in consecutive chunks of ``chunk_len``.

    Chunk ``i`` of row ``b`` holds the inputs ``rows[b, iT : iT + T]`` and the
    targets one step later; only whole chunks are kept, so ``n = (N // B - 1) //
    T``.

    Args:
        stream: a one-dimensional :class:`TokenStream` (:func:`encode_stream`).
        batch_size: ``B`` parallel streams.
        chunk_len: ``T`` steps per chunk (the truncation length of BPTT).
        vocab_size: when given, every id must lie in ``[0, vocab_size)``.

    Raises:
        ValueError: for ``chunk_len`` or ``batch_size`` below 1, a stream shorter
            than one chunk per row, or ids outside the vocabulary.

    Examples:
        >>> import numpy as np
        >>> from jaxseq.lm import TokenStream, chunk_stream
        >>> s = TokenStream(np.arange(10, dtype=np.int32), np.zeros(10, bool))
        >>> c = chunk_stream(s, batch_size=2, chunk_len=2)
        >>> c.inputs.tolist(), c.targets[0].tolist()
        ([[[0, 1], [5, 6]], [[2, 3], [7, 8]]], [[1, 2], [6, 7]])
    """
    check_positive("chunk_len", chunk_len)
    if vocab_size is not None:
        check_ids("stream.ids", stream.ids, vocab_size)
    rows = batchify(stream, batch_size)
    width = rows.ids.shape[1]
    n = (width - 1) // chunk_len
    if n < 1:
        raise ValueError(
            f"stream: expected at least batch_size * (chunk_len + 1) = "
            f"{batch_size * (chunk_len + 1)} tokens (one chunk of {chunk_len} inputs "
            f"and its next-token labels per row), got {np.size(stream.ids)}."
        )
    span = n * chunk_len

    def split(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(
            a.reshape(batch_size, n, chunk_len).transpose(1, 0, 2)
        )

    return Chunks(
        inputs=split(rows.ids[:, :span]),
        targets=split(rows.ids[:, 1 : span + 1]),
        resets=split(rows.starts[:, :span]),
    )


def read_texts(
    path: str | os.PathLike[str],
    *,
    by: SplitBy = "line",
    errors: Literal["replace", "strict"] = "replace",
) -> list[str]:
    """Documents from a UTF-8 plain-text file, or every ``*.txt`` file under a
    folder (sorted by path).

    Args:
        path: a file or a folder.
        by: ``"line"``: each non-empty line is a document (the convention of
            PyTorch's word_language_model and WikiText); ``"paragraph"``: blocks
            separated by blank lines; ``"file"``: each file is one document.
        errors: ``"replace"``: bytes that are not UTF-8 become U+FFFD, and a
            warning (logger ``jaxseq.lm``) names each such file, its count of
            such lines and the first one; ``"strict"``: they are a
            ``ValueError`` naming ``file:line``.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: for an unknown ``by`` or ``errors``, a folder without
            ``.txt`` files, no text at all, or (``errors="strict"``) bytes that
            are not UTF-8.
    """
    if by not in ("line", "paragraph", "file"):
        raise ValueError(f"by: expected 'line', 'paragraph' or 'file', got {by!r}.")
    if errors not in ("replace", "strict"):
        raise ValueError(f"errors: expected 'replace' or 'strict', got {errors!r}.")
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"path: {os.fspath(path)!r} does not exist.")
    files = sorted(root.rglob("*.txt")) if root.is_dir() else [root]
    if not files:
        raise ValueError(
            f"path: expected .txt files under {os.fspath(path)!r}, got none."
        )
    docs: list[str] = []
    for f in files:
        content = decode_utf8(f.read_bytes(), os.fspath(f), errors, logger)
        content = content.replace("\r\n", "\n").replace("\r", "\n")
        if by == "file":
            parts = [content]
        elif by == "line":
            parts = content.splitlines()
        else:
            parts = [" ".join(p.split("\n")) for p in content.split("\n\n")]
        docs += [p.strip() for p in parts if p.strip()]
    if not docs:
        raise ValueError(f"path: expected some text in {os.fspath(path)!r}, got none.")
    return docs


def load_texts(source: str | os.PathLike[str], split: str = "train") -> list[str]:
    """Texts for language modelling from ``"sample"`` (the IMDb reviews shipped
    with jaxseq), an IMDb archive (``*.tar.gz`` or an ``aclImdb`` folder with
    ``train/`` and ``test/``), or any plain-text file or folder
    (:func:`read_texts`, one document per line)."""
    from ..data import imdb

    if os.fspath(source) in ("sample", "tfds"):
        return list(imdb.load(split, source=os.fspath(source)).texts)
    p = Path(source)
    if p.is_file() and p.name.endswith((".tar.gz", ".tgz")):
        return list(imdb.load(split, source=p).texts)
    if p.is_dir() and (p / "train").is_dir() and (p / "test").is_dir():
        return list(imdb.load(split, source=p).texts)
    return read_texts(p)
