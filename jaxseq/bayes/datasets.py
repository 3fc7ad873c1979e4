"""Data for the Bayesian examples, tests and benchmark.

``jaxseq/datasets/sunspots_yearly.csv`` (columns ``year,sunspots``) holds the yearly
mean sunspot numbers 1700-2008 (309 values). Provenance: WDC-SILSO (formerly
SIDC), Royal Observatory of Belgium, Brussels, as redistributed by the NOAA
National Geophysical Data Center; this is version 1 of the international
(Wolf/Zürich) sunspot number, i.e. the series before SILSO's 2015 recalibration
(version 2 values are about 1/0.6 times larger). The values are identical to the
public-domain copy shipped with statsmodels (``statsmodels.datasets.sunspots``).
"""

from __future__ import annotations

import csv
import importlib.resources
import io
from pathlib import Path

import numpy as np

__all__ = ["load_csv", "load_sunspots", "sine_data"]


def load_sunspots() -> tuple[np.ndarray, np.ndarray]:
    """The yearly sunspot numbers shipped with jaxseq.

    Returns:
        ``(years, values)``: ``[309]`` integer years 1700-2008 and ``[309]`` floats.
    """
    path = importlib.resources.files("jaxseq") / "datasets" / "sunspots_yearly.csv"
    with path.open("r", encoding="utf-8") as handle:
        table = np.loadtxt(handle, delimiter=",", skiprows=1)
    return table[:, 0].astype(int), table[:, 1]


def sine_data(
    seed: int, n: int, *, noise: float = 0.2, low: float = -1.0, high: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """``x ~ U(low, high)``, ``y = sin(3x) + N(0, noise^2)``.

    Returns:
        ``(x [n, 1], y [n])`` from ``numpy.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, size=(n, 1))
    return x, np.sin(3.0 * x[:, 0]) + noise * rng.normal(size=n)


def load_csv(
    path: str | Path, *, target: str | None = None, inputs: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """Read a numeric CSV with a header row.

    Args:
        path: file name.
        target: response column (default: the last column).
        inputs: input columns (default: every other column; ``[]`` reads only the
            target, e.g. a series for :func:`~jaxseq.bayes.lagged`).

    Returns:
        ``(x [n, p], y [n], input_names, target_name)``.

    Raises:
        ValueError: a file that is not UTF-8 text or not valid CSV (naming the file
            and line), unknown column, non-numeric or missing cell (naming the
            column and the 1-based line), or a file without data rows.
        OSError: the file cannot be opened.
    """
    rows = read_rows(path)
    header = rows[0]
    target = header[-1] if target is None else target
    if inputs is None:
        inputs = [h for h in header if h != target]
        if not inputs:
            raise ValueError(
                f"data: expected input columns besides {target!r} in {path}, got none."
            )
    for name in [target, *inputs]:
        if name not in header:
            raise ValueError(
                f"column {name!r}: expected one of {header}, got no such column."
            )
    columns = {name: _column(rows, header.index(name), name, path)
               for name in [*inputs, target]}  # fmt: skip
    n = len(rows) - 1
    x = (
        np.stack([columns[name] for name in inputs], axis=1)
        if inputs
        else np.zeros((n, 0))
    )
    return x, columns[target], inputs, target


def read_rows(path: str | Path) -> list[list[str]]:
    """The rows of a CSV file, the header's names stripped.

    Raises:
        ValueError: not UTF-8 text (naming the file, line and byte), not valid
            CSV (e.g. a NUL byte; naming the file and line), or fewer than two rows.
        OSError: the file cannot be opened.
    """
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ValueError(
            f"{path}:{line}: expected a UTF-8 text CSV file, got the byte "
            f"{raw[err.start : err.start + 1]!r} at offset {err.start} (a binary "
            "file?)."
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as err:
        raise ValueError(
            f"{path}:{reader.line_num}: expected CSV text, got {err}."
        ) from None
    if len(rows) < 2:
        raise ValueError(f"data: expected a header and at least one row in {path}.")
    rows[0] = [h.strip() for h in rows[0]]
    return rows


def _column(rows, j, name, path) -> np.ndarray:
    values = []
    for line, row in enumerate(rows[1:], start=2):
        cell = row[j].strip() if j < len(row) else ""
        try:
            value = float(cell)
        except ValueError:
            value = None
        if value is None or not np.isfinite(value):
            raise ValueError(
                f"column {name!r}: expected a finite number on line {line} of "
                f"{path}, got {cell!r}."
            )
        values.append(value)
    return np.asarray(values)
