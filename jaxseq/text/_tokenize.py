"""Standardisation and tokenisation: words, characters and n-grams of either.

A :class:`Tokenizer` is a small, hashable, JSON-serialisable configuration; the
functions here turn text into lists of string tokens with it. The rules, in the
order they are applied:

1. ``strip_html``: every bare HTML tag (``<br />``, ``<br>``, ``<i>``, ``</i>``,
   matched by :data:`HTML_TAG`) becomes a space. Tags with attributes are left
   alone, so a stray ``<`` in a review never swallows the text after it.
2. ``lower``: ``str.lower()``.
3. ``punctuation`` (a "word character" is a Unicode letter or digit,
   ``[^\\W_]``):

   - ``"strip"``: apostrophes (``'`` and ``’``) are deleted, so ``don't`` ->
     ``dont``; every other run of non-word characters separates tokens, so
     ``well-made`` -> ``well``, ``made``.
   - ``"split"``: words keep inner apostrophes (``don't``) and every other
     punctuation character is a token of its own (``"wow!!"`` -> ``wow``, ``!``,
     ``!``).
   - ``"keep"``: split on whitespace only (``str.split()``).

   At ``level="char"`` the text is a sequence of characters instead: whitespace
   runs become one space, the ends are stripped, and ``"strip"`` deletes
   punctuation characters (``"split"`` and ``"keep"`` keep them).
4. ``ngram_range=(lo, hi)``: the tokens are replaced by all n-grams with
   ``lo <= n <= hi``, ordered by ``n`` then position; word n-grams are joined by
   a space (``"not good"``), character n-grams by nothing (``"goo"``). This is
   scikit-learn's ``CountVectorizer`` ordering.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, NamedTuple

Level = Literal["word", "char"]
Punctuation = Literal["strip", "split", "keep"]

#: Bare HTML tags (no attributes), e.g. ``<br />``, ``<br>``, ``<i>``, ``</i>``.
HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*\s*/?>")
_APOSTROPHES = re.compile(r"['\u2019]")
_WORD_SEPARATORS = re.compile(r"[\W_]+")
_WORDS_AND_PUNCT = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*|[^\w\s]|_")
_WHITESPACE = re.compile(r"\s+")
_NON_WORD_CHAR = re.compile(r"[^\w\s]|_")

_LEVELS = ("word", "char")
_PUNCTUATION = ("strip", "split", "keep")


class Tokenizer(NamedTuple):
    """How text becomes tokens (see the module docstring for the exact rules).

    Build one with :func:`word_tokenizer` or :func:`char_tokenizer`, which check
    the options. Calling it tokenises one text: ``tokenizer("Hi there")``.

    Attributes:
        level: ``"word"`` or ``"char"``.
        lower: lower-case the text.
        strip_html: replace bare HTML tags such as ``<br />`` by a space.
        punctuation: ``"strip"``, ``"split"`` or ``"keep"``.
        ngram_range: ``(lo, hi)``, the n-gram sizes produced (``(1, 1)``: plain
            tokens).
    """

    level: Level = "word"
    lower: bool = True
    strip_html: bool = True
    punctuation: Punctuation = "strip"
    ngram_range: tuple[int, int] = (1, 1)

    def __call__(self, text: str) -> list[str]:
        """Tokens of one text; same as ``tokenize(self, text)``."""
        return tokenize(self, text)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary; :func:`tokenizer_from_dict` inverts it."""
        return {**self._asdict(), "ngram_range": list(self.ngram_range)}


def word_tokenizer(
    *,
    lower: bool = True,
    strip_html: bool = True,
    punctuation: Punctuation = "strip",
    ngram_range: int | tuple[int, int] = 1,
) -> Tokenizer:
    """A word-level :class:`Tokenizer`.

    Args:
        lower: lower-case the text.
        strip_html: replace bare HTML tags such as ``<br />`` by a space.
        punctuation: ``"strip"`` (default), ``"split"`` or ``"keep"``.
        ngram_range: ``n`` for n-grams of exactly ``n`` words, or ``(lo, hi)``
            for all sizes from ``lo`` to ``hi`` (``(1, 2)``: words and bigrams).

    Returns:
        The validated :class:`Tokenizer`.

    Raises:
        ValueError: on an unknown option value.

    Examples:
        >>> from jaxseq.text import word_tokenizer
        >>> word_tokenizer()("I didn't like it.<br /><br />Well-made, though!")
        ['i', 'didnt', 'like', 'it', 'well', 'made', 'though']
        >>> word_tokenizer(ngram_range=(1, 2))("not good at all")
        ['not', 'good', 'at', 'all', 'not good', 'good at', 'at all']
    """
    return _checked("word", lower, strip_html, punctuation, ngram_range)


def char_tokenizer(
    *,
    lower: bool = True,
    strip_html: bool = True,
    punctuation: Punctuation = "keep",
    ngram_range: int | tuple[int, int] = 1,
) -> Tokenizer:
    """A character-level :class:`Tokenizer` (spaces are tokens too).

    Args:
        lower: lower-case the text.
        strip_html: replace bare HTML tags such as ``<br />`` by a space.
        punctuation: ``"keep"`` (default) or ``"split"`` keep punctuation
            characters; ``"strip"`` deletes them.
        ngram_range: ``n`` or ``(lo, hi)``, character n-gram sizes.

    Returns:
        The validated :class:`Tokenizer`.

    Examples:
        >>> from jaxseq.text import char_tokenizer
        >>> char_tokenizer()("Hi  <br />yo!")
        ['h', 'i', ' ', 'y', 'o', '!']
        >>> char_tokenizer(ngram_range=2)("abc")
        ['ab', 'bc']
    """
    return _checked("char", lower, strip_html, punctuation, ngram_range)


def tokenizer_from_dict(config: dict[str, Any]) -> Tokenizer:
    """Inverse of :meth:`Tokenizer.to_dict`, validating every field.

    Raises:
        ValueError: when a field is missing, unknown or has a bad value.
    """
    if not isinstance(config, dict):
        raise ValueError(f"tokenizer: expected a dict, got {type(config).__name__}.")
    expected = set(Tokenizer._fields)
    if set(config) != expected:
        raise ValueError(
            f"tokenizer: expected the fields {sorted(expected)}, got {sorted(config)}."
        )
    ngram_range = config["ngram_range"]
    if isinstance(ngram_range, list):
        ngram_range = tuple(ngram_range)
    return _checked(
        config["level"],
        config["lower"],
        config["strip_html"],
        config["punctuation"],
        ngram_range,
    )


def check_tokenizer(tokenizer: Tokenizer) -> Tokenizer:
    """Return ``tokenizer`` unchanged if its fields are valid, else raise
    ``ValueError`` (for tokenizers built directly with ``Tokenizer(...)``)."""
    if not isinstance(tokenizer, Tokenizer):
        raise TypeError(
            f"tokenizer: expected a jaxseq.text.Tokenizer, got "
            f"{type(tokenizer).__name__}. Build one with word_tokenizer() or "
            "char_tokenizer()."
        )
    return _checked(*tokenizer)


def _checked(
    level: Any, lower: Any, strip_html: Any, punctuation: Any, ngram_range: Any
) -> Tokenizer:
    if level not in _LEVELS:
        raise ValueError(f"level: expected one of {_LEVELS}, got {level!r}.")
    if punctuation not in _PUNCTUATION:
        raise ValueError(
            f"punctuation: expected one of {_PUNCTUATION}, got {punctuation!r}."
        )
    for name, flag in (("lower", lower), ("strip_html", strip_html)):
        if not isinstance(flag, bool):
            raise ValueError(f"{name}: expected a bool, got {flag!r}.")
    return Tokenizer(level, lower, strip_html, punctuation, _ngram_range(ngram_range))


def _ngram_range(value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    ok = (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and 1 <= value[0] <= value[1]
    )
    if not ok:
        raise ValueError(
            "ngram_range: expected an int n >= 1 or a pair (lo, hi) with "
            f"1 <= lo <= hi, got {value!r}."
        )
    return value


def standardize(
    text: str,
    *,
    lower: bool = True,
    strip_html: bool = True,
) -> str:
    """Apply the HTML and case rules (steps 1 and 2 of the module docstring).

    Examples:
        >>> from jaxseq.text import standardize
        >>> standardize("Great!<br /><br />A <i>must</i> SEE")
        'great!  a  must  see'
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}.")
    if strip_html:
        text = HTML_TAG.sub(" ", text)
    return text.lower() if lower else text


def tokenize(tokenizer: Tokenizer, text: str) -> list[str]:
    """Tokens of one text.

    Args:
        tokenizer: the :class:`Tokenizer`.
        text: one text (``str``; decode bytes first).

    Returns:
        The list of tokens (possibly empty).

    Raises:
        TypeError: if ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise TypeError(
            f"text: expected str, got {type(text).__name__}. Decode bytes first, "
            "e.g. data.decode('utf-8', errors='replace')."
        )
    return tokenizer_function(check_tokenizer(tokenizer))(text)


def tokenize_batch(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[str]]:
    """Tokens of every text in ``texts`` (one list per text, in order).

    Raises:
        TypeError: if ``texts`` is a single string or holds a non-string (the
            message gives its index).
    """
    texts = check_texts(texts)
    fn = tokenizer_function(check_tokenizer(tokenizer))
    with paused_gc():
        return [fn(text) for text in texts]


def check_texts(texts: Any, name: str = "texts") -> Sequence[str]:
    """Return ``texts`` if it is a sequence of ``str``, else raise ``TypeError``."""
    if isinstance(texts, str | bytes):
        raise TypeError(
            f"{name}: expected a sequence of strings, got a single "
            f"{type(texts).__name__}. Wrap one text in a list: [text]."
        )
    if not isinstance(texts, Sequence):
        texts = list(texts) if isinstance(texts, Iterable) else texts
    if not isinstance(texts, Sequence):
        raise TypeError(
            f"{name}: expected a sequence of strings, got {type(texts).__name__}."
        )
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"{name}[{i}]: expected str, got {type(text).__name__}. Decode "
                "bytes first, e.g. data.decode('utf-8', errors='replace')."
            )
    return texts


@functools.lru_cache(maxsize=64)
def tokenizer_function(tokenizer: Tokenizer) -> Callable[[str], list[str]]:
    """One specialised function per configuration (no per-call branching)."""
    if tokenizer.level == "char":
        split = _char_splitter(tokenizer)
    else:
        split = _word_splitter(tokenizer.punctuation)
    lower, strip_html = tokenizer.lower, tokenizer.strip_html
    lo, hi = tokenizer.ngram_range
    joiner = "" if tokenizer.level == "char" else " "
    ascii_fast = tokenizer.level == "word" and tokenizer.punctuation == "strip"

    def run(text: str) -> list[str]:
        if strip_html and "<" in text:
            text = HTML_TAG.sub(" ", text)
        if ascii_fast and text.isascii():
            tokens = _split_ascii(text, lower)
        else:
            tokens = split(text.lower() if lower else text)
        if hi == 1:
            return tokens
        return _ngrams(tokens, lo, hi, joiner)

    return run


# Every ASCII byte that is not a letter or digit becomes a space (the ASCII part
# of the separator class [\W_]); apostrophes are deleted separately.
_ASCII_SEPARATORS = bytes(
    c if chr(c).isalnum() and c < 128 else ord(" ") for c in range(256)
)


def _split_ascii(text: str, lower: bool) -> list[str]:
    """The ``"strip"`` rule for pure-ASCII text with bytes operations only.

    Same tokens as the regular-expression path (tested), about twice as fast:
    most reviews are ASCII, and the regex engine's Unicode classes dominate the
    cost of tokenising a corpus.
    """
    data = text.encode("ascii")
    if lower:
        data = data.lower()
    return data.translate(_ASCII_SEPARATORS, b"'").decode("ascii").split()


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small
    objects (token lists): its repeated full scans would otherwise cost up to
    a third of the tokenising time. Nothing here creates reference cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _word_splitter(punctuation: str) -> Callable[[str], list[str]]:
    if punctuation == "strip":

        def strip(text: str) -> list[str]:
            parts = _WORD_SEPARATORS.split(_APOSTROPHES.sub("", text))
            # re.split leaves "" at either end when the text starts or ends with
            # a separator; only those two places can be empty.
            if parts and not parts[-1]:
                parts.pop()
            if parts and not parts[0]:
                del parts[0]
            return parts

        return strip
    if punctuation == "split":
        return _WORDS_AND_PUNCT.findall
    return str.split


def _char_splitter(tokenizer: Tokenizer) -> Callable[[str], list[str]]:
    drop_punct = tokenizer.punctuation == "strip"

    def chars(text: str) -> list[str]:
        if drop_punct:
            text = _NON_WORD_CHAR.sub("", text)
        return list(_WHITESPACE.sub(" ", text).strip())

    return chars


def ngrams(
    tokens: Sequence[str], ngram_range: tuple[int, int], *, joiner: str = " "
) -> list[str]:
    """All n-grams of ``tokens`` for ``lo <= n <= hi``, by size then position.

    Raises:
        TypeError: when ``tokens`` is not a sequence of strings.
        ValueError: when ``ngram_range`` is not a pair with ``1 <= lo <= hi``.

    Examples:
        >>> from jaxseq.text import ngrams
        >>> ngrams(["a", "b", "c"], (1, 3))
        ['a', 'b', 'c', 'a b', 'b c', 'a b c']
    """
    tokens = check_texts(tokens, "tokens")
    if not isinstance(ngram_range, tuple | list):
        raise ValueError(f"ngram_range: expected a pair (lo, hi), got {ngram_range!r}.")
    if not isinstance(joiner, str):
        raise TypeError(f"joiner: expected str, got {type(joiner).__name__}.")
    return _ngrams(tokens, *_ngram_range(tuple(ngram_range)), joiner)


def _ngrams(tokens: Sequence[str], lo: int, hi: int, joiner: str) -> list[str]:
    out: list[str] = []
    for n in range(lo, min(hi, len(tokens)) + 1):
        if n == 1:
            out.extend(tokens)
        else:
            shifted = (tokens[i:] for i in range(n))
            out.extend(map(joiner.join, zip(*shifted, strict=False)))
    return out
