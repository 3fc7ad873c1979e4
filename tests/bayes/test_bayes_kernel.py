"""BlockedGibbs as a numpyro MCMCKernel: chains, adaptation, purity, diagnostics."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer import MCMC

from jaxseq.bayes import BlockedGibbs, sine_data

WARMUP, SAMPLES = 200, 200


@pytest.fixture(scope="module")
def data():
    x, y = sine_data(0, 60)
    return jnp.asarray((x - x.mean()) / x.std()), jnp.asarray((y - y.mean()) / y.std())


@pytest.fixture(scope="module")
def run(data):
    kernel = BlockedGibbs(2)
    before = copy.copy(vars(kernel))
    mcmc = MCMC(
        kernel,
        num_warmup=WARMUP,
        num_samples=SAMPLES,
        num_chains=2,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(0), *data, extra_fields=("proposal.log_scale", "i"))
    return kernel, mcmc, before


def test_samples_have_model_sites_and_chain_axis(run):
    _, mcmc, _ = run
    s = mcmc.get_samples(group_by_chain=True)
    assert set(s) == {
        "beta",
        "b0",
        "gamma",
        "mu_beta",
        "prec_beta",
        "mu_gamma",
        "prec_gamma",
        "prec",
    }
    assert s["gamma"].shape == (2, SAMPLES, 2, 2)
    assert s["prec_gamma"].shape == (2, SAMPLES, 2, 2)
    assert all(np.all(np.isfinite(v)) for v in s.values())
    # The two chains start from different points and are not copies.
    assert not np.allclose(s["beta"][0], s["beta"][1])


def test_info_reports_acceptance_and_loglik(run):
    _, mcmc, _ = run
    info = mcmc.get_extra_fields(group_by_chain=True)["info"]
    assert info.accept_rw.shape == (2, SAMPLES, 2)
    assert np.all(np.isnan(info.accept_prior))  # not in the default proposal
    assert np.all(info.accept_flip >= 0)
    rate = np.mean(info.accept_rw)
    assert 0.15 < rate < 0.5, rate  # adapted toward 0.3
    for rate in (info.accept_scale, info.accept_group, info.accept_sigma_beta):
        assert 0.25 < np.mean(rate) < 0.65, np.mean(rate)  # adapted toward 0.44
    assert info.accept_group.shape == (2, SAMPLES)
    # adapted toward 0.7 (in 200 warm-up sweeps it may stay on the high side)
    assert 0.4 < np.mean(info.accept_hmc) < 0.99
    assert np.all(np.isfinite(info.loglik))


def test_adaptation_stops_after_warmup(run):
    _, mcmc, _ = run
    fields = mcmc.get_extra_fields(group_by_chain=True)
    log_scale = np.asarray(fields["proposal.log_scale"])
    assert np.all(log_scale == log_scale[:, :1])  # frozen while sampling
    assert not np.allclose(log_scale[:, 0], np.log(2.38 / np.sqrt(2)))  # but adapted
    np.testing.assert_array_equal(
        fields["i"][0], np.arange(WARMUP + 1, WARMUP + SAMPLES + 1)
    )


def test_sampling_does_not_mutate_the_kernel(run):
    kernel, mcmc, before = run
    # init, 400 traced calls of sample and postprocessing left the kernel alone.
    assert vars(kernel) == before
    assert int(mcmc.last_state.i[0]) == WARMUP + SAMPLES


def test_print_summary_lists_sites(run, capsys):
    _, mcmc, _ = run
    mcmc.print_summary()
    out = capsys.readouterr().out
    assert "prec_beta" in out and "r_hat" in out


def test_kernel_without_bias_and_with_init_params(data):
    init = {
        "beta": jnp.zeros(2),
        "gamma": jnp.asarray([[0.0, 1.0], [0.0, -1.0]]),
        "mu_beta": 0.0,
        "prec_beta": 1.0,
        "mu_gamma": jnp.zeros(2),
        "prec_gamma": jnp.eye(2),
        "prec": 1.0,
    }
    kernel = BlockedGibbs(2, bias=False, proposal="rw+prior")
    mcmc = MCMC(kernel, num_warmup=30, num_samples=30, progress_bar=False)
    mcmc.run(jax.random.key(1), *data, init_params=init)
    s = mcmc.get_samples()
    assert "b0" not in s and np.all(np.isfinite(s["beta"]))
    info = mcmc.get_extra_fields()["info"]
    assert np.all(np.isnan(info.accept_scale)) and np.all(info.accept_prior >= 0)


def test_kernel_rejects_bad_arguments(data):
    with pytest.raises(ValueError, match="hidden"):
        BlockedGibbs(0)
    with pytest.raises(ValueError, match="proposal"):
        BlockedGibbs(2, proposal="langevin")
    x, y = data
    mcmc = MCMC(BlockedGibbs(2), num_warmup=5, num_samples=5, progress_bar=False)
    with pytest.raises(
        ValueError, match=r"y: expected finite values, got y\[3\] = nan"
    ):
        mcmc.run(jax.random.key(0), x, y.at[3].set(jnp.nan))


@pytest.mark.slow
def test_parallel_chains_on_several_devices(tmp_path):
    script = textwrap.dedent(
        """
        import jax, numpy as np
        from numpyro.infer import MCMC
        from jaxseq.bayes import BlockedGibbs, sine_data
        assert jax.local_device_count() == 2
        x, y = sine_data(1, 40)
        mcmc = MCMC(BlockedGibbs(2), num_warmup=50, num_samples=50, num_chains=2,
                    chain_method="parallel", progress_bar=False)
        mcmc.run(jax.random.key(0), x, y)
        g = mcmc.get_samples(group_by_chain=True)["gamma"]
        assert g.shape == (2, 50, 2, 2) and np.isfinite(g).all()
        print("ok")
        """
    )
    env = dict(
        os.environ,
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
        JAX_PLATFORMS="cpu",
    )
    out = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")
