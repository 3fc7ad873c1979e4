"""Conformance suite: every cell in ALL_CELLS passes every test here, and each is
checked against a NumPy implementation of the seed's equations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxseq
from jaxseq.cells import (
    GRUCarry,
    LSTMCarry,
    elman,
    gru,
    layernorm_lstm,
    lstm,
    peephole_lstm,
)

from . import reference as ref

# name, factory, reference stepper name, reference activation
ALL_CELLS = {
    "lstm": (lambda h, **kw: lstm(h, **kw), "lstm", None),
    "gru": (lambda h, **kw: gru(h, reset_after=True, **kw), "gru", None),
    "gru_seed": (lambda h, **kw: gru(h, reset_after=False, **kw), "gru_seed", None),
    "elman": (lambda h, **kw: elman(h, **kw), "elman", np.tanh),
    "elman_relu": (
        lambda h, **kw: elman(h, activation="relu", **kw),
        "elman",
        lambda a: np.maximum(a, 0.0),
    ),
    "peephole_lstm": (lambda h, **kw: peephole_lstm(h, **kw), "peephole_lstm", None),
    "layernorm_lstm": (
        lambda h, **kw: layernorm_lstm(h, **kw),
        "layernorm_lstm",
        None,
    ),
}
NAMES = list(ALL_CELLS)
F, H = 3, 5


def make(name, key, hidden=H, features=F, dtype=jnp.float32, perturb=True):
    cell = ALL_CELLS[name][0](hidden, dtype=dtype)
    params = cell.init(key, features)
    if perturb:  # nonzero biases so that every bias slot is exercised
        params = jax.tree.map(
            lambda a: a + 0.3 * jax.random.normal(jax.random.key(7), a.shape, a.dtype),
            params,
        )
    return cell, params


def random_carry(cell, params, key, batch=()):
    carry = cell.init_carry(params)
    leaves, treedef = jax.tree.flatten(carry)
    keys = jax.random.split(key, len(leaves))
    leaves = [
        0.5 * jax.random.normal(k, (*batch, *a.shape), a.dtype)
        for k, a in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(treedef, leaves)


def ref_state(carry):
    if isinstance(carry, LSTMCarry):
        return (np.asarray(carry.h, np.float64), np.asarray(carry.c, np.float64))
    return (np.asarray(carry.h, np.float64),)


@pytest.mark.parametrize("name", NAMES)
def test_step_matches_seed_equations(name, key):
    cell, params = make(name, key)
    k1, k2 = jax.random.split(jax.random.key(1))
    carry = random_carry(cell, params, k1)
    x = jax.random.normal(k2, (F,))
    new_carry, y = cell.step(params, carry, x)
    _, ref_name, act = ALL_CELLS[name]
    expected = ref.steppers(ref_name, params, act)(ref_state(carry), np.asarray(x))
    np.testing.assert_allclose(y, expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new_carry.h, expected[0], rtol=1e-5, atol=1e-6)
    if isinstance(new_carry, LSTMCarry):
        np.testing.assert_allclose(new_carry.c, expected[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_shapes_and_dtypes(name, dtype, key):
    cell, params = make(name, key, dtype=dtype)
    assert all(a.dtype == dtype for a in jax.tree.leaves(params))
    carry0 = cell.init_carry(params)
    assert all(a.shape == (H,) and a.dtype == dtype for a in jax.tree.leaves(carry0))
    assert not any(np.asarray(a, np.float32).any() for a in jax.tree.leaves(carry0))
    carry, y = cell.step(params, carry0, jnp.arange(1.0, F + 1.0, dtype=dtype))
    assert y.shape == (H,) and y.dtype == dtype
    assert jax.tree.structure(carry) == jax.tree.structure(carry0)


@pytest.mark.parametrize("name", NAMES)
def test_bfloat16_close_to_float32(name, key):
    cell32, p32 = make(name, key)
    cell16 = ALL_CELLS[name][0](H, dtype=jnp.bfloat16)
    p16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), p32)
    xs = jax.random.normal(jax.random.key(3), (4, 20, F))
    _, y32 = jaxseq.rnn(cell32, p32, xs)
    _, y16 = jaxseq.rnn(cell16, p16, xs.astype(jnp.bfloat16))
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=0.06)


@pytest.mark.parametrize("name", NAMES)
def test_jit_equals_eager_and_vmap_equals_batched(name, key):
    cell, params = make(name, key)
    carry = random_carry(cell, params, jax.random.key(2), batch=(6,))
    xs = jax.random.normal(jax.random.key(3), (6, F))
    eager = cell.step(params, carry, xs)  # batched call through `@`
    jitted = jax.jit(cell.step)(params, carry, xs)
    vmapped = jax.vmap(cell.step, in_axes=(None, 0, 0))(params, carry, xs)
    for a, b, c in zip(
        jax.tree.leaves(eager),
        jax.tree.leaves(jitted),
        jax.tree.leaves(vmapped),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_finite_for_large_inputs(name, key):
    cell, params = make(name, key)
    xs = 1e4 * jax.random.normal(jax.random.key(3), (2, 30, F))
    carry, ys = jaxseq.rnn(cell, params, xs)
    assert np.isfinite(np.asarray(ys)).all()
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(carry))


@pytest.mark.parametrize("name", NAMES)
def test_check_grads_step_and_runner(name, x64):
    cell, params = make(
        name, jax.random.key(0), hidden=3, features=2, dtype=jnp.float64
    )
    carry = random_carry(cell, params, jax.random.key(2))
    x = jax.random.normal(jax.random.key(3), (2,), jnp.float64)
    check_grads(
        lambda p, c, x: cell.step(p, c, x),
        (params, carry, x),
        order=2,
        modes=("fwd", "rev"),
    )
    xs = jax.random.normal(jax.random.key(4), (2, 5, 2), jnp.float64)
    lengths = jnp.array([5, 3])

    def loss(p, xs, impl="auto"):
        carry, ys = jaxseq.rnn(cell, p, xs, lengths=lengths, reverse=True, impl=impl)
        return (ys**2).sum() + (carry.h**3).sum()

    check_grads(loss, (params, xs), order=1, modes=("rev",))
    # forward mode: impl="autodiff" (the hand-written backward is reverse only)
    ad = lambda p, xs: loss(p, xs, "autodiff")
    check_grads(ad, (params, xs), order=1, modes=("fwd", "rev"))


def test_lstm_forget_bias_initialisation(key):
    p = lstm(4).init(key, 3)
    np.testing.assert_array_equal(p.b[4:8], np.ones(4))
    np.testing.assert_array_equal(np.delete(np.asarray(p.b), np.s_[4:8]), 0.0)
    assert not np.asarray(lstm(4, forget_bias=0.0).init(key, 3).b).any()
    p2 = lstm(4, forget_bias=2.5, bias_init=jax.nn.initializers.ones).init(key, 3)
    np.testing.assert_array_equal(p2.b[4:8], np.full(4, 3.5))


def test_default_initialisers_match_keras_conventions(key):
    p = lstm(16).init(key, 24)
    # orthogonal recurrent kernel: rows orthonormal ([H, 4H] with H < 4H)
    np.testing.assert_allclose(p.w_h @ p.w_h.T, np.eye(16), atol=1e-5)
    # Glorot uniform: bounded by sqrt(6 / (fan_in + fan_out)), variance 2/(fan sum)
    limit = np.sqrt(6.0 / (24 + 64))
    assert np.abs(p.w_x).max() <= limit
    assert abs(np.var(p.w_x) / (limit**2 / 3) - 1) < 0.15
    custom = gru(4, kernel_init=jax.nn.initializers.zeros).init(key, 3)
    assert not np.asarray(custom.w_x).any()


def test_gru_forms_differ(key):
    """The two GRU forms are different functions for the same weights."""
    p = gru(4).init(key, 3)
    p = p._replace(b_h=p.b_h + 0.5)
    carry = GRUCarry(h=jnp.linspace(-1.0, 1.0, 4))
    x = jnp.array([0.3, -0.2, 0.9])
    y_after = gru(4, reset_after=True).step(p, carry, x)[1]
    y_before = gru(4, reset_after=False).step(p, carry, x)[1]
    assert np.abs(np.asarray(y_after - y_before)).max() > 1e-3


def test_cell_factories_refuse_bad_options():
    with pytest.raises(ValueError, match="hidden_size: expected a positive int, got 0"):
        lstm(0)
    with pytest.raises(TypeError, match="hidden_size"):
        gru(4.0)
    with pytest.raises(ValueError, match="activation: expected one of"):
        elman(3, activation="softplus")
    with pytest.raises(ValueError, match="input_size: expected a positive int"):
        elman(3).init(jax.random.key(0), 0)
