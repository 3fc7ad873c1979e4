"""The LN-LSTM's fused kernel (hand-written backward through three layer norms).

Its values against the NumPy equations and its gradients against autodiff of
``impl="scan"`` on every impl, with lengths, reverse and resets, are in the
generic suites (``ALL_CELLS`` in test_cells.py, which test_fused.py,
test_runner.py and test_resets.py read). Here: the kernel's equations are the
cell's step in both layouts, ``impl="auto"`` runs the kernel, its backward
against central finite differences (float64, independent of JAX's autodiff),
checkpointing, and a learned initial state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxseq
from jaxseq._layout import BATCH_MAJOR, FEATURE_MAJOR
from jaxseq.cells import layernorm_lstm, learned_init

from .test_new_cells import make, random_carry

B, T, F, H = 3, 6, 2, 4
LENGTHS = np.array([6, 2, 0])
RESETS = np.zeros((B, T), bool)
RESETS[0, 3] = RESETS[1, 1] = True


def _custom_calls(fn, *args):
    jaxpr = jax.make_jaxpr(fn)(*args)
    return [e.primitive.name for e in jaxpr.eqns if "custom" in e.primitive.name]


def test_kernel_equations_are_the_step_in_both_layouts(key):
    cell, params = make("layernorm_lstm", key, hidden=H, features=F)
    carry = random_carry(cell, params, jax.random.key(1), batch=(B,))
    x = jax.random.normal(jax.random.key(2), (B, F))
    eq = cell.kernel.equations
    want = cell.step(params, carry, x)
    got_bm = eq(BATCH_MAJOR, params, carry, x)
    fm = FEATURE_MAJOR
    got_fm = eq(fm, fm.prepare(params), fm.carry(carry), x.T)
    got_fm = (fm.carry(got_fm[0]), got_fm[1].T)
    for got in (got_bm, got_fm):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_default_run_uses_the_kernel(key):
    """``impl="auto"`` at a size outside the autodiff range runs the fused
    kernel (its ``custom_vjp``), not the autodiff loop."""
    cell, params = make("layernorm_lstm", key, hidden=8, features=F)
    xs = jnp.ones((B, T, F))
    assert _custom_calls(lambda p: jaxseq.rnn(cell, p, xs), params) == [
        "custom_vjp_call"
    ]
    assert _custom_calls(lambda p: jaxseq.rnn(cell, p, xs, impl="scan"), params) == []


#: lengths or resets, not both: in float64 their combination trips the strict
#: dtype promotion of this directory (int32 lengths against an int64 range)
@pytest.mark.parametrize(
    "impl,reverse,kw",
    [
        ("fused", False, dict(lengths=LENGTHS)),
        ("fused_fm", True, dict(lengths=LENGTHS)),
        ("fused", True, dict(resets=RESETS)),
        ("hoist", False, dict(resets=RESETS)),
        ("fused_fm", False, dict(resets=RESETS)),
    ],
    ids=["fused-lengths", "fused_fm-reverse-lengths", "fused-reverse-resets",
         "hoist-resets", "fused_fm-resets"],
)  # fmt: skip
def test_hand_written_backward_equals_finite_differences(impl, reverse, kw, x64):
    """Reverse mode of the kernel against central differences, with lengths or
    resets, a random initial carry and every gain and bias away from its initial
    value, so that each layer norm's derivative (of ``x W_x`` after the loop, of
    ``h W_h`` and of ``C_t`` inside it) and every parameter's sum are on the
    path."""
    cell, params = make("layernorm_lstm", jax.random.key(0), hidden=3, features=F,
                        dtype=jnp.float64)  # fmt: skip
    xs = jax.random.normal(jax.random.key(4), (B, T, F), jnp.float64)
    carry0 = random_carry(cell, params, jax.random.key(2), batch=(B,))

    def loss(p, xs, c0):
        carry, ys = jaxseq.rnn(cell, p, xs, carry0=c0, impl=impl, reverse=reverse,
                               **kw)  # fmt: skip
        return (ys**2).sum() + (carry.h**3).sum() + jnp.sin(carry.c).sum()

    assert _custom_calls(loss, params, xs, carry0) == ["custom_vjp_call"]
    check_grads(jax.jit(loss), (params, xs, carry0), order=1, modes=("rev",))


@pytest.mark.parametrize("impl", ["fused", "fused_fm"])
def test_remat_blocks_give_the_same_gradients(impl, key):
    cell, params = make("layernorm_lstm", key, hidden=5, features=F)
    xs = jax.random.normal(jax.random.key(1), (B, 7, F))

    def grad(remat):
        def loss(p, x):
            carry, ys = jaxseq.rnn(cell, p, x, lengths=jnp.array([7, 4, 0]),
                                   reverse=True, impl=impl, remat=remat)  # fmt: skip
            return (ys**2).sum() + carry.c.sum()

        return jax.jit(jax.grad(loss, (0, 1)))(params, xs)

    for a, b in zip(jax.tree.leaves(grad(3)), jax.tree.leaves(grad(None)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", ["fused", "fused_fm", "hoist"])
def test_learned_init_keeps_the_layernorm_kernel(impl, key):
    """learned_init(layernorm_lstm) runs the kernel; outputs and gradients (the
    learned carry's included, through resets) equal autodiff of the reference
    loop."""
    cell = learned_init(layernorm_lstm(5), carry_init=jax.nn.initializers.normal(0.5))
    params = cell.init(key, F)
    params = params._replace(inner=make("layernorm_lstm", key, hidden=5, features=F)[1])
    xs = jax.random.normal(jax.random.key(3), (B, T, F))

    def loss(p, impl):
        carry, ys = jaxseq.rnn(cell, p, xs, lengths=LENGTHS, reverse=True,
                               resets=RESETS, impl=impl)  # fmt: skip
        return (ys**2).sum() + jnp.sin(carry.c).sum(), ys

    @jax.jit
    def both(p):
        return [jax.value_and_grad(loss, has_aux=True)(p, i) for i in (impl, "scan")]

    assert _custom_calls(lambda p: loss(p, impl), params) == ["custom_vjp_call"]
    ((_, ys), g), ((_, ys_ref), g_ref) = both(params)
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert np.abs(np.asarray(g.carry0.c)).max() > 1e-3
    for name in ("g_x", "g_h", "g_c", "b_c"):  # every layer norm's gain learns
        assert np.abs(np.asarray(getattr(g.inner, name))).min() > 1e-7, name


def test_bfloat16_kernel_close_to_float32(key):
    """The kernel in bfloat16 (layer norm statistics in float32): values and
    gradients near the float32 kernel's."""
    cell32, p32 = make("layernorm_lstm", key, hidden=8, features=F)
    cell16 = layernorm_lstm(8, dtype=jnp.bfloat16)
    p16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), p32)
    xs = jax.random.normal(jax.random.key(3), (B, T, F))

    def grad(cell, p, xs):
        def loss(p):
            carry, ys = jaxseq.rnn(cell, p, xs, lengths=LENGTHS, impl="fused")
            return (ys.astype(jnp.float32) ** 2).sum(), ys

        return jax.jit(jax.grad(loss, has_aux=True))(p)

    g16, y16 = grad(cell16, p16, xs.astype(jnp.bfloat16))
    g32, y32 = grad(cell32, p32, xs)
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=0.06)
    for a, b in zip(jax.tree.leaves(g16), jax.tree.leaves(g32), strict=True):
        assert a.dtype == jnp.bfloat16
        scale = float(np.abs(np.asarray(b)).max()) + 1e-3
        np.testing.assert_allclose(np.asarray(a, np.float32), b, atol=0.08 * scale)
