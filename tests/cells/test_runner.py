"""The scan runners and layers: against a NumPy loop, and their properties
(reverse within lengths, padding invariance, length 0, bidirectional, stacking)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq.cells import LSTMCarry

from . import reference as ref
from .test_cells import ALL_CELLS, NAMES, make, random_carry, ref_state

B, T, F, H = 5, 9, 3, 4
LENGTHS = np.array([9, 4, 1, 0, 7])


#: float32 against the float64 NumPy loop. A LayerNorm cell divides by the
#: standard deviation of only H = 4 pre-activations, which amplifies float32
#: rounding where that spread is small: 2.4e-6 at one element on an AMD Zen 5
#: (XLA level 0, as the suite runs), over the 2e-6 that holds for the others.
ATOL = {"layernorm_lstm": 1e-5}


def data(seed=3, batch=B, time=T):
    return jax.random.normal(jax.random.key(seed), (batch, time, F))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_rnn_matches_numpy_loop(name, reverse, with_lengths, key):
    cell, params = make(name, key, hidden=H)
    xs = data()
    carry0 = random_carry(cell, params, jax.random.key(5), batch=(B,))
    lengths = LENGTHS if with_lengths else None
    carry, ys = jax.jit(
        lambda p, x, c: jaxseq.rnn(
            cell, p, x, lengths=lengths, carry0=c, reverse=reverse
        )
    )(params, xs, carry0)
    assert ys.shape == (B, T, H)
    _, ref_name, act = ALL_CELLS[name]
    stepper = ref.steppers(ref_name, params, act)
    for b in range(B):
        c0 = jax.tree.map(lambda a, b=b: a[b], carry0)
        state, ys_ref = ref.run(
            stepper,
            ref_state(c0),
            np.asarray(xs[b]),
            None if lengths is None else lengths[b],
            reverse,
        )
        np.testing.assert_allclose(ys[b], ys_ref, rtol=2e-5, atol=ATOL.get(name, 2e-6))
        np.testing.assert_allclose(
            carry.h[b], state[0], rtol=2e-5, atol=ATOL.get(name, 2e-6)
        )
        if isinstance(carry, LSTMCarry):
            np.testing.assert_allclose(
                carry.c[b], state[1], rtol=2e-5, atol=ATOL.get(name, 2e-6)
            )


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_reverse_equals_flipped_prefix_forward(name, key):
    cell, params = make(name, key, hidden=H)
    xs = data()
    carry_r, ys_r = jaxseq.rnn(cell, params, xs, lengths=LENGTHS, reverse=True)
    for b in range(B):
        n = int(LENGTHS[b])
        flipped = xs[b : b + 1, :n][:, ::-1]
        carry_f, ys_f = jaxseq.rnn(cell, params, flipped)
        np.testing.assert_allclose(ys_r[b, :n], ys_f[0, ::-1], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(ys_r[b, n:], 0.0)
        h_f = carry_f.h[0] if n else jnp.zeros(H)
        np.testing.assert_allclose(carry_r.h[b], h_f, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name", ["lstm", "gru_seed", "elman"])
def test_padding_invariance_of_outputs_and_gradients(name, reverse, key):
    """Changing the padded values (or adding more padding) changes nothing."""
    cell, params = make(name, key, hidden=H)
    xs = data()
    mask = np.arange(T)[None, :, None] < LENGTHS[:, None, None]
    garbage = 100.0 * jax.random.normal(jax.random.key(9), xs.shape)
    xs2 = jnp.where(mask, xs, garbage)
    xs3 = jnp.concatenate([xs2, garbage[:, :4]], axis=1)  # longer padding

    def loss(p, x):
        carry, ys = jaxseq.rnn(cell, p, x, lengths=LENGTHS, reverse=reverse)
        return (ys**2).sum() + carry.h.sum(), ys

    grad = jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))
    (g_p1, g_x1), ys1 = grad(params, xs)
    (g_p2, g_x2), ys2 = grad(params, xs2)
    (g_p3, g_x3), ys3 = grad(params, xs3)
    np.testing.assert_allclose(ys1, ys2, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ys1, ys3[:, :T], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(ys3[:, T:], 0.0)
    for a, b, c in zip(
        jax.tree.leaves(g_p1), jax.tree.leaves(g_p2), jax.tree.leaves(g_p3), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g_x1, g_x2, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        np.asarray(g_x2)[~np.broadcast_to(mask, xs.shape)], 0.0
    )


@pytest.mark.parametrize("reverse", [False, True])
def test_length_zero_returns_initial_carry(reverse, key):
    cell, params = make("lstm", key, hidden=H)
    carry0 = random_carry(cell, params, jax.random.key(1), batch=(2,))
    carry, ys = jaxseq.rnn(
        cell,
        params,
        data(batch=2),
        lengths=np.array([0, 0]),
        carry0=carry0,
        reverse=reverse,
    )
    np.testing.assert_array_equal(carry.h, carry0.h)
    np.testing.assert_array_equal(carry.c, carry0.c)
    np.testing.assert_array_equal(ys, 0.0)


def test_unroll_single_sequence_equals_batched(key):
    cell, params = make("gru", key, hidden=H)
    xs = data()
    carry_b, ys_b = jaxseq.rnn(cell, params, xs, lengths=LENGTHS, reverse=True)
    for b in range(B):
        carry, ys = jaxseq.unroll(
            cell,
            params,
            cell.init_carry(params),
            xs[b],
            length=int(LENGTHS[b]),
            reverse=True,
        )
        np.testing.assert_allclose(ys, ys_b[b], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(carry.h, carry_b.h[b], rtol=1e-6, atol=1e-7)
    # traced length under jit, and a vmapped unroll
    f = jax.jit(
        jax.vmap(
            lambda x, n: jaxseq.unroll(
                cell, params, cell.init_carry(params), x, length=n, reverse=True
            )
        )
    )
    carry_v, ys_v = f(xs, jnp.asarray(LENGTHS))
    np.testing.assert_allclose(ys_v, ys_b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("unroll", [2, 4, True])
def test_unroll_option_gives_same_result(unroll, key):
    cell, params = make("lstm", key, hidden=H)
    xs = data()
    base = jaxseq.rnn(cell, params, xs, lengths=LENGTHS)
    other = jax.jit(
        lambda x: jaxseq.rnn(cell, params, x, lengths=LENGTHS, unroll=unroll)
    )(xs)
    for a, b in zip(jax.tree.leaves(base), jax.tree.leaves(other), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", ["lstm", "gru", "elman"])
@pytest.mark.parametrize("reverse", [False, True])
def test_batch_of_one_auto_unroll_matches_unroll_one(name, reverse, key):
    """At batch 1 the default (``unroll=None``) unrolls the forward-only and the
    gradient loops by measured amounts: outputs and gradients must not change."""
    cell, params = make(name, key, hidden=H)
    xs = data(batch=1, time=21)  # not a multiple of the unroll factors
    n = jnp.asarray([17])

    def loss(p, x, unroll):
        return (
            jaxseq.rnn(cell, p, x, lengths=n, reverse=reverse, unroll=unroll)[1] ** 2
        ).sum()

    for unroll in (None, 1):
        ys = jax.jit(lambda x, u=unroll: jaxseq.rnn(cell, params, x, lengths=n,
                                                    reverse=reverse, unroll=u)[1])(xs)  # fmt: skip
        grads = jax.jit(jax.grad(loss, argnums=(0, 1)), static_argnums=2)(
            params, xs, unroll
        )
        if unroll is None:
            ys_auto, grads_auto = ys, grads
    np.testing.assert_allclose(ys_auto, ys, rtol=1e-6, atol=1e-7)
    for a, b in zip(jax.tree.leaves(grads_auto), jax.tree.leaves(grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_bidirectional_equals_two_manual_runs(merge, key):
    cell, p_fw = make("lstm", key, hidden=H)
    _, p_bw = make("lstm", jax.random.key(11), hidden=H)
    xs = data()
    (c_fw, c_bw), ys = jaxseq.bidirectional(
        cell, cell, p_fw, p_bw, xs, lengths=LENGTHS, merge=merge
    )
    m_fw, y_fw = jaxseq.rnn(cell, p_fw, xs, lengths=LENGTHS)
    m_bw, y_bw = jaxseq.rnn(cell, p_bw, xs, lengths=LENGTHS, reverse=True)
    expected = jnp.concatenate([y_fw, y_bw], -1) if merge == "concat" else y_fw + y_bw
    np.testing.assert_allclose(ys, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(c_fw.h, m_fw.h, rtol=1e-6)
    np.testing.assert_allclose(c_bw.c, m_bw.c, rtol=1e-6)


def test_stack_equals_manual_composition_with_dropout(key):
    cell = jaxseq.cells.gru(H)
    layer = jaxseq.stack(cell, num_layers=3, bidirectional=True, dropout=0.25)
    assert layer.output_size == 2 * H
    params = layer.init(key, F)
    xs = data()
    carries, ys = jax.jit(lambda p, x, k: layer.apply(p, x, lengths=LENGTHS, key=k))(
        params, xs, jax.random.key(4)
    )
    # manual: bidirectional runs with the same dropout masks between layers
    keys = jax.random.split(jax.random.key(4), 3)
    h = xs
    for i, p in enumerate(params):
        (c_fw, c_bw), h = jaxseq.bidirectional(
            cell, cell, p.fw, p.bw, h, lengths=LENGTHS
        )
        np.testing.assert_allclose(carries[i].fw.h, c_fw.h, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(carries[i].bw.h, c_bw.h, rtol=1e-6, atol=1e-7)
        if i < 2:
            keep = jax.random.bernoulli(keys[i], 0.75, h.shape)
            h = jnp.where(keep, h / 0.75, 0.0)
    np.testing.assert_allclose(ys, h, rtol=1e-6, atol=1e-7)
    # inference (no key): no dropout, deterministic
    _, ys_a = layer.apply(params, xs, lengths=LENGTHS)
    _, ys_b = layer.apply(params, xs, lengths=LENGTHS)
    np.testing.assert_array_equal(ys_a, ys_b)
    assert np.abs(np.asarray(ys_a - ys)).max() > 1e-3


def test_stack_of_different_cells_and_reverse(key):
    layer = jaxseq.stack([jaxseq.cells.lstm(6), jaxseq.cells.elman(2)], reverse=True)
    params = layer.init(key, F)
    assert params[1].w_x.shape == (6, 2)
    xs = data()
    carries, ys = layer.apply(params, xs, lengths=LENGTHS)
    _, y0 = jaxseq.rnn(layer.cells[0], params[0], xs, lengths=LENGTHS, reverse=True)
    c1, y1 = jaxseq.rnn(layer.cells[1], params[1], y0, lengths=LENGTHS, reverse=True)
    np.testing.assert_allclose(ys, y1, rtol=1e-6)
    np.testing.assert_allclose(carries[1].h, c1.h, rtol=1e-6)


def test_many_to_one_helpers(key):
    cell, params = make("lstm", key, hidden=H)
    xs = data()
    carry, ys = jaxseq.rnn(cell, params, xs, lengths=LENGTHS)
    last = jaxseq.nn.last_valid(ys, LENGTHS)
    np.testing.assert_allclose(last[LENGTHS > 0], carry.h[LENGTHS > 0], rtol=1e-6)
    np.testing.assert_array_equal(last[LENGTHS == 0], 0.0)
    mean = jaxseq.nn.masked_mean(ys, LENGTHS)
    for b in range(B):
        n = int(LENGTHS[b])
        expected = np.asarray(ys[b, :n]).mean(0) if n else np.zeros(H)
        np.testing.assert_allclose(mean[b], expected, rtol=1e-5, atol=1e-7)
    mx = jaxseq.nn.masked_max(ys, LENGTHS)
    np.testing.assert_allclose(mx[0], np.asarray(ys[0]).max(0), rtol=1e-6)
    np.testing.assert_array_equal(mx[3], 0.0)


def test_lengths_from_mask():
    mask = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 0]], bool)
    np.testing.assert_array_equal(jaxseq.lengths_from_mask(mask), [2, 3, 0])
    with pytest.raises(ValueError, match="mask: expected right padding"):
        jaxseq.lengths_from_mask(np.array([[1, 0, 1]], bool))
