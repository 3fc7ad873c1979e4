"""Chains split over devices: the driver's shards, their agreement with one device,
and the CLI's one CPU device per core."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jaxseq.bayes import default_prior, driver
from jaxseq.bayes.cli import _keys


@pytest.mark.parametrize(
    ("chains", "devices", "shards"),
    [(4, 2, 2), (4, 1, 1), (3, 2, 1), (6, 4, 3), (8, 16, 8), (1, 8, 1), (5, 5, 5)],
)
def test_chain_shards_is_the_largest_divisor_within_the_devices(
    chains, devices, shards
):
    assert driver.chain_shards(chains, devices) == shards


@pytest.mark.parametrize("shards", [0, 3, 10_000])
def test_bad_shards_are_named(shards):
    x, y = np.linspace(-1, 1, 8)[:, None], np.linspace(0, 1, 8)
    with pytest.raises(ValueError, match=r"shards: expected a divisor of num_chains"):
        driver.run_chains(
            jax.random.key(0), x, y, driver.GibbsConfig(1), default_prior(1),
            num_warmup=0, num_samples=1, num_chains=4, shards=shards,
        )  # fmt: skip


def test_no_device_change_once_the_backend_started():
    """Called in a process whose backend runs (as here, or a CLI called from a
    test), it changes nothing."""
    jax.devices()  # the backend has started
    before = jax.local_device_count()
    assert driver.cpu_devices_per_core() is None
    assert jax.local_device_count() == before


def test_cli_keys_come_from_the_seed():
    a, b = _keys(0, 3), _keys(0, 3)
    data = lambda keys: [tuple(np.asarray(jax.random.key_data(k))) for k in keys]
    assert data(a) == data(b) and len(set(data(a))) == 3
    assert data(_keys(1, 3)) != data(a)
    assert jax.random.key_impl(a[0]) == jax.random.key_impl(jax.random.key(0))


def _script(code: str, **env) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "JAX_PLATFORMS": "cpu", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.mark.slow
def test_cli_makes_one_cpu_device_per_core():
    flags = os.environ.get("XLA_FLAGS", "").replace(driver._XLA_DEVICE_FLAG, "")
    out = _script(
        """
        import os, jax
        from jaxseq.bayes import default_prior, driver
        cores = len(os.sched_getaffinity(0))
        set_to = driver.cpu_devices_per_core()
        if cores > 1:
            assert set_to == cores and jax.local_device_count() == cores, set_to
        else:
            assert set_to is None and jax.local_device_count() == 1
        assert driver.cpu_devices_per_core() is None  # chosen already
        print("ok")
        """,
        XLA_FLAGS=flags,
    )
    assert out.strip() == "ok"
    # a device count in XLA_FLAGS is the user's: left alone
    out = _script(
        """
        import jax
        from jaxseq.bayes import default_prior, driver
        assert driver.cpu_devices_per_core() is None
        print(jax.local_device_count())
        """,
        XLA_FLAGS=f"{flags} {driver._XLA_DEVICE_FLAG}=3",
    )
    assert out.strip() == "3"


@pytest.mark.slow
def test_chains_split_over_two_devices_match_one_device():
    """Each chain's draws are its own: the same chain on one device (all chains
    vectorised there) and on two (half of them on each) agree to float
    rounding over the first sweeps; the sharded state stays split. (Rounding
    differs with the batch size, and a Metropolis decision can turn on it, so
    only the first sweeps are compared draw by draw.)"""
    out = _script(
        """
        import jax, numpy as np
        jax.config.update("jax_num_cpu_devices", 2)
        from jaxseq.bayes import default_prior, driver, sine_data
        x, y = sine_data(3, 40)
        x, y = (x - x.mean()) / x.std(), (y - y.mean()) / y.std()
        assert driver.chain_shards(4) == 2
        runs = [
            driver.run_chains(
                jax.random.key(5), x, y, driver.GibbsConfig(2), default_prior(1),
                num_warmup=0, num_samples=4, num_chains=4, shards=shards,
            )
            for shards in (1, 2)
        ]
        one, two = runs
        for a, b in zip(one.position, two.position):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        assert len(two.state.z.gamma.sharding.device_set) == 2
        assert len(one.state.z.gamma.sharding.device_set) == 1
        print("ok")
        """
    )
    assert out.strip().endswith("ok")
