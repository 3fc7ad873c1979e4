"""Bad input raises at trace time (under jax.eval_shape, nothing is computed) with
a message naming the argument, the expected and the received value."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq.cells import GRUCarry, LSTMCarry, gru, lstm

B, T, F, H = 2, 6, 3, 4


@pytest.fixture
def lstm_setup(key):
    cell = lstm(H)
    return cell, cell.init(key, F)


def trace(fn, *args):
    """Trace only (abstract evaluation): proves the error comes at trace time."""
    return jax.eval_shape(fn, *args)


def test_wrong_rank(lstm_setup):
    cell, params = lstm_setup
    with pytest.raises(
        ValueError, match=r"xs: expected rank 3 .*got rank 2 with shape \(6, 3\)"
    ):
        trace(lambda x: jaxseq.rnn(cell, params, x), jnp.zeros((T, F)))
    with pytest.raises(ValueError, match=r"xs: expected rank 2 .*got rank 3"):
        jaxseq.unroll(cell, params, cell.init_carry(params), jnp.zeros((B, T, F)))


def test_mismatched_feature_size(lstm_setup):
    cell, params = lstm_setup
    with pytest.raises(
        ValueError,
        match=r"xs: expected feature size 3 \(lstm params.w_x.shape\[0\]\), got 5",
    ):
        trace(lambda x: jaxseq.rnn(cell, params, x), jnp.zeros((B, T, 5)))


def test_wrong_dtype(lstm_setup):
    cell, params = lstm_setup
    with pytest.raises(TypeError, match="xs: expected a floating dtype .*got int32"):
        trace(lambda x: jaxseq.rnn(cell, params, x), jnp.zeros((B, T, F), jnp.int32))
    with pytest.raises(
        TypeError, match="lengths: expected an integer dtype, got float32"
    ):
        jaxseq.rnn(cell, params, jnp.zeros((B, T, F)), lengths=jnp.array([1.0, 2.0]))


@pytest.mark.parametrize("bad", [[7, 2], [-1, 3]])
def test_lengths_out_of_range(lstm_setup, bad):
    cell, params = lstm_setup
    with pytest.raises(
        ValueError,
        match=rf"lengths: expected every value in \[0, 6\] \(T = 6\), got lengths\[0\] = {bad[0]}",
    ):
        jaxseq.rnn(cell, params, jnp.zeros((B, T, F)), lengths=np.array(bad))


def test_lengths_wrong_shape(lstm_setup):
    cell, params = lstm_setup
    with pytest.raises(
        ValueError, match=r"lengths: expected shape \(2,\) .*got shape \(3,\)"
    ):
        trace(
            lambda n: jaxseq.rnn(cell, params, jnp.zeros((B, T, F)), lengths=n),
            jnp.zeros(3, jnp.int32),
        )


def test_mismatched_carry(lstm_setup):
    cell, params = lstm_setup
    bad = LSTMCarry(h=jnp.zeros((B, H)), c=jnp.zeros((B, H + 1)))
    with pytest.raises(
        ValueError, match=r"carry0\.c: expected shape \(2, 4\), got shape \(2, 5\)"
    ):
        trace(lambda c: jaxseq.rnn(cell, params, jnp.zeros((B, T, F)), carry0=c), bad)
    wrong_kind = GRUCarry(h=jnp.zeros((B, H)))
    with pytest.raises(
        ValueError, match="carry0: expected a carry with structure LSTMCarry"
    ):
        jaxseq.rnn(cell, params, jnp.zeros((B, T, F)), carry0=wrong_kind)
    with pytest.raises(
        ValueError, match=r"carry: expected hidden size 4 .*got shape \(3,\)"
    ):
        gru(H).step(
            gru(H).init(jax.random.key(0), F), GRUCarry(jnp.zeros(3)), jnp.zeros(F)
        )


def test_layer_and_option_errors(key):
    with pytest.raises(
        ValueError, match="merge: expected 'concat' or 'sum', got 'avg'"
    ):
        jaxseq.stack(lstm(H), bidirectional=True, merge="avg")
    with pytest.raises(
        ValueError, match=r"dropout: expected a rate in \[0, 1\), got 1.0"
    ):
        jaxseq.stack(lstm(H), num_layers=2, dropout=1.0)
    with pytest.raises(ValueError, match="num_layers: expected a positive int, got 0"):
        jaxseq.stack(lstm(H), num_layers=0)
    with pytest.raises(ValueError, match="unroll: expected None, a positive int"):
        jaxseq.rnn(lstm(H), lstm(H).init(key, F), jnp.zeros((B, T, F)), unroll=0)
    layer = jaxseq.stack(lstm(H), num_layers=2)
    params = layer.init(key, F)
    with pytest.raises(ValueError, match="params: expected 2 layers, got 1"):
        layer.apply(params[:1], jnp.zeros((B, T, F)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: gru(H).init(jax.random.key(0), F),
            r"params: expected the parameters of the lstm cell of hidden size 4 "
            r"\(cell.init\(key, 3\)\): LSTMParams\(.w_x: \(3, 16\).*got GRUParams",
        ),
        (
            lambda: lstm(H + 4).init(jax.random.key(0), F),
            r"params.w_x: expected shape \(3, 16\) \(the lstm cell of hidden size 4 "
            r"at input size 3\), got shape \(3, 32\)",
        ),
        (
            lambda: jaxseq.cells.elman(H).init(jax.random.key(0), F),
            r"params: expected .*LSTMParams.*got ElmanParams",
        ),
    ],
    ids=["another_cell", "another_hidden_size", "elman_params"],
)
def test_params_of_another_cell_or_size(lstm_setup, make, message):
    """Params that the cell's init would not make are refused at trace time,
    naming params, the expected structure/shape and the received one (before:
    AttributeError 'GRUParams' has no attribute 'b' / a dot_general error)."""
    cell, _ = lstm_setup
    params = make()
    for impl in ("auto", "scan"):
        with pytest.raises(ValueError, match=message):
            trace(
                lambda x, impl=impl: jaxseq.rnn(cell, params, x, impl=impl),
                jnp.zeros((B, T, F)),
            )
    with pytest.raises(ValueError, match=message):
        jaxseq.unroll(cell, params, cell.init_carry(params), jnp.zeros((T, F)))


def test_bidirectional_and_stack_name_the_wrong_params(key):
    cell = lstm(H)
    good, other = cell.init(key, F), gru(H).init(key, F)
    xs = jnp.zeros((B, T, F))
    with pytest.raises(ValueError, match="params_bw: expected .*LSTMParams.*GRUParams"):
        trace(lambda x: jaxseq.bidirectional(cell, cell, good, other, x), xs)
    layer = jaxseq.stack(cell, num_layers=2)
    params = layer.init(key, F)
    wrong_size = lstm(H).init(key, H + 1)  # layer 1's input is layer 0's output (H)
    with pytest.raises(
        ValueError,
        match=r"params\[1\].w_x: expected shape \(4, 16\) .*got shape \(5, 16\)",
    ):
        trace(lambda x: layer.apply((params[0], wrong_size), x), xs)
    bi = jaxseq.stack(cell, num_layers=2, bidirectional=True)
    bi_params = bi.init(key, F)
    with pytest.raises(ValueError, match=r"params\[0\]: expected BiParams\(fw, bw\)"):
        bi.apply((good, bi_params[1]), xs)
    swapped = bi_params[0]._replace(bw=other)
    with pytest.raises(ValueError, match=r"params\[0\].bw: expected .*GRUParams"):
        trace(lambda x: bi.apply((swapped, bi_params[1]), x), xs)
    # the first layer's input size still blames xs
    with pytest.raises(ValueError, match=r"xs: expected feature size 3 \(lstm "):
        trace(lambda x: layer.apply(params, x), jnp.zeros((B, T, F + 2)))


def test_params_check_covers_a_user_cell(key):
    """The check asks the cell's own init (no table of built-in names): a
    wrapped cell (recurrent dropout) is checked like the cell it wraps."""
    cell = jaxseq.cells.recurrent_dropout(gru(H), 0.5)
    with pytest.raises(
        ValueError, match=r"params.w_x: expected shape \(3, 12\) .*got shape \(3, 15\)"
    ):
        trace(
            lambda x: jaxseq.rnn(cell, gru(H + 1).init(key, F), x),
            jnp.zeros((B, T, F)),
        )
