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
                 "--holdout", "--prob", "--out", "--format", "--no-progress"):  # fmt: skip
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
    assert main(["fit", "--data", str(path), "--hidden", "2"]) == 2
    err = capsys.readouterr().err
    assert "column 'y'" in err and "line 3" in err


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
