"""The recurrent spectrum and the per-step Jacobians against closed forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq.cells import LSTMParams
from jaxseq.diagnostics import (
    recurrent_matrices,
    recurrent_spectrum,
    spectrum,
    step_jacobian_norms,
    step_jacobians,
)

from .closed_forms import linear_elman, matrix_with_eigenvalues, tanh_elman_reference

LAMBDA = [1.2 * np.exp(0.7j), 1.2 * np.exp(-0.7j), 0.9, -0.3, 0.05]


def test_spectrum_recovers_the_chosen_eigenvalues():
    w = matrix_with_eigenvalues(LAMBDA, seed=1)
    s = spectrum(w)
    want = np.array(LAMBDA)
    order = np.lexsort((want.imag, -np.abs(want)))
    got = s.eigenvalues[np.lexsort((s.eigenvalues.imag, -np.abs(s.eigenvalues)))]
    np.testing.assert_allclose(got, want[order], atol=1e-10)
    assert np.all(np.diff(np.abs(s.eigenvalues)) <= 1e-12)  # decreasing modulus
    assert s.spectral_radius == pytest.approx(1.2, abs=1e-10)
    np.testing.assert_allclose(s.singular_values, np.linalg.svd(w, compute_uv=False))
    assert s.singular_values[0] >= s.spectral_radius  # sigma_1 bounds rho


def test_recurrent_matrices_in_the_seeds_orientation(key):
    w = matrix_with_eigenvalues([0.9, 0.5, -0.2], seed=2)
    cell, params = linear_elman(w)
    mats = recurrent_matrices(cell, params)
    assert list(mats) == ["W"]
    np.testing.assert_allclose(mats["W"], w, rtol=1e-6, atol=1e-7)
    assert recurrent_spectrum(cell, params)["W"].spectral_radius == pytest.approx(
        0.9, abs=1e-5
    )

    lstm = jaxseq.cells.lstm(3)
    lp = lstm.init(key, 2)
    mats = recurrent_matrices(lstm, lp)
    assert list(mats) == list("ifgo")
    np.testing.assert_allclose(mats["g"], np.asarray(lp.w_h)[:, 6:9].T)

    layer = jaxseq.stack(jaxseq.cells.gru(3), num_layers=2, bidirectional=True)
    names = recurrent_matrices(layer, layer.init(key, 2))
    assert len(names) == 12 and "layer1/bw/z" in names


def test_step_jacobians_of_tanh_elman_match_numpy():
    H, F, T = 4, 2, 9
    rng = np.random.default_rng(3)
    w = rng.standard_normal((H, H)) / np.sqrt(H)
    u = rng.standard_normal((H, F))
    xs = rng.standard_normal((T, F))
    cell = jaxseq.cells.elman(H)
    params = cell.init(jax.random.key(0), F)._replace(
        w_x=jnp.asarray(u.T, jnp.float32), w_h=jnp.asarray(w.T, jnp.float32)
    )
    _, ds = tanh_elman_reference(w, u, np.zeros(H), xs, np.zeros(H))
    got = step_jacobians(cell, params, jnp.asarray(xs, jnp.float32))
    np.testing.assert_allclose(got, ds, rtol=1e-5, atol=1e-6)
    norms = step_jacobian_norms(cell, params, jnp.asarray(xs[None], jnp.float32))
    np.testing.assert_allclose(norms[0], np.linalg.norm(ds, axis=(1, 2)), rtol=1e-5)


def test_linear_step_norms_are_constant():
    w = matrix_with_eigenvalues([0.9, -0.6], seed=4)
    cell, params = linear_elman(w)
    norms = step_jacobian_norms(cell, params, jnp.zeros((7, 1)), ord="spectral")
    np.testing.assert_allclose(norms, np.full(7, np.linalg.norm(w, 2)), rtol=1e-5)


def test_lstm_cell_path_is_the_forget_gate():
    """With ``w_h = 0`` the gates depend on ``x`` only, so ``dc_t/dc_{t-1} =
    diag(f_t)``, ``dh_t/dc_{t-1} = diag(o_t (1 - tanh^2 C_t) f_t)`` and nothing
    flows from ``h_{t-1}``: the LSTM's gradient highway, in closed form."""
    H, F, T = 3, 2, 5
    rng = np.random.default_rng(5)
    w_x = rng.standard_normal((F, 4 * H))
    b = rng.standard_normal(4 * H)
    xs = rng.standard_normal((T, F))
    cell = jaxseq.cells.lstm(H)
    params = LSTMParams(
        jnp.asarray(w_x, jnp.float32),
        jnp.zeros((H, 4 * H)),
        jnp.asarray(b, jnp.float32),
    )
    got = np.asarray(step_jacobians(cell, params, jnp.asarray(xs, jnp.float32)))
    sig = lambda a: 1 / (1 + np.exp(-a))
    c = np.zeros(H)
    for t in range(T):
        z = xs[t] @ w_x + b
        i, f, g, o = (
            sig(z[:H]),
            sig(z[H : 2 * H]),
            np.tanh(z[2 * H : 3 * H]),
            sig(z[3 * H :]),
        )
        c = f * c + i * g
        np.testing.assert_allclose(got[t, H:, H:], np.diag(f), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(
            got[t, :H, H:], np.diag(o * (1 - np.tanh(c) ** 2) * f), rtol=1e-5, atol=1e-7
        )
        np.testing.assert_allclose(got[t, :, :H], 0.0, atol=1e-7)


def test_spectrum_errors():
    with pytest.raises(ValueError, match=r"matrix: expected a square \[H, H\] matrix"):
        spectrum(np.ones((2, 3)))
    custom = jaxseq.cells.elman(2)._replace(name="mine")
    with pytest.raises(ValueError, match="model: expected an elman, lstm or gru"):
        recurrent_matrices(custom, custom.init(jax.random.key(0), 1))
    with pytest.raises(TypeError, match="model: expected a jaxseq Cell or RNNLayer"):
        recurrent_matrices(None, None)
