"""Reading and validating series: CSV errors name file:line, column, expected and got."""

from __future__ import annotations

import numpy as np
import pytest

from jaxseq.forecast import as_collection, check_series, read_csv
from jaxseq.forecast.data import future_stamps


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
        ("t,a\n1,2\ninf,3\n", r"series.csv:3: column 't': expected a finite time"),
        (
            "t,a\nmonday,2\n",
            r"series.csv:2: column 't': expected a time stamp.*'monday'",
        ),
        (
            "t,a\n2020-01-01,2\nNaT,3\n",
            r"series.csv:3: column 't': expected a time stamp.*'NaT'",
        ),
        (
            "t,a\n2020-01-01,2\n,3\n",
            r"series.csv:3: column 't': expected a time stamp.*''",
        ),
        (
            "t,a\n2020-01-01,2\n7,3\n",
            r"series.csv:3: column 't': expected dates .* a number",
        ),
        (
            "t,a\n7,2\n2020-01-01,3\n",
            r"series.csv:3: column 't': expected numbers .* a date",
        ),
        (
            "t,a\n2020-01-01,2\n2020-03-01,3\n2020-02-01,4\n",
            r"series.csv:4: column 't': .*got 2020-02-01 after 2020-03-01 \(unsorted\)",
        ),
        (
            "t,a\n2020-01-01,2\n2020-01-01,3\n",
            r"series.csv:3: column 't': .*got 2020-01-01 after 2020-01-01 \(duplicated\)",
        ),
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


def test_read_csv_dates_and_a_byte_order_mark(tmp_path):
    """ISO dates in the time column become datetime64; a UTF-8 byte-order mark
    (spreadsheet exports) is not part of the first column's name."""
    path = tmp_path / "series.csv"
    path.write_bytes(b"\xef\xbb\xbfdate,a\r\n2020-01-01,1\r\n2020-02-01,2\r\n")
    table = read_csv(path, time="date")
    assert table.time.dtype == np.dtype("datetime64[D]")
    assert [str(t) for t in table.time] == ["2020-01-01", "2020-02-01"]
    np.testing.assert_array_equal(table.values, [[1.0, 2.0]])


@pytest.mark.parametrize(
    "stamps, want",
    [
        # month starts, one month apart: the calendar (28, 31, 30 days)
        (["2021-01-01", "2021-02-01"], ["2021-03-01", "2021-04-01", "2021-05-01"]),
        # quarters: three months apart
        (["2020-07-01", "2020-10-01"], ["2021-01-01", "2021-04-01", "2021-07-01"]),
        # year starts
        (["2019-01-01", "2020-01-01"], ["2021-01-01", "2022-01-01", "2023-01-01"]),
        # days, a weekly step
        (["2021-02-15", "2021-02-22"], ["2021-03-01", "2021-03-08", "2021-03-15"]),
        # month ends are not month starts: the median step, 31 days
        (["2021-01-31", "2021-03-03"], ["2021-04-03", "2021-05-04", "2021-06-04"]),
    ],
)
def test_future_stamps_of_dates(stamps, want):
    got = future_stamps(np.array(stamps, "datetime64[D]"), 3)
    assert [str(t) for t in got] == want


def test_future_stamps_of_numbers():
    np.testing.assert_allclose(future_stamps(np.array([0.0, 0.5, 1.5, 2.0]), 2),
                               [2.5, 3.0])  # fmt: skip
    with pytest.raises(ValueError, match="time: expected at least 2 dates"):
        future_stamps(np.array(["2020-01-01"], "datetime64[D]"), 1)
