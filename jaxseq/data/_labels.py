"""Pieces shared by the loaders of your own labelled texts
(:mod:`jaxseq.data.labelled`)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from ._reviews import Reviews

SPLITS = ("train", "test")
#: the log of the loaders of your own texts (configured by the command line
#: through its parent ``jaxseq.data``)
logger = logging.getLogger("jaxseq.data.labelled")


def own_reviews(texts: list[str], labels: list[int], names: tuple[str, ...]) -> Reviews:
    """:class:`Reviews` of texts without IMDb's ids (movie, review, rating: -1)."""
    unknown = np.full(len(texts), -1, dtype=np.int32)
    return Reviews(
        texts=texts,
        labels=np.array(labels, dtype=np.int32),
        movie_ids=unknown,
        review_ids=unknown.copy(),
        ratings=unknown.copy(),
        label_names=names,
    )


def check_class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    names = (class_names,) if isinstance(class_names, str) else tuple(class_names)
    if (
        len(names) != 2
        or len(set(names)) != 2
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise ValueError(
            f"class_names: expected two distinct non-empty names (label 0, label "
            f"1), got {class_names!r}."
        )
    return names


def fspath(path: object) -> str:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"path: expected a file or directory path, got {type(path).__name__}."
        )
    return os.fspath(path)  # type: ignore[arg-type]


def check_errors(errors: object) -> None:
    if errors not in ("replace", "strict"):
        raise ValueError(f"errors: expected 'replace' or 'strict', got {errors!r}.")
