"""Weights imported in float64 keep float64's precision: outputs agree with
PyTorch's and Keras' own float64 outputs to ~1e-12 (a float32 step anywhere on
the way, such as the LSTM/Elman bias sum ``b_ih + b_hh``, leaves ~1e-8).

torch and keras are optional peers; each test skips without its peer.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")

B, T, F, H = 2, 6, 3, 5
TOL = dict(rtol=1e-12, atol=1e-12)


def _inputs() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((B, T, F))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("float32_weights", [False, True], ids=["f64", "f32_values"])
def test_torch_float64_import(x64, kind, float32_weights):
    """``float32_weights``: float32 values in a float64 module (``.double()`` of
    a float32 one), where only the bias sum rounded: LSTM/Elman were 1e-8 off,
    the GRU (no sum) exact. Full float64 values lost precision in every cell."""
    torch = pytest.importorskip("torch", reason="torch not installed (optional peer)")
    from jaxseq.interop.torch import from_torch

    torch.manual_seed(0)
    module = getattr(torch.nn, kind)(
        F, H, num_layers=2, bidirectional=True, batch_first=True
    ).double()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p))
            if float32_weights:
                p.copy_(p.float().double())
    xs = _inputs()
    with torch.no_grad():
        expected = module(torch.from_numpy(xs))[0].numpy()
    layer, params = from_torch(module, dtype=jnp.float64)
    assert {a.dtype for a in jax.tree.leaves(params)} == {jnp.dtype("float64")}
    _, ys = layer.apply(params, jnp.asarray(xs))
    np.testing.assert_allclose(np.asarray(ys), expected, **TOL)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def keras_reference(kind: str, weights: list[np.ndarray], xs: np.ndarray):
    """Keras' equations in NumPy float64, on Keras' own weight layout (gates
    ``i f c o``; GRU ``z r h`` with the ``[2, 3H]`` bias when ``reset_after``).
    Keras itself computes float64 layers partly in float32 (1e-7 off this
    reference; SimpleRNN does not run in float64 at all), so it is only checked
    against this reference at float32 precision."""
    w, u, b = weights
    h = np.zeros((xs.shape[0], u.shape[0]))
    c = np.zeros_like(h)
    out = []
    for x in np.moveaxis(xs, 1, 0):
        if kind == "LSTM":
            i, f, g, o = np.split(x @ w + h @ u + b, 4, axis=-1)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
        elif kind == "SimpleRNN":
            h = np.tanh(x @ w + h @ u + b)
        elif kind == "GRU":  # reset_after: bias [2, 3H]
            xz, xr, xh = np.split(x @ w + b[0], 3, axis=-1)
            hz, hr, hh = np.split(h @ u + b[1], 3, axis=-1)
            z, r = _sigmoid(xz + hz), _sigmoid(xr + hr)
            h = z * h + (1 - z) * np.tanh(xh + r * hh)
        else:  # GRU_seed: reset_after=False, bias [3H] on the input side
            xz, xr, xh = np.split(x @ w + b, 3, axis=-1)
            uz, ur, uh = np.split(u, 3, axis=-1)
            z, r = _sigmoid(xz + h @ uz), _sigmoid(xr + h @ ur)
            h = z * h + (1 - z) * np.tanh(xh + (r * h) @ uh)
        out.append(h)
    return np.stack(out, axis=1)


@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "GRU_seed", "SimpleRNN"])
def test_keras_float64_import(x64, kind):
    keras = pytest.importorskip("keras", reason="keras not installed (optional peer)")
    from jaxseq.interop.keras import from_keras, keras_weights

    options = {"reset_after": False} if kind == "GRU_seed" else {}
    cls = getattr(keras.layers, kind.split("_")[0])
    layers = {
        dtype: cls(H, return_sequences=True, dtype=dtype, **options)
        for dtype in ("float64", "float32")
    }
    for layer in layers.values():
        layer.build((None, None, F))
    rng = np.random.default_rng(1)
    weights = [rng.standard_normal(w.shape) for w in layers["float64"].get_weights()]
    layers["float64"].set_weights(weights)
    layers["float32"].set_weights([w.astype(np.float32) for w in weights])
    xs = _inputs()
    expected = keras_reference(kind, weights, xs)
    keras32 = np.asarray(layers["float32"](xs.astype(np.float32)))
    np.testing.assert_allclose(keras32, expected, rtol=1e-5, atol=1e-5)
    rnn, params = from_keras(layers["float64"], dtype=jnp.float64)
    _, ys = rnn.apply(params, jnp.asarray(xs))
    np.testing.assert_allclose(np.asarray(ys), expected, **TOL)
    # and back: the float32 export rounds each weight once
    exported = keras_weights(rnn, params)[0]
    for a, b in zip(exported, layers["float32"].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
