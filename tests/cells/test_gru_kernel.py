"""The GRU's fused kernels, one step at a time and in compiled memory.

The generic suites (test_cells.py, test_fused.py, test_runner.py,
test_resets.py) compare whole runs of every impl against NumPy and against
autodiff of ``impl="scan"``. Here, for both forms: the kernel's backward step
and its large-matmul gradients (``backward`` then ``grads`` on one-step stacks)
against JAX's autodiff of the cell's own step, in both layouts; and the
reset-after kernel's reverse loop writing its pre-activation gradients over the
forward's residuals (``6H`` per example stacked at batch one), against the same
kernel stacking them afresh and autodiff, and in the compiled gradient's scratch
memory.
"""

from __future__ import annotations

from functools import partial

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
def test_reset_after_backward_returns_gradients_shaped_as_residuals(lay, key):
    """The reverse loop writes ``([da_r, da_z], da_n, da_n r)`` over the step's
    residuals ``([r, z], n, u_n)``, so the backward returns them in the
    residuals' structure, shapes and dtypes; at batch one it stacks both
    sides' gradients instead (``6H`` per example, one matmul per weight)."""
    cell, params = make("gru", key, hidden=H, features=F)
    k = cell.kernel
    assert k.overwrite
    for batch, shaped_as_res in [(B, True), (1, False)]:
        carry = random_carry(cell, params, jax.random.key(1), batch=(batch,))
        x = jax.random.normal(jax.random.key(2), (batch, F))
        p, c = lay.prepare(params), lay.carry(carry)
        xl = lay.steps(x[None])[0]
        _, _, res = k.forward(lay, p, c, k.project(lay, p, xl))
        dh = c._replace(h=jnp.ones_like(c.h))
        _, dpre = k.backward(lay, lay.prepare_t(params), res, c, dh)
        shapes = partial(jax.tree.map, lambda a: (a.shape, a.dtype))
        same = jax.tree.structure(dpre) == jax.tree.structure(res) and shapes(
            dpre
        ) == shapes(res)
        assert same == shaped_as_res
        per_example = 4 * H if shaped_as_res else 6 * H
        assert sum(a.size for a in jax.tree.leaves(dpre)) == batch * per_example


def _grad_fn(cell, impl, lengths=None, reverse=False, unroll=None, remat=None):
    def loss(p, x, c):
        ys = jaxseq.rnn(
            cell, p, x, carry0=c, lengths=lengths, reverse=reverse, impl=impl,
            unroll=unroll, remat=remat,
        )[1]  # fmt: skip
        return jnp.sum(ys * jnp.cos(ys))  # a gradient that differs per step

    return jax.jit(jax.grad(loss, (0, 1, 2)))


def _stacked(cell):
    """The same cell with its reverse loop stacking ``dpre`` afresh."""
    return cell._replace(kernel=cell.kernel._replace(overwrite=False))


@pytest.mark.parametrize("impl", ["fused", "fused_fm"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("unroll", [None, 2])
def test_gradients_written_over_residuals_match_stacked_and_autodiff(
    impl, reverse, unroll, key
):
    """The gradient with the reverse loop writing over the residuals (``unroll``
    1; stacking afresh when unrolled) equals the same kernel's stacking its
    gradients afresh and autodiff of the reference loop, with lengths, in
    either direction (the loop then reads the residuals forwards in time)."""
    batch, time, hidden = 5, 7, 6
    cell, params = make("gru", key, hidden=hidden, features=F)
    xs = jax.random.normal(jax.random.key(1), (batch, time, F))
    c0 = random_carry(cell, params, jax.random.key(2), batch=(batch,))
    lengths = jnp.array([7, 3, 0, 5, 1])
    args = (params, xs, c0)
    got = _grad_fn(cell, impl, lengths, reverse, unroll)(*args)
    stacked = _grad_fn(_stacked(cell), impl, lengths, reverse, unroll)(*args)
    want = _grad_fn(cell, "scan", lengths, reverse)(*args)
    for a, b, c in zip(*map(jax.tree.leaves, (got, stacked, want)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(a, c, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("reverse", [False, True])
def test_gradients_written_over_residuals_with_remat(reverse, key):
    """With gradient checkpointing each block's reverse loop writes over that
    block's recomputed residuals (blocks of 3 steps, 7 steps in all)."""
    batch, time, hidden = 4, 7, 6
    cell, params = make("gru", key, hidden=hidden, features=F)
    xs = jax.random.normal(jax.random.key(1), (batch, time, F))
    c0 = random_carry(cell, params, jax.random.key(2), batch=(batch,))
    lengths = jnp.array([7, 2, 6, 4])
    args = (params, xs, c0)
    got = _grad_fn(cell, "fused", lengths, reverse, remat=3)(*args)
    want = _grad_fn(cell, "scan", lengths, reverse)(*args)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("impl", ["fused", "fused_fm"])
def test_backward_written_over_residuals_allocates_no_stacks(impl, key):
    """Compiled scratch memory: writing the pre-activation gradients over the
    residuals saves (nearly) all of the ``4H`` per example and step the same
    kernel allocates when it stacks them afresh, i.e. XLA updates the
    residuals in place rather than copying them; an unrolled reverse loop
    stacks afresh (no saving)."""
    batch, time, features, hidden = 16, 64, 8, 32
    cell, params = make("gru", key, hidden=hidden, features=features)
    xs = jnp.ones((batch, time, features))
    c0 = random_carry(cell, params, jax.random.key(2), batch=(batch,))

    def temp_bytes(c, unroll=None):
        f = _grad_fn(c, impl, unroll=unroll)
        return f.lower(params, xs, c0).compile().memory_analysis().temp_size_in_bytes

    stacks = time * batch * 4 * hidden * 4  # (da_rz, da_n, du_n), float32
    saved = temp_bytes(_stacked(cell)) - temp_bytes(cell)
    assert saved >= 0.9 * stacks, (saved, stacks)
    assert temp_bytes(cell, unroll=2) == temp_bytes(_stacked(cell), unroll=2)


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
