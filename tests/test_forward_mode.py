"""Forward-mode autodiff (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``) of jitted
functions through every runner, with ``impl="autodiff"``.

The tangents are checked against two independent derivatives: the reverse mode
of the hand-written fused backward (``<u, J v> == <J^T u, v>``) and central
finite differences in float64.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq

B, T, F, H = 3, 6, 2, 4
LENGTHS = jnp.array([6, 2, 0])
CELLS = {
    "lstm": jaxseq.cells.lstm,
    "gru": jaxseq.cells.gru,
    "elman": jaxseq.cells.elman,
}


def _inputs(dtype=jnp.float32):
    xs = jax.random.normal(jax.random.key(1), (B, T, F), dtype)
    v = jax.random.normal(jax.random.key(2), (B, T, F), dtype)
    return xs, v


def _check_jvp_against_vjp(f_fwd, f_rev, xs, v):
    """``jvp(jit(f_fwd))`` against ``<J^T u, v>`` from ``vjp(f_rev)``."""
    y, t = jax.jvp(jax.jit(f_fwd), (xs,), (v,))
    y_rev, vjp = jax.vjp(jax.jit(f_rev), xs)
    np.testing.assert_allclose(y, y_rev, rtol=1e-5, atol=1e-6)
    u = jax.random.normal(jax.random.key(3), y.shape, y.dtype)
    (ju,) = jax.jit(vjp)(u)
    np.testing.assert_allclose(jnp.vdot(u, t), jnp.vdot(ju, v), rtol=1e-4, atol=1e-5)
    return t


@pytest.mark.parametrize(
    ("name", "reverse"), [("lstm", False), ("gru", True), ("elman", True)]
)
def test_rnn_jvp_under_jit_equals_reverse_mode(name, reverse):
    cell = CELLS[name](H)
    params = cell.init(jax.random.key(0), F)
    xs, v = _inputs()

    def f(impl):
        def run(x):
            carry, ys = jaxseq.rnn(
                cell, params, x, lengths=LENGTHS, reverse=reverse, impl=impl
            )
            leaves = [ys, *jax.tree.leaves(carry)]
            return jnp.concatenate([jnp.ravel(a) for a in leaves])

        return run

    _check_jvp_against_vjp(f("autodiff"), f("fused"), xs, v)


def test_jvp_equals_finite_differences(x64):
    cell = jaxseq.cells.lstm(H, dtype=jnp.float64)
    params = cell.init(jax.random.key(0), F)
    xs, v = _inputs(jnp.float64)

    def f(x):
        return jaxseq.rnn(cell, params, x, lengths=LENGTHS, impl="autodiff")[1]

    f = jax.jit(f)
    _, t = jax.jvp(f, (xs,), (v,))
    eps = 1e-6
    fd = (f(xs + eps * v) - f(xs - eps * v)) / (2 * eps)
    np.testing.assert_allclose(t, fd, rtol=1e-6, atol=1e-8)


def test_jacfwd_of_params_under_jit_equals_jacrev():
    cell = jaxseq.cells.gru(H)
    params = cell.init(jax.random.key(0), F)
    xs, _ = _inputs()

    def f(impl):
        def run(p):
            return jaxseq.rnn(cell, p, xs, lengths=LENGTHS, impl=impl)[0].h

        return run

    fwd = jax.jit(jax.jacfwd(jax.jit(f("autodiff"))))(params)
    rev = jax.jit(jax.jacrev(f("fused")))(params)
    for a, b in zip(jax.tree.leaves(fwd), jax.tree.leaves(rev), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_hessian_under_jit_is_symmetric_and_matches_reverse_over_reverse():
    cell = jaxseq.cells.lstm(2)
    params = cell.init(jax.random.key(0), F)
    xs, _ = _inputs()
    xs = xs[:2, :3]

    def loss(x):
        return jnp.sum(jaxseq.rnn(cell, params, x, impl="autodiff")[1] ** 2)

    hess = jax.hessian(jax.jit(loss))(xs).reshape(xs.size, xs.size)
    want = jax.jit(jax.jacrev(jax.grad(loss)))(xs).reshape(xs.size, xs.size)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(hess, want, rtol=1e-4, atol=1e-5)


def test_bidirectional_jvp_under_jit():
    cell = jaxseq.cells.lstm(H)
    p_fw = cell.init(jax.random.key(0), F)
    p_bw = cell.init(jax.random.key(5), F)
    xs, v = _inputs()

    def f(impl):
        def run(x):
            return jaxseq.bidirectional(
                cell, cell, p_fw, p_bw, x, lengths=LENGTHS, impl=impl
            )[1]

        return run

    _check_jvp_against_vjp(f("autodiff"), f("fused"), xs, v)


def test_stacked_layers_jvp_under_jit():
    cells = [jaxseq.cells.gru(H), jaxseq.cells.lstm(3)]
    layer = {
        impl: jaxseq.stack(cells, bidirectional=True, impl=impl)
        for impl in ("autodiff", "fused")
    }
    params = layer["fused"].init(jax.random.key(0), F)
    xs, v = _inputs()

    def f(impl):
        return lambda x: layer[impl].apply(params, x, lengths=LENGTHS)[1]

    _check_jvp_against_vjp(f("autodiff"), f("fused"), xs, v)


def test_remat_and_unroll_jvp_under_jit():
    cell = jaxseq.cells.elman(H)
    params = cell.init(jax.random.key(0), F)
    xs, v = _inputs()

    def f(impl):
        return lambda x: jaxseq.rnn(
            cell, params, x, lengths=LENGTHS, remat=4, unroll=2, impl=impl
        )[1]

    _check_jvp_against_vjp(f("autodiff"), f("fused"), xs, v)
    # one sequence: jaxseq.unroll
    carry0 = cell.init_carry(params)

    def one(impl):
        return lambda x: jaxseq.unroll(cell, params, carry0, x, length=4, impl=impl)[1]

    _check_jvp_against_vjp(one("autodiff"), one("fused"), xs[0], v[0])


def test_hand_written_backward_is_reverse_mode_only():
    """The documented error of the custom_vjp paths under forward mode."""
    cell = jaxseq.cells.lstm(H)
    params = cell.init(jax.random.key(0), F)
    xs, v = _inputs()

    def f(x):
        return jaxseq.rnn(cell, params, x, impl="fused")[1]

    with pytest.raises(TypeError, match="forward-mode autodiff .* custom_vjp"):
        jax.jvp(jax.jit(f), (xs,), (v,))
    with pytest.raises(TypeError, match="forward-mode autodiff .* custom_vjp"):
        jax.jvp(f, (xs,), (v,))


def test_autodiff_forward_call_runs_the_fused_primal():
    """Without a derivative, ``"autodiff"`` runs ``"auto"``'s fused loop: the same
    outputs as the reference, and no ``custom_vjp`` in the program."""
    cell = jaxseq.cells.gru(H)
    params = cell.init(jax.random.key(0), F)
    xs, _ = _inputs()

    def f(impl):
        return lambda x: jaxseq.rnn(cell, params, x, lengths=LENGTHS, impl=impl)[1]

    np.testing.assert_allclose(f("autodiff")(xs), f("scan")(xs), rtol=1e-5, atol=1e-6)
    text = str(jax.make_jaxpr(f("autodiff"))(xs))
    assert "custom_jvp_call" in text and "custom_vjp_call" not in text


def test_autodiff_impl_on_a_cell_without_a_fused_kernel():
    """A cell without a kernel runs the reference loop: forward mode works."""
    base = jaxseq.cells.gru(H)
    cell = base._replace(kernel=None)
    params = cell.init(jax.random.key(0), F)
    xs, v = _inputs()

    def f(c, impl):
        return lambda x: jaxseq.rnn(c, params, x, lengths=LENGTHS, impl=impl)[1]

    _check_jvp_against_vjp(f(cell, "autodiff"), f(base, "fused"), xs, v)
