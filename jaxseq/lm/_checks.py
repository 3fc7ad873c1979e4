"""Argument checks shared by :mod:`jaxseq.lm` (each names the argument, the
expected and the received value)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def check_positive(name: str, value: Any) -> int:
    """A positive int, or a ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}.")
    return int(value)


def check_ids(name: str, ids: Any, vocab_size: int) -> None:
    """Refuse ids outside ``[0, vocab_size)`` when they are concrete (host data,
    eager calls). Under ``jit`` nothing is checked: an id outside the table then
    gives a NaN embedding row (``jaxseq.text.embed``) and a NaN loss."""
    if isinstance(ids, jax.core.Tracer):
        return
    arr = np.asarray(ids)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: expected integer token ids, got dtype {arr.dtype}.")
    bad = (arr < 0) | (arr >= vocab_size)
    if bad.any():
        at = np.unravel_index(int(np.flatnonzero(bad)[0]), arr.shape)
        raise ValueError(
            f"{name}: expected token ids in [0, {vocab_size}) (the vocabulary size), "
            f"got {int(arr[at])} at index {tuple(int(i) for i in at)}."
        )
