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
        sequences: ``N`` integer sequences of any lengths.
        length: ``L``, the output length (``>= 1``).
        padding: ``"post"`` (pad at the end) or ``"pre"`` (pad at the start).
        truncating: ``"post"`` (drop the end) or ``"pre"`` (drop the start).
        value: the padding id.

    Returns:
        ``(ids, lengths)``: int32 ``[N, L]`` and int32 ``[N]``, ``lengths[i] =
        min(len(sequences[i]), L)``, the number of kept tokens.

    Raises:
        ValueError: on a bad ``length``, ``padding`` or ``truncating``.

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
    full = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    kept = np.minimum(full, length)
    ids = np.full((len(sequences), length), value, dtype=np.int32)
    if len(sequences) == 0 or kept.sum() == 0:
        return ids, kept.astype(np.int32)
    flat = np.concatenate([np.asarray(s, dtype=np.int32).ravel() for s in sequences])
    starts = np.concatenate([[0], np.cumsum(full)[:-1]])
    if truncating == "pre":
        starts = starts + (full - kept)
    rows = np.repeat(np.arange(len(sequences)), kept)
    # Position of each kept token within its own (kept) run: 0 .. kept-1.
    within = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)
    cols = within + (np.repeat(length - kept, kept) if padding == "pre" else 0)
    ids[rows, cols] = flat[np.repeat(starts, kept) + within]
    return ids, kept.astype(np.int32)


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
    """Tokens of one id sequence, padding ids skipped (for inspection)."""
    tokens = vocab.tokens
    return [tokens[i] for i in np.asarray(ids).ravel().tolist() if i != PAD_ID]


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
        ValueError: when an id is outside ``[0, vocab_size)``.

    Examples:
        >>> import numpy as np
        >>> from jaxseq.text import one_hot
        >>> one_hot(np.array([[2, 1, 0]]), 3).astype(int).tolist()
        [[[0, 0, 1], [0, 1, 0], [0, 0, 0]]]
    """
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids: expected an integer array, got dtype {ids.dtype}.")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = int(ids.max() if ids.max() >= vocab_size else ids.min())
        raise ValueError(
            f"ids: expected every id in [0, {vocab_size}) (vocab_size), got {bad}. "
            "Was the vocabulary used to vectorise a different one?"
        )
    out = np.zeros((*ids.shape, vocab_size), dtype=dtype)
    np.put_along_axis(out, ids[..., None], 1, axis=-1)
    out[..., PAD_ID] = 0
    return out


def _check_length(length: object) -> None:
    if (
        not isinstance(length, int | np.integer)
        or isinstance(length, bool)
        or (length < 1)
    ):
        raise ValueError(f"length: expected an int >= 1, got {length!r}.")


def _check_side(name: str, side: object) -> None:
    if side not in _SIDES:
        raise ValueError(f"{name}: expected 'pre' or 'post', got {side!r}.")
