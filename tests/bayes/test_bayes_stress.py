"""The Gibbs sampler never hangs in jaxlib's batched LAPACK (issue 14).

At n = 2000, m = 8 with 4 vectorised chains the sweep used to hang forever: the
beta block's ``jnp.linalg.qr`` became a batched LAPACK call, which jaxlib 0.10
splits over XLA's CPU thread pool and then waits for while holding a pool thread;
two such calls at once on a two-thread pool wait for each other. Two checks:

* deterministic: the compiled, vmapped sweep contains no custom call at all (all
  linear algebra is plain XLA; :mod:`jaxseq.bayes._linalg`);
* end to end: the sampler at that size, in a subprocess pinned to two CPUs (a
  two-thread pool, as on the machine that hung) and under a time limit, so a
  regression fails instead of hanging the suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import jax
import pytest

from jaxseq.bayes import BlockedGibbs, moves, sine_data

STRESS = textwrap.dedent(
    """
    import os
    import time
    if hasattr(os, "sched_setaffinity"):  # XLA sizes its CPU pool from the affinity
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    import jax
    import numpy as np
    from jaxseq.bayes import run_gibbs, sine_data

    x, y = sine_data(0, 2000)
    x, y = (x - x.mean()) / x.std(), (y - y.mean()) / y.std()
    start = time.perf_counter()
    mcmc = run_gibbs(jax.random.key(0), x, y, hidden=8, num_warmup=10,
                     num_samples=10, num_chains=4, chain_method="vectorized")
    gamma = mcmc.get_samples(group_by_chain=True)["gamma"]
    assert gamma.shape == (4, 10, 8, 2) and np.isfinite(gamma).all()
    print(f"ok {time.perf_counter() - start:.1f} s")
    """
)


def _custom_calls(kind: str) -> set[str]:
    x, y = sine_data(0, 30)
    kernel = BlockedGibbs(3, proposal=kind)
    keys = jax.random.split(jax.random.key(0), 4)
    state = kernel.init(keys, 10, None, (x, y), {})
    text = jax.jit(lambda s: kernel.sample(s, (x, y), {})).lower(state).as_text()
    text += (
        jax.jit(lambda k: kernel.init(k, 10, None, (x, y), {})).lower(keys).as_text()
    )
    assert "func.func" in text  # the lowered module is there to search
    return set(re.findall(r"custom_call\s*@(\w+)", text))


@pytest.mark.parametrize("kind", [moves.DEFAULT, "rw+prior"])
def test_vmapped_sweep_has_no_lapack_custom_call(kind):
    assert _custom_calls(kind) == set()


@pytest.mark.slow
def test_gibbs_at_n2000_m8_four_chains_finishes(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    try:
        out = subprocess.run(
            [sys.executable, "-c", STRESS],
            env=env,
            capture_output=True,
            text=True,
            # Compiling the sweep takes 30-60 s on a loaded two-core machine and
            # sampling about 2 s; the old code never finished.
            timeout=400,
            cwd=tmp_path,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(
            "the Gibbs sampler at n=2000, m=8, 4 chains did not finish in 400 s"
        )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("ok"), out.stdout
