"""Gradient flow against closed forms: ``dh_T/dh_t = W^(T-t)`` for a linear Elman
net with a chosen spectrum, ``diag(1 - h_t^2) W`` products for tanh, and the total
derivative ``dL/dh_t`` against an independent restart of the run at step ``t``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq.cells import ElmanParams
from jaxseq.diagnostics import (
    by_lag,
    hidden_grad_norms,
    jacobian_norms,
    jacobian_products,
)

from .closed_forms import (
    linear_elman,
    matrix_with_eigenvalues,
    powers,
    products,
    tanh_elman_reference,
)

LAMBDA = [1.05, 0.9, -0.5, 0.3]  # one eigenvalue outside the unit circle
LAMBDA_C = [0.95 * np.exp(0.4j), 0.95 * np.exp(-0.4j), 0.6, -0.2]  # complex pair


@pytest.mark.parametrize("lam", [LAMBDA, LAMBDA_C], ids=["real", "complex"])
def test_linear_products_are_matrix_powers(lam, x64):
    w = matrix_with_eigenvalues(lam)
    cell, params = linear_elman(w, dtype=jnp.float64)
    xs = jnp.zeros((12, 1))
    got = jacobian_products(cell, params, xs)
    np.testing.assert_allclose(got, powers(w, 12), rtol=1e-10, atol=1e-12)


def test_products_do_not_depend_on_inputs_when_linear():
    """With nonzero input weights and inputs the Jacobian is still ``W^k``."""
    w = matrix_with_eigenvalues(LAMBDA, seed=1)
    cell, params = linear_elman(w, input_size=2)
    params = params._replace(w_x=jnp.arange(1.0, 9.0).reshape(2, 4) / 8)
    xs = jax.random.normal(jax.random.key(0), (10, 2))
    np.testing.assert_allclose(
        jacobian_products(cell, params, xs), powers(w, 10), rtol=2e-5, atol=2e-6
    )


@pytest.mark.parametrize("ord_", ["fro", "spectral"])
def test_linear_norms_match_numpy(ord_):
    w = matrix_with_eigenvalues(LAMBDA_C, seed=2)
    cell, params = linear_elman(w)
    got = jacobian_norms(cell, params, jnp.zeros((3, 40, 1)), ord=ord_)
    np_ord = "fro" if ord_ == "fro" else 2
    want = np.array([np.linalg.norm(p, np_ord) for p in powers(w, 40)])
    assert got.shape == (3, 41)
    np.testing.assert_allclose(got, np.broadcast_to(want, (3, 41)), rtol=1e-4)


@pytest.mark.parametrize("rho", [1.5, 0.8, 0.95])
def test_norm_grows_like_rho_to_the_lag_over_any_range(rho):
    """``log10 ||W^k||`` is exact over 300 steps (``1.5^300 ~ 1e52`` overflows
    float32, ``0.8^300 ~ 1e-29`` is denormal-adjacent) and its slope is
    ``log10(rho)``, ``rho = max |lambda|``."""
    lam = [rho * np.exp(0.3j), rho * np.exp(-0.3j), 0.5 * rho, -0.2]
    w = matrix_with_eigenvalues(lam, seed=3)
    cell, params = linear_elman(w)
    lag = 300
    got = np.asarray(
        jacobian_norms(cell, params, jnp.zeros((lag, 1)), ord="spectral", log10=True)
    )
    want = np.log10([np.linalg.norm(p, 2) for p in powers(w, lag)])
    np.testing.assert_allclose(got, want, atol=2e-3)
    slope = np.polyfit(np.arange(100, lag + 1), got[100:], 1)[0]
    assert slope == pytest.approx(np.log10(rho), abs=1e-3)


def test_norms_without_log_overflow_as_documented():
    w = matrix_with_eigenvalues([1.5, 0.5], seed=4)
    cell, params = linear_elman(w)
    norms = jacobian_norms(cell, params, jnp.zeros((300, 1)))
    assert np.isfinite(norms[:200]).all() and np.isinf(norms[-1])


def test_tanh_elman_matches_numpy_products():
    """``dh_T/dh_{T-k} = D_T ... D_{T-k+1}`` with ``D_t = diag(1 - h_t^2) W``."""
    H, F, T = 5, 3, 15
    rng = np.random.default_rng(5)
    w = 1.3 * rng.standard_normal((H, H)) / np.sqrt(H)
    u = rng.standard_normal((H, F))
    b = 0.1 * rng.standard_normal(H)
    xs = rng.standard_normal((T, F))
    h0 = 0.5 * rng.standard_normal(H)
    cell = jaxseq.cells.elman(H)
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    params = ElmanParams(f32(u.T), f32(w.T), f32(b))
    carry0 = cell.init_carry(params)._replace(h=jnp.asarray(h0, jnp.float32))
    _, ds = tanh_elman_reference(w, u, b, xs, h0)
    want = products(ds)
    x = jnp.asarray(xs, jnp.float32)
    got = jacobian_products(cell, params, x, carry0=carry0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    for ord_, np_ord in [("fro", "fro"), ("spectral", 2)]:
        norms = jacobian_norms(cell, params, x, carry0=carry0, ord=ord_)
        want_n = [np.linalg.norm(p, np_ord) for p in want]
        np.testing.assert_allclose(norms, want_n, rtol=1e-4)


def test_linear_hidden_grad_norms_with_lengths():
    """``L = sum_b u . h_last`` gives ``dL/dh_t = (W^(n - 1 - t))^T u`` for ``t < n``
    and zero on the padding."""
    w = matrix_with_eigenvalues(LAMBDA, seed=6)
    cell, params = linear_elman(w, input_size=2)
    u = np.array([0.3, -1.0, 0.5, 2.0])
    lengths = np.array([8, 5, 1])
    xs = jax.random.normal(jax.random.key(0), (3, 8, 2))
    loss = lambda carry, ys: (carry.h @ jnp.asarray(u, jnp.float32)).sum()
    got = hidden_grad_norms(cell, params, xs, loss, lengths=lengths)
    pw = powers(w, 8)
    for b, n in enumerate(lengths):
        want = [np.linalg.norm(pw[n - 1 - t].T @ u) if t < n else 0.0 for t in range(8)]
        np.testing.assert_allclose(got[b], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        hidden_grad_norms(cell, params, xs, loss, lengths=lengths, wrt="carry"), got
    )


def test_tiny_gradients_do_not_underflow_in_the_norm():
    """``0.5^99 ~ 2e-30`` is a normal float32, but its square is not."""
    w = 0.5 * np.eye(3)
    cell, params = linear_elman(w)
    u = jnp.array([1.0, 2.0, 2.0])
    got = hidden_grad_norms(
        cell, params, jnp.zeros((1, 100, 1)), lambda c, ys: (c.h @ u).sum()
    )
    want = 3.0 * 0.5 ** np.arange(99, -1, -1.0)
    np.testing.assert_allclose(got[0], want, rtol=1e-5)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_gated_products_equal_jacobians_of_the_unrolled_map(name, key):
    """``ds_T/ds_{T-k}`` against ``jax.jacfwd`` of the map ``s_{T-k} -> s_T``
    (a fresh run over the last ``k`` inputs), for the whole carry."""
    cell = getattr(jaxseq.cells, name)(3)
    params = cell.init(key, 2)
    xs = jax.random.normal(jax.random.key(4), (7, 2))
    got = jax.jit(lambda p: jacobian_products(cell, p, xs))(params)
    for k in (3, 7):
        start, _ = jaxseq.unroll(cell, params, cell.init_carry(params), xs[: 7 - k])

        def run(flat, k=k, start=start):
            carry = cell.init_carry(params)
            leaves = jnp.split(flat, len(jax.tree.leaves(carry)))
            carry = jax.tree.unflatten(jax.tree.structure(carry), leaves)
            final, _ = jaxseq.unroll(cell, params, carry, xs[7 - k :], impl="autodiff")
            return jnp.concatenate(jax.tree.leaves(final))

        want = jax.jit(jax.jacfwd(run))(jnp.concatenate(jax.tree.leaves(start)))
        np.testing.assert_allclose(got[k], want, rtol=1e-5, atol=1e-6)
    # wrt="h": the h rows and columns of the whole-state products (for an LSTM,
    # h_T against h_{T-k} with c_{T-k} held fixed)
    norms = jax.jit(lambda p: jacobian_norms(cell, p, xs, wrt="h"))(params)
    want = [np.linalg.norm(np.asarray(p)[:3, :3]) for p in got]
    np.testing.assert_allclose(norms, want, rtol=1e-4)


def _restart_grads(cell, params, xs, u, t):
    """``dL/ds_t`` (per example) by differentiating a fresh run that starts from
    ``s_t``, with ``L = sum_s u . y_s``: the direct term ``u . h_t`` plus every
    later output."""
    carry_t, _ = jaxseq.rnn(cell, params, xs[:, : t + 1])

    def loss(c):
        _, ys = jaxseq.rnn(cell, params, xs[:, t + 1 :], carry0=c)
        return (c.h @ u).sum() + (ys @ u).sum()

    g = jax.jit(jax.grad(loss))(carry_t)
    return g.h, jnp.concatenate(jax.tree.leaves(g), axis=-1)


@pytest.mark.parametrize(("name", "steps"), [("lstm", (0, 4)), ("gru", (2,))])
def test_hidden_grad_norms_equal_restarted_runs(name, steps, key):
    cell = getattr(jaxseq.cells, name)(3)
    params = cell.init(key, 2)
    xs = jax.random.normal(jax.random.key(2), (2, 6, 2))
    u = jnp.array([0.5, -1.0, 2.0])
    loss = lambda c, ys: (ys @ u).sum()
    norms = jax.jit(
        lambda p: [hidden_grad_norms(cell, p, xs, loss, wrt=w) for w in ("h", "carry")]
    )
    got_h, got_c = norms(params)
    for t in steps:
        g_h, g_c = _restart_grads(cell, params, xs, u, t)
        np.testing.assert_allclose(
            got_h[:, t], jnp.linalg.norm(g_h, axis=-1), rtol=1e-5
        )
        np.testing.assert_allclose(
            got_c[:, t], jnp.linalg.norm(g_c, axis=-1), rtol=1e-5
        )


def test_layer_norms_match_cells(key):
    """A stack's top layer sees the layer below as fixed input; a bidirectional
    layer whose loss reads only the forward half has no backward gradient."""
    cell = jaxseq.cells.elman(3)
    xs = jax.random.normal(jax.random.key(3), (2, 5, 2))
    lengths = np.array([5, 3])
    loss = lambda carries, ys: (ys[..., :3] ** 2).sum()

    layer = jaxseq.stack(cell, num_layers=2)
    lp = layer.init(key, 2)
    got = hidden_grad_norms(layer, lp, xs, loss, lengths=lengths)
    assert got.shape == (2, 2, 5)
    _, ys1 = jaxseq.rnn(cell, lp[0], xs, lengths=lengths)
    top = hidden_grad_norms(cell, lp[1], ys1, loss, lengths=lengths)
    np.testing.assert_allclose(got[1], top, rtol=1e-5, atol=1e-7)
    assert (got[0, 1, 3:] == 0).all() and (got[0, :, 0] > 0).all()

    bi = jaxseq.stack(cell, bidirectional=True)
    bp = bi.init(key, 2)
    got = hidden_grad_norms(bi, bp, xs, loss, lengths=lengths)
    assert got.shape == (1, 2, 2, 5)
    fw = hidden_grad_norms(cell, bp[0].fw, xs, loss, lengths=lengths)
    np.testing.assert_allclose(got[0, 0], fw, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(got[0, 1], 0.0)


def test_stack_state_jacobian_is_block_triangular():
    """Two linear layers: ``s = [h1, h2]``, ``h1' = W1 h1``,
    ``h2' = W2 h2 + U2 h1' `` so ``D = [[W1, 0], [U2 W1, W2]]``."""
    w1 = matrix_with_eigenvalues([0.9, -0.4], seed=7)
    w2 = matrix_with_eigenvalues([0.5, 0.2, -0.7], seed=8)
    u2 = np.arange(1.0, 7.0).reshape(3, 2) / 6
    cell1, p1 = linear_elman(w1)
    cell2, p2 = linear_elman(w2, input_size=2)
    p2 = p2._replace(w_x=jnp.asarray(u2.T, jnp.float32))
    layer = jaxseq.stack([cell1, cell2])
    d = np.block([[w1, np.zeros((2, 3))], [u2 @ w1, w2]])
    got = jacobian_products(layer, (p1, p2), jnp.zeros((4, 1)))
    np.testing.assert_allclose(got, powers(d, 4), rtol=1e-5, atol=1e-6)
    top = jacobian_products(layer, (p1, p2), jnp.zeros((4, 1)), wrt="h")
    assert top.shape == (5, 5, 5)  # every layer's h: the whole state here


def test_by_lag_reindexes_from_the_last_valid_step():
    norms = jnp.arange(1.0, 13.0).reshape(1, 3, 4)  # [L, B, T]
    got = by_lag(norms, jnp.array([4, 2, 0]))
    np.testing.assert_array_equal(got[0, 0], [4.0, 3.0, 2.0, 1.0])
    np.testing.assert_array_equal(got[0, 1, :2], [6.0, 5.0])
    assert np.isnan(got[0, 1, 2:]).all() and np.isnan(got[0, 2]).all()
    np.testing.assert_array_equal(by_lag(norms), norms[..., ::-1])


def test_errors_name_the_argument(key):
    cell = jaxseq.cells.elman(3)
    params = cell.init(key, 2)
    xs = jnp.ones((2, 4, 2)) / 3
    with pytest.raises(ValueError, match="ord: expected one of 'fro', 'spectral'"):
        jacobian_norms(cell, params, xs, ord="nuc")
    with pytest.raises(ValueError, match="wrt: expected one of 'carry', 'h', got 'c'"):
        jacobian_norms(cell, params, xs, wrt="c")
    with pytest.raises(TypeError, match="model: expected a jaxseq Cell or RNNLayer"):
        jacobian_norms("elman", params, xs)
    bi = jaxseq.stack(cell, bidirectional=True)
    with pytest.raises(ValueError, match="model: expected a Cell or a forward"):
        jacobian_norms(bi, bi.init(key, 2), xs)
    with pytest.raises(ValueError, match="loss_fn: expected a scalar loss"):
        hidden_grad_norms(cell, params, xs, lambda c, ys: ys.sum(axis=1))
    with pytest.raises(ValueError, match=r"xs: expected rank 3 \(\[B, T, F\]"):
        hidden_grad_norms(cell, params, xs[0], lambda c, ys: ys.sum())
    with pytest.raises(ValueError, match=r"xs: expected rank 2 \(\[T, F\]"):
        jacobian_products(cell, params, xs)
    with pytest.raises(ValueError, match=r"lengths: expected shape \(2,\)"):
        by_lag(jnp.ones((2, 4)), jnp.array([1, 2, 3]))
