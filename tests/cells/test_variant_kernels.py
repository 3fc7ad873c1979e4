"""The fused kernels of the cell variants (hand-written backward): the peephole
LSTM (built from the LSTM's pieces), the LayerNorm LSTM (through three layer
norms) and the LayerNorm GRU (the reset-after GRU's pieces and two layer norms).

Their values against the NumPy equations and their gradients against autodiff
of ``impl="scan"`` on every impl, with lengths, reverse and resets, are in the
generic suites (``ALL_CELLS`` in test_cells.py, which test_fused.py,
test_runner.py and test_resets.py read; the LayerNorm GRU's in
test_layernorm_gru_kernel.py). Here, for each: the kernel's equations
are the cell's step in both layouts, ``impl="auto"`` runs the kernel, its
backward against central finite differences (float64, independent of JAX's
autodiff), checkpointing, a learned initial state, and (peephole) forward mode
under ``jit``; (LayerNorm) bfloat16.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxseq
from jaxseq._layout import BATCH_MAJOR, FEATURE_MAJOR
from jaxseq.cells import layernorm_gru, layernorm_lstm, learned_init, peephole_lstm

from .test_new_cells import make, random_carry

B, T, F, H = 3, 6, 2, 4
LENGTHS = np.array([6, 2, 0])
RESETS = np.zeros((B, T), bool)
RESETS[0, 3] = RESETS[1, 1] = True


def _far_peepholes(params):
    """Peepholes far from zero, so that every peephole term of the backward
    (``dC += do p_o``, ``dC_{t-1} += di p_i + df p_f``, the ``dw_c`` sums) counts."""
    return params._replace(w_c=params.w_c + jnp.linspace(-1.5, 1.5, params.w_c.size))


#: name -> (factory, parameters moved off their initial values for the
#: finite-difference test, the parameter fields whose gradient must be nonzero,
#: a hidden size at which ``impl="auto"`` runs the kernel: outside the cell
#: tuning's autodiff range)
VARIANTS = {
    "peephole_lstm": (peephole_lstm, _far_peepholes, ("w_c",), 8),
    # make() already draws every gain and bias away from its initial value, so
    # each layer norm's derivative (of x W_x after the loop, of h W_h and C_t
    # inside it) is on the path
    "layernorm_lstm": (layernorm_lstm, lambda p: p, ("g_x", "g_h", "g_c", "b_c"), 8),
    "layernorm_gru": (layernorm_gru, lambda p: p, ("g_x", "g_h", "b_x", "b_h"), 40),
}
NAMES = sorted(VARIANTS)
LAYERNORM = [n for n in NAMES if n.startswith("layernorm")]


def _state(carry):
    """The carry's cell state (an LSTM's ``c``), else its ``h`` (a GRU's)."""
    return carry.c if hasattr(carry, "c") else carry.h


def _custom_calls(fn, *args):
    jaxpr = jax.make_jaxpr(fn)(*args)
    return [e.primitive.name for e in jaxpr.eqns if "custom" in e.primitive.name]


@pytest.mark.parametrize("name", NAMES)
def test_kernel_equations_are_the_step_in_both_layouts(name, key):
    cell, params = make(name, key, hidden=H, features=F)
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


@pytest.mark.parametrize("name", NAMES)
def test_default_run_uses_the_kernel(name, key):
    """``impl="auto"`` at a size outside the autodiff range runs the fused
    kernel (its ``custom_vjp``), not the autodiff loop."""
    cell, params = make(name, key, hidden=VARIANTS[name][3], features=F)
    xs = jnp.ones((B, T, F))
    assert _custom_calls(lambda p: jaxseq.rnn(cell, p, xs), params) == [
        "custom_vjp_call"
    ]
    assert _custom_calls(lambda p: jaxseq.rnn(cell, p, xs, impl="scan"), params) == []


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "impl,reverse,kw",
    [
        ("fused", False, dict(lengths=LENGTHS)),
        ("fused_fm", True, dict(lengths=LENGTHS, resets=RESETS)),
        ("fused", True, dict(resets=RESETS)),
        ("hoist", False, dict(lengths=LENGTHS, resets=RESETS)),
        ("fused_fm", False, dict(resets=RESETS)),
    ],
    ids=["fused-lengths", "fused_fm-reverse-lengths-resets", "fused-reverse-resets",
         "hoist-lengths-resets", "fused_fm-resets"],
)  # fmt: skip
def test_hand_written_backward_equals_finite_differences(name, impl, reverse, kw, x64):
    """Reverse mode of the kernel against central differences, with lengths
    and/or resets and a random initial carry."""
    _, perturb, _, _ = VARIANTS[name]
    cell, params = make(name, jax.random.key(0), hidden=3, features=F,
                        dtype=jnp.float64)  # fmt: skip
    params = perturb(params)
    xs = jax.random.normal(jax.random.key(4), (B, T, F), jnp.float64)
    carry0 = random_carry(cell, params, jax.random.key(2), batch=(B,))
    if "lengths" in kw:
        kw = dict(kw, lengths=jnp.asarray(kw["lengths"], jnp.int32))

    def loss(p, xs, c0):
        carry, ys = jaxseq.rnn(cell, p, xs, carry0=c0, impl=impl, reverse=reverse,
                               **kw)  # fmt: skip
        return (ys**2).sum() + (carry.h**3).sum() + jnp.sin(_state(carry)).sum()

    assert _custom_calls(loss, params, xs, carry0) == ["custom_vjp_call"]
    check_grads(jax.jit(loss), (params, xs, carry0), order=1, modes=("rev",))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("impl", ["fused", "fused_fm"])
def test_remat_blocks_give_the_same_gradients(name, impl, key):
    cell, params = make(name, key, hidden=5, features=F)
    xs = jax.random.normal(jax.random.key(1), (B, 7, F))

    def grad(remat):
        def loss(p, x):
            carry, ys = jaxseq.rnn(cell, p, x, lengths=jnp.array([7, 4, 0]),
                                   reverse=True, impl=impl, remat=remat)  # fmt: skip
            return (ys**2).sum() + _state(carry).sum()

        return jax.jit(jax.grad(loss, (0, 1)))(params, xs)

    for a, b in zip(jax.tree.leaves(grad(3)), jax.tree.leaves(grad(None)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("impl", ["fused", "fused_fm", "hoist"])
def test_learned_init_keeps_the_kernel(name, impl, key):
    """learned_init(cell) runs the cell's kernel; outputs and gradients (the
    learned carry's included, through resets) equal autodiff of the reference
    loop, and every variant-specific parameter learns."""
    factory, _, fields, _ = VARIANTS[name]
    cell = learned_init(factory(5), carry_init=jax.nn.initializers.normal(0.5))
    params = cell.init(key, F)
    params = params._replace(inner=make(name, key, hidden=5, features=F)[1])
    xs = jax.random.normal(jax.random.key(3), (B, T, F))

    def loss(p, impl):
        carry, ys = jaxseq.rnn(cell, p, xs, lengths=LENGTHS, reverse=True,
                               resets=RESETS, impl=impl)  # fmt: skip
        return (ys**2).sum() + jnp.sin(_state(carry)).sum(), ys

    @jax.jit
    def both(p):
        return [jax.value_and_grad(loss, has_aux=True)(p, i) for i in (impl, "scan")]

    assert _custom_calls(lambda p: loss(p, impl), params) == ["custom_vjp_call"]
    ((_, ys), g), ((_, ys_ref), g_ref) = both(params)
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert np.abs(np.asarray(_state(g.carry0))).max() > 1e-3
    for field in fields:
        assert np.abs(np.asarray(getattr(g.inner, field))).min() > 1e-7, field


#: "auto" at H = 4 forwards: the LSTM tuning's autodiff range (the kernel's
#: primal loop, derivatives by autodiff of the reference loop)
@pytest.mark.parametrize(
    "impl,hidden,reverse", [("autodiff", 5, True), ("auto", 4, False)]
)
def test_peephole_jvp_under_jit_equals_reverse_mode_of_the_kernel(
    impl, hidden, reverse, key
):
    """Forward mode, jitted, of the params and the inputs together: the
    tangent against ``<J^T u, v>`` from the hand-written backward
    (``impl="fused"``) and against ``jax.jvp`` of ``impl="scan"``."""
    cell, params = make("peephole_lstm", key, hidden=hidden, features=F)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    leaves, treedef = jax.tree.flatten((params, xs))
    keys = jax.random.split(jax.random.key(2), len(leaves))
    v = jax.tree.unflatten(
        treedef,
        [jax.random.normal(k, a.shape) for k, a in zip(keys, leaves, strict=True)],
    )

    def f(impl):
        def run(p, x):
            carry, ys = jaxseq.rnn(cell, p, x, lengths=LENGTHS, reverse=reverse,
                                   resets=RESETS, impl=impl)  # fmt: skip
            leaves = [ys, *jax.tree.leaves(carry)]
            return jnp.concatenate([jnp.ravel(a) for a in leaves])

        return run

    text = str(jax.make_jaxpr(f(impl))(params, xs))
    assert "custom_jvp_call" in text and "custom_vjp_call" not in text
    y, t = jax.jvp(jax.jit(f(impl)), (params, xs), v)
    y_scan, t_scan = jax.jvp(jax.jit(f("scan")), (params, xs), v)
    np.testing.assert_allclose(y, y_scan, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t, t_scan, rtol=1e-4, atol=1e-5)
    y_rev, vjp = jax.vjp(jax.jit(f("fused")), params, xs)
    u = jax.random.normal(jax.random.key(3), y.shape)
    ju = jax.jit(vjp)(u)
    dot = sum(
        jnp.vdot(a, b)
        for a, b in zip(jax.tree.leaves(ju), jax.tree.leaves(v), strict=True)
    )
    np.testing.assert_allclose(y_rev, y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jnp.vdot(u, t), dot, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", LAYERNORM)
def test_layernorm_bfloat16_kernel_close_to_float32(name, key):
    """The kernel in bfloat16 (layer norm statistics in float32): values and
    gradients near the float32 kernel's."""
    cell32, p32 = make(name, key, hidden=8, features=F)
    cell16 = VARIANTS[name][0](8, dtype=jnp.bfloat16)
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
