"""The cells the peers lack (LayerNorm LSTM/GRU, peephole LSTM) and the learnable
initial state: each against a NumPy reference written from its paper's equations
(tests/cells/reference.py), through the runners and layers, with gradients checked."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

import jaxseq
from jaxseq.cells import (
    LearnedInitParams,
    LSTMCarry,
    gru,
    layernorm_gru,
    layernorm_lstm,
    learned_init,
    lstm,
    peephole_lstm,
    recurrent_dropout,
)
from jaxseq.lm import rnn_lm

from . import reference as ref

NEW = {
    "layernorm_lstm": layernorm_lstm,
    "layernorm_gru": layernorm_gru,
    "peephole_lstm": peephole_lstm,
}
NAMES = list(NEW)
B, T, F, H = 4, 7, 3, 5
LENGTHS = np.array([7, 3, 0, 5])


def make(name, key, hidden=H, features=F, dtype=jnp.float32):
    """A cell and its parameters, every leaf perturbed (gains away from one,
    nonzero biases and peepholes) so that every parameter slot matters."""
    cell = NEW[name](hidden, dtype=dtype)
    params = cell.init(key, features)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(7), len(leaves))
    leaves = [
        a + (0.3 * jax.random.normal(k, a.shape, jnp.float32)).astype(a.dtype)
        for k, a in zip(keys, leaves, strict=True)
    ]
    return cell, jax.tree.unflatten(treedef, leaves)


def random_carry(cell, params, key, batch=()):
    carry = cell.init_carry(params)
    leaves, treedef = jax.tree.flatten(carry)
    keys = jax.random.split(key, len(leaves))
    leaves = [
        0.5 * jax.random.normal(k, (*batch, *a.shape), a.dtype)
        for k, a in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(treedef, leaves)


def state(carry):
    return tuple(np.asarray(a, np.float64) for a in carry)  # (h,) or (h, c)


def numpy_rnn(name, params, xs, carry0, lengths, reverse):
    """The reference loop for a batch: (final states per example, ys [B, T, H])."""
    stepper = ref.steppers(name, params)
    finals, ys = [], []
    for b in range(xs.shape[0]):
        c0 = jax.tree.map(lambda a, b=b: a[b], carry0)
        s, y = ref.run(
            stepper,
            state(c0),
            np.asarray(xs[b]),
            None if lengths is None else lengths[b],
            reverse,
        )
        finals.append(s)
        ys.append(y)
    return finals, np.stack(ys)


@pytest.mark.parametrize("name", NAMES)
def test_step_matches_paper_equations(name, key):
    cell, params = make(name, key)
    carry = random_carry(cell, params, jax.random.key(1), batch=(3,))
    xs = jax.random.normal(jax.random.key(2), (3, F))
    step = jax.jit(cell.step)
    new_batched, y_batched = step(params, carry, xs)  # leading batch axis
    stepper = ref.steppers(name, params)
    for b in range(3):
        one = jax.tree.map(lambda a, b=b: a[b], carry)
        new, y = step(params, one, xs[b])
        expected = stepper(state(one), np.asarray(xs[b], np.float64))
        np.testing.assert_allclose(y, expected[0], rtol=1e-5, atol=1e-6)
        for got, want in zip(new, expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(y_batched[b], y, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_rnn_matches_numpy_loop(name, key):
    """From a random initial carry, backwards within lengths (the forward
    direction is checked in the stacked bidirectional test below)."""
    cell, params = make(name, key)
    xs = jax.random.normal(jax.random.key(3), (B, T, F))
    carry0 = random_carry(cell, params, jax.random.key(5), batch=(B,))
    lengths, reverse = LENGTHS, True
    carry, ys = jax.jit(
        lambda p, x, c: jaxseq.rnn(
            cell, p, x, lengths=lengths, carry0=c, reverse=reverse
        )
    )(params, xs, carry0)
    finals, ys_ref = numpy_rnn(name, params, xs, carry0, lengths, reverse)
    np.testing.assert_allclose(ys, ys_ref, rtol=2e-5, atol=2e-6)
    for b, s in enumerate(finals):
        for got, want in zip(carry, s, strict=True):
            np.testing.assert_allclose(got[b], want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", NAMES)
def test_padded_batch_equals_unpadded(name, key):
    """Forward and bidirectional runs over a right-padded batch (padding filled
    with large noise) give, for each sequence, what the unpadded sequence gives."""
    cell, params = make(name, key)
    _, params_bw = make(name, jax.random.key(11))
    lengths = np.array([5, 3, 0, 5])
    xs = jax.random.normal(jax.random.key(3), (B, T, F))
    pad = jnp.arange(T)[None, :, None] >= lengths[:, None, None]
    xs = jnp.where(pad, 1e3 * jax.random.normal(jax.random.key(4), xs.shape), xs)

    def run(x, lengths=None):
        carry, ys = jaxseq.rnn(cell, params, x, lengths=lengths)
        (_, carry_bw), ys_bi = jaxseq.bidirectional(
            cell, cell, params, params_bw, x, lengths=lengths
        )
        return carry, carry_bw, ys, ys_bi

    @jax.jit
    def both(xs):
        return run(xs, jnp.asarray(lengths)), run(xs[:, :5]), run(xs[:, :3])

    padded, unpadded5, unpadded3 = both(xs)
    for b, n in enumerate(lengths):
        if n == 0:
            np.testing.assert_array_equal(padded[2][b], 0.0)
            np.testing.assert_array_equal(padded[3][b], 0.0)
            continue
        alone = unpadded5 if n == 5 else unpadded3
        for got, want in zip(padded[0], alone[0], strict=True):  # final carry
            np.testing.assert_allclose(got[b], want[b], rtol=1e-5, atol=1e-6)
        for got, want in zip(padded[1], alone[1], strict=True):  # backward's
            np.testing.assert_allclose(got[b], want[b], rtol=1e-5, atol=1e-6)
        for i in (2, 3):  # ys, bidirectional ys
            np.testing.assert_allclose(
                padded[i][b, :n], alone[i][b], rtol=1e-5, atol=1e-6
            )
            np.testing.assert_array_equal(padded[i][b, n:], 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_stacked_bidirectional_layer_matches_numpy(name, key):
    layer = jaxseq.layers.stack(NEW[name](H), num_layers=2, bidirectional=True)
    params = layer.init(key, F)
    xs = jax.random.normal(jax.random.key(3), (B, T, F))
    lengths = jnp.asarray(LENGTHS)
    _, ys = jax.jit(lambda p, x: layer.apply(p, x, lengths=lengths))(params, xs)
    h = np.asarray(xs, np.float64)
    for p in params:
        zeros = jax.tree.map(
            lambda a: jnp.zeros((B, *a.shape)), layer.cells[0].init_carry(p.fw)
        )
        _, y_fw = numpy_rnn(name, p.fw, h, zeros, LENGTHS, False)
        _, y_bw = numpy_rnn(name, p.bw, h, zeros, LENGTHS, True)
        h = np.concatenate([y_fw, y_bw], axis=-1)
    assert ys.shape == (B, T, 2 * H)
    np.testing.assert_allclose(ys, h, rtol=5e-5, atol=5e-6)


@pytest.mark.parametrize("name", NAMES)
def test_check_grads_through_the_runner_under_jit(name, x64):
    """Forward and reverse mode against finite differences, through a jitted
    masked reverse run: every equation of the step, and its carry-to-carry
    derivative across steps, is on the path. ``impl="auto"`` in reverse mode
    (the peephole LSTM's hand-written backward: reverse mode only), and
    ``impl="autodiff"`` in both (forward mode with or without a fused kernel)."""
    cell, params = make(
        name, jax.random.key(0), hidden=3, features=2, dtype=jnp.float64
    )
    xs = jax.random.normal(jax.random.key(4), (2, 5, 2), jnp.float64)
    lengths = jnp.array([5, 3])
    carry0 = random_carry(cell, params, jax.random.key(2), batch=(2,))

    def loss(impl):
        @jax.jit
        def f(p, xs, c0):
            carry, ys = jaxseq.rnn(cell, p, xs, lengths=lengths, carry0=c0,
                                   reverse=True, impl=impl)  # fmt: skip
            return (ys**2).sum() + (carry.h**3).sum()

        return f

    check_grads(loss("auto"), (params, xs, carry0), order=1, modes=("rev",))
    check_grads(loss("autodiff"), (params, xs, carry0), order=1, modes=("fwd", "rev"))


@pytest.mark.parametrize("name", ["layernorm_lstm", "layernorm_gru"])
def test_bfloat16_close_to_float32(name, key):
    cell32, p32 = make(name, key)
    cell16 = NEW[name](H, dtype=jnp.bfloat16)
    p16 = jax.tree.map(lambda a: a.astype(jnp.bfloat16), p32)
    assert all(a.dtype == jnp.bfloat16 for a in jax.tree.leaves(cell16.init(key, F)))
    xs = jax.random.normal(jax.random.key(3), (2, 10, F))
    _, y32 = jax.jit(lambda p, x: jaxseq.rnn(cell32, p, x))(p32, xs)
    _, y16 = jax.jit(lambda p, x: jaxseq.rnn(cell16, p, x))(
        p16, xs.astype(jnp.bfloat16)
    )
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=0.06)


@pytest.mark.parametrize("name", ["layernorm_lstm", "layernorm_gru"])
def test_layernorm_makes_each_projection_scale_free(name, key):
    """LN(c a) = LN(a) for c > 0 (exactly with eps -> 0): rescaling w_x or w_h
    alone leaves the outputs unchanged, which holds only when the two projections
    are normalised separately; scaling a gain does change them."""
    _, params = make(name, key)
    cell = NEW[name](H, eps=1e-12)
    xs = jax.random.normal(jax.random.key(3), (2, 6, F))
    carry0 = random_carry(cell, params, jax.random.key(5), batch=(2,))

    @jax.jit
    def outputs(p):
        return jaxseq.rnn(cell, p, xs, carry0=carry0)[1]

    ys = outputs(params)
    for field in ("w_x", "w_h"):
        scaled = params._replace(**{field: 8.0 * getattr(params, field)})
        np.testing.assert_allclose(outputs(scaled), ys, rtol=1e-4, atol=1e-5)
    ys_gain = outputs(params._replace(g_x=2.0 * params.g_x))
    assert np.abs(np.asarray(ys_gain - ys)).max() > 1e-2


def test_peephole_lstm_with_zero_peepholes_is_the_lstm(key):
    cell = peephole_lstm(H)
    params = cell.init(key, F)  # peephole_init: zeros
    np.testing.assert_array_equal(params.w_c, 0.0)
    plain = jaxseq.cells.LSTMParams(params.w_x, params.w_h, params.b)
    np.testing.assert_array_equal(plain.w_x, lstm(H).init(key, F).w_x)
    xs = jax.random.normal(jax.random.key(3), (B, T, F))
    lengths = jnp.asarray(LENGTHS)

    @jax.jit
    def outputs(params, plain):
        ys = jaxseq.rnn(cell, params, xs, lengths=lengths)[1]
        ys_lstm = jaxseq.rnn(lstm(H), plain, xs, lengths=lengths)[1]  # fused kernel
        ys_peep = jaxseq.rnn(cell, params._replace(w_c=params.w_c + 1.0), xs)[1]
        return ys, ys_lstm, ys_peep

    ys, ys_lstm, ys_peep = outputs(params, plain)
    np.testing.assert_allclose(ys, ys_lstm, rtol=1e-5, atol=1e-6)
    valid = np.arange(T)[None, :, None] < LENGTHS[:, None, None]
    assert np.abs(np.where(valid, ys_peep - ys, 0.0)).max() > 1e-3


@pytest.mark.parametrize("name", ["layernorm_gru"])
def test_recurrent_dropout_wraps_the_new_cells(name, key):
    cell, params = make(name, key)
    dropped = recurrent_dropout(cell, 0.5)
    xs = jax.random.normal(jax.random.key(3), (B, T, F))
    c0 = jaxseq.cells.dropout_carry(jax.random.key(4), dropped, params, batch_size=B)

    @jax.jit
    def outputs(params, c0):
        ys = jaxseq.rnn(dropped, params, xs)[1]  # inference: a mask of ones
        return (
            ys,
            jaxseq.rnn(cell, params, xs)[1],
            jaxseq.rnn(dropped, params, xs, carry0=c0)[1],
        )

    ys, ys_plain, ys_train = outputs(params, c0)
    np.testing.assert_allclose(ys, ys_plain, rtol=1e-5, atol=1e-6)
    assert np.isfinite(np.asarray(ys_train)).all()


# ------------------------------------------------------------ learned initial state
@pytest.mark.parametrize(
    "inner", [lstm(H), gru(H), layernorm_lstm(H)], ids=lambda c: c.name
)
def test_learned_init_starts_as_the_inner_cell(inner, key):
    cell = learned_init(inner)
    params = cell.init(key, F)
    assert isinstance(params, LearnedInitParams)
    assert cell.name == f"{inner.name}+learned_init" and cell.option("learned_init")
    for a, b in zip(
        jax.tree.leaves(params.inner), jax.tree.leaves(inner.init(key, F)), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    assert all(not np.asarray(a).any() for a in jax.tree.leaves(params.carry0))
    xs = jax.random.normal(jax.random.key(3), (B, T, F))
    lengths = jnp.asarray(LENGTHS)
    ys, ys_inner = jax.jit(
        lambda p: (
            jaxseq.rnn(cell, p, xs, lengths=lengths)[1],
            jaxseq.rnn(inner, p.inner, xs, lengths=lengths)[1],
        )
    )(params)
    np.testing.assert_allclose(ys, ys_inner, rtol=1e-5, atol=1e-6)


def test_learned_init_runs_from_the_learned_carry(key):
    inner = peephole_lstm(H)
    cell = learned_init(inner, carry_init=jax.nn.initializers.normal(0.5))
    params = cell.init(key, F)
    assert isinstance(params.carry0, LSTMCarry)
    assert np.abs(np.asarray(params.carry0.c)).max() > 0  # drawn, not zeros
    xs = jax.random.normal(jax.random.key(3), (B, T, F))
    lengths = jnp.asarray(LENGTHS)
    carry, ys = jax.jit(
        lambda p: jaxseq.rnn(cell, p, xs, lengths=lengths, reverse=True)
    )(params)
    c0 = jax.tree.map(lambda a: jnp.broadcast_to(a, (B, *a.shape)), params.carry0)
    finals, ys_ref = numpy_rnn("peephole_lstm", params.inner, xs, c0, LENGTHS, True)
    np.testing.assert_allclose(ys, ys_ref, rtol=2e-5, atol=2e-6)
    # length 0: the final carry is the learned initial one
    np.testing.assert_allclose(carry.c[2], params.carry0.c, rtol=1e-6)


@pytest.mark.parametrize("impl", ["fused", "fused_fm"])
def test_learned_init_keeps_the_inner_fused_kernel(impl, key):
    """learned_init(lstm) runs the LSTM's fused kernel; outputs and gradients
    (the learned carry's included) equal the autodiff reference path's."""
    cell = learned_init(lstm(H), carry_init=jax.nn.initializers.normal(0.5))
    assert cell.kernel is not None
    params = cell.init(key, F)
    xs = jax.random.normal(jax.random.key(3), (B, T, F))
    lengths = jnp.asarray(LENGTHS)

    def loss(p, impl):
        carry, ys = jaxseq.rnn(cell, p, xs, lengths=lengths, reverse=True, impl=impl)
        return (ys**2).sum() + jnp.sin(carry.c).sum(), ys

    @jax.jit
    def both(p):
        return [jax.value_and_grad(loss, has_aux=True)(p, i) for i in (impl, "scan")]

    ((_, ys), g), ((_, ys_ref), g_ref) = both(params)
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert np.abs(np.asarray(g.carry0.c)).max() > 1e-3


def test_learned_init_gradient_equals_finite_difference(x64):
    cell = learned_init(layernorm_gru(3, dtype=jnp.float64))
    params = cell.init(jax.random.key(0), 2)
    params = params._replace(
        carry0=params.carry0._replace(h=jnp.array([0.3, -0.5, 0.2]))
    )
    xs = jax.random.normal(jax.random.key(4), (3, 5, 2), jnp.float64)
    lengths = jnp.array([5, 2, 0])

    @jax.jit
    def loss(p):
        carry, ys = jaxseq.rnn(cell, p, xs, lengths=lengths)
        return (ys**2).sum() + jnp.sin(carry.h).sum()

    grad = jax.grad(loss)(params).carry0.h
    eps = 1e-6
    for k in range(3):
        e = jnp.zeros(3).at[k].set(eps)
        plus = params._replace(carry0=params.carry0._replace(h=params.carry0.h + e))
        minus = params._replace(carry0=params.carry0._replace(h=params.carry0.h - e))
        fd = (loss(plus) - loss(minus)) / (2 * eps)
        np.testing.assert_allclose(grad[k], fd, rtol=1e-6, atol=1e-8)
    assert np.abs(np.asarray(grad)).min() > 1e-4  # every entry of h0 matters


def test_learning_the_initial_state_fits_a_task_that_needs_it():
    """Targets made by the same cell from a hidden h0*: with the weights frozen,
    only the initial state can fit them; training it cuts the loss of the zero
    initial state (the plain cell's) by over 20x (measured: 1e-13 of it or less
    for seeds 0-7, h0* recovered to 2e-7)."""
    inner = gru(6)
    cell = learned_init(inner)
    k_p, k_h, k_x = jax.random.split(jax.random.key(0), 3)
    params = cell.init(k_p, 2)
    h_star = jax.random.uniform(k_h, (6,), minval=-0.9, maxval=0.9)
    xs = 0.5 * jax.random.normal(k_x, (8, 6, 2))
    c_star = jaxseq.cells.GRUCarry(h=jnp.broadcast_to(h_star, (8, 6)))
    _, targets = jaxseq.rnn(inner, params.inner, xs, carry0=c_star)

    def loss(carry0):
        _, ys = jaxseq.rnn(cell, params._replace(carry0=carry0), xs)
        return jnp.mean((ys - targets) ** 2)

    opt = optax.adam(0.05)

    @jax.jit
    def train(carry0):
        def body(_, state):
            c, s = state
            g = jax.grad(loss)(c)
            u, s = opt.update(g, s)
            return optax.apply_updates(c, u), s

        return jax.lax.fori_loop(0, 300, body, (carry0, opt.init(carry0)))[0]

    with jax.numpy_dtype_promotion("standard"):  # optax is not strict-promotion clean
        trained = train(params.carry0)
    before = float(jax.jit(loss)(params.carry0))  # zeros: what the plain gru computes
    after = float(jax.jit(loss)(trained))
    assert before > 1e-3
    assert after < before / 20, (before, after)
    np.testing.assert_allclose(trained.h, h_star, atol=1e-2)  # and finds h0*


def test_learned_init_in_a_stacked_bidirectional_layer(key):
    layer = jaxseq.layers.stack(learned_init(lstm(H)), num_layers=2, bidirectional=True)
    params = layer.init(key, F)
    xs = jax.random.normal(jax.random.key(3), (B, T, F))
    lengths = jnp.asarray(LENGTHS)

    def loss(p):
        return (layer.apply(p, xs, lengths=lengths)[1] ** 2).sum()

    grads = jax.jit(jax.grad(loss))(params)
    for g in grads:
        for direction in (g.fw, g.bw):
            assert np.abs(np.asarray(direction.carry0.h)).max() > 0
            assert np.abs(np.asarray(direction.carry0.c)).max() > 0


def test_new_cells_refuse_bad_options(key):
    with pytest.raises(ValueError, match="hidden_size: expected a positive int, got 0"):
        layernorm_lstm(0)
    with pytest.raises(TypeError, match="hidden_size"):
        peephole_lstm(2.0)
    with pytest.raises(ValueError, match="eps: expected a positive float, got 0"):
        layernorm_gru(4, eps=0)
    with pytest.raises(ValueError, match="input_size: expected a positive int"):
        layernorm_gru(4).init(key, 0)
    with pytest.raises(TypeError, match="cell: expected a jaxseq.cells.Cell, got str"):
        learned_init("lstm")
    with pytest.raises(TypeError, match="carry_init: expected None or an initialiser"):
        learned_init(lstm(2), carry_init=0.0)
    cell = learned_init(lstm(2))
    with pytest.raises(TypeError, match=r"params: expected LearnedInitParams"):
        cell.init_carry(lstm(2).init(key, 3))
    with pytest.raises(ValueError, match="xs"):
        jaxseq.rnn(
            layernorm_lstm(2), layernorm_lstm(2).init(key, 3), jnp.ones((1, 4, 5))
        )
    with pytest.raises(ValueError, match="params"):
        jaxseq.rnn(layernorm_gru(2), gru(2).init(key, 3), jnp.ones((1, 4, 3)))


@pytest.mark.parametrize(
    "make_cell",
    [lambda: layernorm_lstm(8), lambda: learned_init(peephole_lstm(8))],
    ids=["layernorm_lstm", "learned_init(peephole_lstm)"],
)
def test_new_cells_in_the_language_model_builder(make_cell):
    lm = rnn_lm(20, cell=make_cell(), embed_dim=8, num_layers=2)
    params = lm.init(jax.random.key(0))
    # the LM's readout adds its bias by implicit rank promotion, which this
    # directory's strict fixture refuses; the cells themselves stay strict
    with jax.numpy_rank_promotion("allow"):
        carry, logits = jax.eval_shape(
            lambda p: lm.apply(p, lm.init_carry(p, 3), jnp.ones((3, 5), jnp.int32)),
            params,
        )
    assert logits.shape == (3, 5, 20) and carry[1].h.shape == (3, 8)


# ------------------------------------------------------------------ by name
@pytest.mark.parametrize("name", sorted(jaxseq.cells.BY_NAME))
def test_by_name_rebuilds_every_built_in_cell(name, key):
    """One table of the built-in cells: each factory's cells carry its name, and
    name + hidden size + options rebuild the same cell (same parameters)."""
    cell = jaxseq.cells.BY_NAME[name](H)
    assert cell.name == name
    again = jaxseq.cells.BY_NAME[cell.name](cell.hidden_size, **dict(cell.options))
    assert again.options == cell.options and again.h_only_in_product == (
        cell.h_only_in_product
    )
    for a, b in zip(
        jax.tree.leaves(cell.init(key, F)),
        jax.tree.leaves(again.init(key, F)),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError):
        jaxseq.cells.BY_NAME["lstm2"] = jaxseq.cells.lstm  # read-only


def test_models_lm_and_io_read_the_same_table():
    from jaxseq import io
    from jaxseq.lm import models as lm_models
    from jaxseq.models import recurrent

    assert recurrent.CELLS is jaxseq.cells.BY_NAME
    assert lm_models.CELLS is jaxseq.cells.BY_NAME
    assert io._FACTORIES is jaxseq.cells.BY_NAME


@pytest.mark.parametrize("name", ["layernorm_lstm", "peephole_lstm", "layernorm_gru"])
def test_new_cells_save_and_load_in_a_layer(name, key, tmp_path):
    from jaxseq import io
    from jaxseq.layers import stack

    layer = stack(jaxseq.cells.BY_NAME[name](H), 2)
    params = layer.init(key, F)
    again = io.layer_from_config(io.layer_config(layer, params))
    assert [c.name for c in again.cells] == [name, name]
    xs = jax.random.normal(jax.random.key(3), (B, T, F))
    np.testing.assert_array_equal(
        layer.apply(params, xs)[1], again.apply(params, xs)[1]
    )
