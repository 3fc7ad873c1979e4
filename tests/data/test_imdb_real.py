"""The shipped sample always; the real archive when present (skipped otherwise)."""

from __future__ import annotations

import gzip
import importlib.resources
import json

import numpy as np
import pytest

from jaxseq.data import imdb


@pytest.mark.parametrize(("split", "size"), [("train", 2000), ("test", 1000)])
def test_sample_shipped_in_package(split: str, size: int):
    reviews = imdb.load_sample(split)
    assert len(reviews) == size
    assert np.bincount(reviews.labels).tolist() == [size // 2, size // 2]
    assert reviews.labels.dtype == np.int32
    assert (reviews.movie_ids > 0).all() and (reviews.review_ids >= 0).all()
    assert ((reviews.ratings <= 4) == (reviews.labels == 0)).all()
    assert all(isinstance(t, str) and t for t in reviews.texts)
    order = np.lexsort((reviews.review_ids, reviews.labels))
    np.testing.assert_array_equal(order, np.arange(size))  # loader order


def test_sample_file_header_and_size():
    resource = importlib.resources.files("jaxseq").joinpath(
        "datasets", imdb.SAMPLE_FILE
    )
    with resource.open("rb") as raw:
        data = raw.read()
    assert len(data) < 2 * 1024 * 1024
    header = json.loads(gzip.decompress(data).split(b"\n", 1)[0])
    assert header["format"] == imdb.SAMPLE_FORMAT and header["version"] == 1
    assert header["counts"] == {"train": 2000, "test": 1000}
    assert "Maas" in header["citation"]


def test_sample_train_and_test_movies_are_disjoint():
    train, test = imdb.load_sample("train"), imdb.load_sample("test")
    shared = np.intersect1d(train.movie_ids, test.movie_ids)
    assert set(shared.tolist()) <= {406816}  # the one movie IMDb has in both


def test_real_train_split(real_train):
    assert len(real_train) == 25_000
    assert np.bincount(real_train.labels).tolist() == [12_500, 12_500]
    assert (real_train.movie_ids > 0).all()
    assert len(np.unique(real_train.movie_ids)) == 3456
    assert ((real_train.ratings <= 4) == (real_train.labels == 0)).all()
    ascii_ws = " \t\n\r\x0b\x0c"  # what bytes.strip() removes (and tfds stores)
    assert not any(t != t.strip(ascii_ws) or not t for t in real_train.texts)
    fit, valid = imdb.validation_split(real_train, fraction=0.2, seed=0)
    assert np.intersect1d(fit.movie_ids, valid.movie_ids).size == 0
    assert 0.2 <= len(valid) / 25_000 < 0.21


@pytest.mark.slow
def test_real_test_split_and_sample_provenance(real_archive, real_train):
    test = imdb.load_archive(real_archive, "test")
    assert len(test) == 25_000
    assert np.bincount(test.labels).tolist() == [12_500, 12_500]
    assert len(np.intersect1d(real_train.movie_ids, test.movie_ids)) == 1
    # Every sample review is the archive's review with the same ids, verbatim.
    for split, full in (("train", real_train), ("test", test)):
        sample = imdb.load_sample(split)
        keys = zip(full.labels.tolist(), full.review_ids.tolist(), strict=True)
        where = {key: k for k, key in enumerate(keys)}
        for k in range(len(sample)):
            j = where[(int(sample.labels[k]), int(sample.review_ids[k]))]
            assert sample.texts[k] == full.texts[j]
            assert sample.movie_ids[k] == full.movie_ids[j]
            assert sample.ratings[k] == full.ratings[j]
