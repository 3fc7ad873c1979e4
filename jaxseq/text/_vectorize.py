"""Texts -> integer id sequences, padded or truncated to one length; one-hot.

Everything returns NumPy arrays on the host; move a batch to the device with
``jnp.asarray`` (or let ``jax.jit`` do it).

Padding and truncation sides (both explicit, ``"post"`` by default):

- ``padding="post"``: ids ``[t_1 .. t_n, 0, .., 0]``; the valid tokens are the
  prefix ``ids[i, :lengths[i]]``, which is what jaxseq's runners expect with
  ``lengths`` (right padding).
- ``padding="pre"``: ids ``[0, .., 0, t_1 .. t_n]``; the valid tokens are the
  suffix ``ids[i, L - lengths[i]:]``. This is Keras' ``pad_sequences`` default
  and suits models that read the sequence without a mask and use the last state.
- ``truncating="post"`` keeps the first ``L`` tokens of a longer text,
  ``truncating="pre"`` keeps the last ``L``.

Either way ``ids != PAD_ID`` is the mask of valid positions (the
out-of-vocabulary id is 1, never 0).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import numpy as np
from jaxtyping import Float, Int

from ._tokenize import check_texts, paused_gc, tokenizer_function
from ._vocab import OOV_ID, PAD_ID, Vocabulary, check_vocabulary

Side = Literal["pre", "post"]
_SIDES = ("pre", "post")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def encode(vocab: Vocabulary, texts: Sequence[str]) -> list[Int[np.ndarray, " n"]]:
    """Tokenise each text with ``vocab.tokenizer`` and map tokens to ids.

    Args:
        vocab: the fitted :class:`Vocabulary`.
        texts: the texts.

    Returns:
        One int32 array per text, unpadded (unknown tokens -> :data:`OOV_ID`).
    """
    texts = check_texts(texts)
    fn = tokenizer_function(check_vocabulary(vocab).tokenizer)
    get = vocab.index.get
    out = []
    with paused_gc():
        for text in texts:
            tokens = fn(text)
            ids = np.fromiter(
                map(get, tokens, itertools.repeat(OOV_ID)),
                dtype=np.int32,
                count=len(tokens),
            )
            out.append(ids)
    return out


def pad_sequences(
    sequences: Sequence[Sequence[int] | np.ndarray],
    length: int,
    *,
    padding: Side = "post",
    truncating: Side = "post",
    value: int = PAD_ID,
) -> tuple[Int[np.ndarray, "N L"], Int[np.ndarray, " N"]]:
    """Pad or truncate id sequences to ``length``.

    Args:
        sequences: ``N`` flat integer sequences (lists or 1-D arrays) of any
            lengths, or a 2-D integer array.
        length: ``L``, the output length (``>= 1``).
        padding: ``"post"`` (pad at the end) or ``"pre"`` (pad at the start).
        truncating: ``"post"`` (drop the end) or ``"pre"`` (drop the start).
        value: the padding id.

    Returns:
        ``(ids, lengths)``: int32 ``[N, L]`` and int32 ``[N]``, ``lengths[i] =
        min(len(sequences[i]), L)``, the number of kept tokens.

    Raises:
        ValueError: on a bad ``length``, ``padding``, ``truncating`` or
            ``value``, or an id that does not fit int32.
        TypeError: when ``sequences`` is not a sequence of flat integer
            sequences (the message gives the index of the first bad one).

    Examples:
        >>> from jaxseq.text import pad_sequences
        >>> ids, lengths = pad_sequences([[5, 6, 7], [8]], 2, padding="pre",
        ...                              truncating="pre")
        >>> ids.tolist(), lengths.tolist()
        ([[6, 7], [0, 8]], [2, 1])
    """
    _check_length(length)
    _check_side("padding", padding)
    _check_side("truncating", truncating)
    if not _is_int(value) or not _INT32_MIN <= value <= _INT32_MAX:
        raise ValueError(f"value: expected an int32 padding id, got {value!r}.")
    arrays = _id_arrays(sequences)
    full = np.fromiter(map(len, arrays), dtype=np.int64, count=len(arrays))
    kept = np.minimum(full, length)
    ids = np.full((len(arrays), length), value, dtype=np.int32)
    if len(arrays) == 0 or kept.sum() == 0:
        return ids, kept.astype(np.int32)
    flat = _int32(np.concatenate(arrays), full)
    starts = np.concatenate([[0], np.cumsum(full)[:-1]])
    if truncating == "pre":
        starts = starts + (full - kept)
    rows = np.repeat(np.arange(len(arrays)), kept)
    # Position of each kept token within its own (kept) run: 0 .. kept-1.
    within = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)
    cols = within + (np.repeat(length - kept, kept) if padding == "pre" else 0)
    ids[rows, cols] = flat[np.repeat(starts, kept) + within]
    return ids, kept.astype(np.int32)


def _id_arrays(sequences: object) -> list[np.ndarray]:
    """Each sequence as a 1-D int32 array, or a clear error naming it."""
    if isinstance(sequences, str | bytes) or not isinstance(
        sequences, Sequence | np.ndarray
    ):
        raise TypeError(
            "sequences: expected a sequence of id sequences (e.g. a list of lists "
            f"of ints), got {type(sequences).__name__}."
        )
    if isinstance(sequences, np.ndarray) and sequences.ndim != 2:
        raise TypeError(
            f"sequences: expected a list of id sequences or a 2-D array, got an "
            f"array of shape {sequences.shape}."
        )
    return [
        seq
        if type(seq) is np.ndarray and seq.ndim == 1 and seq.dtype.kind in "iu"
        else _id_array(seq, i)  # lists, or anything to check in detail
        for i, seq in enumerate(sequences)
    ]


def _id_array(seq: object, i: int) -> np.ndarray:
    """``seq`` as a 1-D integer array, or a clear error naming ``sequences[i]``."""
    try:
        a = np.asarray(seq)
    except (ValueError, TypeError):  # ragged nesting: [1, [2, 3]]
        a = np.asarray(seq, dtype=object)
    if a.size == 0:
        a = a.reshape(0).astype(np.int32)
    nested = a.dtype == object and any(np.ndim(x) for x in a.ravel())
    if isinstance(seq, str | bytes) or a.ndim != 1 or nested:
        raise TypeError(
            f"sequences[{i}]: expected a flat sequence of integer ids, got "
            f"{_describe(seq, a)}."
        )
    if a.dtype.kind not in "iu":
        raise TypeError(
            f"sequences[{i}]: expected integer ids, got dtype {a.dtype} "
            f"({_describe(seq, a)})."
        )
    return a


def _int32(flat: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``flat`` (the concatenated sequences) as int32, refusing ids that do not
    fit (a cast would wrap them silently)."""
    if flat.dtype != np.int32:
        bad = np.flatnonzero((flat < _INT32_MIN) | (flat > _INT32_MAX))
        if bad.size:
            i = int(np.searchsorted(np.cumsum(sizes), bad[0], side="right"))
            raise ValueError(
                f"sequences[{i}]: expected int32 ids, got {int(flat[bad[0]])}."
            )
    return flat.astype(np.int32, copy=False)


def _describe(seq: object, a: np.ndarray) -> str:
    text = repr(seq)
    text = text if len(text) <= 60 else text[:57] + "..."
    if a.dtype == object and any(np.ndim(x) for x in a.ravel()):
        return f"the nested {type(seq).__name__} {text}"
    return f"{type(seq).__name__} {text} of shape {a.shape}"


def vectorize(
    vocab: Vocabulary,
    texts: Sequence[str],
    length: int,
    *,
    padding: Side = "post",
    truncating: Side = "post",
) -> tuple[Int[np.ndarray, "N L"], Int[np.ndarray, " N"]]:
    """Texts -> padded id matrix plus lengths (tokenise, look up, pad).

    Args:
        vocab: the fitted :class:`Vocabulary` (its tokenizer is used).
        texts: ``N`` texts.
        length: ``L``, tokens kept per text.
        padding: ``"post"`` or ``"pre"`` (see the module docstring).
        truncating: ``"post"`` or ``"pre"``.

    Returns:
        ``(ids, lengths)``: int32 ``[N, L]`` and int32 ``[N]`` (kept tokens per
        text; 0 for a text without tokens, e.g. an empty review).

    Examples:
        >>> from jaxseq.text import build_vocabulary, vectorize, word_tokenizer
        >>> vocab = build_vocabulary(["good film", "bad film"], word_tokenizer())
        >>> ids, lengths = vectorize(vocab, ["A good, good film!", ""], 4)
        >>> vocab.tokens
        ('', '[UNK]', 'film', 'bad', 'good')
        >>> ids.tolist(), lengths.tolist()
        ([[1, 4, 4, 2], [0, 0, 0, 0]], [4, 0])
    """
    _check_length(length)
    _check_side("padding", padding)
    _check_side("truncating", truncating)
    sequences = encode(vocab, texts)
    return pad_sequences(sequences, length, padding=padding, truncating=truncating)


def decode(vocab: Vocabulary, ids: Sequence[int] | np.ndarray) -> list[str]:
    """Tokens of one id sequence, padding ids skipped (for inspection).

    Raises:
        TypeError: when ``ids`` are not integers.
        ValueError: when ``ids`` has more than one axis (a batch ``[N, L]``:
            decode each row) or an id is outside ``[0, len(vocab))``.
    """
    tokens = check_vocabulary(vocab).tokens
    arr = np.asarray(ids)
    if arr.ndim > 1:
        raise ValueError(
            f"ids: expected one sequence of ids [L], got shape {arr.shape}; decode "
            "each row."
        )
    flat = arr.ravel()
    if flat.size and not np.issubdtype(flat.dtype, np.integer):
        raise TypeError(f"ids: expected integer ids, got dtype {flat.dtype}.")
    _check_range(flat, len(tokens), "len(vocab)")
    return [tokens[i] for i in flat.tolist() if i != PAD_ID]


def one_hot(
    ids: Int[np.ndarray, "*shape"], vocab_size: int, *, dtype: type = np.float32
) -> Float[np.ndarray, "*shape V"]:
    """One-hot vectors of token ids; padding positions give all-zero rows.

    Because the padding id's column is always zero, summing over the time axis
    gives bag-of-words counts. Memory is ``ids.size * vocab_size``: use it on
    small batches (inside a model, an embedding lookup is the same product
    without the zeros).

    Args:
        ids: integer ids of any shape, each in ``[0, vocab_size)``.
        vocab_size: ``V``, usually ``len(vocab)``.
        dtype: output dtype.

    Returns:
        ``[*ids.shape, V]`` array.

    Raises:
        ValueError: when ``vocab_size`` is not an int >= 1 or an id is outside
            ``[0, vocab_size)``.
        TypeError: when ``ids`` is not an integer array.

    Examples:
        >>> import numpy as np
        >>> from jaxseq.text import one_hot
        >>> one_hot(np.array([[2, 1, 0]]), 3).astype(int).tolist()
        [[[0, 0, 1], [0, 1, 0], [0, 0, 0]]]
    """
    if not _is_int(vocab_size) or vocab_size < 1:
        raise ValueError(
            f"vocab_size: expected an int >= 1 (usually len(vocab)), got "
            f"{vocab_size!r}."
        )
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids: expected an integer array, got dtype {ids.dtype}.")
    _check_range(ids, vocab_size, "vocab_size")
    out = np.zeros((*ids.shape, vocab_size), dtype=dtype)
    np.put_along_axis(out, ids[..., None], 1, axis=-1)
    out[..., PAD_ID] = 0
    return out


def _check_range(ids: np.ndarray, size: int, what: str) -> None:
    if ids.size and (ids.min() < 0 or ids.max() >= size):
        bad = int(ids.max() if ids.max() >= size else ids.min())
        raise ValueError(
            f"ids: expected every id in [0, {size}) ({what}), got {bad}. "
            "Was the vocabulary used to vectorise a different one?"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_length(length: object) -> None:
    if not _is_int(length) or length < 1:  # type: ignore[operator]
        raise ValueError(f"length: expected an int >= 1, got {length!r}.")


def _check_side(name: str, side: object) -> None:
    if side not in _SIDES:
        raise ValueError(f"{name}: expected 'pre' or 'post', got {side!r}.")
