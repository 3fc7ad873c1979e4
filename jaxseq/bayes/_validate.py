"""Host-side validation of data for the Bayesian fits (runs before any compilation).

Every error names the argument, what was expected and what was received.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_hidden", "check_mcmc", "check_xy", "check_x"]

CHAIN_METHODS = ("parallel", "vectorized", "sequential")


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
    return _check_int("hidden", hidden, 1)


def _check_int(name: str, value: Any, low: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | np.integer)
        or value < low
    ):
        kind = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ValueError(f"{name}: expected {kind}, got {value!r}.")
    return int(value)


def check_mcmc(
    num_warmup: Any,
    num_samples: Any,
    num_chains: Any,
    thinning: Any = 1,
    chain_method: Any = None,
) -> tuple[int, int, int, int]:
    """Validate MCMC run lengths; return them as ints.

    Raises:
        ValueError: naming the argument and the received value, for
            ``num_warmup < 0``, ``num_samples < 1``, ``num_chains < 1``,
            ``thinning < 1``, ``thinning > num_samples`` (no draw would be kept),
            non-integers and an unknown ``chain_method``.
    """
    num_warmup = _check_int("num_warmup", num_warmup, 0)
    num_samples = _check_int("num_samples", num_samples, 1)
    num_chains = _check_int("num_chains", num_chains, 1)
    thinning = _check_int("thinning", thinning, 1)
    if thinning > num_samples:
        raise ValueError(
            f"thinning: expected at most num_samples = {num_samples} (every "
            f"thinning-th draw is kept), got {thinning}."
        )
    if chain_method is not None and chain_method not in CHAIN_METHODS:
        raise ValueError(
            f"chain_method: expected None or one of {CHAIN_METHODS}, got "
            f"{chain_method!r}."
        )
    return num_warmup, num_samples, num_chains, thinning


def _check_finite(name: str, arr: np.ndarray) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        where = index[0] if len(index) == 1 else index
        raise ValueError(
            f"{name}: expected finite values, got {name}[{where}] = {arr[index]} "
            f"({int(bad.sum())} non-finite value(s)). Drop or impute them first."
        )
