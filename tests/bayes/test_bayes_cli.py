"""``jaxseq bayes`` command line."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from typing import NamedTuple

import jax
import numpy as np
import pytest

from jaxseq.bayes.cli import main

# `jaxseq bayes fit` gives JAX one CPU device per core when the backend has not
# started yet (driver.cpu_devices_per_core); starting it here, when the tests are
# collected, keeps every test process on the devices it began with, whichever
# test calls the CLI in-process first.
jax.devices()


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
                 "--out", "--format", "--quiet"):  # fmt: skip
        assert flag in out
    assert "R-hat" in out and "no-progress" not in out


@pytest.mark.slow
def test_fit_prints_summary_and_writes_files(csv_file, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code = main([
        "fit", "--data", str(csv_file), "--inputs", "x", "--hidden", "2",
        "--warmup", "60", "--samples", "60", "--chains", "2", "--holdout", "0.2",
        "--out", str(out_dir), "--quiet",
    ])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    assert "label-invariant posterior summary" in captured.out
    assert "sigma" in captured.out and "r_hat" in captured.out
    assert "f[0]: the regression function f at x = " in captured.out
    assert "held out: RMSE" in captured.out
    assert "data:" not in captured.out  # --quiet: no info lines
    assert "compiling" not in captured.err  # nor progress
    # 60 draws per chain are too few: the ESS warning must fire.
    assert "WARNING" in captured.err and "ESS" in captured.err
    saved = np.load(out_dir / "samples.npz")
    assert saved["gamma"].shape == (2, 60, 2, 2) and "y_scale" in saved
    assert (out_dir / "band.png").stat().st_size > 1000
    assert (out_dir / "trace.png").stat().st_size > 1000


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
    base = ["fit", "--hidden", "2", "--out", str(tmp_path / "o"), "--quiet"]
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


def test_netcdf_samples_are_to_arviz(sine_fit, tmp_path):
    from jaxseq.bayes.cli import _save_samples

    path = _save_samples(sine_fit, tmp_path, "netcdf", ["x"])
    assert path.suffix == ".nc" and path.stat().st_size > 1000
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import arviz as az
    saved = az.from_netcdf(str(path))
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        assert group in saved.groups()
    np.testing.assert_allclose(  # original units, not the standardised prec
        saved.posterior["sigma"], sine_fit.scaler.y_scale / np.sqrt(sine_fit.samples["prec"]),
        rtol=1e-6,
    )  # fmt: skip


def test_top_level_command_dispatches_to_bayes(capsys):
    from jaxseq.cli import main as jaxseq_main

    with pytest.raises(SystemExit) as exit_:
        jaxseq_main(["bayes", "fit", "--help"])
    assert exit_.value.code == 0
    assert "--sampler" in capsys.readouterr().out


# ------------------------------------------------------------------ progress
class _Tty:
    def isatty(self):
        return True


@pytest.mark.parametrize(
    "ci, tty, expected",
    [("", True, True), ("true", True, False), ("0", True, True), ("", False, False)],
)
def test_progress_shows_by_default_only_where_a_person_watches(
    monkeypatch, ci, tty, expected
):
    from jaxseq.bayes._progress import enabled

    monkeypatch.setenv("CI", ci)
    if tty:
        monkeypatch.setattr(sys, "stderr", _Tty())
    assert enabled(None) is expected
    assert enabled(False) is False and enabled(True) is True
    with pytest.raises(TypeError, match="progress: expected True, False or None"):
        enabled("yes")


def test_progress_has_a_compiling_stage_then_a_labelled_bar(capsys):
    from jaxseq.bayes._progress import Progress

    with Progress(
        6, "sampling, 2 chains", warmup=2, warmup_label="warm-up, 2 chains",
        calls_per_step=2,
    ) as bar:  # fmt: skip
        assert capsys.readouterr().err == "compiling ..."
        for _ in range(12):
            bar.tick()
    err = capsys.readouterr().err
    assert err.startswith(" done in ") and "6/6" in err
    assert "warm-up, 2 chains" in err and "sampling, 2 chains: 100%" in err


class _WalkState(NamedTuple):
    x: jax.Array
    rng_key: jax.Array


class _Walk:
    """A minimal numpyro MCMCKernel: a Gaussian random walk."""

    sample_field = "x"
    default_fields = ("x",)
    is_ensemble_kernel = False

    def init(self, rng_key, num_warmup, init_params, model_args, model_kwargs):
        return _WalkState(jax.numpy.zeros(jax.numpy.shape(rng_key)), rng_key)

    def postprocess_fn(self, args, kwargs):
        return lambda x: x

    def get_diagnostics_str(self, state):
        return ""

    def sample(self, state, model_args, model_kwargs):
        def one(state):
            key, step = jax.random.split(state.rng_key)
            return _WalkState(state.x + jax.random.normal(step), key)

        # numpyro hands vectorised chains over as one batched state.
        return one(state) if state.x.ndim == 0 else jax.vmap(one)(state)


@pytest.mark.parametrize(
    "method, total", [("vectorized", "7/7"), ("sequential", "14/14")]
)
def test_mcmc_progress_counts_iterations(method, total, capsys):
    from jaxseq.bayes.infer import _run_mcmc

    mcmc = _run_mcmc(
        jax.random.key(0), _Walk(), (), num_warmup=3, num_samples=4, num_chains=2,
        thinning=1, chain_method=method, progress=True,
    )  # fmt: skip
    assert mcmc.get_samples(group_by_chain=True).shape == (2, 4)
    err = capsys.readouterr().err
    assert err.startswith("compiling ... done in ") and total in err
    label = "2 chains in turn" if method == "sequential" else "2 chains"
    assert f"sampling, {label}: 100%" in err
    _run_mcmc(
        jax.random.key(0), _Walk(), (), num_warmup=3, num_samples=4, num_chains=2,
        thinning=1, chain_method=method, progress=False,
    )  # fmt: skip
    assert capsys.readouterr().err == ""


def test_sbc_chunks_match_one_vmap_and_show_progress(capsys):
    from jaxseq.bayes.sbc import _run_chunks

    one = lambda k: jax.random.normal(k, (2,))
    keys = jax.random.split(jax.random.key(0), 7)
    out = _run_chunks(keys, one, 3, progress=True)
    np.testing.assert_allclose(out, jax.vmap(one)(keys), rtol=1e-6)
    err = capsys.readouterr().err
    assert err.startswith("compiling ... done in ") and "SBC, 7 replications" in err
    assert "7/7" in err


@pytest.mark.slow
def test_import_is_light():
    code = (
        "import sys, jaxseq.bayes; "
        "heavy = [m for m in ('scipy.stats', 'arviz', 'matplotlib') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]


def test_gp_subcommand_fits_the_named_kernel(csv_file, capsys):
    """``jaxseq bayes gp`` prints what :func:`jaxseq.bayes.gp.fit_gp` finds on the
    same (standardised, split) data, in original units."""
    from jaxseq.bayes import gp
    from jaxseq.bayes.datasets import load_csv

    code = main(["gp", "--data", str(csv_file), "--inputs", "x", "--kernel",
                 "matern32", "--seed", "3", "--quiet"])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "gp: kernel matern32, ml2" in out
    x, y, _, _ = load_csv(csv_file, target="y", inputs=["x"])
    ref = gp.fit_gp(jax.random.key(3), x, y, gp.matern32)
    noise = float(ref.params.noise[0]) * ref.scaler.y_scale
    assert f"noise sd {noise:.4g}" in out
    assert 0.1 < noise < 0.35  # the data's noise sd is 0.2


def test_gp_subcommand_rejects_an_unknown_kernel(csv_file, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["gp", "--data", str(csv_file), "--kernel", "rbf"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --kernel: expected one of ['matern32', 'matern52', 'se']" in err
    assert "got 'rbf'" in err
