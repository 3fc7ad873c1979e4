"""``fit`` warns about divergences, tree-depth saturation, R-hat and ESS: on the
result (``Fit.warnings``) and as :class:`ConvergenceWarning`; the CLI prints them.

The triggering runs are built so that the problem is certain, not a seeded
accident: NUTS with ``max_tree_depth=1`` takes exactly one leapfrog step per
transition (every tree is at the limit) and, with a target acceptance of 0.05,
steps so long that transitions diverge; chains of 3 draws cannot be assessed.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np
import pytest

from jaxseq.bayes import (
    ConvergenceWarning,
    NutsOptions,
    fit,
    fit_warnings,
    nuts_warnings,
    sine_data,
)
from jaxseq.bayes.cli import main

SEED = 0


def _fit(**kwargs):
    x, y = sine_data(SEED, 60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fit(jax.random.key(SEED), x, y, **kwargs)
    issued = [str(w.message) for w in caught if w.category is ConvergenceWarning]
    return result, issued


def test_nuts_warnings_count_divergences_and_trees_at_the_limit():
    diverging = np.zeros((2, 50), bool)
    diverging[1, [3, 9]] = True
    steps = np.full((2, 50), 7)  # depth 3
    steps[0, :5] = 8  # depth 4 reached (a U-turn may end the last doubling early)
    messages = nuts_warnings(diverging, steps, max_tree_depth=4)
    assert len(messages) == 2
    assert "2 of 100 transitions after warm-up diverged (2.0%)" in messages[0]
    assert "5 of 100 transitions (5.0%) reached the maximum tree depth 4" in messages[1]
    assert nuts_warnings(np.zeros((2, 5), bool), np.full((2, 5), 7), 4) == []


@pytest.mark.slow
def test_bad_nuts_run_warns_about_everything():
    result, issued = _fit(
        hidden=2, sampler="nuts", num_warmup=40, num_samples=40, num_chains=2,
        nuts=NutsOptions(target_accept_prob=0.05, max_tree_depth=1),
    )  # fmt: skip
    assert issued == list(result.warnings)
    text = "\n".join(result.warnings)
    assert "diverged" in text
    assert "80 of 80 transitions (100.0%) reached the maximum tree depth 1" in text
    assert "R-hat" in text and "ESS" in text
    assert np.all(result.extra["num_steps"] == 1)


def test_too_few_draws_are_reported_not_an_error(sine_fit):
    # R-hat and ESS need 4 draws per chain; with 3 the fit says so.
    short = sine_fit._replace(
        samples={k: v[:, :3] for k, v in sine_fit.samples.items()}
    )
    (message,) = fit_warnings(short)
    assert "3 draws per chain are too few" in message
    broken = dict(
        sine_fit.samples, prec=np.where(True, np.nan, sine_fit.samples["prec"])
    )
    assert (
        "non-finite draws in prec (600)"
        in fit_warnings(sine_fit._replace(samples=broken))[0]
    )


@pytest.mark.slow
def test_good_gibbs_fit_has_no_warnings():
    # A one-unit network on data it can fit, long chains: nothing to warn about.
    good, issued = _fit(hidden=1, num_warmup=500, num_samples=2500, num_chains=2)
    assert issued == [] and good.warnings == ()
    assert fit_warnings(good) == ()  # found again from the stored draws


def test_cli_prints_each_warning_and_no_all_clear(
    sine_fit, tmp_path, capsys, monkeypatch
):
    import jaxseq.bayes.infer as infer

    steps = np.full(sine_fit.samples["prec"].shape[:2], 3)
    nuts = sine_fit._replace(
        sampler="nuts",
        extra={"diverging": steps == 0, "num_steps": steps},
        warnings=("NUTS: 7 of 600 transitions after warm-up diverged (1.2%)",
                  "sigma: R-hat 1.050 > 1.01 (chains disagree)"),
    )  # fmt: skip
    monkeypatch.setattr(infer, "fit", lambda *a, **k: nuts)
    path = tmp_path / "d.csv"
    x, y = sine_data(0, 30)
    path.write_text(
        "x,y\n" + "\n".join(f"{a},{b}" for a, b in zip(x[:, 0], y, strict=True))
    )
    code = main(["fit", "--data", str(path), "--hidden", "3", "--sampler", "nuts",
                 "--out", str(tmp_path / "out"), "--quiet"])  # fmt: skip
    assert code == 0
    captured = capsys.readouterr()
    err_lines = [line for line in captured.err.splitlines() if "WARNING" in line]
    assert err_lines == [f"WARNING: {w}" for w in nuts.warnings]
    assert "convergence: no" not in captured.out
