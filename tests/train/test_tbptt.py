"""Truncated BPTT: equal to full BPTT when one chunk covers the sequence, and
equal to a hand-built stop-gradient reference (Python loop, concrete carries)
when it does not."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq.train import chunk_lengths, truncated_bptt

B, T, F, H = 3, 12, 2, 4
LENGTHS = np.array([12, 7, 3], np.int32)
CELL = jaxseq.cells.lstm(H)


def _setup():
    params = {"cell": CELL.init(jax.random.key(0), F), "v": jnp.arange(1.0, H + 1) / H}
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    targets = jax.random.normal(jax.random.key(2), (B, T))
    carry0 = jax.tree.map(
        lambda a: jnp.zeros((B, *a.shape)), CELL.init_carry(params["cell"])
    )
    return params, xs, targets, carry0


TOTAL = float(LENGTHS.sum())


def _chunk_loss(params, carry, chunk, start):
    xs, targets = chunk
    n = chunk_lengths(LENGTHS, start, xs.shape[1])
    carry, ys = jaxseq.rnn(CELL, params["cell"], xs, lengths=n, carry0=carry)
    mask = jaxseq.nn.mask_from_lengths(n, xs.shape[1])
    err = jnp.where(mask, ys @ params["v"] - targets, 0.0)
    return jnp.sum(err**2) / TOTAL, carry


def _full_loss(params, xs, targets, carry0):
    """Plain BPTT through the whole sequence: no truncated_bptt involved."""
    _, ys = jaxseq.rnn(CELL, params["cell"], xs, lengths=LENGTHS, carry0=carry0)
    mask = jaxseq.nn.mask_from_lengths(LENGTHS, T)
    return jnp.sum(jnp.where(mask, ys @ params["v"] - targets, 0.0) ** 2) / TOTAL


def _tbptt_grad(params, xs, targets, carry0, k, remat=True):
    fn = lambda p: truncated_bptt(
        _chunk_loss, p, carry0, (xs, targets), chunk_size=k, remat=remat
    )[0]
    return jax.jit(jax.value_and_grad(fn))(params)


_full_value_and_grad = jax.jit(jax.value_and_grad(_full_loss))
_chunk_value_and_grad = jax.jit(jax.value_and_grad(_chunk_loss, has_aux=True))


def _assert_tree_close(a, b, **kw):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, **kw)


def test_one_chunk_equals_full_bptt():
    params, xs, targets, carry0 = _setup()
    loss, grads = _tbptt_grad(params, xs, targets, carry0, k=T)
    loss_ref, grads_ref = _full_value_and_grad(params, xs, targets, carry0)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-6)
    _assert_tree_close(grads, grads_ref, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("remat", [True, False])
def test_chunks_equal_manual_stop_gradient_reference(remat):
    params, xs, targets, carry0 = _setup()
    k = 4
    loss, grads = _tbptt_grad(params, xs, targets, carry0, k=k, remat=remat)
    # Reference: a Python loop over chunks; each chunk's gradient is taken with
    # its incoming carry as a concrete constant, and the gradients are summed.
    carry, total, ref = carry0, 0.0, jax.tree.map(jnp.zeros_like, params)
    for start in range(0, T, k):
        chunk = (xs[:, start : start + k], targets[:, start : start + k])
        c_in = jax.tree.map(np.asarray, carry)
        (l_c, carry), g_c = _chunk_value_and_grad(params, c_in, chunk, jnp.int32(start))
        total += float(l_c)
        ref = jax.tree.map(jnp.add, ref, g_c)
    np.testing.assert_allclose(loss, total, rtol=1e-6)
    _assert_tree_close(grads, ref, rtol=1e-5, atol=1e-7)
    # The forward pass is unchanged (same loss as full BPTT), the gradient is not.
    loss_full, grads_full = _full_value_and_grad(params, xs, targets, carry0)
    np.testing.assert_allclose(loss, loss_full, rtol=1e-6)
    diff = max(
        float(jnp.abs(a - b).max())
        for a, b in zip(
            jax.tree.leaves(grads), jax.tree.leaves(grads_full), strict=True
        )
    )
    assert diff > 1e-4


def test_chunk_size_must_divide_time():
    params, xs, targets, carry0 = _setup()
    with pytest.raises(
        ValueError,
        match=r"chunk_size: expected a divisor of the sequence length T = 12, got 5\. Pad T up to 15",
    ):
        truncated_bptt(_chunk_loss, params, carry0, (xs, targets), chunk_size=5)
    with pytest.raises(ValueError, match=r"chunk_size: expected a positive int, got 0"):
        truncated_bptt(_chunk_loss, params, carry0, (xs, targets), chunk_size=0)
    with pytest.raises(ValueError, match=r"sequences: expected one time length"):
        truncated_bptt(_chunk_loss, params, carry0, (xs, targets[:, :6]), chunk_size=3)
