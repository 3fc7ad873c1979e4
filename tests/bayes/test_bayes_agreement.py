"""Gibbs and NUTS agree on label-invariant posterior summaries of the same data."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxseq.bayes import fit, label_invariant, summary


@pytest.mark.slow
def test_gibbs_and_nuts_agree_within_monte_carlo_error():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, size=(40, 1))
    y = 1.5 / (1 + np.exp(-(2 * x[:, 0] - 0.5))) + 0.25 * rng.normal(size=40)
    rows = {}
    for sampler, warmup, samples in (("gibbs", 500, 2000), ("nuts", 400, 400)):
        result = fit(
            jax.random.key(0), x, y, hidden=2, sampler=sampler,
            num_warmup=warmup, num_samples=samples, num_chains=2,
        )  # fmt: skip
        rows[sampler] = summary(label_invariant(result))
        if sampler == "nuts":
            assert result.extra["diverging"].sum() == 0
    for name, g in rows["gibbs"].items():
        n = rows["nuts"][name]
        assert g.rhat < 1.02 and n.rhat < 1.02, (name, g.rhat, n.rhat)
        z = (g.mean - n.mean) / np.hypot(g.mcse, n.mcse)
        assert abs(z) < 4.0, (name, g.mean, n.mean, z)
        # Spreads agree too (a sampler stuck in one mode would be too narrow).
        assert abs(np.log(g.sd / n.sd)) < 0.2, (name, g.sd, n.sd)
