"""Fixtures for the data tests: tiny IMDb-layout archives built on the fly, and
the real archive when the project's shared data folder is present."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The project's offline copy of the IMDb archive, relative to the repo root.
REAL_ARCHIVE = ROOT / ".." / "shared" / "data" / "aclImdb_labeled.tar.gz"

#: (split, label, review id, rating, raw bytes) of the tiny data set. Review
#: texts carry surrounding whitespace (stripped by the loaders), HTML, and ids
#: whose string order differs from their numeric order (2 < 10).
TINY_REVIEWS = [
    ("train", "neg", 10, 1, b"  Awful.<br />Truly awful!\n"),
    ("train", "neg", 2, 3, b"Boring film, don't bother."),
    ("train", "pos", 0, 9, b"Loved it <br /><br />a classic\n\n"),
    ("train", "pos", 1, 7, "Caf\u00e9 scenes were great \u2014 10/10".encode()),
    ("test", "neg", 0, 2, b"Not good at all."),
    ("test", "pos", 0, 8, b"Very good."),
    ("test", "pos", 3, 10, b"Superb acting!"),
]
#: urls_<label>.txt lines per (split, label); line i is the movie of review id i.
TINY_URLS = {
    ("train", "neg"): ["tt0000007"] * 3 + ["tt0000008"] * 8,
    ("train", "pos"): ["tt0000007", "tt0000009"],
    ("test", "neg"): ["tt0000100"],
    ("test", "pos"): ["tt0000100", "tt0000101", "tt0000101", "tt0000102"],
}


def tiny_files(prefix: str = "aclImdb") -> dict[str, bytes]:
    """Member name -> content of the tiny data set (plus non-review files)."""
    files = {f"{prefix}/README": b"tiny IMDb-layout data for tests\n"}
    for split, label, rid, rating, raw in TINY_REVIEWS:
        files[f"{prefix}/{split}/{label}/{rid}_{rating}.txt"] = raw
    for (split, label), titles in TINY_URLS.items():
        lines = [f"http://www.imdb.com/title/{t}/usercomments" for t in titles]
        files[f"{prefix}/{split}/urls_{label}.txt"] = ("\n".join(lines) + "\n").encode()
    files[f"{prefix}/train/labeledBow.feat"] = b"0 0:1\n"
    return files


def write_tar(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    """Write ``files`` as regular members of a tar archive at ``path``."""
    with tarfile.open(path, mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_dir(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


@pytest.fixture
def tiny_archive(tmp_path: Path) -> Path:
    return write_tar(tmp_path / "aclImdb_v1.tar.gz", tiny_files())


@pytest.fixture(scope="session")
def real_archive() -> Path:
    if not REAL_ARCHIVE.is_file():
        pytest.skip(
            f"real IMDb archive not found at {REAL_ARCHIVE} (the project's "
            "../shared/data relative to the repo root); archive tests on real data "
            "need it"
        )
    return REAL_ARCHIVE


@pytest.fixture(scope="session")
def real_train(real_archive: Path):
    from jaxseq.data import imdb

    return imdb.load_archive(real_archive, "train")
