"""Flax modules (:mod:`jaxseq.nnx`, :mod:`jaxseq.linen`): the same outputs as the
functional API for the same parameters; training with ``nnx.Optimizer``; jit."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxseq
from jaxseq.linen import RNN as LinenRNN
from jaxseq.nnx import RNN

B, T, F, H = 3, 6, 2, 4
LENGTHS = jnp.array([6, 3, 0])
TOL = dict(rtol=1e-6, atol=1e-6)


def inputs(seed=0):
    return jax.random.normal(jax.random.key(seed), (B, T, F))


CASES = {
    "lstm_bidi_2": dict(cell=jaxseq.cells.lstm(H), num_layers=2, bidirectional=True),
    "gru_reverse": dict(cell=jaxseq.cells.gru(H, reset_after=False), reverse=True),
    "mixed_sum": dict(
        cell=(jaxseq.cells.elman(H), jaxseq.cells.gru(H)),
        bidirectional=True,
        merge="sum",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_nnx_matches_functional(name):
    kw = dict(CASES[name])
    cell = kw.pop("cell")
    model = RNN(cell, F, return_carry=True, rngs=nnx.Rngs(0), **kw)
    layer, params = model.functional()
    xs = inputs()
    carries, ys = model(xs, lengths=LENGTHS)
    carries_f, ys_f = layer.apply(params, xs, lengths=LENGTHS)
    np.testing.assert_allclose(ys, ys_f, **TOL)
    for a, b in zip(jax.tree.leaves(carries), jax.tree.leaves(carries_f), strict=True):
        np.testing.assert_allclose(a, b, **TOL)
    # the parameter tree has the functional NamedTuple structure, Param leaves
    state = nnx.state(model, nnx.Param)
    assert len(jax.tree.leaves(state)) == len(jax.tree.leaves(params))
    # and back: a module from the functional parameters holds the same numbers
    again = RNN.from_functional(layer, params, return_carry=True)
    assert again.layer[2:] == layer[2:]  # cells and options
    for a, b in zip(
        jax.tree.leaves(again.functional()[1]), jax.tree.leaves(params), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_nnx_dropout_train_eval_and_jit():
    model = RNN(jaxseq.cells.lstm(H), F, num_layers=2, dropout=0.5, rngs=nnx.Rngs(0))
    xs = inputs(1)
    layer, params = model.functional()
    step = nnx.jit(lambda m, x: m(x))
    train_a, train_b = step(model, xs), step(model, xs)
    assert not np.allclose(train_a, train_b)  # the stream advances each call
    model.eval()
    np.testing.assert_allclose(step(model, xs), layer.apply(params, xs)[1], **TOL)
    np.testing.assert_allclose(
        model(xs, deterministic=False, rngs=jax.random.key(3)),
        layer.apply(params, xs, key=jax.random.key(3))[1],
        **TOL,
    )
    frozen = RNN.from_functional(layer, params)  # no rngs: starts in eval mode
    np.testing.assert_allclose(frozen(xs), layer.apply(params, xs)[1], **TOL)
    frozen.train()
    with pytest.raises(ValueError, match="dropout rng stream"):
        frozen(xs)


def test_nnx_trains_with_optimizer():
    """Regress the running mean of a sequence: the loss must drop."""

    class Model(nnx.Module):
        def __init__(self, rngs):
            self.rnn = RNN(jaxseq.cells.gru(8), 1, rngs=rngs)
            self.head = nnx.Linear(8, 1, rngs=rngs)

        def __call__(self, xs, lengths):
            ys = self.rnn(xs, lengths=lengths)
            return self.head(jaxseq.nn.last_valid(ys, lengths))[:, 0]

    xs = jax.random.normal(jax.random.key(0), (32, 10, 1))
    lengths = jax.random.randint(jax.random.key(1), (32,), 1, 11)
    mask = jaxseq.nn.mask_from_lengths(lengths, 10)
    target = jnp.where(mask, xs[..., 0], 0.0).sum(1) / lengths

    model = Model(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    def loss_fn(m):
        return jnp.mean((m(xs, lengths) - target) ** 2)

    @nnx.jit
    def train_step(m, opt):
        loss, grads = nnx.value_and_grad(loss_fn)(m)
        opt.update(m, grads)
        return loss

    first = float(loss_fn(model))
    for _ in range(60):
        train_step(model, optimizer)
    assert float(loss_fn(model)) < 0.3 * first


def test_nnx_refuses_bad_params():
    layer = jaxseq.stack(jaxseq.cells.lstm(H))
    params = layer.init(jax.random.key(0), F)
    with pytest.raises(ValueError, match=r"params\[0\].w_x: expected shape \(3, 16\)"):
        RNN(jaxseq.cells.lstm(H), 3, params=params, rngs=None)
    with pytest.raises(ValueError, match="rngs: expected nnx.Rngs"):
        RNN(jaxseq.cells.lstm(H), F, rngs=None)


def test_linen_matches_functional_under_jit():
    model = LinenRNN(
        jaxseq.cells.lstm(H), num_layers=2, bidirectional=True, dropout=0.3
    )
    xs = inputs(2)
    variables = model.init(jax.random.key(0), xs, deterministic=True)
    params = variables["params"]["layers"]
    layer = model.rnn_layer()
    ys = jax.jit(lambda v, x: model.apply(v, x, lengths=LENGTHS, deterministic=True))(
        variables, xs
    )
    np.testing.assert_allclose(ys, layer.apply(params, xs, lengths=LENGTHS)[1], **TOL)
    ys_train = model.apply(
        variables, xs, deterministic=False, rngs={"dropout": jax.random.key(1)}
    )
    assert not np.allclose(ys_train, ys)
