"""Series in, validated: one or many 1-D series, and a CSV reader.

A *collection* is a list of 1-D float64 NumPy arrays (lengths may differ). Every
entry point of :mod:`jaxseq.forecast` validates its series here, on the host and
before anything is compiled: rank, finiteness and a series that does not vary.

Missing values are refused by default, naming the first one (index, or
``file:line`` and column). With ``missing=True`` they are kept as NaN and
masked: a forecaster's loss leaves out missing targets, a missing input reads
as 0 in standardised units (the training part's mean, or with
``relative=True`` the window's last observed value), the scaling and the
metrics use the observed values only. Infinite values are refused either way.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike

__all__ = ["Table", "as_collection", "check_series", "read_csv"]


def check_series(
    values: ArrayLike, name: str = "series", *, missing: bool = False
) -> np.ndarray:
    """One series as a finite 1-D float64 array (``missing=True``: NaN kept as a
    missing value).

    Raises:
        ValueError: not 1-D, empty, NaN (without ``missing``) or inf (naming
            the first bad index), non-numeric, or with no observed value.
    """
    try:
        y = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected numbers, got {values!r:.60}.") from err
    if y.ndim != 1 or y.shape[0] == 0:
        raise ValueError(
            f"{name}: expected a non-empty 1-D series, got shape {y.shape}."
        )
    bad = np.flatnonzero(np.isinf(y) if missing else ~np.isfinite(y))
    if bad.size:
        hint = (
            ""
            if missing
            else " (missing values are refused: fill or drop them, or "
            "pass missing=True to mask them)"
        )
        raise ValueError(
            f"{name}: expected finite values{hint}, got {name}[{bad[0]}] = "
            f"{y[bad[0]]} ({bad.size} non-finite in all)."
        )
    if not np.any(np.isfinite(y)):
        raise ValueError(f"{name}: expected observed values, got only missing ones.")
    return y


def as_collection(
    series: ArrayLike | Sequence[ArrayLike],
    name: str = "series",
    *,
    missing: bool = False,
):
    """One series (1-D) or many (a list of 1-D, or a 2-D ``[S, T]`` array) as a
    list of validated 1-D float64 arrays (``missing``: as :func:`check_series`)."""
    check = lambda s, label: check_series(s, label, missing=missing)
    if isinstance(series, np.ndarray | list | tuple) and len(series) == 0:
        raise ValueError(f"{name}: expected at least one series, got none.")
    first = series[0] if isinstance(series, list | tuple) else None
    if first is not None and np.ndim(first) >= 1:
        return [check(s, f"{name}[{i}]") for i, s in enumerate(series)]
    array = np.asarray(series) if not isinstance(series, list | tuple) else None
    if array is not None and array.ndim == 2:
        return [check(s, f"{name}[{i}]") for i, s in enumerate(array)]
    return [check(series, name)]


class Table(NamedTuple):
    """Columns read by :func:`read_csv`.

    Attributes:
        time: ``[T]`` the time column as floats, or ``datetime64`` for dates
            (``None`` without one).
        names: the series' column names.
        values: ``[S, T]`` one row per series.
    """

    time: np.ndarray | None
    names: list[str]
    values: np.ndarray


#: cells read as a missing value with ``missing=True``
MISSING = ("", "na", "nan", "null")


def _number(cell: str, column: str, line: int, path: Path, missing) -> float:
    """One series cell as a float; ``missing``: True (NaN allowed) or False
    (refused)."""
    if missing and cell.lower() in MISSING:
        return float("nan")
    try:
        value = float(cell)
    except ValueError:
        value = None
    if value is None or not np.isfinite(value):
        hint = {
            True: "; missing values are empty, NA or NaN cells",
            False: " (missing values are refused; --missing mask / missing=True "
            "masks them)",
        }[bool(missing)]
        raise ValueError(
            f"{path}:{line}: column {column!r}: expected a finite number{hint}, "
            f"got {cell!r}."
        )
    return value


def _stamp(cell: str, column: str, line: int, path: Path) -> float | np.datetime64:
    """One time stamp: a finite number (a year, a day count) or an ISO 8601 date
    or date-time (``2020``, ``2020-03``, ``2020-03-01``, ``2020-03-01T12:00``)."""
    try:
        value = float(cell)
    except ValueError:
        try:
            stamp = np.datetime64(cell)
            if np.isnat(stamp):  # '' and 'NaT' parse as not-a-time
                raise ValueError(cell)
            return stamp
        except ValueError:
            raise ValueError(
                f"{path}:{line}: column {column!r}: expected a time stamp (a finite "
                f"number or an ISO 8601 date such as 2020-03-01), got {cell!r}."
            ) from None
    if not np.isfinite(value):
        raise ValueError(
            f"{path}:{line}: column {column!r}: expected a finite time stamp, got "
            f"{cell!r}."
        )
    return value


def _stamps(cells: list[tuple[int, str]], column: str, path: Path) -> np.ndarray:
    """The time column: floats, or ``datetime64`` when every cell is a date."""
    parsed = [(line, _stamp(cell, column, line, path)) for line, cell in cells]
    dated = [isinstance(v, np.datetime64) for _, v in parsed]
    if any(dated) and not all(dated):
        line = parsed[dated.index(not dated[0])][0]
        kinds = ("numbers", "a date") if not dated[0] else ("dates", "a number")
        raise ValueError(
            f"{path}:{line}: column {column!r}: expected {kinds[0]} as in the first "
            f"row, got {kinds[1]}."
        )
    return np.array([v for _, v in parsed])


def future_stamps(time: np.ndarray, horizon: int) -> np.ndarray:
    """The ``horizon`` time stamps after ``time`` ``[T]`` (strictly increasing).

    Numbers continue by the median step. Dates that all fall on the first of a
    month (or of a year) and step by a constant number of months (years)
    continue on the calendar (``2020-01-01, 2020-02-01`` -> ``2020-03-01``);
    other dates continue by the median step.

    Examples:
        >>> future_stamps(np.array([1990.0, 1991.0, 1992.0]), 2).tolist()
        [1993.0, 1994.0]
        >>> t = np.array(["2020-11-01", "2020-12-01"], "datetime64[D]")
        >>> [str(d) for d in future_stamps(t, 2)]
        ['2021-01-01', '2021-02-01']
    """
    time = np.asarray(time)
    ahead = np.arange(1, horizon + 1)
    if not np.issubdtype(time.dtype, np.datetime64):
        step = float(np.median(np.diff(time))) if len(time) > 1 else 1.0
        return time[-1] + step * ahead
    if len(time) < 2:
        raise ValueError(
            f"time: expected at least 2 dates to continue them, got {len(time)}."
        )
    for unit in ("Y", "M"):
        coarse = time.astype(f"datetime64[{unit}]")
        steps = np.diff(coarse).astype(int)
        if (coarse.astype(time.dtype) == time).all() and (steps == steps[0]).all():
            return (coarse[-1] + steps[0] * ahead).astype(time.dtype)
    step = np.median(np.diff(time).astype(np.int64)).round().astype(np.int64)
    return time[-1] + step * ahead.astype(np.int64) * np.timedelta64(
        1, np.datetime_data(time.dtype)[0]
    )


def read_csv(
    path: str | Path,
    *,
    time: str | None = None,
    columns: Sequence[str] | None = None,
    missing: bool = False,
) -> Table:
    """Read series from a CSV file with a header row, one series per column.

    Args:
        path: the file.
        time: name of a time-stamp column (numbers, e.g. years or days, or ISO
            8601 dates such as ``2020-03-01``), which must increase strictly;
            ``None``: rows are consecutive steps.
        columns: the series to read (default: every column except ``time``).
        missing: read empty, ``NA`` and ``NaN`` cells of series columns as
            missing values (NaN) instead of refusing them; the time column
            must stay complete.

    Returns:
        A :class:`Table`.

    Raises:
        ValueError: a missing file header, unknown column, a row of another width
            than the header (ragged), an empty or non-numeric cell, unsorted or
            duplicated time stamps; each names ``path:line`` and the column.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = [(i, r) for i, r in enumerate(csv.reader(handle), 1) if r]
    if len(rows) < 2:
        raise ValueError(
            f"{path}: expected a header and data rows, got {len(rows)} rows."
        )
    header = [h.strip() for h in rows[0][1]]
    names = [h for h in header if h != time] if columns is None else list(columns)
    for name in [*([time] if time else []), *names]:
        if name not in header:
            raise ValueError(f"{path}:1: expected a column {name!r}, got {header}.")
    if not names:
        raise ValueError(f"{path}:1: expected at least one series column, got none.")
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise ValueError(
                f"{path}:{line}: expected {len(header)} fields (as the header), got "
                f"{len(row)}."
            )
    table = {
        name: np.array(
            [
                _number(r[header.index(name)].strip(), name, i, path, missing)
                for i, r in rows[1:]
            ]
        )
        for name in names
    }
    if time:
        column = header.index(time)
        table[time] = _stamps([(i, r[column].strip()) for i, r in rows[1:]], time, path)
    for name in names:
        if not np.any(np.isfinite(table[name])):
            raise ValueError(
                f"{path}: column {name!r}: expected observed values, got only "
                "missing ones."
            )
    stamps = None
    if time:
        stamps = table[time]
        steps = np.diff(stamps)
        zero = np.zeros((), steps.dtype)
        if np.any(steps <= zero):
            k = int(np.flatnonzero(steps <= zero)[0])
            kind = "duplicated" if steps[k] == zero else "unsorted"
            shown = [str(v) if stamps.dtype.kind == "M" else f"{v:g}"
                     for v in stamps[k : k + 2]]  # fmt: skip
            raise ValueError(
                f"{path}:{rows[k + 2][0]}: column {time!r}: expected strictly "
                f"increasing time stamps, got {shown[1]} after {shown[0]} ({kind})."
            )
    return Table(stamps, names, np.stack([table[n] for n in names]))
