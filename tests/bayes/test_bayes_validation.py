"""Bad input is refused on the host, before anything is traced or compiled."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxseq.bayes import (
    NutsOptions,
    compile_timer,
    default_prior,
    fit,
    fit_ridge,
    load_csv,
    regression,
    run_gibbs,
    run_nuts,
)


def _data(n=30):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 2)), rng.normal(size=n)


def _bad_cases():
    x, y = _data()
    x_nan = x.copy()
    x_nan[4, 1] = np.nan
    y_inf = y.copy()
    y_inf[7] = np.inf
    x_const = x.copy()
    x_const[:, 1] = 3.0
    bad_prior = default_prior(2)._replace(C_gamma=np.diag([1.0, -1.0, 1.0]))
    return [
        ((x_nan, y), {}, r"x: expected finite values, got x\[\(4, 1\)\] = nan"),
        ((x, y_inf), {}, r"y: expected finite values, got y\[7\] = inf"),
        (
            (x, y[:-1]),
            {},
            r"x, y: expected the same number of rows, got x with 30 rows "
            r"and y with 29 values",
        ),  # fmt: skip
        ((x[:, 0], y), {}, r"x: expected rank 2 \[n, p\], got rank 1"),
        ((x_const, y), {}, r"x: expected every input column to vary, got column 1"),
        ((x, y), {"prior": bad_prior}, r"prior.C_gamma: expected a positive-definite"),
        ((x, y), {"hidden": 0}, r"hidden: expected a positive integer, got 0"),
        ((x, y), {"sampler": "hmc"}, r"sampler: expected one of \('gibbs', 'nuts'\)"),
        ((x, y), {"num_chains": 0}, r"num_chains: expected a positive integer, got 0"),
        (
            (x, y),
            {"num_samples": 0},
            r"num_samples: expected a positive integer, got 0",
        ),
        ((x, y), {"num_warmup": -1}, r"num_warmup: expected an integer >= 0, got -1"),
        (
            (x, y),
            {"num_samples": 2.5},
            r"num_samples: expected a positive integer, got 2.5",
        ),
        (
            (x, y),
            {"num_chains": True},
            r"num_chains: expected a positive integer, got True",
        ),
        ((x, y), {"thinning": 0}, r"thinning: expected a positive integer, got 0"),
        (
            (x, y),
            {"num_samples": 5, "thinning": 6},
            r"thinning: expected at most num_samples = 5 .*got 6",
        ),
        ((x, y), {"chain_method": "pmap"}, r"chain_method: expected None or one of"),
        ((x, y), {"proposal": "rw+langevin"}, r"proposal: expected moves joined by"),
        (
            (x, y),
            {"sampler": "nuts", "nuts": NutsOptions(target_accept_prob=1.0)},
            r"nuts.target_accept_prob: expected a value in \(0, 1\), got 1.0",
        ),
        (
            (x, y),
            {"sampler": "nuts", "nuts": NutsOptions(max_tree_depth=0)},
            r"nuts.max_tree_depth: expected a positive integer, got 0",
        ),
    ]


@pytest.mark.parametrize("args, kwargs, message", _bad_cases())
def test_fit_refuses_bad_input_before_compiling(args, kwargs, message):
    kwargs = {"hidden": 2, **kwargs}
    key = jax.random.key(0)  # making a key compiles on first use
    with compile_timer() as compiled, pytest.raises(ValueError, match=message):
        fit(key, *args, **kwargs)
    assert compiled[0] == 0.0


def test_ridge_refuses_bad_input():
    x, y = _data()
    y[0] = np.nan
    with pytest.raises(ValueError, match=r"y\[0\] = nan"):
        fit_ridge(jax.random.key(0), x, y, hidden=2)
    with pytest.raises(ValueError, match="lambda_beta"):
        fit_ridge(jax.random.key(0), *_data(), hidden=2, lambda_beta=-1.0)


def test_load_csv_names_column_and_line(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,y\n1,2,3\n4,,6\n")
    with pytest.raises(
        ValueError, match=r"column 'b': expected a finite number on line 3"
    ):
        load_csv(path)
    path.write_text("a,b,y\n1,2,3\n4,5,nan\n")
    with pytest.raises(ValueError, match=r"column 'y'.*line 3.*'nan'"):
        load_csv(path)
    with pytest.raises(
        ValueError, match=r"column 'z': expected one of \['a', 'b', 'y'\]"
    ):
        load_csv(path, target="z")
    path.write_text("a,b,y\n1,2,3\n4,5,6\n")
    x, y, names, target = load_csv(path, target="a")
    assert names == ["b", "y"] and target == "a"
    np.testing.assert_array_equal(x, [[2, 3], [5, 6]])


def test_run_functions_check_lengths_before_compiling():
    x, y = _data()
    key = jax.random.key(0)
    with compile_timer() as compiled:
        with pytest.raises(ValueError, match="num_chains: expected a positive"):
            run_gibbs(key, x, y, hidden=2, num_warmup=1, num_samples=1, num_chains=0)
        with pytest.raises(ValueError, match="num_warmup: expected an integer >= 0"):
            run_nuts(key, regression, x, y, hidden=2, num_warmup=-5, num_samples=1)
    assert compiled[0] == 0.0


def test_load_csv_names_the_file_of_binary_or_broken_data(tmp_path):
    png = tmp_path / "image.csv"
    png.write_bytes(b"x,y\n1,2\n\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ValueError, match=r"image.csv:3: expected a UTF-8 text CSV"):
        load_csv(png)
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"x,y\n1,2\n3,\x004\n")
    with pytest.raises(ValueError, match=r"column 'y'.* line 3 of .*nul.csv"):
        load_csv(nul)
    huge = tmp_path / "huge.csv"
    huge.write_text("x,y\n1,2\n3," + "4" * 200_000 + "\n")
    with pytest.raises(ValueError, match=r"huge.csv:3: expected CSV text, got field"):
        load_csv(huge)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"expected a header and at least one row"):
        load_csv(empty)
