"""Pretrained word vectors (word2vec text/binary, GloVe text) -> ``[V, D]`` table.

Formats (each may be gzip-compressed, detected by a ``.gz`` suffix):

- ``"word2vec-text"``: a header line ``"<count> <dim>"``, then one line per word:
  ``word v_1 ... v_D`` separated by spaces.
- ``"word2vec-binary"``: the same header line, then per word the UTF-8 word, one
  space, ``D`` little-endian float32 values, and an optional newline (the
  format of the original ``word2vec`` tool and ``GoogleNews-vectors``).
- ``"glove"``: like word2vec text without the header. A word may itself contain
  spaces (GloVe 840B): the last ``D`` fields are the vector, ``D`` being taken
  from the first line.

Matching: a vocabulary token takes the vector of the identical word. With
``fold_case=True`` (default) a token still missing afterwards takes the vector
of the first word in the file whose ``str.lower()`` equals it (files list
frequent words first, and jaxseq's tokenizers lower-case by default).

Rows of tokens without a vector, and the out-of-vocabulary row, are drawn from
``N(0, s^2)`` with a seeded NumPy generator, ``s`` being the standard deviation
of all found vector entries, so they have the same scale; the padding row is
zero.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from typing import IO, Any, Literal, NamedTuple

import numpy as np
from jaxtyping import Float

from ._vocab import NUM_RESERVED, PAD_ID, Vocabulary, check_vocabulary

Format = Literal["word2vec-text", "word2vec-binary", "glove"]
_FORMATS = ("word2vec-text", "word2vec-binary", "glove")


class Coverage(NamedTuple):
    """How much of a vocabulary a pretrained file covers.

    Attributes:
        found: regular tokens (reserved ids excluded) that got a vector.
        missing: regular tokens without a vector (randomly initialised).
        found_by_case_fold: how many of ``found`` matched only after lower-casing.
        token_coverage: fraction of the training token occurrences
            (``vocab.counts``) whose token got a vector.
        missing_examples: up to ``max_examples`` missing tokens, most frequent
            first.
        dim: vector size ``D``.
        words_in_file: number of vectors read from the file.
    """

    found: int
    missing: int
    found_by_case_fold: int
    token_coverage: float
    missing_examples: tuple[str, ...]
    dim: int
    words_in_file: int

    def __str__(self) -> str:
        total = self.found + self.missing
        pct = 100.0 * self.found / max(total, 1)
        return (
            f"{self.found}/{total} vocabulary tokens found ({pct:.1f}%, "
            f"{self.found_by_case_fold} by case folding; "
            f"{100 * self.token_coverage:.1f}% of training tokens), "
            f"{self.missing} missing, e.g. "
            f"{list(self.missing_examples)}; dim {self.dim}, "
            f"{self.words_in_file} vectors in file"
        )


def load_pretrained(
    path: str | os.PathLike[str],
    vocab: Vocabulary,
    *,
    format: Format,
    fold_case: bool = True,
    seed: int = 0,
    max_examples: int = 10,
    dtype: type = np.float32,
) -> tuple[Float[np.ndarray, "V D"], Coverage]:
    """Embedding table for ``vocab`` from a pretrained vector file.

    Args:
        path: the vector file (``.gz`` is decompressed on the fly).
        vocab: the fitted :class:`Vocabulary`; row ``i`` is for id ``i``.
        format: ``"word2vec-text"``, ``"word2vec-binary"`` or ``"glove"``.
        fold_case: fall back to a case-insensitive match (see module docstring).
        seed: seed of the normal initialisation of the missing rows.
        max_examples: size of ``Coverage.missing_examples``.
        dtype: dtype of the table.

    Returns:
        ``(table, coverage)``: ``[len(vocab), D]`` NumPy array (padding row zero)
        and the :class:`Coverage` report. Pass the table through
        ``jnp.asarray`` to use it as a parameter.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: on an unknown ``format``; a malformed file (the message gives
            the line or vector number); or when no vocabulary token is found
            (usually a wrong format or a tokenizer/casing mismatch).
    """
    _check_options(format, fold_case, seed, max_examples, dtype)
    check_vocabulary(vocab)
    path = os.fspath(path)
    reader = _read_binary if format == "word2vec-binary" else _read_text
    exact: dict[int, np.ndarray] = {}
    folded: dict[int, np.ndarray] = {}
    dim, count = 0, 0
    try:
        with _open(path, binary=format == "word2vec-binary") as f:
            found = reader(
                f, path, header=format != "glove", want=vocab.index, fold_case=fold_case
            )
            for word, vector, dim in found:  # noqa: B007 (dim is read after the loop)
                count += 1
                if vector is None:
                    continue
                i = vocab.index.get(word)
                if i is not None:
                    exact.setdefault(i, vector)
                else:
                    folded.setdefault(vocab.index[word.lower()], vector)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(
            f"{path}: cannot decompress the file ({type(err).__name__}: {err}); it "
            "is truncated or corrupt, or not gzip-compressed despite its .gz suffix."
        ) from err
    return _assemble(vocab, exact, folded, dim, count, seed, max_examples, dtype, path)


def _check_options(
    format: object, fold_case: object, seed: object, max_examples: object, dtype: Any
) -> None:
    if format not in _FORMATS:
        raise ValueError(f"format: expected one of {_FORMATS}, got {format!r}.")
    if not isinstance(fold_case, bool):
        raise TypeError(f"fold_case: expected a bool, got {fold_case!r}.")
    for name, value in (("seed", seed), ("max_examples", max_examples)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            raise TypeError(f"{name}: expected an int >= 0, got {value!r}.")
        if value < 0:
            raise ValueError(f"{name}: expected an int >= 0, got {value!r}.")
    try:
        floating = np.issubdtype(np.dtype(dtype), np.floating)
    except TypeError:
        floating = False
    if not floating:
        raise TypeError(f"dtype: expected a floating dtype, got {dtype!r}.")


def _assemble(
    vocab: Vocabulary,
    exact: dict[int, np.ndarray],
    folded: dict[int, np.ndarray],
    dim: int,
    count: int,
    seed: int,
    max_examples: int,
    dtype: type,
    path: str,
) -> tuple[np.ndarray, Coverage]:
    rows = {**folded, **exact}  # an exact match wins over a case-folded one
    if not rows:
        raise ValueError(
            f"{path}: none of the {len(vocab) - NUM_RESERVED} vocabulary tokens has "
            f"a vector among the {count} in the file. Check the format argument and "
            "that the tokenizer's casing matches the file's."
        )
    found_ids = np.fromiter(rows, dtype=np.int64, count=len(rows))
    found = np.stack([rows[i] for i in found_ids.tolist()]).astype(np.float64)
    std = float(found.std()) or 1.0
    table = np.random.default_rng(seed).normal(0.0, std, size=(len(vocab), dim))
    table[found_ids] = found
    table[PAD_ID] = 0.0
    has = np.zeros(len(vocab), dtype=bool)
    has[found_ids] = True
    missing_ids = np.flatnonzero(~has[NUM_RESERVED:]) + NUM_RESERVED
    total_count = vocab.counts[NUM_RESERVED:].sum()
    coverage = Coverage(
        found=len(rows),
        missing=len(missing_ids),
        found_by_case_fold=len(set(folded) - set(exact)),
        token_coverage=float(vocab.counts[has].sum() / total_count)
        if total_count
        else 0.0,
        missing_examples=tuple(vocab.tokens[i] for i in missing_ids[:max_examples]),
        dim=dim,
        words_in_file=count,
    )
    return table.astype(dtype), coverage


def _open(path: str, binary: bool) -> IO[Any]:
    """The file as bytes (binary format) or as UTF-8 text with invalid bytes
    replaced (text formats); ``.gz`` files are decompressed on the fly."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"path: no such vector file: {path!r}.")
    opener: Any = gzip.open if path.endswith(".gz") else open
    if binary:
        return opener(path, "rb")
    return opener(path, "rt", encoding="utf-8", errors="replace", newline="\n")


def _header(line: str | bytes, path: str) -> tuple[int, int]:
    parts = line.split()
    if len(parts) != 2 or not all(p.isdigit() for p in parts) or int(parts[1]) < 1:
        raise ValueError(
            f"{path}:1: expected a word2vec header '<count> <dim>' with dim >= 1, "
            f"got {line[:80]!r}. For a file without a header use format='glove'."
        )
    return int(parts[0]), int(parts[1])


def _read_text(
    f: IO[str], path: str, *, header: bool, want: dict[str, int], fold_case: bool
) -> Iterator[tuple[str, np.ndarray | None, int]]:
    """Yield ``(word, vector, dim)``; the vector is parsed only for a word some
    vocabulary token needs (``None`` otherwise), which keeps large files fast."""
    expected, dim = _header(f.readline(), path) if header else (None, 0)
    source = "the header's dim" if header else ""
    count = 0
    for lineno, line in enumerate(f, start=2 if header else 1):
        fields = line.rstrip("\n").rstrip(" \r").split(" ")
        if not line.strip():
            continue
        if not dim:
            dim, source = len(fields) - 1, f"the size of the vector on line {lineno}"
        # GloVe words may hold spaces (glove.840B: ". . ."), so a longer line is
        # a multi-word token, unless the field before the vector is a number too.
        extra = len(fields) > dim + 1 and (header or _is_number(fields[-dim - 1]))
        if dim < 1 or len(fields) < dim + 1 or extra:
            raise ValueError(
                f"{path}:{lineno}: expected a word and {max(dim, 1)} numbers "
                f"({source or 'at least one'}), got {_count_numbers(fields)} "
                "numbers after the word."
            )
        count += 1
        word = " ".join(fields[:-dim])
        if word in want or (fold_case and word.lower() in want):
            yield word, _parse(fields[-dim:], path, lineno), dim
        else:
            yield word, None, dim
    if expected is not None and count != expected:
        raise ValueError(
            f"{path}: the header announces {expected} vectors but the file holds "
            f"{count}; it is truncated or corrupt."
        )


def _parse(fields: list[str], path: str, lineno: int) -> np.ndarray:
    try:
        vector = np.array(fields, dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{path}:{lineno}: bad number in vector ({err}).") from err
    return _finite(vector, f"{path}:{lineno}")


def _finite(vector: np.ndarray, where: str) -> np.ndarray:
    """``vector`` unless it holds a NaN or an infinity (one such entry would make
    the standard deviation, hence every randomly initialised row, NaN)."""
    if not np.isfinite(vector).all():
        k = int(np.flatnonzero(~np.isfinite(vector))[0])
        raise ValueError(
            f"{where}: expected finite numbers, got {vector[k]} at position {k + 1} "
            "of the vector. The file is corrupt."
        )
    return vector


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _count_numbers(fields: list[str]) -> int:
    """How many fields after the first, at the end of a line, are numbers."""
    n = 0
    for field in reversed(fields[1:]):
        if not _is_number(field):
            break
        n += 1
    return n


def _read_binary(
    f: IO[bytes], path: str, *, header: bool, want: dict[str, int], fold_case: bool
) -> Iterator[tuple[str, np.ndarray | None, int]]:
    del header  # binary files always have one
    count, dim = _header(f.readline(), path)
    size = 4 * dim
    for k in range(count):
        word = _read_word(f, path, k)
        raw = f.read(size)
        if len(raw) != size:
            raise ValueError(
                f"{path}: vector {k + 1} of {count} ({word!r}) is truncated: expected "
                f"{size} bytes, got {len(raw)}. The file is incomplete."
            )
        if word in want or (fold_case and word.lower() in want):
            vector = np.frombuffer(raw, dtype="<f4").astype(np.float64)
            yield word, _finite(vector, f"{path}: vector {k + 1} ({word!r})"), dim
        else:
            yield word, None, dim
    # Read to the end: gzip checks its checksum there, and data beyond the
    # announced vectors means a wrong header.
    while chunk := f.read(1 << 20):
        if chunk.strip():
            raise ValueError(
                f"{path}: more data after the {count} vectors the header announces; "
                "the header or the file is corrupt."
            )


def _read_word(f: IO[bytes], path: str, k: int) -> str:
    buf = bytearray()
    while True:
        ch = f.read(1)
        if not ch:
            raise ValueError(
                f"{path}: vector {k + 1}: the file ends inside a word; it is truncated."
            )
        if ch == b" ":
            break
        if ch != b"\n" or buf:  # skip the newline that ends the previous vector
            buf += ch
        if len(buf) > 10_000:
            raise ValueError(f"{path}: vector {k + 1}: no space after the word.")
    return buf.decode("utf-8", errors="replace")
