"""Reading and validating series: CSV errors name file:line, column, expected and got."""

from __future__ import annotations

import numpy as np
import pytest

from jaxseq.forecast import as_collection, check_series, read_csv


def _write(tmp_path, text):
    path = tmp_path / "series.csv"
    path.write_text(text)
    return path


def test_read_csv_columns_and_time(tmp_path):
    path = _write(tmp_path, "year,a,b\n2000,1.5,3\n2001,2.5,-4\n2003,7,8e1\n")
    table = read_csv(path, time="year")
    np.testing.assert_array_equal(table.time, [2000, 2001, 2003])
    assert table.names == ["a", "b"]
    np.testing.assert_array_equal(table.values, [[1.5, 2.5, 7.0], [3.0, -4.0, 80.0]])
    only_b = read_csv(path, time="year", columns=["b"])
    np.testing.assert_array_equal(only_b.values, [[3.0, -4.0, 80.0]])


@pytest.mark.parametrize(
    "text, match",
    [
        ("t,a\n1,2\n2,3,4\n", r"series.csv:3: expected 2 fields .* got 3"),
        ("t,a\n1,2\n2\n", r"series.csv:3: expected 2 fields .* got 1"),
        (
            "t,a\n1,2\n2,abc\n",
            r"series.csv:3: column 'a': expected a finite number.*'abc'",
        ),
        ("t,a\n1,2\n2,\n", r"series.csv:3: column 'a': expected a finite number.*''"),
        (
            "t,a\n1,2\n2,nan\n",
            r"series.csv:3: column 'a': expected a finite number.*'nan'",
        ),
        (
            "t,a\n1,2\n3,3\n2,4\n",
            r"series.csv:4: column 't': .*increasing.*got 2 after 3 \(unsorted\)",
        ),
        (
            "t,a\n1,2\n2,3\n2,4\n",
            r"series.csv:4: column 't': .*got 2 after 2 \(duplicated\)",
        ),
        ("t,a\n", r"expected a header and data rows"),
    ],
)
def test_read_csv_refuses_bad_files(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        read_csv(_write(tmp_path, text), time="t")


def test_read_csv_unknown_column(tmp_path):
    with pytest.raises(ValueError, match=r"series.csv:1: expected a column 'x'"):
        read_csv(_write(tmp_path, "t,a\n1,2\n"), columns=["x"])


@pytest.mark.parametrize("bad, where", [(np.nan, 3), (np.inf, 1), (-np.inf, 0)])
def test_check_series_refuses_non_finite(bad, where):
    y = np.arange(5.0)
    y[where] = bad
    with pytest.raises(ValueError, match=rf"y: expected finite values .* y\[{where}\]"):
        check_series(y, "y")


def test_check_series_shapes():
    with pytest.raises(
        ValueError, match=r"expected a non-empty 1-D series, got shape \(2, 2\)"
    ):
        check_series(np.ones((2, 2)))
    with pytest.raises(ValueError, match="expected numbers"):
        check_series(["a", "b"])


def test_as_collection_forms():
    one = as_collection([1.0, 2.0, 3.0])
    assert len(one) == 1 and one[0].dtype == np.float64
    many = as_collection([[1.0, 2.0], [3.0, 4.0, 5.0]])
    assert [len(s) for s in many] == [2, 3]
    two_d = as_collection(np.arange(6.0).reshape(2, 3))
    assert len(two_d) == 2
    with pytest.raises(ValueError, match=r"series\[1\]: expected finite"):
        as_collection([[1.0, 2.0], [np.nan, 1.0]])
