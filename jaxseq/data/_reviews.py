"""The :class:`Reviews` container and the text decoding policy shared by every
IMDb source."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np
from jaxtyping import Int

logger = logging.getLogger("jaxseq.data.imdb")

#: ``labels`` values: index 0 is "neg", 1 is "pos" (as in tensorflow-datasets).
LABEL_NAMES = ("neg", "pos")


@dataclasses.dataclass(frozen=True, eq=False)
class Reviews:
    """``N`` reviews of one split. ``len(reviews)`` is ``N``.

    Attributes:
        texts: the ``N`` review texts.
        labels: int32 ``[N]``, an index into ``label_names``: for IMDb 0
            negative, 1 positive (:data:`LABEL_NAMES`).
        movie_ids: int32 ``[N]``, the IMDb title number of the reviewed movie
            (``tt0123456`` -> 123456); -1 when unknown (tensorflow-datasets).
        review_ids: int32 ``[N]``, the id in the file name ``<id>_<rating>.txt``
            (unique per split and label); -1 when unknown.
        ratings: int32 ``[N]``, the reviewer's 1-10 stars; -1 when unknown.
        label_names: the name of each label id (two: the classifiers are
            binary); IMDb's ``("neg", "pos")`` unless the texts are your own
            (:mod:`jaxseq.data.labelled`).
    """

    texts: list[str]
    labels: Int[np.ndarray, " N"]
    movie_ids: Int[np.ndarray, " N"]
    review_ids: Int[np.ndarray, " N"]
    ratings: Int[np.ndarray, " N"]
    label_names: tuple[str, ...] = LABEL_NAMES

    def __post_init__(self) -> None:
        n = len(self.texts)
        for field in ("labels", "movie_ids", "review_ids", "ratings"):
            value = np.asarray(getattr(self, field), dtype=np.int32)
            if value.shape != (n,):
                raise ValueError(
                    f"{field}: expected shape ({n},) (one entry per text), got "
                    f"{value.shape}."
                )
            object.__setattr__(self, field, value)
        names = tuple(self.label_names)
        if len(names) != 2 or len(set(names)) != 2:
            raise ValueError(
                f"label_names: expected two distinct names (binary labels), got "
                f"{names!r}."
            )
        if n and not np.isin(self.labels, (0, 1)).all():
            bad = int(self.labels[~np.isin(self.labels, (0, 1))][0])
            raise ValueError(
                f"labels: expected 0 or 1 (label_names {names}), got {bad}."
            )
        object.__setattr__(self, "label_names", names)

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, indices: Sequence[int] | np.ndarray) -> Reviews:
        """The reviews at ``indices`` (in that order).

        Raises:
            ValueError: unless ``indices`` are integers in ``[0, len(self))``
                (negative indices are refused, not counted from the end).
        """
        idx = np.asarray(indices)
        if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
            raise ValueError(
                f"indices: expected a 1-D sequence of integers, got shape "
                f"{idx.shape} and dtype {idx.dtype}."
            )
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            bad = int(idx.min() if idx.min() < 0 else idx.max())
            raise ValueError(
                f"indices: expected every index in [0, {len(self)}), got {bad}."
            )
        return Reviews(
            texts=[self.texts[i] for i in idx.tolist()],
            labels=self.labels[idx],
            movie_ids=self.movie_ids[idx],
            review_ids=self.review_ids[idx],
            ratings=self.ratings[idx],
            label_names=self.label_names,
        )


def decode_texts(
    raw: list[bytes],
    names: list[str],
    errors: str,
    *,
    log: logging.Logger = logger,
    what: str = "reviews",
) -> list[str]:
    """``bytes.strip()`` then UTF-8, as tensorflow-datasets stores the text;
    invalid bytes are counted on ``log``, calling the texts ``what``."""
    texts, bad = [], []
    for data, name in zip(raw, names, strict=True):
        data = data.strip()
        try:
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError as err:
            if errors == "strict":
                raise ValueError(
                    f"{name}: not valid UTF-8 ({err}). Pass errors='replace' to "
                    "decode invalid bytes as U+FFFD."
                ) from err
            texts.append(data.decode("utf-8", errors="replace"))
            bad.append(name)
    if bad:
        log.warning(
            "%d of %d %s were not valid UTF-8; their invalid bytes were "
            "replaced by U+FFFD (errors='replace'), e.g. %s",
            len(bad),
            len(raw),
            what,
            bad[:3],
        )
    return texts


def report_empty(
    texts: list[str],
    where: str,
    split: str | None = None,
    *,
    log: logging.Logger = logger,
    what: str = "reviews",
) -> None:
    empty = sum(1 for text in texts if not text)
    if empty:
        log.warning(
            "%s: %d %s%s are empty; they are kept (length 0 after vectorising)",
            where,
            empty,
            f"{split} " if split else "",
            what,
        )
