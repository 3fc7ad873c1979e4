"""The tensorflow-datasets path, offline.

- ``tfds.testing.mock_data`` with its random examples: the loader's plumbing.
- ``tfds.testing.mock_data`` serving examples that tensorflow-datasets' own
  ``imdb_reviews`` generator and feature encoder produced from the tiny archive:
  the same texts and labels as the archive loader.
- The real builder preparing from a manual dir: with TensorFlow installed it must
  agree with the archive loader; without it the loader must say so clearly.
- Offline (simulated: name lookups hang or fail): the loader and the command
  line fail at once, naming the other sources.
- A real download (``JAXSEQ_TEST_NETWORK=1`` only).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from jaxseq.data import _probe, imdb

from .conftest import tiny_files, write_tar

tfds = pytest.importorskip(
    "tensorflow_datasets", reason="tensorflow-datasets not installed (jaxseq[data])"
)


@pytest.fixture
def mocked(monkeypatch):
    """``tfds.testing.mock_data`` serves examples without preparing anything,
    so the loader's check that preparing could work (TensorFlow, network) is
    switched off."""
    monkeypatch.setattr(imdb, "_cannot_prepare", lambda data_dir, manual_dir: None)
    return tfds.testing.mock_data


def _pairs(reviews: imdb.Reviews) -> list[tuple[int, str]]:
    return sorted(zip(reviews.labels.tolist(), reviews.texts, strict=True))


def test_mock_random_examples(tmp_path: Path, mocked):
    with mocked(num_examples=7):
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
def test_mock_tfds_generator_equals_archive(tiny_archive: Path, split: str, mocked):
    served = {split: _tfds_examples(tiny_archive, split)}
    with mocked(as_data_source_fn=_serve(served)):
        from_tfds = imdb.load_tfds(split, data_dir=tiny_archive.parent)
    from_archive = imdb.load_archive(tiny_archive, split)
    assert _pairs(from_tfds) == _pairs(from_archive)
    assert len(from_tfds) == len(from_archive)


def test_mock_tfds_invalid_utf8(tmp_path: Path, caplog, mocked):
    served = {"test": [{"text": np.array(b"ok \xff", dtype=object), "label": 1}]}
    with mocked(as_data_source_fn=_serve(served)):
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
            with pytest.raises(ImportError, match="preparing it needs TensorFlow"):
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


# ------------------------------------------------------------------ offline
@pytest.fixture
def black_holed_dns(monkeypatch):
    """Name lookups hang (a network that drops packets) until the test ends, then
    fail: nothing leaves this machine. Yields the hosts looked up."""
    release = threading.Event()
    hosts: list[str] = []

    def lookup(host, *args, **kwargs):
        hosts.append(host)
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "simulated: no network")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(imdb, "PROBE_SECONDS", 0.2)
    monkeypatch.setattr(  # had the check let it through: the test fails, no retries
        tfds.core.DatasetBuilder,
        "download_and_prepare",
        lambda *args, **kwargs: pytest.fail("load_tfds tried to download"),
    )
    yield hosts
    release.set()


INSTEAD = r"Instead, read the original archive with load_archive.*labelled.*load_sample"


def test_offline_fails_at_once(tmp_path: Path, monkeypatch, black_holed_dns):
    monkeypatch.setattr(imdb, "_tensorflow_installed", lambda: True)
    tic = time.perf_counter()
    with pytest.raises(
        ConnectionError,
        match=r"not prepared in .*, and downloading it needs the network, but "
        r"ai\.stanford\.edu:80 did not accept a connection within 0\.2 s "
        rf"\(offline\?\)\. {INSTEAD}",
    ):
        imdb.load_tfds("train", data_dir=tmp_path)
    # the builder (about 1 s the first time) plus the 0.2 s probe, not minutes
    assert time.perf_counter() - tic < 10
    assert black_holed_dns == ["ai.stanford.edu"]
    with pytest.raises(ConnectionError, match=r"within 0\.2 s \(offline\?\)\.$"):
        imdb.check_tfds(data_dir=tmp_path)  # the reason alone


def test_no_tensorflow_fails_without_the_network(
    tmp_path: Path, monkeypatch, black_holed_dns
):
    monkeypatch.setattr(imdb, "_tensorflow_installed", lambda: False)
    with pytest.raises(ImportError, match=rf"preparing it needs TensorFlow.*{INSTEAD}"):
        imdb.load_tfds("test", data_dir=tmp_path)
    assert black_holed_dns == []  # decided without a lookup


def test_manual_dir_without_the_archive(tmp_path: Path, monkeypatch, black_holed_dns):
    monkeypatch.setattr(imdb, "_tensorflow_installed", lambda: True)
    with pytest.raises(FileNotFoundError, match=r"manual_dir holds no .*aclImdb_v1"):
        imdb.load_tfds("train", data_dir=tmp_path, manual_dir=tmp_path)
    assert black_holed_dns == []


def test_prepared_data_needs_neither(tmp_path: Path, monkeypatch, black_holed_dns):
    monkeypatch.setattr(imdb, "_tensorflow_installed", lambda: False)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
    imdb.check_tfds(data_dir=tmp_path)
    assert black_holed_dns == []


def test_probe_address_and_connection(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert _probe.probe_address(imdb.DOWNLOAD_URL) == ("ai.stanford.edu", 80)
    monkeypatch.setenv("http_proxy", "http://proxy.internal:3128")
    assert _probe.probe_address(imdb.DOWNLOAD_URL) == ("proxy.internal", 3128)
    monkeypatch.setenv("no_proxy", "ai.stanford.edu")
    assert _probe.probe_address(imdb.DOWNLOAD_URL) == ("ai.stanford.edu", 80)
    with socket.create_server(("127.0.0.1", 0)) as server:  # loopback only
        port = server.getsockname()[1]
        assert _probe.accepts_connection("127.0.0.1", port, 5.0)
    assert not _probe.accepts_connection("127.0.0.1", port, 5.0)  # closed


_OFFLINE_CLI = """
import socket, sys, time

def offline(*args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "simulated: offline")

socket.getaddrinfo = offline
import tensorflow_datasets  # imported before the clock starts, like jaxseq
from jaxseq.data import _probe, imdb
from jaxseq.models import cli_train

for tensorflow in (True, False):
    imdb._tensorflow_installed = lambda: tensorflow
    tic = time.perf_counter()
    try:
        cli_train.train_main(["imdb", "--data", "tfds", "--epochs", "1"])
    except SystemExit as exit:
        print(f"exit {exit.code} after {time.perf_counter() - tic:.2f} s", flush=True)
"""


@pytest.mark.slow
def test_command_line_offline_fails_at_once(tmp_path: Path):
    """``jaxseq train imdb --data tfds`` offline (simulated: name lookups fail, as
    on a machine without a network) exits at once naming the other sources,
    with TensorFlow or without. Before, it retried the download for minutes."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _OFFLINE_CLI],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root), "TFDS_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    exits = [line for line in done.stdout.splitlines() if line.startswith("exit")]
    assert [line.split(" after ")[0] for line in exits] == ["exit 2", "exit 2"], (
        done.stdout + done.stderr
    )
    # tensorflow-datasets' builder included; without the check: minutes of retries
    assert all(float(line.split()[3]) < 10 for line in exits), exits
    errors = [line for line in done.stderr.splitlines() if "argument --data" in line]
    assert "did not accept a connection" in errors[0]
    assert "preparing it needs TensorFlow" in errors[1]
    for line in errors:
        assert "instead pass --data PATH/aclImdb_v1.tar.gz" in line
        assert "--data FILE.csv" in line and "--data sample" in line
