"""The LayerNorm GRU's fused kernel (hand-written backward, built from the
reset-after GRU's pieces and two layer norms).

Checked as the LN-LSTM's kernel is (test_lstm_variant_kernels.py): the kernel's
equations are the cell's step in both layouts; ``impl="auto"`` runs the kernel;
every impl's outputs against the NumPy equations (tests/cells/reference.py) and
its gradients against autodiff of ``impl="scan"``, with lengths, reverse and
resets; the backward against central finite differences (float64, independent
of JAX's autodiff); checkpointing; a learned initial state; bfloat16.
Recurrent dropout on it is in test_dropout_fused.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxseq
from jaxseq._layout import BATCH_MAJOR, FEATURE_MAJOR
from jaxseq.cells import layernorm_gru, learned_init

from . import reference as ref
from .test_new_cells import make, random_carry

B, T, F, H = 3, 6, 2, 5
LENGTHS = np.array([6, 2, 0])
RESETS = np.zeros((B, T), bool)
RESETS[0, 3] = RESETS[1, 1] = True
IMPLS = ["fused", "fused_fm", "hoist", "autodiff", "fm_autodiff"]
#: the parameter fields that exist only through the layer norms (make() draws
#: every gain and bias away from its initial value, so each LN's derivative counts)
LN_FIELDS = ("g_x", "g_h", "b_x", "b_h")


def _custom_calls(fn, *args):
    jaxpr = jax.make_jaxpr(fn)(*args)
    return [e.primitive.name for e in jaxpr.eqns if "custom" in e.primitive.name]


def test_kernel_equations_are_the_step_in_both_layouts(key):
    cell, params = make("layernorm_gru", key, hidden=H, features=F)
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


def test_step_is_the_numpy_equations(key):
    cell, params = make("layernorm_gru", key, hidden=H, features=F)
    h = np.asarray(random_carry(cell, params, jax.random.key(1)).h)
    x = np.asarray(jax.random.normal(jax.random.key(2), (F,)))
    _, y = cell.step(params, cell.init_carry(params)._replace(h=jnp.asarray(h)), x)
    want = ref.layernorm_gru_step(params, h, x, 1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("hidden", [H, 40])  # outside the GRU tuning's autodiff range
def test_default_run_uses_the_kernel(hidden, key):
    """``impl="auto"`` runs the fused kernel (its ``custom_vjp``), not the
    autodiff loop; ``impl="scan"`` does not."""
    cell, params = make("layernorm_gru", key, hidden=hidden, features=F)
    xs = jnp.ones((B, T, F))
    assert _custom_calls(lambda p: jaxseq.rnn(cell, p, xs), params) == [
        "custom_vjp_call"
    ]
    assert _custom_calls(lambda p: jaxseq.rnn(cell, p, xs, impl="scan"), params) == []


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reverse", [False, True])
def test_outputs_are_the_numpy_recurrence(impl, reverse, key):
    """Each example's outputs and final state against the NumPy equations run
    over its valid prefix (right to left if ``reverse``), from a random carry."""
    cell, params = make("layernorm_gru", key, hidden=H, features=F)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    carry0 = random_carry(cell, params, jax.random.key(2), batch=(B,))
    carry, ys = jax.jit(
        lambda p, x, c: jaxseq.rnn(
            cell, p, x, carry0=c, lengths=LENGTHS, reverse=reverse, impl=impl
        )  # fmt: skip
    )(params, xs, carry0)
    step = ref.steppers("layernorm_gru", params)
    for b in range(B):
        (h,), want = ref.run(step, (carry0.h[b],), np.asarray(xs[b]), LENGTHS[b],
                             reverse)  # fmt: skip
        np.testing.assert_allclose(ys[b], want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(carry.h[b], h, rtol=1e-4, atol=1e-5)


def _weighted_loss(cell, impl, **opts):
    def loss(params, xs, carry0):
        carry, ys = jaxseq.rnn(cell, params, xs, carry0=carry0, impl=impl, **opts)
        w = jnp.linspace(0.5, 1.5, ys.size, dtype=ys.dtype).reshape(ys.shape)
        return (w * ys * ys).sum() + jnp.sin(carry.h).sum()

    return jax.jit(jax.value_and_grad(loss, (0, 1, 2)))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "reverse,lengths,resets", [(False, None, None), (True, LENGTHS, RESETS),
                               (False, LENGTHS, RESETS)],
)  # fmt: skip
@pytest.mark.parametrize("batch", [1, B])
def test_gradients_match_autodiff_of_the_scan(
    impl, reverse, lengths, resets, batch, key
):
    cell, params = make("layernorm_gru", key, hidden=H, features=F)
    xs = jax.random.normal(jax.random.key(1), (batch, T, F))
    carry0 = random_carry(cell, params, jax.random.key(2), batch=(batch,))
    opts = dict(
        reverse=reverse,
        lengths=None if lengths is None else lengths[:batch],
        resets=None if resets is None else resets[:batch],
    )
    v_ref, g_ref = _weighted_loss(cell, "scan", **opts)(params, xs, carry0)
    v_new, g_new = _weighted_loss(cell, impl, **opts)(params, xs, carry0)
    np.testing.assert_allclose(v_new, v_ref, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g_new), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
    for field in LN_FIELDS:
        assert np.abs(np.asarray(getattr(g_ref[0], field))).max() > 1e-3, field


@pytest.mark.parametrize(
    "impl,reverse,kw",
    [
        ("fused", False, dict(lengths=LENGTHS)),
        ("fused_fm", True, dict(lengths=LENGTHS, resets=RESETS)),
        ("fused", True, dict(resets=RESETS)),
        ("hoist", False, dict(lengths=LENGTHS, resets=RESETS)),
    ],
    ids=["fused-lengths", "fused_fm-reverse-lengths-resets", "fused-reverse-resets",
         "hoist-lengths-resets"],
)  # fmt: skip
def test_hand_written_backward_equals_finite_differences(impl, reverse, kw, x64):
    cell, params = make("layernorm_gru", jax.random.key(0), hidden=3, features=F,
                        dtype=jnp.float64)  # fmt: skip
    xs = jax.random.normal(jax.random.key(4), (B, T, F), jnp.float64)
    carry0 = random_carry(cell, params, jax.random.key(2), batch=(B,))
    if "lengths" in kw:
        kw = dict(kw, lengths=jnp.asarray(kw["lengths"], jnp.int32))

    def loss(p, xs, c0):
        carry, ys = jaxseq.rnn(cell, p, xs, carry0=c0, impl=impl, reverse=reverse,
                               **kw)  # fmt: skip
        return (ys**2).sum() + (carry.h**3).sum()

    assert _custom_calls(loss, params, xs, carry0) == ["custom_vjp_call"]
    check_grads(jax.jit(loss), (params, xs, carry0), order=1, modes=("rev",))


@pytest.mark.parametrize("impl", ["fused", "fused_fm"])
def test_remat_blocks_give_the_same_gradients(impl, key):
    cell, params = make("layernorm_gru", key, hidden=H, features=F)
    xs = jax.random.normal(jax.random.key(1), (B, 7, F))

    def grad(remat):
        def loss(p, x):
            carry, ys = jaxseq.rnn(cell, p, x, lengths=jnp.array([7, 4, 0]),
                                   reverse=True, impl=impl, remat=remat)  # fmt: skip
            return (ys**2).sum() + jnp.sin(carry.h).sum()

        return jax.jit(jax.grad(loss, (0, 1)))(params, xs)

    for a, b in zip(jax.tree.leaves(grad(3)), jax.tree.leaves(grad(None)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", ["fused", "fused_fm", "hoist"])
def test_learned_init_keeps_the_kernel(impl, key):
    """learned_init(layernorm_gru) runs the kernel; outputs and gradients (the
    learned carry's included, through resets) equal autodiff of the reference
    loop, and every layer-norm parameter learns."""
    cell = learned_init(layernorm_gru(H), carry_init=jax.nn.initializers.normal(0.5))
    params = cell.init(key, F)
    params = params._replace(inner=make("layernorm_gru", key, hidden=H, features=F)[1])
    xs = jax.random.normal(jax.random.key(3), (B, T, F))

    def loss(p, impl):
        carry, ys = jaxseq.rnn(cell, p, xs, lengths=LENGTHS, reverse=True,
                               resets=RESETS, impl=impl)  # fmt: skip
        return (ys**2).sum() + jnp.sin(carry.h).sum(), ys

    @jax.jit
    def both(p):
        return [jax.value_and_grad(loss, has_aux=True)(p, i) for i in (impl, "scan")]

    assert _custom_calls(lambda p: loss(p, impl), params) == ["custom_vjp_call"]
    ((_, ys), g), ((_, ys_ref), g_ref) = both(params)
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert np.abs(np.asarray(g.carry0.h)).max() > 1e-3
    for field in LN_FIELDS:
        assert np.abs(np.asarray(getattr(g.inner, field))).min() > 1e-7, field


def test_bfloat16_kernel_close_to_float32(key):
    """The kernel in bfloat16 (layer norm statistics in float32): values and
    gradients near the float32 kernel's."""
    cell32, p32 = make("layernorm_gru", key, hidden=8, features=F)
    cell16 = layernorm_gru(8, dtype=jnp.bfloat16)
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
