"""Read the Stanford ``aclImdb`` layout from a tar archive or a directory, and
refuse a split that is incomplete (the rules are in ``imdb.load_archive``)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator

import numpy as np

from ._archive import iter_archive
from ._reviews import LABEL_NAMES, Reviews, decode_texts, logger, report_empty

_REVIEW = re.compile(r"^(?:\./)?(?:[^/]+/)?(train|test)/(neg|pos)/(\d+)_(\d+)\.txt$")
_URLS = re.compile(r"^(?:\./)?(?:[^/]+/)?(train|test)/urls_(neg|pos)\.txt$")
_LABEL_DIR_FILE = re.compile(r"^(?:\./)?(?:[^/]+/)?(train|test)/(neg|pos)/[^/]+$")
_MOVIE = re.compile(r"/title/tt(\d+)")
#: Reviews per label and split in the original data set (and URLs per urls file).
FULL_PER_LABEL = 12_500


def read_stanford(path: str, split: str, errors: str) -> Reviews:
    """One split from an archive or a directory (see ``imdb.load_archive``)."""
    if os.path.isdir(path):
        files = _iter_directory(path, split)
    elif os.path.exists(path):
        files = iter_archive(path, lambda name: _wanted(name, split))
    else:
        raise FileNotFoundError(
            f"path: no IMDb archive or directory at {path!r}. Expected "
            "aclImdb_v1.tar.gz or an extracted aclImdb directory."
        )
    return _collect(files, split, errors, path)


def _wanted(name: str, split: str) -> bool:
    match = _LABEL_DIR_FILE.match(name) or _URLS.match(name)
    return bool(match) and match.group(1) == split


def _iter_directory(root: str, split: str) -> Iterator[tuple[str, bytes]]:
    if os.path.isdir(os.path.join(root, "aclImdb")):
        root = os.path.join(root, "aclImdb")
    base = os.path.join(root, split)
    if not os.path.isdir(base):
        raise FileNotFoundError(
            f"path: expected a {split!r} folder in {root!r} (the aclImdb layout)."
        )
    for label in LABEL_NAMES:
        urls = os.path.join(base, f"urls_{label}.txt")
        if os.path.isfile(urls):
            yield f"aclImdb/{split}/urls_{label}.txt", _read_file(urls)
        folder = os.path.join(base, label)
        if os.path.isdir(folder):
            for entry in sorted(os.scandir(folder), key=lambda e: e.name):
                if entry.is_file():
                    name = f"aclImdb/{split}/{label}/{entry.name}"
                    yield name, _read_file(entry.path)


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _collect(
    files: Iterable[tuple[str, bytes]], split: str, errors: str, where: str
) -> Reviews:
    rows: list[tuple[int, int, int, bytes, str]] = []
    urls: dict[int, list[bytes]] = {}
    skipped: list[str] = []
    for name, data in files:
        if match := _URLS.match(name):
            urls[LABEL_NAMES.index(match.group(2))] = data.splitlines()
        elif match := _REVIEW.match(name):
            label = LABEL_NAMES.index(match.group(2))
            rows.append((label, int(match.group(3)), int(match.group(4)), data, name))
        else:
            skipped.append(name)
    if not rows:
        raise ValueError(
            f"{where}: no {split!r} review found (expected files "
            f"aclImdb/{split}/{{neg,pos}}/<id>_<rating>.txt). Is it the IMDb "
            "archive aclImdb_v1.tar.gz?"
        )
    if skipped:
        logger.warning(
            "%s: skipped %d files in the %s label folders whose names are not "
            "<id>_<rating>.txt, e.g. %s",
            where,
            len(skipped),
            split,
            skipped[:3],
        )
    rows.sort(key=lambda row: (row[0], row[1]))
    _check_complete(rows, urls, split, where)
    texts = decode_texts([row[3] for row in rows], [row[4] for row in rows], errors)
    movie_ids = _movie_ids(rows, urls, where, split)
    report_empty(texts, where, split)
    return Reviews(
        texts=texts,
        labels=np.array([row[0] for row in rows], dtype=np.int32),
        movie_ids=movie_ids,
        review_ids=np.array([row[1] for row in rows], dtype=np.int32),
        ratings=np.array([row[2] for row in rows], dtype=np.int32),
    )


def _check_complete(
    rows: list[tuple[int, int, int, bytes, str]],
    urls: dict[int, list[bytes]],
    split: str,
    where: str,
) -> None:
    """Refuse a split with a review twice, one label only, or an incomplete full
    set (see the module docstring). ``rows`` are sorted by (label, id)."""
    for before, row in zip(rows, rows[1:], strict=False):
        if before[:2] == row[:2]:
            raise ValueError(
                f"{where}: review id {row[1]} appears twice in the {split} "
                f"{LABEL_NAMES[row[0]]} folder ({before[4]} and {row[4]}); expected "
                "each id once. The archive is corrupt or not the IMDb layout."
            )
    counts = [sum(1 for row in rows if row[0] == label) for label in (0, 1)]
    if 0 in counts:
        empty = LABEL_NAMES[counts.index(0)]
        raise ValueError(
            f"{where}: the {split!r} split holds {counts[0]} negative and "
            f"{counts[1]} positive reviews; expected both labels, but "
            f"aclImdb/{split}/{empty}/ holds none. The archive or directory is "
            "incomplete; download the data set again."
        )
    for label, name in enumerate(LABEL_NAMES):
        if len(urls.get(label, [])) != FULL_PER_LABEL:
            continue
        ids = {row[1] for row in rows if row[0] == label}
        missing = sorted(set(range(FULL_PER_LABEL)) - ids)
        if missing:
            raise ValueError(
                f"{where}: aclImdb/{split}/urls_{name}.txt lists the full data "
                f"set's {FULL_PER_LABEL} {name} reviews, but aclImdb/{split}/{name}/ "
                f"holds {len(ids)} (missing ids {missing[:5]}"
                f"{', ...' if len(missing) > 5 else ''}). The archive or directory "
                "is incomplete; download the data set again."
            )


def _movie_ids(
    rows: list[tuple[int, int, int, bytes, str]],
    urls: dict[int, list[bytes]],
    where: str,
    split: str,
) -> np.ndarray:
    out = np.full(len(rows), -1, dtype=np.int32)
    for k, (label, review_id, *_) in enumerate(rows):
        lines = urls.get(label, [])
        if review_id < len(lines) and (
            match := _MOVIE.search(lines[review_id].decode("utf-8", "replace"))
        ):
            out[k] = int(match.group(1))
    unknown = int((out < 0).sum())
    if unknown:
        logger.warning(
            "%s: %d of %d %s reviews have no movie id (missing urls_{neg,pos}.txt "
            "or line); their movie_ids are -1",
            where,
            unknown,
            len(rows),
            split,
        )
    return out
