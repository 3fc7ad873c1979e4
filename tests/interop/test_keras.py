"""Keras 3 weight exchange: the same weights give the same outputs (float32, 1e-5).

keras is an optional peer (``pip install -e .[peers]``); these tests skip without
it. Keras runs on its JAX backend here.
"""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras")

import jaxseq  # noqa: E402
from jaxseq.interop.keras import from_keras, keras_weights, to_keras  # noqa: E402

# Keras' Variable.__array__ predates NumPy 2's ``copy`` keyword: get_weights warns.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

B, T, F, H = 4, 7, 3, 5
LENGTHS = np.array([7, 4, 1, 6])
TOL = dict(rtol=1e-5, atol=1e-5)
L = keras.layers

KINDS = {
    "lstm": lambda **kw: L.LSTM(H, **kw),
    "gru": lambda **kw: L.GRU(H, **kw),
    "gru_seed": lambda **kw: L.GRU(H, reset_after=False, **kw),
    "elman": lambda **kw: L.SimpleRNN(H, **kw),
    "elman_relu": lambda **kw: L.SimpleRNN(H, activation="relu", **kw),
}


def inputs(seed=0, features=F):
    return np.asarray(jax.random.normal(jax.random.key(seed), (B, T, features)))


def mask():
    return np.arange(T)[None, :] < LENGTHS[:, None]


def randomise(layer, seed=1):
    """Keras starts biases at zero (or one): random weights test every slot."""
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [
            0.5 * rng.standard_normal(w.shape).astype(np.float32)
            for w in layer.get_weights()
        ]
    )
    return layer


def keras_run(layer, xs, use_mask):
    out = layer(xs, mask=mask() if use_mask else None)
    return [np.asarray(o) for o in out]


def states(carry):
    return [carry.h, carry.c] if hasattr(carry, "c") else [carry.h]


SINGLE = [(k, False, False) for k in KINDS] + [(k, True, True) for k in KINDS]
SINGLE += [("lstm", False, True), ("gru_seed", True, False)]


@pytest.mark.parametrize(("kind", "go_backwards", "use_mask"), SINGLE)
def test_single_layer_same_outputs(kind, go_backwards, use_mask):
    xs = inputs()
    layer = KINDS[kind](
        return_sequences=True, return_state=True, go_backwards=go_backwards
    )
    layer.build((None, None, F))
    randomise(layer)
    ys_k, *states_k = keras_run(layer, xs, use_mask)
    rnn, params = from_keras(layer)
    assert rnn.reverse is go_backwards
    carries, ys = rnn.apply(params, xs, lengths=LENGTHS if use_mask else None)
    if go_backwards:
        # Keras returns the outputs in processing order; jaxseq aligns with input.
        # With a right-padded mask the reversed order puts the padding first.
        ys_k = ys_k[:, ::-1]
    if use_mask:
        valid = mask()[..., None]
        ys_k, ys = np.where(valid, ys_k, 0.0), np.where(valid, ys, 0.0)
    np.testing.assert_allclose(ys, ys_k, **TOL)
    for ours, theirs in zip(states(carries[0]), states_k, strict=True):
        np.testing.assert_allclose(ours, theirs, **TOL)


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_seed"])
@pytest.mark.parametrize("merge", ["concat", "sum"])
def test_bidirectional_with_mask(kind, merge):
    xs = inputs(2)
    layer = L.Bidirectional(
        KINDS[kind](return_sequences=True, return_state=True), merge_mode=merge
    )
    layer.build((None, None, F))
    randomise(layer, seed=3)
    ys_k, *states_k = keras_run(layer, xs, True)
    rnn, params = from_keras(layer)
    assert (rnn.bidirectional, rnn.merge) == (True, merge)
    carries, ys = rnn.apply(params, xs, lengths=LENGTHS)
    np.testing.assert_allclose(ys, ys_k, **TOL)
    ours = states(carries[0].fw) + states(carries[0].bw)
    for a, b in zip(ours, states_k, strict=True):
        np.testing.assert_allclose(a, b, **TOL)


def test_stacked_model_layer_by_layer():
    xs = inputs(4)
    model = keras.Sequential(
        [
            keras.Input((None, F)),
            L.Bidirectional(L.LSTM(H, return_sequences=True)),
            L.Bidirectional(L.GRU(H, return_sequences=True)),
            L.Dense(2),
        ]
    )
    for x in model.layers:
        randomise(x, seed=5)
    rnn, params = from_keras(model)  # the recurrent run; Dense is left out
    assert [c.name for c in rnn.cells] == ["lstm", "gru"]
    ys_k = np.asarray(model.layers[1](model.layers[0](xs)))
    _, ys = rnn.apply(params, xs)
    np.testing.assert_allclose(ys, ys_k, **TOL)


@pytest.mark.parametrize(
    ("cell", "num_layers", "bidirectional"),
    [
        (jaxseq.cells.lstm(H), 2, True),
        (jaxseq.cells.gru(H), 1, False),
        (jaxseq.cells.gru(H, reset_after=False), 1, True),
        (jaxseq.cells.elman(H, activation="identity"), 1, False),
    ],
    ids=["lstm", "gru", "gru_seed", "elman_identity"],
)
def test_export_into_keras_same_outputs(cell, num_layers, bidirectional):
    xs = inputs(6)
    rnn = jaxseq.stack(cell, num_layers, bidirectional=bidirectional)
    params = rnn.init(jax.random.key(0), F)
    # jaxseq initialises biases at zero: perturb so both GRU biases are tested
    params = jax.tree.map(
        lambda a: a + 0.3 * jax.random.normal(jax.random.key(7), a.shape), params
    )
    make = {"lstm": L.LSTM, "gru": L.GRU, "elman": L.SimpleRNN}[cell.name]
    opts = {"gru": {"reset_after": cell.option("reset_after")},
            "elman": {"activation": "linear"}}.get(cell.name, {})  # fmt: skip
    target = []
    for i in range(num_layers):
        t = make(H, return_sequences=True, **opts)
        t = L.Bidirectional(t) if bidirectional else t
        t.build((None, None, F if i == 0 else rnn.output_size))
        target.append(t)
    to_keras(rnn, params, target)
    _, ys = rnn.apply(params, xs)
    ys_k = xs
    for t in target:
        ys_k = np.asarray(t(ys_k))
    np.testing.assert_allclose(ys, ys_k, **TOL)
    # and back: the import reproduces the Keras weights exactly (for the seed GRU
    # b_x + b_h, the same function)
    rnn2, params2 = from_keras(target)
    for a, b in zip(
        keras_weights(rnn2, params2), keras_weights(rnn, params), strict=True
    ):
        for u, v in zip(a, b, strict=True):
            np.testing.assert_array_equal(u, v)


def test_round_trip_is_exact():
    layer = L.GRU(H, return_sequences=True)
    layer.build((None, None, F))
    randomise(layer)
    before = layer.get_weights()
    rnn, params = from_keras(layer)
    fresh = L.GRU(H, return_sequences=True)
    fresh.build((None, None, F))
    to_keras(rnn, params, fresh)
    for a, b in zip(before, fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def built(layer, features=F):
    layer.build((None, None, features))
    return layer


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="recurrent_activation 'sigmoid'"):
        from_keras(built(L.LSTM(H, recurrent_activation="hard_sigmoid")))
    with pytest.raises(ValueError, match="merge_mode"):
        from_keras(built(L.Bidirectional(L.GRU(H), merge_mode="mul")))
    with pytest.raises(ValueError, match="go_backwards=True is supported for a single"):
        from_keras([built(L.GRU(H, go_backwards=True)), built(L.GRU(H), H)])
    with pytest.raises(ValueError, match="Build the Keras layer first"):
        from_keras(L.LSTM(H))
    rnn = jaxseq.stack(jaxseq.cells.lstm(H))
    params = rnn.init(jax.random.key(0), F)
    with pytest.raises(ValueError, match="units=5, got LSTM with units=4"):
        to_keras(rnn, params, built(L.LSTM(4)))
    with pytest.raises(ValueError, match="expected a Keras LSTM"):
        to_keras(rnn, params, built(L.GRU(H)))
    with pytest.raises(ValueError, match=r"expected weight shapes \[\(3, 20\)"):
        to_keras(rnn, params, built(L.LSTM(H), features=4))
    with pytest.raises(ValueError, match="go_backwards=False"):
        to_keras(rnn, params, built(L.LSTM(H, go_backwards=True)))
    gru = jaxseq.stack(jaxseq.cells.gru(H, reset_after=False))
    with pytest.raises(ValueError, match="reset_after=False"):
        to_keras(gru, gru.init(jax.random.key(0), F), built(L.GRU(H)))


def test_use_bias_false():
    layer = randomise(built(L.SimpleRNN(H, use_bias=False, return_sequences=True)))
    rnn, params = from_keras(layer)
    xs = inputs(8)
    np.testing.assert_allclose(rnn.apply(params, xs)[1], np.asarray(layer(xs)), **TOL)
    to_keras(rnn, params, layer)  # zero biases fit a use_bias=False target
    params = (params[0]._replace(b=params[0].b + 1.0),)
    with pytest.raises(ValueError, match="use_bias=False"):
        to_keras(rnn, params, layer)
