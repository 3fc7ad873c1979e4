"""Tokenisers against hand-worked examples and scikit-learn's analyzers."""

from __future__ import annotations

import random
import string

import pytest

from jaxseq.text import (
    Tokenizer,
    char_tokenizer,
    ngrams,
    standardize,
    tokenize,
    tokenize_batch,
    tokenizer_from_dict,
    word_tokenizer,
)
from jaxseq.text._tokenize import _split_ascii, _word_splitter

REVIEW = "I didn't like it.<br /><br />The \"so-called\" HERO's lines... 2/10!"


@pytest.mark.parametrize(
    ("punctuation", "expected"),
    [
        (
            "strip",
            [
                "i",
                "didnt",
                "like",
                "it",
                "the",
                "so",
                "called",
                "heros",
                "lines",
                "2",
                "10",
            ],
        ),
        (
            "split",
            [
                "i",
                "didn't",
                "like",
                "it",
                ".",
                "the",
                '"',
                "so",
                "-",
                "called",
                '"',
                "hero's",
                "lines",
                ".",
                ".",
                ".",
                "2",
                "/",
                "10",
                "!",
            ],
        ),
        (
            "keep",
            [
                "i",
                "didn't",
                "like",
                "it.",
                "the",
                '"so-called"',
                "hero's",
                "lines...",
                "2/10!",
            ],
        ),
    ],
)
def test_word_tokenizer_hand_examples(punctuation, expected):
    assert word_tokenizer(punctuation=punctuation)(REVIEW) == expected


def test_html_and_case_options():
    text = "Great<br/>fun<BR>A <i>MUST</i> see"
    assert word_tokenizer()(text) == ["great", "fun", "a", "must", "see"]
    assert word_tokenizer(lower=False)(text) == ["Great", "fun", "A", "MUST", "see"]
    assert word_tokenizer(strip_html=False)(text) == [
        "great",
        "br",
        "fun",
        "br",
        "a",
        "i",
        "must",
        "i",
        "see",
    ]
    # A lone "<" (not a tag) must not swallow the text after it.
    assert word_tokenizer()("a < b and c > d <3") == ["a", "b", "and", "c", "d", "3"]
    assert standardize("X<br />Y", lower=False) == "X Y"


def test_unicode_words_and_punctuation():
    text = "Café — naïve “Amélie” isn’t bad_ish: 10½"
    assert word_tokenizer()(text) == [
        "café",
        "naïve",
        "amélie",
        "isnt",
        "bad",
        "ish",
        "10½",
    ]
    assert word_tokenizer(punctuation="split")(text) == [
        "café",
        "—",
        "naïve",
        "“",
        "amélie",
        "”",
        "isn’t",
        "bad",
        "_",
        "ish",
        ":",
        "10½",
    ]


def test_empty_and_whitespace_texts():
    for tok in (
        word_tokenizer(),
        word_tokenizer(punctuation="split"),
        char_tokenizer(),
        word_tokenizer(ngram_range=(1, 3)),
    ):
        assert tok("") == [] and tok(" \n\t <br /> ") == []


def test_char_tokenizer_hand_examples():
    assert char_tokenizer()("Hi, <br />  Bo!") == list("hi, bo!")
    assert char_tokenizer(punctuation="strip")("Hi, Bo!") == list("hi bo")
    assert char_tokenizer(lower=False, ngram_range=(2, 3))("Abc d") == [
        "Ab",
        "bc",
        "c ",
        " d",
        "Abc",
        "bc ",
        "c d",
    ]


def test_word_ngrams_hand_example():
    assert word_tokenizer(ngram_range=(2, 3))("Not good. Not bad!") == [
        "not good",
        "good not",
        "not bad",
        "not good not",
        "good not bad",
    ]
    assert ngrams(["a"], (2, 3)) == []
    assert ngrams(["a", "b"], (1, 5)) == ["a", "b", "a b"]


SENTENCES = [
    "The movie was not good, not good at all.",
    "An   absolute classic:  a must-see  film for everyone",
    "Worst film ever? Maybe not - but close to it",
    "x",
]


@pytest.mark.parametrize("ngram_range", [(1, 1), (1, 2), (2, 3), (1, 4)])
def test_word_ngrams_match_sklearn(ngram_range):
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    unigrams = word_tokenizer()
    ref = sklearn_text.CountVectorizer(
        tokenizer=unigrams,
        preprocessor=lambda s: s,
        lowercase=False,
        token_pattern=None,
        ngram_range=ngram_range,
    ).build_analyzer()
    ours = word_tokenizer(ngram_range=ngram_range)
    for text in SENTENCES:
        assert ours(text) == ref(text)


@pytest.mark.parametrize("ngram_range", [(1, 1), (2, 2), (1, 3), (3, 5)])
def test_char_ngrams_match_sklearn(ngram_range):
    sklearn_text = pytest.importorskip("sklearn.feature_extraction.text")
    ref = sklearn_text.CountVectorizer(
        analyzer="char",
        ngram_range=ngram_range,
        lowercase=True,
    ).build_analyzer()
    ours = char_tokenizer(ngram_range=ngram_range)
    for text in SENTENCES:  # no leading/trailing spaces: sklearn keeps those
        assert ours(text) == ref(text)


def test_ascii_fast_path_equals_regex_path():
    rng = random.Random(0)
    alphabet = string.printable + "'" * 5 + "\x00\x1c\x1f\x7f"
    strip = _word_splitter("strip")
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        for lower in (True, False):
            expected = strip(text.lower() if lower else text)
            assert _split_ascii(text, lower) == expected, repr(text)


def test_tokenize_batch_and_type_errors():
    tok = word_tokenizer()
    assert tokenize_batch(tok, ["A b", "", "c"]) == [["a", "b"], [], ["c"]]
    assert tokenize_batch(tok, (t for t in ["x y"])) == [["x", "y"]]
    with pytest.raises(TypeError, match="single str"):
        tokenize_batch(tok, "a text")
    with pytest.raises(TypeError, match=r"texts\[1\]: expected str, got bytes"):
        tokenize_batch(tok, ["ok", b"raw"])
    with pytest.raises(TypeError, match="text: expected str"):
        tokenize(tok, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"punctuation": "remove"}, "punctuation: expected one of"),
        ({"ngram_range": 0}, "ngram_range: expected"),
        ({"ngram_range": (2, 1)}, "ngram_range: expected"),
        ({"ngram_range": (1, True)}, "ngram_range: expected"),
        ({"lower": "yes"}, "lower: expected a bool"),
    ],
)
def test_option_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        word_tokenizer(**kwargs)


def test_directly_built_tokenizer_is_checked_on_use():
    with pytest.raises(ValueError, match="level: expected"):
        Tokenizer(level="sentence")("text")  # type: ignore[arg-type]


def test_dict_round_trip():
    for tok in (
        word_tokenizer(ngram_range=(1, 2), punctuation="split"),
        char_tokenizer(lower=False),
    ):
        assert tokenizer_from_dict(tok.to_dict()) == tok
    with pytest.raises(ValueError, match="fields"):
        tokenizer_from_dict({"level": "word"})
