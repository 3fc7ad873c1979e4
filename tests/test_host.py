"""jaxseq.host: freed host memory stays in the process, so XLA's per-call buffers
stop faulting in fresh pages (counted with getrusage, not timed)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest

import jaxseq.host

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# A scan whose stacked output (64 MiB) and residual-like temporaries are fresh
# buffers on every call; prints minor page faults per call / pages of 64 MiB.
_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    if sys.argv[1] == "retain":
        import jaxseq.host
        assert jaxseq.host.retain_memory()
    import jax, jax.numpy as jnp
    n = (64 << 20) // 4
    f = jax.jit(lambda x: jax.lax.scan(
        lambda c, r: (c + r, jnp.sin(r) + c), jnp.zeros(4096), x.reshape(-1, 4096)
    )[1].sum())
    x = jnp.ones(n)
    for _ in range(5):
        f(x).block_until_ready()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        f(x).block_until_ready()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    print(faults / 10 / (n * 4 // 4096))
    """
)


def _faults_per_page(mode: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    return float(out.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="retain_memory sets glibc malloc options")
def test_retained_memory_stops_per_call_page_faults():
    default = _faults_per_page("default")
    retained = _faults_per_page("retain")
    # default glibc: a fresh mmap per call, every page of the 64 MiB faulted again
    assert default > 0.9, default
    # retained: most calls reuse the heap; a call whose predecessor's buffers are
    # not yet freed (XLA frees asynchronously) can still grow it once
    assert retained < 0.35, retained


@pytest.mark.skipif(not GLIBC, reason="retain_memory sets glibc malloc options")
def test_late_call_warns_and_says_when_to_call(monkeypatch):
    import jax.numpy as jnp

    jnp.ones(2).block_until_ready()  # the backend is running
    monkeypatch.setattr(jaxseq.host, "_applied", False)
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1

    monkeypatch.setattr(jaxseq.host, "_libc", lambda: FakeLibc())
    with pytest.warns(RuntimeWarning, match="before the first JAX computation"):
        assert jaxseq.host.retain_memory(arenas=2) is True
    assert calls == [(-4, 0), (-1, 2**31 - 1), (-8, 2)]


def test_without_glibc_nothing_is_set(monkeypatch):
    monkeypatch.setattr(jaxseq.host, "_applied", False)
    monkeypatch.setattr(jaxseq.host, "_libc", lambda: None)
    assert jaxseq.host.retain_memory() is False


@pytest.mark.parametrize("arenas", [0, -1, 1.5, True, "1"])
def test_bad_arenas_named(arenas):
    with pytest.raises(ValueError, match=r"arenas: expected a positive int, got"):
        jaxseq.host.retain_memory(arenas=arenas)
