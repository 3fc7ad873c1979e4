"""Per-series standardisation fitted on the training part only.

``z = (y - loc) / scale`` with ``loc`` and ``scale`` the mean and standard
deviation of each series' first ``train_end`` values (the observed ones:
missing values, NaN, are left out). Nothing after
``train_end`` is read, so held-out values cannot leak into the model's inputs
through the scaling (tests/forecast/test_windows.py changes them and checks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike

__all__ = ["Scaling", "fit_scaling"]


class Scaling(NamedTuple):
    """Affine maps of ``S`` series: ``loc [S]``, ``scale [S]`` (original units)."""

    loc: np.ndarray
    scale: np.ndarray

    def forward(self, i: int, y: ArrayLike) -> np.ndarray:
        """Series ``i`` in original units -> standardised."""
        return (np.asarray(y, dtype=np.float64) - self.loc[i]) / self.scale[i]

    def inverse(self, i: ArrayLike, z: ArrayLike) -> np.ndarray:
        """Standardised -> original units; ``i`` an index or ``[N]`` indices
        broadcast against ``z``'s leading axis."""
        i = np.asarray(i)
        shape = i.shape + (1,) * (np.ndim(z) - i.ndim)
        loc, scale = self.loc[i].reshape(shape), self.scale[i].reshape(shape)
        return loc + scale * np.asarray(z, dtype=np.float64)


def fit_scaling(
    series: Sequence[np.ndarray], train_end: int | Sequence[int] | None = None
) -> Scaling:
    """Mean and standard deviation of each series' training part.

    Args:
        series: validated 1-D arrays (:func:`~jaxseq.forecast.as_collection`).
        train_end: the training part is ``series[i][:train_end[i]]`` (one int for
            all series; ``None``: the whole series).

    Raises:
        ValueError: a training part shorter than 2 values, or constant.
    """
    ends = _ends(series, train_end)
    loc, scale = np.empty(len(series)), np.empty(len(series))
    for i, (y, end) in enumerate(zip(series, ends, strict=True)):
        part = y[:end][~np.isnan(y[:end])]
        if part.shape[0] < 2:
            raise ValueError(
                f"train_end: expected at least 2 observed training values in "
                f"series {i}, got {part.shape[0]}."
            )
        loc[i], scale[i] = part.mean(), part.std()
        if not scale[i] > 1e-12 * max(1.0, abs(loc[i])):
            raise ValueError(
                f"series[{i}]: expected values that vary in the training part, got "
                f"a constant series (= {part[0]:g}); a constant needs no model."
            )
    return Scaling(loc, scale)


def _ends(series: Sequence[np.ndarray], train_end) -> list[int]:
    if train_end is None:
        return [y.shape[0] for y in series]
    ends = [train_end] * len(series) if np.ndim(train_end) == 0 else list(train_end)
    if len(ends) != len(series):
        raise ValueError(
            f"train_end: expected one value per series ({len(series)}), got "
            f"{len(ends)}."
        )
    for i, (y, end) in enumerate(zip(series, ends, strict=True)):
        if not isinstance(end, int | np.integer) or not 0 < end <= y.shape[0]:
            raise ValueError(
                f"train_end: expected an int in [1, {y.shape[0]}] for series {i}, "
                f"got {end!r}."
            )
    return [int(e) for e in ends]
