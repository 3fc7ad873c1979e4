"""Your own labelled texts: a folder of class folders, or a CSV file.

Both loaders return the :class:`~jaxseq.data.Reviews` that the IMDb loaders
return (``movie_ids``, ``review_ids`` and ``ratings`` are -1), so everything
that takes IMDb reviews (:mod:`jaxseq.models`, ``jaxseq train imdb --data PATH``)
takes them too.

- :func:`load_folder`: the layout of Keras' ``text_dataset_from_directory``,
  ``DIR/<class>/*.txt``, optionally split as ``DIR/train/<class>/*.txt`` and
  ``DIR/test/<class>/*.txt``.
- :func:`load_csv`: a CSV file with a header line naming the text and label
  columns (default ``text`` and ``label``).
- :func:`load`: either of them from a path, as one split: a source without
  ``train``/``test`` folders has a fixed share held out as its test split.
- :func:`layout`: which loader reads a path (from names only).

Labels: the classifiers of :mod:`jaxseq.models` are binary, so there are two
classes. Their names are sorted to give the label ids (as Keras does): folders
``neg/`` and ``pos/`` give 0 and 1, as IMDb's labels; ``ham``/``spam`` give
ham 0, spam 1. ``class_names=`` sets the order (and, for folders, picks the two
class folders among more). A CSV's labels may also be ``0`` and ``1``.

Texts: as for IMDb, each file's (or cell's) leading and trailing whitespace is
stripped, and bytes are decoded from UTF-8 with ``errors="replace"`` (invalid
bytes become U+FFFD and are counted in the log) or ``errors="strict"``.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from ._csv import load_csv
from ._folder import load_folder
from ._labels import SPLITS, fspath, logger
from ._reviews import Reviews
from ._split import random_split

Layout = Literal["archive", "imdb", "csv", "folder", "split_folder"]

__all__ = ["Layout", "load", "load_csv", "load_folder", "layout"]


def layout(path: str | os.PathLike[str]) -> Layout:
    """Which loader reads ``path``, decided from file and folder names only.

    - ``"csv"``: a file whose name ends in ``.csv`` (:func:`load_csv`);
    - ``"archive"``: any other file, an IMDb-layout tar archive
      (:func:`jaxseq.data.imdb.load_archive`);
    - ``"imdb"``: a directory in the IMDb layout, i.e. holding ``aclImdb/`` or
      ``train/urls_pos.txt`` (also read by ``load_archive``, which gives movie
      ids);
    - ``"split_folder"``: a directory holding ``train/`` and ``test/``, each
      holding class folders (:func:`load_folder` with a ``split``);
    - ``"folder"``: any other directory; it holds the class folders.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: for a directory with ``train/`` but no ``test/`` (or the
            reverse).
    """
    path = fspath(path)
    if os.path.isfile(path):
        return "csv" if path.lower().endswith(".csv") else "archive"
    if not os.path.isdir(path):
        raise FileNotFoundError(f"path: no such file or directory: {path!r}.")
    if os.path.isdir(os.path.join(path, "aclImdb")) or any(
        os.path.isfile(os.path.join(path, split, f"urls_{label}.txt"))
        for split in SPLITS
        for label in ("neg", "pos")
    ):
        return "imdb"
    present = [s for s in SPLITS if os.path.isdir(os.path.join(path, s))]
    if len(present) == 1:
        missing = os.path.join(path, SPLITS[1 - SPLITS.index(present[0])])
        raise ValueError(
            f"{path}: holds a {present[0]}/ folder but no {missing}/; expected "
            "both train/ and test/ (each holding the class folders), or the "
            "class folders directly in the directory."
        )
    return "split_folder" if present else "folder"


def load(
    path: str | os.PathLike[str],
    split: Literal["train", "test"] | None = None,
    *,
    holdout: float = 0.2,
    seed: int = 0,
    **options: Any,
) -> Reviews:
    """One split of the labelled texts at ``path``, whatever its :func:`layout`.

    A source with its own split (``train/`` and ``test/`` folders, or the IMDb
    layout) gives that split. A source without one (a folder of class folders,
    or a CSV file) is split here: ``holdout`` of its texts, drawn at random with
    ``seed`` (:func:`jaxseq.data.random_split`), are the ``"test"`` split and
    the rest the ``"train"`` split, the same ones on every call.

    Args:
        path: a ``.csv`` file, a folder, or an IMDb archive or directory.
        split: ``"train"``, ``"test"``, or ``None`` for every text of a source
            without its own split.
        holdout: share of a source without a split that is its test split.
        seed: seed of that draw (keep it fixed to keep the test split fixed).
        options: passed to :func:`load_folder` or :func:`load_csv` (``errors``
            only, for the IMDb layout).

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: as the loaders; ``split=None`` for a source with its own
            split; fewer than 2 texts to split.

    Examples:
        >>> import os, tempfile
        >>> from jaxseq.data import labelled
        >>> root = tempfile.mkdtemp()
        >>> for label, text in [("neg", "dull"), ("pos", "fun"), ("pos", "great")]:
        ...     os.makedirs(os.path.join(root, label), exist_ok=True)
        ...     with open(os.path.join(root, label, text + ".txt"), "w") as f:
        ...         _ = f.write(text)
        >>> reviews = labelled.load(root)
        >>> reviews.texts, reviews.labels.tolist(), reviews.label_names
        (['dull', 'fun', 'great'], [0, 1, 1], ('neg', 'pos'))
        >>> len(labelled.load(root, "train")), len(labelled.load(root, "test"))
        (2, 1)
    """
    kind = layout(path)
    if split is not None and split not in SPLITS:
        raise ValueError(f"split: expected 'train', 'test' or None, got {split!r}.")
    if kind in ("archive", "imdb", "split_folder"):
        if split is None:
            raise ValueError(
                f"split: {fspath(path)} has its own train and test splits; pass "
                "split='train' or split='test'."
            )
        if kind == "split_folder":
            return load_folder(path, split, **options)
        from .imdb import load_archive

        return load_archive(path, split, **options)
    whole = load_csv(path, **options) if kind == "csv" else load_folder(path, **options)
    if split is None:
        return whole
    if len(whole) < 2:
        raise ValueError(
            f"{fspath(path)}: holds {len(whole)} text(s); at least 2 are needed "
            "to hold out a test split."
        )
    train_idx, test_idx = random_split(len(whole), fraction=holdout, seed=seed)
    logger.info(
        "%s has no train/test split: %d of its %d texts (holdout %g, seed %d) "
        "are the test split, the rest the training split",
        fspath(path),
        len(test_idx),
        len(whole),
        holdout,
        seed,
    )
    return whole.take(train_idx if split == "train" else test_idx)
