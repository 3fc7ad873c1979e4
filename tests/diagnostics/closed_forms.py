"""Linear recurrences with a chosen spectrum, and NumPy references (float64)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import jaxseq
from jaxseq.cells import ElmanParams


def matrix_with_eigenvalues(eigenvalues, seed=0):
    """A real ``W = V diag(lambda) V^-1`` with the given eigenvalues.

    Complex eigenvalues come in conjugate pairs ``r e^{+-i theta}``, realised as a
    2x2 rotation-scaling block ``r [[cos, -sin], [sin, cos]]`` before conjugation
    by a random, well-conditioned ``V``.
    """
    blocks, done = [], set()
    for i, lam in enumerate(eigenvalues):
        if i in done:
            continue
        lam = complex(lam)
        if lam.imag == 0:
            blocks.append(np.array([[lam.real]]))
            continue
        j = next(
            j
            for j in range(i + 1, len(eigenvalues))
            if np.isclose(complex(eigenvalues[j]), lam.conjugate())
        )
        done.add(j)
        r, th = abs(lam), np.angle(lam)
        blocks.append(
            r * np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
        )
    n = sum(b.shape[0] for b in blocks)
    d = np.zeros((n, n))
    k = 0
    for b in blocks:
        m = b.shape[0]
        d[k : k + m, k : k + m] = b
        k += m
    rng = np.random.default_rng(seed)
    v = np.eye(n) + 0.3 * rng.standard_normal((n, n))
    return v @ d @ np.linalg.inv(v)


def linear_elman(w, input_size=1, dtype=jnp.float32):
    """``h_t = W h_{t-1}`` as a jaxseq Elman cell: identity activation, zero input
    weights and bias, ``w_h = W^T`` (jaxseq multiplies row vectors)."""
    h = w.shape[0]
    cell = jaxseq.cells.elman(h, activation="identity")
    params = ElmanParams(
        w_x=jnp.zeros((input_size, h), dtype),
        w_h=jnp.asarray(np.asarray(w).T, dtype),
        b=jnp.zeros((h,), dtype),
    )
    return cell, params


def powers(w, count):
    """``[W^0, W^1, ..., W^count]`` in float64."""
    out = [np.eye(w.shape[0])]
    for _ in range(count):
        out.append(w @ out[-1])
    return np.stack(out)


def tanh_elman_reference(w, u, b, xs, h0):
    """NumPy run of ``h_t = tanh(W h_{t-1} + U x_t + b)`` and its step Jacobians
    ``D_t = diag(1 - h_t^2) W``."""
    h, hs, ds = np.asarray(h0, np.float64), [], []
    for x in np.asarray(xs, np.float64):
        h = np.tanh(w @ h + u @ x + b)
        hs.append(h)
        ds.append(np.diag(1.0 - h**2) @ w)
    return np.stack(hs), np.stack(ds)


def products(ds):
    """``P_k = D_T ... D_{T-k+1}`` for ``k = 0 .. T`` (``P_0 = I``)."""
    out = [np.eye(ds.shape[1])]
    for d in ds[::-1]:
        out.append(out[-1] @ d)
    return np.stack(out)
