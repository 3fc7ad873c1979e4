"""Incomplete or inconsistent archives and directories are refused, naming the
file: tar streams cut at a member boundary or inside a member, compressed
streams cut or corrupted, a split with one label, a review twice, and a full
data set that misses reviews."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from pathlib import Path

import numpy as np
import pytest

from jaxseq.data import CorruptArchiveError, _stanford, imdb

from .conftest import tiny_files, write_dir, write_tar

COMPRESS = {
    "tar": lambda data: data,
    "tar.gz": gzip.compress,
    "tar.bz2": bz2.compress,
    "tar.xz": lzma.compress,
}


def tar_bytes(files: dict[str, bytes]) -> tuple[bytes, list[tarfile.TarInfo]]:
    """An uncompressed tar of ``files`` and its members (with their offsets)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    data = buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return data, tar.getmembers()


def end_of_members(members: list[tarfile.TarInfo]) -> int:
    last = members[-1]
    return last.offset_data + -(-last.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE


def refused(path: Path, split: str = "train") -> str:
    with pytest.raises(CorruptArchiveError) as err:
        imdb.load_archive(path, split)
    assert str(path) in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_cut_at_every_member_boundary_is_refused(tmp_path: Path, suffix: str):
    data, members = tar_bytes(tiny_files())
    cuts = [m.offset for m in members] + [end_of_members(members)]
    assert len(cuts) == len(tiny_files()) + 1
    for k, cut in enumerate(cuts):
        path = tmp_path / f"cut{k}.{suffix}"
        # A complete compressed stream of an incomplete tar stream: only the tar
        # end-of-archive check can tell.
        path.write_bytes(COMPRESS[suffix](data[:cut]))
        message = refused(path, "test")
        if cut:
            assert f"ends at byte {cut}" in message


def test_cut_after_the_first_end_block_loses_nothing_and_loads(tmp_path: Path):
    data, members = tar_bytes(tiny_files())
    end = end_of_members(members)
    assert data[end : end + 1024] == bytes(1024)  # tarfile writes two zero blocks
    path = tmp_path / "one_end_block.tar.gz"
    path.write_bytes(gzip.compress(data[: end + tarfile.BLOCKSIZE]))
    assert len(imdb.load_archive(path, "train")) == 4


@pytest.mark.parametrize("where", ["header", "data"])
def test_cut_inside_a_member_is_refused(tmp_path: Path, where: str):
    data, members = tar_bytes(tiny_files())
    for k, m in enumerate(members[1:], 1):
        cut = m.offset + 100 if where == "header" else m.offset_data + m.size // 2
        if where == "data" and m.size < 2:
            continue
        path = tmp_path / f"cut{k}.tar"
        path.write_bytes(data[:cut])
        refused(path)


def test_garbage_instead_of_the_end_marker_is_refused(tmp_path: Path):
    data, members = tar_bytes(tiny_files())
    end = end_of_members(members)
    path = tmp_path / "garbage.tar"
    path.write_bytes(data[:end] + b"\x01" * 1024)
    assert "has a block that is no tar header" in refused(path)


@pytest.mark.parametrize("suffix", ["tar.gz", "tar.bz2", "tar.xz"])
def test_compressed_stream_cut_is_refused(tmp_path: Path, suffix: str):
    data, _ = tar_bytes(tiny_files())
    packed = COMPRESS[suffix](data)
    for keep in (len(packed) - 1, len(packed) - 9, len(packed) // 2):
        path = tmp_path / f"cut{keep}.{suffix}"
        path.write_bytes(packed[:keep])
        refused(path)


def test_gzip_checksum_and_size_are_verified(tmp_path: Path):
    data, _ = tar_bytes(tiny_files())
    packed = bytearray(gzip.compress(data))
    for index in (-8, -1):  # CRC-32, then the size (mod 2**32)
        damaged = bytearray(packed)
        damaged[index] ^= 0x01
        path = tmp_path / f"damaged{-index}.tar.gz"
        path.write_bytes(bytes(damaged))
        assert "BadGzipFile" in refused(path)


def one_label_files() -> dict[str, bytes]:
    return {k: v for k, v in tiny_files().items() if "/train/neg/" not in k}


def test_archive_with_one_label_is_refused(tmp_path: Path):
    path = write_tar(tmp_path / "pos_only.tar.gz", one_label_files())
    with pytest.raises(ValueError, match="holds 0 negative and 2 positive") as err:
        imdb.load_archive(path, "train")
    assert str(path) in str(err.value) and "aclImdb/train/neg/" in str(err.value)
    assert len(imdb.load_archive(path, "test")) == 3  # the test split has both


def test_directory_with_one_label_is_refused(tmp_path: Path):
    root = write_dir(tmp_path / "extracted", one_label_files())
    with pytest.raises(ValueError, match="expected both labels") as err:
        imdb.load_archive(root, "train")
    assert str(root) in str(err.value)


@pytest.mark.parametrize("second", ["10_1.txt", "10_4.txt"])
def test_review_id_twice_is_refused(tmp_path: Path, second: str):
    data, members = tar_bytes(tiny_files())
    extra, _ = tar_bytes({f"aclImdb/train/neg/{second}": b"again"})
    path = tmp_path / "twice.tar"
    # tar -A style: the second archive's members appended before the end marker.
    path.write_bytes(data[: end_of_members(members)] + extra)
    with pytest.raises(ValueError, match="review id 10 appears twice") as err:
        imdb.load_archive(path, "train")
    assert str(path) in str(err.value)


def full_files(pos_ids: list[int]) -> dict[str, bytes]:
    files = {"aclImdb/README": b"tiny full set\n"}
    for label, ids in (("neg", [0, 1, 2]), ("pos", pos_ids)):
        for i in ids:
            files[f"aclImdb/train/{label}/{i}_{7 if label == 'pos' else 2}.txt"] = (
                f"review {label} {i}".encode()
            )
        url = b"http://www.imdb.com/title/tt0000001/usercomments\n"
        files[f"aclImdb/train/urls_{label}.txt"] = url * 3
    return files


def test_full_set_missing_reviews_is_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(_stanford, "FULL_PER_LABEL", 3)
    complete = write_tar(tmp_path / "full.tar.gz", full_files([0, 1, 2]))
    got = imdb.load_archive(complete, "train")
    assert np.bincount(got.labels).tolist() == [3, 3]
    path = write_tar(tmp_path / "partial.tar.gz", full_files([0, 2]))
    with pytest.raises(ValueError, match=r"urls_pos.txt lists .* 3 pos .* holds 2"):
        imdb.load_archive(path, "train")
    with pytest.raises(ValueError, match=r"missing ids \[1\]"):
        imdb.load_archive(write_dir(tmp_path / "dir", full_files([0, 2])), "train")
    monkeypatch.setattr(_stanford, "FULL_PER_LABEL", 12_500)
    assert len(imdb.load_archive(path, "train")) == 5  # a smaller data set: loads


@pytest.mark.slow
def test_real_archive_cut_at_a_header_boundary_is_refused(real_archive, tmp_path):
    """The issue's case: cut at 96% at a header boundary, the tar.gz loaded
    23,068 of 25,000 training reviews without an error."""
    data = gzip.decompress(real_archive.read_bytes())
    offset, target = 0, int(0.96 * len(data))
    while offset < target:  # walk the headers: 512-byte header + padded data
        size = int(data[offset + 124 : offset + 136].rstrip(b"\0 ") or b"0", 8)
        offset += 512 + -(-size // 512) * 512
    path = tmp_path / "aclImdb_cut.tar.gz"
    path.write_bytes(gzip.compress(data[:offset], compresslevel=1))
    del data
    assert f"ends at byte {offset}" in refused(path, "train")
