"""The Stanford-layout loader on tiny archives and directories the tests build,
and the refusal of unsafe or unreadable archives."""

from __future__ import annotations

import io
import logging
import tarfile
from pathlib import Path

import numpy as np
import pytest

from jaxseq.data import CorruptArchiveError, UnsafeArchiveError, imdb, iter_archive

from .conftest import TINY_REVIEWS, tiny_files, write_dir, write_tar


def _expected(split: str):
    rows = sorted(
        (r for r in TINY_REVIEWS if r[0] == split),
        key=lambda r: (imdb.LABEL_NAMES.index(r[1]), r[2]),
    )
    texts = [raw.strip().decode("utf-8") for *_, raw in rows]
    labels = [imdb.LABEL_NAMES.index(r[1]) for r in rows]
    return rows, texts, labels


def test_tiny_archive_texts_labels_order_and_ids(tiny_archive: Path):
    got = imdb.load_archive(tiny_archive, "train")
    rows, texts, labels = _expected("train")
    assert got.texts == texts
    assert got.texts[0] == "Boring film, don't bother."  # id 2 before id 10
    assert got.texts[2] == "Loved it <br /><br />a classic"  # stripped, HTML kept
    assert got.labels.dtype == np.int32 and got.labels.tolist() == labels
    assert got.review_ids.tolist() == [2, 10, 0, 1]
    assert got.ratings.tolist() == [3, 1, 9, 7]
    # urls_neg line 2 -> tt0000007, line 10 -> tt0000008; urls_pos 0, 1.
    assert got.movie_ids.tolist() == [7, 8, 7, 9]
    assert len(got) == 4


def test_tiny_archive_test_split(tiny_archive: Path):
    got = imdb.load_archive(tiny_archive, "test")
    assert got.texts == _expected("test")[1]
    assert got.movie_ids.tolist() == [100, 100, 102]


@pytest.mark.parametrize("layout", ["parent", "aclImdb"])
def test_directory_equals_archive(tmp_path: Path, tiny_archive: Path, layout: str):
    root = write_dir(tmp_path / "extracted", tiny_files())
    path = root if layout == "parent" else root / "aclImdb"
    for split in imdb.SPLITS:
        a = imdb.load_archive(tiny_archive, split)
        d = imdb.load_archive(path, split)
        assert d.texts == a.texts
        for field in ("labels", "movie_ids", "review_ids", "ratings"):
            np.testing.assert_array_equal(getattr(d, field), getattr(a, field))


@pytest.mark.parametrize("mode", ["w", "w:bz2", "w:xz"])
def test_other_compressions(tmp_path: Path, mode: str):
    path = write_tar(tmp_path / "imdb.tar", tiny_files(), mode=mode)
    assert imdb.load_archive(path, "train").texts == _expected("train")[1]


def test_load_dispatches_on_source(tiny_archive: Path):
    assert imdb.load("test", tiny_archive).texts == _expected("test")[1]
    assert len(imdb.load("test")) == 1000  # the shipped sample
    with pytest.raises(TypeError, match="source"):
        imdb.load("test", 3)  # type: ignore[arg-type]


def _unsafe(kind: str) -> tarfile.TarInfo:
    if kind == "absolute":
        return tarfile.TarInfo("/etc/evil.txt")
    if kind == "dotdot":
        return tarfile.TarInfo("aclImdb/../../evil.txt")
    info = tarfile.TarInfo("aclImdb/train/pos/5_9.txt")
    info.type = {
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "chardev": tarfile.CHRTYPE,
        "blockdev": tarfile.BLKTYPE,
        "fifo": tarfile.FIFOTYPE,
    }[kind]
    info.linkname = "/etc/passwd" if kind.endswith("link") else ""
    return info


@pytest.mark.parametrize(
    "kind", ["absolute", "dotdot", "symlink", "hardlink", "chardev", "blockdev", "fifo"]
)
def test_unsafe_members_are_refused(tmp_path: Path, kind: str):
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in tiny_files().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        member = _unsafe(kind)
        payload = b"x" if member.isfile() else b""
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload) if payload else None)
    with pytest.raises(UnsafeArchiveError, match="refusing the archive") as err:
        imdb.load_archive(path, "train")
    assert repr(member.name) in str(err.value)
    assert isinstance(err.value, ValueError)


def test_unsafe_member_refused_even_when_not_selected(tmp_path: Path):
    path = tmp_path / "evil.tar"
    with tarfile.open(path, "w") as tar:
        link = tarfile.TarInfo("aclImdb/README")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(UnsafeArchiveError, match="link"):
        list(iter_archive(path, lambda name: False))


def test_truncated_archive(tmp_path: Path, tiny_archive: Path):
    data = tiny_archive.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptArchiveError, match="truncated, corrupt"):
        imdb.load_archive(cut, "train")


def test_not_an_archive(tmp_path: Path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)
    with pytest.raises(CorruptArchiveError, match=str(junk.name)):
        imdb.load_archive(junk, "test")


def test_missing_archive(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no IMDb archive or directory"):
        imdb.load_archive(tmp_path / "nope.tar.gz", "train")


def test_archive_without_reviews(tmp_path: Path):
    path = write_tar(tmp_path / "other.tar.gz", {"data/readme.txt": b"hello"})
    with pytest.raises(ValueError, match="no 'train' review found"):
        imdb.load_archive(path, "train")


def test_bad_arguments(tiny_archive: Path):
    with pytest.raises(ValueError, match="split: expected 'train' or 'test'"):
        imdb.load_archive(tiny_archive, "unsupervised")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="errors"):
        imdb.load_archive(tiny_archive, "train", errors="ignore")  # type: ignore[arg-type]


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path, caplog):
    files = tiny_files()
    files["aclImdb/train/pos/0_9.txt"] = b"caf\xe9 \xff great"
    path = write_tar(tmp_path / "bad.tar.gz", files)
    with caplog.at_level(logging.WARNING, logger="jaxseq.data.imdb"):
        got = imdb.load_archive(path, "train")
    assert got.texts[2] == "caf\ufffd \ufffd great"
    assert "1 of 4 reviews were not valid UTF-8" in caplog.text
    with pytest.raises(ValueError, match=r"pos/0_9.txt: not valid UTF-8"):
        imdb.load_archive(path, "train", errors="strict")


def test_empty_reviews_kept_and_counted(tmp_path: Path, caplog):
    files = tiny_files()
    files["aclImdb/test/neg/0_2.txt"] = b"  \n"
    path = write_tar(tmp_path / "empty.tar.gz", files)
    with caplog.at_level(logging.WARNING, logger="jaxseq.data.imdb"):
        got = imdb.load_archive(path, "test")
    assert got.texts[0] == "" and len(got) == 3
    assert "1 test reviews are empty" in caplog.text


def test_missing_urls_and_odd_files_are_counted(tmp_path: Path, caplog):
    files = tiny_files()
    del files["aclImdb/train/urls_pos.txt"]
    files["aclImdb/train/pos/notes.txt"] = b"not a review"
    path = write_tar(tmp_path / "partial.tar.gz", files)
    with caplog.at_level(logging.WARNING, logger="jaxseq.data.imdb"):
        got = imdb.load_archive(path, "train")
    assert got.movie_ids.tolist() == [7, 8, -1, -1]
    assert "2 of 4 train reviews have no movie id" in caplog.text
    assert "skipped 1 files" in caplog.text and "notes.txt" in caplog.text
