"""``jaxseq bayes`` command line."""

from __future__ import annotations

import numpy as np
import pytest

from jaxseq.bayes.cli import main


@pytest.fixture
def csv_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 50)
    y = np.sin(3 * x) + 0.2 * rng.normal(size=50)
    path = tmp_path / "data.csv"
    rows = [f"{a:.5f},{b:.5f},{c:.5f}" for a, b, c in zip(x, rng.normal(size=50), y,
                                                          strict=True)]  # fmt: skip
    path.write_text("x,noise,y\n" + "\n".join(rows) + "\n")
    return path


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--data", "--target", "--inputs", "--ar", "--hidden", "--sampler",
                 "--proposal", "--warmup", "--samples", "--chains", "--seed",
                 "--target-accept", "--max-tree-depth", "--holdout", "--prob",
                 "--out", "--format", "--no-progress"):  # fmt: skip
        assert flag in out
    assert "R-hat" in out


@pytest.mark.slow
def test_fit_prints_summary_and_writes_files(csv_file, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code = main([
        "fit", "--data", str(csv_file), "--inputs", "x", "--hidden", "2",
        "--warmup", "60", "--samples", "60", "--chains", "2", "--holdout", "0.2",
        "--out", str(out_dir), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "label-invariant posterior summary" in captured.out
    assert "sigma" in captured.out and "r_hat" in captured.out
    assert "held out: RMSE" in captured.out
    # 60 draws per chain are too few: the ESS warning must fire.
    assert "WARNING" in captured.err and "ESS" in captured.err
    saved = np.load(out_dir / "samples.npz")
    assert saved["gamma"].shape == (2, 60, 2, 2) and "y_scale" in saved
    assert (out_dir / "band.png").stat().st_size > 1000


def test_bad_data_exits_with_message(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n1,2\n2,inf\n3,4\n")
    assert main(["fit", "--data", str(path), "--hidden", "2"]) == 1
    err = capsys.readouterr().err
    assert "column 'y'" in err and "line 3" in err
    assert len(err.strip().splitlines()) == 1


def _run(argv, capsys):
    """``(exit status, stderr)`` of the CLI, whether it returns or exits."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--samples", "0"], "argument --samples: expected an integer >= 1, got '0'"),
        (["--warmup", "-1"], "argument --warmup: expected an integer >= 0, got '-1'"),
        (["--chains", "0"], "argument --chains: expected an integer >= 1, got '0'"),
        (["--chains", "two"], "argument --chains: expected an integer >= 1, got 'two'"),
        (["--hidden", "0"], "argument --hidden: expected an integer >= 1, got '0'"),
        (
            ["--prob", "1.5"],
            "argument --prob: expected a number strictly between 0 and 1",
        ),
        (
            ["--holdout", "1"],
            "argument --holdout: expected a number in [0, 1), got '1'",
        ),
        (["--seed", "-3"], "argument --seed: expected an integer in [0, 2**32)"),
        (
            ["--target-accept", "0"],
            "argument --target-accept: expected a number strictly between",
        ),
        (["--max-tree-depth", "0"], "argument --max-tree-depth: expected an integer"),
        (["--proposal", "rw+langevin"], "argument --proposal: expected moves joined"),
        (["--sample", "5"], "unrecognized arguments: --sample 5"),  # no abbreviations
        (
            ["--ar", "2", "--inputs", "x"],
            "argument --inputs: expected no input columns",
        ),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(csv_file, flags, message, capsys):
    code, err = _run(["fit", "--data", str(csv_file), "--hidden", "2", *flags], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert message in err and err.startswith("jaxseq bayes"), err


def test_bad_files_exit_naming_the_flag_or_the_file(csv_file, tmp_path, capsys):
    base = ["fit", "--hidden", "2", "--out", str(tmp_path / "o"), "--no-progress"]
    png = tmp_path / "plot.csv"
    png.write_bytes(b"x,y\n1,2\n\x89PNG\r\n\x1a\n\x00\x00\x00")
    cases = [
        (["--data", str(tmp_path / "missing.csv")], 2, "argument --data:"),
        (["--data", str(tmp_path)], 2, "argument --data: expected a file, got the directory"),
        (["--data", str(csv_file), "--out", str(csv_file)], 2,
         f"argument --out: expected a directory, got the file {csv_file}"),
        (["--data", str(png)], 1, f"{png}:3: expected a UTF-8 text CSV file"),
        (["--data", str(csv_file), "--target", "z"], 1,
         "--target: expected a column of"),
        (["--data", str(csv_file), "--inputs", "x,q"], 1,
         "--inputs: expected a column of"),
        (["--data", str(csv_file), "--ar", "60", "--target", "y"], 1, "--ar: expected"),
    ]  # fmt: skip
    for flags, status, message in cases:
        code, err = _run(base + flags, capsys)
        assert code == status, (flags, err)
        assert len(err.strip().splitlines()) == 1 and message in err, (flags, err)


def test_constant_column_is_named(tmp_path, capsys):
    path = tmp_path / "c.csv"
    path.write_text("a,b,y\n" + "\n".join(f"{i},7,{i % 3}" for i in range(10)))
    code, err = _run(["fit", "--data", str(path), "--hidden", "2",
                      "--out", str(tmp_path / "o")], capsys)  # fmt: skip
    assert code == 1
    assert "input column 'b' is constant (= 7)" in err and str(path) in err


def test_netcdf_samples(sine_fit, tmp_path):
    from jaxseq.bayes.cli import _save_samples

    path = _save_samples(sine_fit, tmp_path, "netcdf")
    assert path.suffix == ".nc" and path.stat().st_size > 1000


def test_top_level_command_dispatches_to_bayes(capsys):
    from jaxseq.cli import main as jaxseq_main

    with pytest.raises(SystemExit) as exit_:
        jaxseq_main(["bayes", "fit", "--help"])
    assert exit_.value.code == 0
    assert "--sampler" in capsys.readouterr().out
