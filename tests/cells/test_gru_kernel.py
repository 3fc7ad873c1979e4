"""The GRU's fused kernels, one step at a time and in compiled memory.

The generic suites (test_cells.py, test_fused.py, test_runner.py,
test_resets.py) compare whole runs of every impl against NumPy and against
autodiff of ``impl="scan"``. Here, for both forms: the kernel's backward step
and its large-matmul gradients (``backward`` then ``grads`` on one-step stacks)
against JAX's autodiff of the cell's own step, in both layouts; and the
reset-after kernel's reverse loop keeping ``3H`` pre-activation gradients per
example and step (``6H`` at batch one), which shows in the compiled gradient's scratch memory.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq._layout import BATCH_MAJOR, FEATURE_MAJOR

from .test_cells import make, random_carry

B, F, H = 3, 2, 4
LAYOUTS = [BATCH_MAJOR, FEATURE_MAJOR]


def _one_step_gradients(cell, lay, params, carry, x, dh):
    """``(dparams, dcarry_prev, dx, dpre)`` of one step through the kernel:
    ``forward``, ``backward`` and ``grads`` (on stacks of one step) in ``lay``;
    arrays given and returned batch-major."""
    k = cell.kernel
    p = lay.prepare(params)
    c = lay.carry(carry)
    xl = lay.steps(x[None])[0]
    _, _, res = k.forward(lay, p, c, k.project(lay, p, xl))
    dprev, dpre = k.backward(lay, lay.prepare_t(params), res, c, lay.carry(dh))
    stack = lambda tree: jax.tree.map(lambda a: a[None], tree)  # noqa: E731
    dparams, dxs = k.grads(lay, p, stack(xl), stack(c), stack(res), stack(dpre))
    return dparams, lay.carry(dprev), lay.steps(dxs)[0], dpre


@pytest.mark.parametrize("name", ["gru", "gru_seed"])
@pytest.mark.parametrize("lay", LAYOUTS, ids=lambda lay: lay.name)
@pytest.mark.parametrize("batch", [B, 1])  # 1: the reset-after form stacks both sides
def test_kernel_step_gradients_match_autodiff_of_the_step(name, lay, batch, key):
    cell, params = make(name, key, hidden=H, features=F)
    carry = random_carry(cell, params, jax.random.key(1), batch=(batch,))
    x = jax.random.normal(jax.random.key(2), (batch, F))
    dh = jax.random.normal(jax.random.key(3), (batch, H))
    dh = cell.init_carry(params)._replace(h=dh)  # the step's carry gradient
    _, vjp = jax.vjp(lambda p, c, x: cell.step(p, c, x)[0], params, carry, x)
    want = vjp(dh)
    dparams, dprev, dx, _ = _one_step_gradients(cell, lay, params, carry, x, dh)
    got = (dparams, dprev, dx)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("lay", LAYOUTS, ids=lambda lay: lay.name)
@pytest.mark.parametrize("batch,per_example", [(B, 3 * H), (1, 6 * H)])
def test_reset_after_backward_stacks_3h_per_example(lay, batch, per_example, key):
    """The reverse loop stacks the input side's pre-activation gradients only
    (``[da_r, da_z]`` and ``da_n``): the recurrent side's differs in the
    candidate block alone and is formed after the loop. At batch one both
    sides are stacked (one matmul per weight gradient)."""
    cell, params = make("gru", key, hidden=H, features=F)
    carry = random_carry(cell, params, jax.random.key(1), batch=(batch,))
    x = jax.random.normal(jax.random.key(2), (batch, F))
    dh = carry._replace(h=jnp.ones((batch, H)))
    dpre = _one_step_gradients(cell, lay, params, carry, x, dh)[3]
    assert sum(a.size for a in jax.tree.leaves(dpre)) == batch * per_example


@pytest.mark.parametrize("impl", ["fused", "fused_fm"])
def test_reset_after_gradient_scratch_below_autodiff_loop(impl, key):
    """The fused gradient's compiled scratch memory is below autodiff's of the
    reference loop (which keeps more per step than the kernel's residuals and
    ``3H`` pre-activation gradients); a property of the program XLA builds."""
    batch, time, features, hidden = 16, 64, 8, 32
    cell, params = make("gru", key, hidden=hidden, features=features)
    xs = jnp.ones((batch, time, features))

    def temp_bytes(impl):
        f = jax.jit(
            jax.grad(lambda p, x: jaxseq.rnn(cell, p, x, impl=impl)[1].sum(), (0, 1))
        )
        return f.lower(params, xs).compile().memory_analysis().temp_size_in_bytes

    assert temp_bytes(impl) < temp_bytes("scan")
