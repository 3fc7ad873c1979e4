"""Host-side validation of data for the Bayesian fits (runs before any compilation).

Every error names the argument, what was expected and what was received.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_hidden", "check_xy", "check_x"]


def check_x(x: Any, name: str = "x", num_inputs: int | None = None) -> np.ndarray:
    """Return ``x`` as a float ``[n, p]`` array; reject wrong rank, NaN and inf."""
    arr = np.asarray(x)
    if arr.ndim == 1:
        raise ValueError(
            f"{name}: expected rank 2 [n, p], got rank 1 with shape {arr.shape}; use "
            f"{name}[:, None] for a single input."
        )
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise ValueError(
            f"{name}: expected rank 2 [n, p] with n >= 1, got shape {arr.shape}."
        )
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}.")
    if num_inputs is not None and arr.shape[1] != num_inputs:
        raise ValueError(
            f"{name}: expected {num_inputs} input columns (as in the training data), "
            f"got {arr.shape[1]}."
        )
    _check_finite(name, arr)
    return arr.astype(float)


def check_xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a regression data set; return float copies ``([n, p], [n])``.

    Raises:
        ValueError: wrong ranks, mismatched lengths, fewer than 3 rows, NaN/inf.
        TypeError: non-numeric data.
    """
    xa = check_x(x)
    ya = np.asarray(y)
    if ya.ndim != 1:
        raise ValueError(f"y: expected rank 1 [n], got shape {ya.shape}.")
    if not np.issubdtype(ya.dtype, np.number) or np.iscomplexobj(ya):
        raise TypeError(f"y: expected real numbers, got dtype {ya.dtype}.")
    if ya.shape[0] != xa.shape[0]:
        raise ValueError(
            f"x, y: expected the same number of rows, got x with {xa.shape[0]} "
            f"rows and y with {ya.shape[0]} values."
        )
    if ya.shape[0] < 3:
        raise ValueError(f"y: expected at least 3 observations, got {ya.shape[0]}.")
    _check_finite("y", ya)
    return xa, ya.astype(float)


def check_hidden(hidden: Any) -> int:
    """Return ``hidden`` as an int; reject anything but a positive integer."""
    if (
        isinstance(hidden, bool)
        or not isinstance(hidden, int | np.integer)
        or hidden < 1
    ):
        raise ValueError(f"hidden: expected a positive integer, got {hidden!r}.")
    return int(hidden)


def _check_finite(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = index[0] if len(index) == 1 else index
        raise ValueError(
            f"{name}: expected finite values, got {name}[{where}] = {arr[index]} "
            f"({int(bad.sum())} non-finite value(s)). Drop or impute them first."
        )
