"""``jaxseq forecast``: bad input gives one line on stderr naming the flag or
file:line; a tiny run writes forecasts, metrics and a PNG."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from jaxseq.forecast.cli import main


@pytest.fixture
def csv_file(tmp_path):
    t = np.arange(60)
    rng = np.random.default_rng(0)
    a = 10 + np.sin(2 * np.pi * t / 6) + 0.1 * rng.normal(size=60)
    b = 3 + 0.05 * t + 0.2 * rng.normal(size=60)
    path = tmp_path / "s.csv"
    path.write_text(
        "day,a,b\n"
        + "\n".join(f"{d},{x:.4f},{y:.4f}" for d, x, y in zip(t, a, b, strict=True))
        + "\n"
    )
    return path


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in (
        "--data",
        "--horizon",
        "--model",
        "--strategy",
        "--head",
        "--window",
        "--period",
        "--origins",
        "--baselines",
        "--out",
        "--quiet",
        "--missing",
        "--holdout",
        "--calibration",
        "--gamma",
    ):
        assert flag in out
    assert "--no-progress" not in out


@pytest.mark.parametrize(
    "text, args, match",
    [
        ("day,a\n1,2\n2,3,4\n", [], r"s2.csv:3: expected 2 fields"),
        ("day,a\n1,2\n1,3\n", ["--time", "day"], r"s2.csv:3: column 'day'.*duplicated"),
        ("day,a\n1,2\n2,x\n", [], r"s2.csv:3: column 'a': expected a finite number"),
        (
            "a\n" + "".join(f"{i % 4}\n" for i in range(9)),
            ["--origins", "3"],
            r"--origins \(num_origins\): expected at most 2 origins",
        ),
        (
            "day,a\n1,2\n2,\n",
            [],
            r"s2.csv:3: column 'a': expected a finite number \(missing values are "
            r"refused; --missing mask",
        ),
        (
            "day,a\n" + "".join(f"{i},{i % 3}\n" for i in range(10)),
            ["--window", "8", "--time", "day"],
            r"s2.csv column 'a': expected at least window \+ horizon = 8 \+ 3 = 11 values",
        ),
        (
            "day,a\n" + "".join(f"{i},5\n" for i in range(40)),
            ["--window", "4", "--time", "day"],
            r"s2.csv: column 'a': expected a series that varies, got the constant 5",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(tmp_path, capsys, text, args, match):
    path = tmp_path / "s2.csv"
    path.write_text(text)
    code = main(
        [
            "--data",
            str(path),
            "--horizon",
            "3",
            "--origins",
            "0",
            "--out",
            str(tmp_path / "o"),
            "--quiet",
            *args,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("jaxseq forecast: error:")
    assert re.search(match, err), err


def test_bad_flags(tmp_path, capsys, csv_file):
    with pytest.raises(SystemExit) as exit_:
        main(["--data", str(csv_file), "--horizon", "0"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--horizon: expected an integer >= 1, got '0'" in err
    assert len(err.strip().splitlines()) == 1, err
    with pytest.raises(SystemExit) as exit_:  # no abbreviated flags
        main(["--data", str(csv_file), "--horiz", "2"])
    assert exit_.value.code == 2
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # checked before any data is read
        main(["--data", str(tmp_path / "missing.csv"), "--horizon", "2"])
    assert "--data" in capsys.readouterr().err
    code = main(
        [
            "--data",
            str(csv_file),
            "--horizon",
            "2",
            "--baselines",
            "naive,oops",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    assert "--baselines: expected names from" in capsys.readouterr().err
    code = main(["--data", str(csv_file), "--horizon", "2", "--gamma", "-0.5"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--gamma (gamma): expected a number in [0, 1), got -0.5" in err


@pytest.mark.slow
def test_tiny_run_writes_everything(tmp_path, csv_file, capsys):
    out = tmp_path / "out"
    lines = csv_file.read_text().splitlines()
    lines[20] = lines[20].rsplit(",", 1)[0] + ","  # series b misses day 19
    # monthly ISO dates (2015-01-01 ... 2019-12-01) instead of day numbers
    lines[1:] = [
        f"{2015 + i // 12}-{i % 12 + 1:02d}-01," + line.split(",", 1)[1]
        for i, line in enumerate(lines[1:])
    ]
    csv_file.write_text("\n".join(lines) + "\n")
    code = main(
        [
            "--missing",
            "mask",
            "--data",
            str(csv_file),
            "--time",
            "day",
            "--horizon",
            "3",
            "--window",
            "8",
            "--hidden",
            "4",
            "--steps",
            "20",
            "--period",
            "6",
            "--season",
            "6",
            "--origins",
            "2",
            "--pool-steps",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0
    with open(out / "forecasts.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6
    assert [r["time"] for r in rows[:3]] == ["2020-01-01", "2020-02-01", "2020-03-01"]
    for r in rows:
        assert (
            float(r["lower90"])
            <= float(r["lower80"])
            <= float(r["mean"])
            <= float(r["upper80"])
            <= float(r["upper90"])
        )
    metrics = json.loads((out / "metrics.json").read_text())["rows"]
    assert {r["method"] for r in metrics} == {"jaxseq-lstm", "naive", "snaive"}
    assert (out / "a.png").stat().st_size > 10_000 and (out / "b.png").exists()
    assert (out / "train" / "metrics.jsonl").exists() and (out / "ckpt").is_dir()
    # the calibration run (the training part less its last 2H values) has its own
    assert (out / "train_holdout" / "metrics.jsonl").exists()
    assert all(np.isfinite(r["mase"]) for r in metrics)
    assert "data:" not in capsys.readouterr().out  # --quiet: no info lines


def test_linear_takes_one_order_or_several(tmp_path, capsys, csv_file):
    """``--linear 3`` is one highway order, ``--linear 0,4`` two candidates;
    a bad one is named."""
    from jaxseq.forecast.cli import _orders

    assert _orders("3") == 3 and _orders("0, 4") == (0, 4)
    with pytest.raises(SystemExit) as exit_:
        main(["--data", str(csv_file), "--horizon", "2", "--linear", "0,-1"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--linear: expected an integer >= 0, got '-1'" in err, err
