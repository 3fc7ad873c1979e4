"""Grouped and random validation splits."""

from __future__ import annotations

import numpy as np
import pytest

from jaxseq.data import Reviews, group_split, imdb, random_split


def _groups(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 30, size=200)  # like IMDb: up to 30 reviews a movie
    return rng.permutation(np.repeat(np.arange(200) * 7 + 3, sizes))


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_group_split_keeps_groups_whole(fraction: float):
    groups = _groups()
    train, valid = group_split(groups, fraction=fraction, seed=1)
    assert np.intersect1d(groups[train], groups[valid]).size == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train, valid])), np.arange(len(groups))
    )
    # At least the target, overshooting by less than one group (<= 29 reviews).
    assert fraction * len(groups) <= len(valid) < fraction * len(groups) + 29


def test_group_split_is_seeded():
    groups = _groups()
    a = group_split(groups, seed=3)
    b = group_split(groups, seed=3)
    c = group_split(groups, seed=4)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_group_split_errors():
    with pytest.raises(ValueError, match="unknown"):
        group_split(np.array([1, 2, -1]))
    with pytest.raises(ValueError, match="at least 2 distinct groups"):
        group_split(np.array([5, 5, 5]))
    with pytest.raises(ValueError, match=r"fraction: expected .* in \(0, 1\)"):
        group_split(np.array([1, 2]), fraction=1.0)
    with pytest.raises(ValueError, match="1-D integer array"):
        group_split(np.array([0.5, 1.5]))


def test_random_split():
    train, valid = random_split(1000, fraction=0.25, seed=0)
    assert len(valid) == 250 and len(train) == 750
    np.testing.assert_array_equal(
        np.sort(np.concatenate([train, valid])), np.arange(1000)
    )
    np.testing.assert_array_equal(valid, random_split(1000, fraction=0.25)[1])
    with pytest.raises(ValueError, match="n: expected an int >= 2"):
        random_split(1)


def test_validation_split_on_sample():
    train = imdb.load_sample("train")
    fit, valid = imdb.validation_split(train, fraction=0.2, seed=0)
    assert len(fit) + len(valid) == len(train)
    assert np.intersect1d(fit.movie_ids, valid.movie_ids).size == 0
    assert 0.2 <= len(valid) / len(train) < 0.25
    fit_r, valid_r = imdb.validation_split(train, by="random", seed=0)
    assert len(valid_r) == 400
    # take() keeps every field aligned with the texts.
    i = 5
    j = train.texts.index(valid.texts[i])
    assert valid.movie_ids[i] == train.movie_ids[j]
    assert valid.labels[i] == train.labels[j]
    with pytest.raises(ValueError, match="by: expected 'movie' or 'random'"):
        imdb.validation_split(train, by="rating")  # type: ignore[arg-type]


def test_validation_split_by_movie_needs_movie_ids():
    unknown = np.full(4, -1)
    reviews = Reviews(
        ["a", "b", "c", "d"], np.array([0, 1, 0, 1]), unknown, unknown, unknown
    )
    with pytest.raises(ValueError, match="needs movie ids.*load_archive"):
        imdb.validation_split(reviews)
    assert len(imdb.validation_split(reviews, by="random", fraction=0.5)[1]) == 2


def test_reviews_checks_field_shapes():
    with pytest.raises(ValueError, match=r"labels: expected shape \(2,\)"):
        Reviews(["a", "b"], np.array([0]), np.zeros(2), np.zeros(2), np.zeros(2))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: random_split(10.0), "n: expected an int >= 2 .*, got 10.0"),
        (lambda: random_split(True), "n: expected an int >= 2 .*, got True"),
        (lambda: random_split(10, seed=-1), "seed: expected an int >= 0, got -1"),
        (lambda: random_split(10, seed=0.5), "seed: expected an int >= 0, got 0.5"),
        (lambda: group_split(np.array([1, 2]), seed="a"), "seed: expected an int"),
        (lambda: random_split(10, fraction=float("nan")), "fraction: expected"),
    ],
)
def test_split_argument_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_take_refuses_out_of_range_indices():
    reviews = imdb.load_sample("test")
    assert reviews.take([2, 0]).texts == [reviews.texts[2], reviews.texts[0]]
    # -1 used to be taken from the end; a float index raised deep in NumPy.
    with pytest.raises(ValueError, match=r"indices: expected every index in "
                       r"\[0, 1000\), got -1"):  # fmt: skip
        reviews.take([0, -1])
    with pytest.raises(ValueError, match="got 1000"):
        reviews.take(np.array([1000]))
    with pytest.raises(ValueError, match="indices: expected a 1-D sequence of int"):
        reviews.take([0.5])


def test_loader_argument_types(tmp_path):
    from jaxseq.data import iter_archive

    with pytest.raises(TypeError, match="reviews: expected jaxseq.data.Reviews"):
        imdb.validation_split(["a review"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="path: expected a file or directory path"):
        imdb.load_archive(3, "train")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="select: expected a callable"):
        next(iter_archive(tmp_path / "a.tar", "train/"))  # type: ignore[arg-type]
