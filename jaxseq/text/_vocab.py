"""A vocabulary fitted on training text: token <-> integer id, saved as JSON.

Ids ``0`` and ``1`` are reserved: :data:`PAD_ID` (padding, token ``""``) and
:data:`OOV_ID` (out of vocabulary, token ``"[UNK]"``). Regular tokens follow
from id 2, most frequent first; tokens with equal counts are ordered by the
string itself (code-point order), so the result does not depend on the order of
the training texts.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._tokenize import (
    Tokenizer,
    check_texts,
    check_tokenizer,
    paused_gc,
    tokenizer_from_dict,
    tokenizer_function,
)

PAD_ID = 0
OOV_ID = 1
PAD_TOKEN = ""
OOV_TOKEN = "[UNK]"
NUM_RESERVED = 2

#: Written into every saved vocabulary; a file with another value is refused.
FORMAT_NAME = "jaxseq.text.Vocabulary"
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True, eq=False)
class Vocabulary:
    """Token <-> id mapping plus the statistics fitted on the training text.

    Build with :func:`build_vocabulary`; save and load with :func:`save_vocabulary`
    and :func:`load_vocabulary`. ``len(vocab)`` is the number of ids (the
    embedding table's row count), reserved ids included.

    Attributes:
        tokens: ``tokens[i]`` is the token of id ``i``; ``tokens[0] == ""`` and
            ``tokens[1] == "[UNK]"``.
        counts: int64 ``[V]``, occurrences of each token in the training text
            (0 for the reserved ids).
        doc_counts: int64 ``[V]``, number of training texts holding each token
            (document frequency, used by TF-IDF).
        num_docs: number of training texts.
        tokenizer: the :class:`Tokenizer` the vocabulary was fitted with; every
            function that vectorises with this vocabulary uses it too.
        index: ``token -> id`` for the regular tokens (derived).
    """

    tokens: tuple[str, ...]
    counts: np.ndarray
    doc_counts: np.ndarray
    num_docs: int
    tokenizer: Tokenizer
    index: dict[str, int] = dataclasses.field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_fields(self.tokens, self.counts, self.doc_counts, self.num_docs)
        object.__setattr__(self, "tokenizer", check_tokenizer(self.tokenizer))
        index = {tok: i for i, tok in enumerate(self.tokens)}
        for reserved in (PAD_TOKEN, OOV_TOKEN):
            del index[reserved]
        object.__setattr__(self, "index", index)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self.index

    def __repr__(self) -> str:
        head = ", ".join(map(repr, self.tokens[2:7]))
        more = ", ..." if len(self) > 7 else ""
        return (
            f"Vocabulary(size={len(self)}, num_docs={self.num_docs}, "
            f"tokens=['', '[UNK]', {head}{more}], tokenizer={self.tokenizer})"
        )

    def lookup(self, token: str) -> int:
        """Id of ``token``, or :data:`OOV_ID` when it is not in the vocabulary."""
        return self.index.get(token, OOV_ID)


def build_vocabulary(
    texts: Sequence[str],
    tokenizer: Tokenizer,
    *,
    max_size: int | None = None,
    min_freq: int = 1,
) -> Vocabulary:
    """Fit a vocabulary on (training) texts.

    Args:
        texts: the training texts only (fitting on test text leaks it).
        tokenizer: how to split the texts, stored in the vocabulary.
        max_size: largest number of ids, **the two reserved ids included**
            (Keras' ``max_tokens`` convention: ``max_size=10_000`` gives ids
            ``0 .. 9999`` and an embedding table of 10,000 rows). ``None``: keep
            every token seen at least ``min_freq`` times.
        min_freq: smallest number of occurrences for a token to be kept.

    Returns:
        The :class:`Vocabulary`, tokens ranked by count (descending) then by the
        token string (ascending).

    Raises:
        ValueError: when ``max_size < 2`` or ``min_freq < 1``, or when ``texts``
            is empty or holds no token at all.
        TypeError: when ``texts`` is not a sequence of strings.

    Examples:
        >>> from jaxseq.text import build_vocabulary, word_tokenizer
        >>> vocab = build_vocabulary(["a b b c", "b c d"], word_tokenizer())
        >>> vocab.tokens
        ('', '[UNK]', 'b', 'c', 'a', 'd')
        >>> vocab.lookup("c"), vocab.lookup("zebra")
        (3, 1)
    """
    if max_size is not None and (not _is_int(max_size) or max_size < NUM_RESERVED):
        raise ValueError(
            f"max_size: expected None or an int >= {NUM_RESERVED} (it counts the "
            f"padding and out-of-vocabulary ids), got {max_size!r}."
        )
    if not _is_int(min_freq) or min_freq < 1:
        raise ValueError(f"min_freq: expected an int >= 1, got {min_freq!r}.")
    texts = check_texts(texts)
    if not texts:
        raise ValueError(
            "texts: expected at least one training text, got an empty sequence."
        )
    fn = tokenizer_function(check_tokenizer(tokenizer))
    counts: Counter[str] = Counter()
    doc_counts: Counter[str] = Counter()
    with paused_gc():
        for text in texts:
            tokens = fn(text)
            counts.update(tokens)
            doc_counts.update(set(tokens))
    for reserved in (PAD_TOKEN, OOV_TOKEN):
        counts.pop(reserved, None)
    if not counts:
        raise ValueError(
            f"texts: expected text with tokens, got {len(texts)} text(s) without "
            f"any token for {tokenizer} (empty or all punctuation?)."
        )
    keep = None if max_size is None else max_size - NUM_RESERVED
    ranked = _rank(counts, min_freq, keep)
    words = [tok for tok, _ in ranked]
    return Vocabulary(
        tokens=(PAD_TOKEN, OOV_TOKEN, *words),
        counts=np.array([0, 0, *(c for _, c in ranked)], dtype=np.int64),
        doc_counts=np.array([0, 0, *(doc_counts[w] for w in words)], dtype=np.int64),
        num_docs=len(texts),
        tokenizer=tokenizer,
    )


def _rank(
    counts: Counter[str], min_freq: int, keep: int | None
) -> list[tuple[str, int]]:
    """The ``keep`` most frequent ``(token, count)`` pairs with count >=
    ``min_freq``, by count (descending) then token (ascending).

    Only the candidates are sorted: with word bigrams the counter holds millions
    of entries, and sorting all of them with a Python key dominates the fit.
    """
    items = [item for item in counts.items() if item[1] >= min_freq]
    if keep == 0:
        return []
    if keep is not None and keep < len(items):
        values = np.fromiter((c for _, c in items), dtype=np.int64, count=len(items))
        # Every token counted more often than the keep-th largest count is in;
        # ties at that count are decided by the sort below.
        cutoff = np.partition(values, len(values) - keep)[len(values) - keep]
        items = [item for item in items if item[1] >= cutoff]
    items.sort(key=lambda item: (-item[1], item[0]))
    return items if keep is None else items[:keep]


def check_vocabulary(vocab: object) -> Vocabulary:
    """Return ``vocab`` if it is a :class:`Vocabulary`, else raise ``TypeError``."""
    if not isinstance(vocab, Vocabulary):
        raise TypeError(
            f"vocab: expected a jaxseq.text.Vocabulary, got {type(vocab).__name__}. "
            "Build one with build_vocabulary or load_vocabulary."
        )
    return vocab


def save_vocabulary(vocab: Vocabulary, path: str | os.PathLike[str]) -> None:
    """Write ``vocab`` (tokens, statistics and tokenizer) to a UTF-8 JSON file."""
    check_vocabulary(vocab)
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "tokenizer": vocab.tokenizer.to_dict(),
        "num_docs": vocab.num_docs,
        "tokens": list(vocab.tokens),
        "counts": vocab.counts.tolist(),
        "doc_counts": vocab.doc_counts.tolist(),
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, ensure_ascii=False)


def load_vocabulary(path: str | os.PathLike[str]) -> Vocabulary:
    """Read a vocabulary written by :func:`save_vocabulary`.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file is not valid UTF-8 JSON, is not a jaxseq
            vocabulary, has another format version, or is inconsistent (the
            message names the file and the problem).
    """
    try:
        with open(path, encoding="utf-8") as f:
            payload = json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(
            f"{os.fspath(path)}: not a valid vocabulary file (corrupt JSON: {err}). "
            "Re-create it with jaxseq.text.save_vocabulary."
        ) from err
    try:
        return _from_payload(payload)
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{os.fspath(path)}: {err}") from err


def _from_payload(payload: Any) -> Vocabulary:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise ValueError(f"not a jaxseq vocabulary (expected format {FORMAT_NAME!r}).")
    version = payload.get("version")
    if version != FORMAT_VERSION:
        raise ValueError(
            f"vocabulary format version: expected {FORMAT_VERSION}, got {version!r}. "
            "It was written by another jaxseq version; re-fit the vocabulary."
        )
    missing = {"tokenizer", "num_docs", "tokens", "counts", "doc_counts"} - set(payload)
    if missing:
        raise ValueError(f"vocabulary file lacks the fields {sorted(missing)}.")
    tokens = payload["tokens"]
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ValueError("tokens: expected a list of strings.")
    return Vocabulary(
        tokens=tuple(tokens),
        counts=np.asarray(payload["counts"], dtype=np.int64),
        doc_counts=np.asarray(payload["doc_counts"], dtype=np.int64),
        num_docs=payload["num_docs"],
        tokenizer=tokenizer_from_dict(payload["tokenizer"]),
    )


def _check_fields(
    tokens: tuple[str, ...], counts: np.ndarray, doc_counts: np.ndarray, num_docs: Any
) -> None:
    if tuple(tokens[:NUM_RESERVED]) != (PAD_TOKEN, OOV_TOKEN):
        raise ValueError(
            f"tokens: expected the reserved tokens {[PAD_TOKEN, OOV_TOKEN]} at ids "
            f"0 and 1, got {list(tokens[:NUM_RESERVED])}."
        )
    if len(set(tokens)) != len(tokens):
        dup = next(t for t, c in Counter(tokens).items() if c > 1)
        raise ValueError(f"tokens: expected unique tokens, got {dup!r} twice.")
    for name, arr in (("counts", counts), ("doc_counts", doc_counts)):
        if not isinstance(arr, np.ndarray) or arr.shape != (len(tokens),):
            raise ValueError(
                f"{name}: expected an array of shape ({len(tokens)},) (one entry "
                f"per token), got shape {np.shape(arr)}."
            )
    if not _is_int(num_docs) or num_docs < 0:
        raise ValueError(f"num_docs: expected an int >= 0, got {num_docs!r}.")


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)
