"""Folders of class folders (Keras' ``text_dataset_from_directory`` layout);
documented in :mod:`jaxseq.data.labelled`."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Literal

from ._labels import (
    SPLITS,
    check_class_names,
    check_errors,
    fspath,
    logger,
    own_reviews,
)
from ._reviews import Reviews, decode_texts, report_empty


def load_folder(
    path: str | os.PathLike[str],
    split: Literal["train", "test"] | None = None,
    *,
    class_names: Sequence[str] | None = None,
    errors: Literal["replace", "strict"] = "replace",
) -> Reviews:
    """Texts from class folders, as Keras' ``text_dataset_from_directory`` reads
    them: every ``.txt`` file under ``DIR/<class>/`` (subfolders included) is one
    text of that class.

    Args:
        path: the directory ``DIR``.
        split: ``None`` reads ``DIR/<class>/``; ``"train"`` or ``"test"`` reads
            ``DIR/<split>/<class>/`` (the other split folder, when present, must
            hold the same class folders, so that label ids agree).
        class_names: the two class folders, in label-id order; default: the two
            folders found, sorted. Other folders are then ignored.
        errors: ``"replace"`` or ``"strict"`` UTF-8 decoding
            (:mod:`jaxseq.data.labelled`).

    Files and folders whose names start with ``.`` are ignored; files that do
    not end in ``.txt`` are skipped and counted in the log; empty files are
    kept (length 0 after vectorising) and counted in the log, as for IMDb.

    Returns:
        :class:`~jaxseq.data.Reviews`, class by class, each by file path.

    Raises:
        FileNotFoundError: when ``path`` or ``DIR/<split>`` does not exist.
        ValueError: unless there are two classes; when a class folder holds no
            ``.txt`` file; when the split folders hold different classes; when
            ``DIR`` holds ``train/`` and ``test/`` but ``split`` is ``None``;
            on invalid UTF-8 with ``errors="strict"``.
    """
    root = fspath(path)
    check_errors(errors)
    if split is not None and split not in SPLITS:
        raise ValueError(f"split: expected 'train', 'test' or None, got {split!r}.")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"path: no such directory: {root!r}.")
    folder = root if split is None else os.path.join(root, split)
    if split is None and set(SPLITS) <= set(_subfolders(root)):
        raise ValueError(
            f"{root}: holds train/ and test/ folders; pass split='train' or "
            "split='test' (without a split they would be read as two classes)."
        )
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{root}: no {split}/ folder; expected {folder}/<class>/*.txt."
        )
    names = _classes(folder, class_names)
    if split is not None:
        _check_other_split(root, split, names, class_names)
    raw: list[bytes] = []
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        found = list(_text_files(os.path.join(folder, name)))
        if not found:
            raise ValueError(
                f"{os.path.join(folder, name)}: no .txt file in this class folder; "
                f"expected {os.path.join(folder, name, '*.txt')}."
            )
        for file in found:
            with open(file, "rb") as f:
                raw.append(f.read())
        files += found
        labels += [label] * len(found)
    texts = decode_texts(raw, files, errors, log=logger, what="texts")
    report_empty(texts, folder, split, log=logger, what="texts")
    return own_reviews(texts, labels, names)


def _subfolders(folder: str) -> list[str]:
    return sorted(
        e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")
    )


def _classes(folder: str, class_names: Sequence[str] | None) -> tuple[str, ...]:
    found = _subfolders(folder)
    if class_names is not None:
        names = check_class_names(class_names)
        missing = [n for n in names if n not in found]
        if missing:
            raise ValueError(
                f"{folder}: no class folder {missing} (class_names={list(names)}); "
                f"the class folders found are {found}."
            )
        return names
    if len(found) != 2:
        raise ValueError(
            f"{folder}: expected 2 class folders (the classifiers are binary), "
            f"found {len(found)}: {found}. Keep two folders, or pass "
            "class_names=(name_of_label_0, name_of_label_1) to pick two."
        )
    return tuple(found)


def _check_other_split(
    root: str, split: str, names: tuple[str, ...], class_names: Sequence[str] | None
) -> None:
    other = os.path.join(root, SPLITS[1 - SPLITS.index(split)])
    if not os.path.isdir(other):
        return
    try:
        other_names = _classes(other, class_names)
    except ValueError as err:
        raise ValueError(f"the other split does not match: {err}") from None
    if other_names != names:
        raise ValueError(
            f"{root}: the {split}/ folder holds the classes {list(names)} but "
            f"{other}/ holds {list(other_names)}; expected the same class folders "
            "in both, so that label ids agree."
        )


def _text_files(folder: str) -> Iterator[str]:
    """The ``.txt`` files under ``folder``, sorted by path; hidden entries are
    left out, other files counted in the log."""
    skipped = []
    for base, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = os.path.join(base, name)
            if name.endswith(".txt"):
                yield path
            else:
                skipped.append(path)
    if skipped:
        logger.warning(
            "%s: skipped %d files that do not end in .txt, e.g. %s",
            folder,
            len(skipped),
            skipped[:3],
        )
