"""CSV files of texts and labels; documented in :mod:`jaxseq.data.labelled`."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import Literal

from .._utf8 import decode_utf8
from ._labels import check_class_names, check_errors, fspath, logger, own_reviews
from ._reviews import Reviews

#: The label values a CSV may use instead of class names (label ids 0 and 1).
NUMERIC_LABELS = ("0", "1")
#: The largest CSV field (characters) :func:`load_csv` reads.
MAX_FIELD = 2**31 - 1


def load_csv(
    path: str | os.PathLike[str],
    *,
    text_column: str = "text",
    label_column: str = "label",
    class_names: Sequence[str] | None = None,
    delimiter: str = ",",
    errors: Literal["replace", "strict"] = "replace",
) -> Reviews:
    """Texts and labels from a CSV file whose first line names the columns.

    Read with Python's :mod:`csv` (quoted fields may hold the delimiter,
    quotes doubled, and line breaks). A UTF-8 byte order mark is ignored;
    blank lines are skipped; other columns are ignored.

    Args:
        path: the file.
        text_column, label_column: the names of the two columns in the header.
        class_names: the two label values, in label-id order; default: ``0``
            and ``1`` when the labels are those, else the two values found,
            sorted.
        delimiter: the field separator (``"\\t"`` for TSV).
        errors: ``"replace"`` or ``"strict"`` UTF-8 decoding
            (:mod:`jaxseq.data.labelled`).

    Returns:
        :class:`~jaxseq.data.Reviews` in file order.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: naming ``file:line``: a missing column, a row with another
            number of fields than the header (ragged), an empty text or label,
            a label not in ``class_names``, more or fewer than two label
            values, invalid UTF-8 with ``errors="strict"``, a malformed CSV
            line.
    """
    path = fspath(path)
    check_errors(errors)
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise ValueError(f"delimiter: expected one character, got {delimiter!r}.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path: no such CSV file: {path!r}.")
    with open(path, "rb") as f:
        content = decode_utf8(f.read(), path, errors, logger)
    texts: list[str] = []
    values: list[tuple[str, int]] = []  # (label value, line)
    for line, text, value in _csv_rows(
        content, path, text_column, label_column, delimiter
    ):
        texts.append(text)
        values.append((value, line))
    if not texts:
        raise ValueError(f"{path}: no row after the header line; expected texts.")
    names = _csv_classes(values, class_names, path, label_column)
    labels = []
    for value, line in values:
        if value not in names:
            raise ValueError(
                f"{path}:{line}: unknown label {value!r} in column "
                f"{label_column!r}; expected one of {list(names)} (class_names)."
            )
        labels.append(names.index(value))
    return own_reviews(texts, labels, names)


def _csv_rows(
    content: str, path: str, text_column: str, label_column: str, delimiter: str
) -> list[tuple[int, str, str]]:
    """``(first line, stripped text, stripped label)`` of each non-blank row.

    The csv module runs in strict mode (a stray quote is an error, not silently
    dropped) and with its field size limit raised from 128 KiB to
    :data:`MAX_FIELD` characters for the duration (long documents)."""
    reader = csv.reader(
        io.StringIO(content, newline=""), delimiter=delimiter, strict=True
    )
    rows, start = [], 1
    limit = csv.field_size_limit(MAX_FIELD)
    try:
        header = [name.strip() for name in next(reader, [])]
        if not header:
            raise ValueError(
                f"{path}:1: no header line; expected the column names, e.g. "
                f"{text_column}{delimiter}{label_column}."
            )
        columns = (
            _column(header, text_column, "text_column", path),
            _column(header, label_column, "label_column", path),
        )
        start = reader.line_num + 1
        for row in reader:
            if row:
                rows.append((start, *_csv_row(row, header, columns, f"{path}:{start}")))
            start = reader.line_num + 1
    except csv.Error as err:
        raise ValueError(
            f"{path}:{start}: malformed CSV ({err}); a quoted field must end with "
            "a quote followed by the delimiter or the line end."
        ) from None
    finally:
        csv.field_size_limit(limit)
    return rows


def _column(header: list[str], name: str, arg: str, path: str) -> int:
    if header.count(name) != 1:
        problem = "appears twice" if name in header else "is missing"
        raise ValueError(
            f"{path}:1: the column {name!r} ({arg}) {problem} in the header line; "
            f"its columns are {header}."
        )
    return header.index(name)


def _csv_row(
    row: list[str], header: list[str], columns: tuple[int, int], where: str
) -> tuple[str, str]:
    if len(row) != len(header):
        raise ValueError(
            f"{where}: {len(row)} fields, expected {len(header)} as in the header "
            f"line {header}. A text holding the delimiter must be quoted."
        )
    text, value = row[columns[0]].strip(), row[columns[1]].strip()
    for got, kind, column in ((text, "text", columns[0]), (value, "label", columns[1])):
        if not got:
            raise ValueError(f"{where}: empty {kind} in column {header[column]!r}.")
    return text, value


def _csv_classes(
    values: list[tuple[str, int]],
    class_names: Sequence[str] | None,
    path: str,
    label_column: str,
) -> tuple[str, ...]:
    if class_names is not None:
        return check_class_names(class_names)
    first: dict[str, int] = {}
    for value, line in values:
        first.setdefault(value, line)
    if set(first) <= set(NUMERIC_LABELS):
        return NUMERIC_LABELS
    if len(first) != 2:
        found = ", ".join(f"{v!r} (line {n})" for v, n in sorted(first.items())[:5])
        raise ValueError(
            f"{path}: expected 2 label values in column {label_column!r} (the "
            f"classifiers are binary), found {len(first)}: {found}"
            f"{', ...' if len(first) > 5 else ''}. Pass class_names=(label_0, "
            "label_1) to name them."
        )
    return tuple(sorted(first))
