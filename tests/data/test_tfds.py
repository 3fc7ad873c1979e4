"""The tensorflow-datasets path, offline.

- ``tfds.testing.mock_data`` with its random examples: the loader's plumbing.
- ``tfds.testing.mock_data`` serving examples that tensorflow-datasets' own
  ``imdb_reviews`` generator and feature encoder produced from the tiny archive:
  the same texts and labels as the archive loader.
- The real builder preparing from a manual dir: with TensorFlow installed it must
  agree with the archive loader; without it the loader must say so clearly.
- A real download (``JAXSEQ_TEST_NETWORK=1`` only).
"""

from __future__ import annotations

import importlib.util
import os
import tarfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from jaxseq.data import imdb

from .conftest import tiny_files, write_tar

tfds = pytest.importorskip(
    "tensorflow_datasets", reason="tensorflow-datasets not installed (jaxseq[data])"
)


def _pairs(reviews: imdb.Reviews) -> list[tuple[int, str]]:
    return sorted(zip(reviews.labels.tolist(), reviews.texts, strict=True))


def test_mock_random_examples(tmp_path: Path):
    with tfds.testing.mock_data(num_examples=7):
        got = imdb.load_tfds("train", data_dir=tmp_path)
    assert len(got) == 7
    assert got.labels.dtype == np.int32 and set(got.labels.tolist()) <= {0, 1}
    assert all(isinstance(t, str) for t in got.texts)
    assert (got.movie_ids == -1).all() and (got.ratings == -1).all()
    with pytest.raises(ValueError, match="needs movie ids"):
        imdb.validation_split(got)


def _tfds_examples(archive: Path, split: str) -> list[dict]:
    """Examples as tensorflow-datasets stores and reads them, produced by its own
    imdb_reviews generator and feature encoder (TensorFlow-free here)."""
    builder = tfds.builder_cls("imdb_reviews")(data_dir=str(archive.parent / "tfds"))

    def members():
        with tarfile.open(archive) as tar:
            for m in tar:
                if m.isfile():
                    yield m.name, tar.extractfile(m)

    features = builder.info.features
    generated = builder._generate_examples(members(), os.path.join("aclImdb", split))
    return [
        features.decode_example_np(features.encode_example(example))
        for _, example in generated
    ]


def _serve(examples_by_split: dict[str, list[dict]]):
    def as_data_source(self, split, **kwargs):
        del self, kwargs
        return examples_by_split[split]

    return as_data_source


@pytest.mark.parametrize("split", imdb.SPLITS)
def test_mock_tfds_generator_equals_archive(tiny_archive: Path, split: str):
    served = {split: _tfds_examples(tiny_archive, split)}
    with tfds.testing.mock_data(as_data_source_fn=_serve(served)):
        from_tfds = imdb.load_tfds(split, data_dir=tiny_archive.parent)
    from_archive = imdb.load_archive(tiny_archive, split)
    assert _pairs(from_tfds) == _pairs(from_archive)
    assert len(from_tfds) == len(from_archive)


def test_mock_tfds_invalid_utf8(tmp_path: Path, caplog):
    served = {"test": [{"text": np.array(b"ok \xff", dtype=object), "label": 1}]}
    with tfds.testing.mock_data(as_data_source_fn=_serve(served)):
        with caplog.at_level("WARNING", logger="jaxseq.data.imdb"):
            got = imdb.load_tfds("test", data_dir=tmp_path)
        with pytest.raises(ValueError, match=r"imdb_reviews/test\[0\]: not valid"):
            imdb.load_tfds("test", data_dir=tmp_path, errors="strict")
    assert got.texts == ["ok \ufffd"]
    assert "1 of 1 reviews were not valid UTF-8" in caplog.text


def test_not_prepared_and_no_download(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="not prepared.*download=False"):
        imdb.load_tfds("train", data_dir=tmp_path, download=False)


@pytest.mark.slow
def test_real_builder_from_manual_dir(tmp_path: Path):
    """tensorflow-datasets' real builder with the tiny archive as the manual
    download. Its checksum check is switched off: the tiny archive is not the
    original (the real one is verified as usual)."""
    files = tiny_files()
    files["aclImdb/train/unsup/0_0.txt"] = b"unlabelled"  # tfds wants this split
    tiny_archive = write_tar(tmp_path / "aclImdb_v1.tar.gz", files)
    no_checksum = mock.patch.object(
        tfds.download.DownloadManager,
        "_register_or_validate_checksums",
        lambda *args, **kwargs: None,
    )
    with no_checksum:
        if importlib.util.find_spec("tensorflow") is None:
            with pytest.raises(ImportError, match="needs TensorFlow to prepare"):
                imdb.load_tfds(
                    "train", data_dir=tmp_path / "tfds", manual_dir=tiny_archive.parent
                )
            return
        got = imdb.load_tfds(
            "train", data_dir=tmp_path / "tfds", manual_dir=tiny_archive.parent
        )
    assert _pairs(got) == _pairs(imdb.load_archive(tiny_archive, "train"))


@pytest.mark.network
@pytest.mark.skipif(
    os.environ.get("JAXSEQ_TEST_NETWORK") != "1",
    reason="downloads 84 MB; set JAXSEQ_TEST_NETWORK=1 to run",
)
def test_real_download(tmp_path: Path):  # pragma: no cover - needs the internet
    train = imdb.load_tfds("train", data_dir=tmp_path)
    assert len(train) == 25_000 and train.labels.sum() == 12_500
