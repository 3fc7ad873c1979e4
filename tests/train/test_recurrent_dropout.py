"""Recurrent dropout (Gal & Ghahramani, 2016): one mask per sequence, applied to
h_{t-1} in the recurrent product at every step, checked against NumPy loops
that use the same mask; inference (no mask) equals the plain cell exactly."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq.cells._dropout import (
    RecurrentDropoutCarry,
    dropout_carry,
    recurrent_dropout,
    recurrent_mask,
)

B, T, F, H = 3, 7, 2, 5
LENGTHS = np.array([7, 4, 0])
RATE = 0.4


def sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def np_step(name, p, h, c, x, m):
    """One step in float64 where only the recurrent product sees ``m * h``."""
    p = {k: np.asarray(v, np.float64) for k, v in p._asdict().items()}
    hm = m * h
    if name == "elman":
        return np.tanh(x @ p["w_x"] + hm @ p["w_h"] + p["b"]), c
    if name == "lstm":
        z = x @ p["w_x"] + hm @ p["w_h"] + p["b"]
        i, f, g, o = np.split(z, 4)
        c = sig(f) * c + sig(i) * np.tanh(g)
        return sig(o) * np.tanh(c), c
    a = x @ p["w_x"] + p["b_x"]
    if name == "gru":  # reset_after=True
        u = hm @ p["w_h"] + p["b_h"]
        r, z = sig(a[:H] + u[:H]), sig(a[H : 2 * H] + u[H : 2 * H])
        n = np.tanh(a[2 * H :] + r * u[2 * H :])
    else:  # reset_after=False: (r * (m * h)) W_hn
        u = hm @ p["w_h"][:, : 2 * H] + p["b_h"][: 2 * H]
        r, z = sig(a[:H] + u[:H]), sig(a[H : 2 * H] + u[H:])
        n = np.tanh(a[2 * H :] + (r * hm) @ p["w_h"][:, 2 * H :] + p["b_h"][2 * H :])
    return (1 - z) * n + z * h, c  # the interpolation reads the unmasked h


CELLS = {
    "elman": lambda: jaxseq.cells.elman(H),
    "lstm": lambda: jaxseq.cells.lstm(H),
    "gru": lambda: jaxseq.cells.gru(H),
    "gru_seed": lambda: jaxseq.cells.gru(H, reset_after=False),
}


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("reverse", [False, True])
def test_same_mask_every_step_matches_numpy_loop(name, reverse):
    cell = recurrent_dropout(CELLS[name](), RATE)
    params = cell.init(jax.random.key(0), F)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    carry0 = dropout_carry(jax.random.key(2), cell, params, batch_size=B)
    carry, ys = jax.jit(
        lambda p, x, c: jaxseq.rnn(
            cell, p, x, lengths=LENGTHS, carry0=c, reverse=reverse
        )
    )(params, xs, carry0)
    masks = np.asarray(carry0.mask, np.float64)
    assert masks.shape == (B, H)
    assert len({tuple(m) for m in masks}) == B  # one mask per sequence
    np.testing.assert_array_equal(carry.mask, carry0.mask)  # never resampled
    for b in range(B):
        h, c = np.zeros(H), np.zeros(H)
        ref = np.zeros((T, H))
        steps = range(LENGTHS[b] - 1, -1, -1) if reverse else range(LENGTHS[b])
        for t in steps:
            h, c = np_step(
                name, params, h, c, np.asarray(xs[b, t], np.float64), masks[b]
            )
            ref[t] = h
        np.testing.assert_allclose(ys[b], ref, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(carry.h[b], h, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_inference_equals_plain_cell(name):
    inner = CELLS[name]()
    cell = recurrent_dropout(inner, RATE)
    params = cell.init(jax.random.key(0), F)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    carry, ys = jaxseq.rnn(cell, params, xs, lengths=LENGTHS)
    carry_ref, ys_ref = jaxseq.rnn(inner, params, xs, lengths=LENGTHS)
    # equal up to float rounding: XLA may fuse the product with the unit mask
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(carry.h, carry_ref.h, rtol=1e-5, atol=1e-7)
    assert isinstance(carry, RecurrentDropoutCarry)


def test_batched_direct_step_equals_vmapped_step():
    cell = recurrent_dropout(jaxseq.cells.gru(H), RATE)
    params = cell.init(jax.random.key(0), F)
    carry = dropout_carry(jax.random.key(3), cell, params, batch_size=B)
    x = jax.random.normal(jax.random.key(4), (B, F))
    c1, y1 = cell.step(params, carry, x)
    c2, y2 = jax.vmap(cell.step, in_axes=(None, 0, 0))(params, carry, x)
    np.testing.assert_allclose(y1, y2, rtol=1e-6)


def test_mask_values_and_errors():
    m = recurrent_mask(jax.random.key(0), 0.25, (20000,))
    values = set(np.unique(np.asarray(m)).tolist())
    assert values == {0.0, np.float32(1 / 0.75).item()}
    assert abs(float((m == 0).mean()) - 0.25) < 0.02
    with pytest.raises(
        ValueError, match=r"rate: expected a dropout rate in \[0, 1\), got 1.0"
    ):
        recurrent_dropout(jaxseq.cells.lstm(H), 1.0)
    with pytest.raises(
        ValueError, match=r"cell: expected a cell made by recurrent_dropout"
    ):
        dropout_carry(jax.random.key(0), jaxseq.cells.lstm(H), None)


def test_stacked_layers_take_dropout_carries():
    cell = recurrent_dropout(jaxseq.cells.lstm(H), RATE)
    layer = jaxseq.stack(cell, num_layers=2)
    params = layer.init(jax.random.key(0), F)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    keys = jax.random.split(jax.random.key(5), 2)
    carry0 = tuple(
        dropout_carry(k, cell, p, batch_size=B)
        for k, p in zip(keys, params, strict=True)
    )
    carries, ys = layer.apply(params, xs, lengths=LENGTHS, carry0=carry0)
    _, ys_eval = layer.apply(params, xs, lengths=LENGTHS)
    assert ys.shape == ys_eval.shape == (B, T, H)
    assert not np.allclose(ys, ys_eval)


BUILT_IN = {
    **CELLS,
    "peephole_lstm": lambda: jaxseq.cells.peephole_lstm(H),
    "layernorm_lstm": lambda: jaxseq.cells.layernorm_lstm(H),
    "layernorm_gru": lambda: jaxseq.cells.layernorm_gru(H),
}


def _rows_masked_step(cell, params, carry, x):
    """The definition for any cell: (m * h) @ W_h == h @ (m[:, None] * W_h),
    one example at a time, every other use of h_{t-1} unmasked."""

    def one(inner, mask, x):
        return cell.step(params._replace(w_h=mask[:, None] * params.w_h), inner, x)

    return jax.vmap(one)(carry.inner, carry.mask, x)


def _masked_both_ways(inner, cell, params):
    """``h`` after one step of the dropout ``cell`` and by the definition, from a
    random carry and mask."""
    carry = dropout_carry(jax.random.key(5), cell, params, batch_size=B)
    carry = carry._replace(
        inner=jax.tree.map(
            lambda a: jax.random.normal(jax.random.key(6), a.shape), carry.inner
        )
    )
    x = jax.random.normal(jax.random.key(7), (B, F))
    got = cell.step(params, carry, x)[0].inner.h
    return got, _rows_masked_step(inner, params, carry, x)[0].h


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_h_only_in_product_flag_is_right_for_every_built_in_cell(name):
    """Cells flagged ``h_only_in_product`` have their ``carry.h`` masked; that
    equals masking rows of ``w_h``, the definition, only if the flag is true of
    the cell's equations."""
    inner = BUILT_IN[name]()
    cell = recurrent_dropout(inner, 0.5)
    params = cell.init(jax.random.key(0), F)
    params = params._replace(w_h=params.w_h + 0.3)  # h matters in every term
    got, want = _masked_both_ways(inner, cell, params)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["gru", "gru_seed", "layernorm_gru"])
def test_a_wrong_h_only_in_product_flag_would_be_caught(name):
    """The GRUs read h_{t-1} outside the product: claiming otherwise changes the
    result, so the test above can fail."""
    inner = BUILT_IN[name]()
    assert not inner.h_only_in_product
    cell = recurrent_dropout(inner._replace(h_only_in_product=True), 0.5)
    params = cell.init(jax.random.key(0), F)
    got, want = _masked_both_ways(inner, cell, params)
    assert np.abs(np.asarray(got) - np.asarray(want)).max() > 1e-3


def test_wrappers_keep_the_flag():
    lstm = jaxseq.cells.lstm(H)
    assert jaxseq.cells.learned_init(lstm).h_only_in_product
    from jaxseq.lm.reset import resettable

    assert resettable(lstm).h_only_in_product
    assert not resettable(jaxseq.cells.gru(H)).h_only_in_product


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_recurrent_dropout_on_a_learned_initial_state(name):
    """learned_init(cell) under recurrent dropout: one step equals the inner
    cell's masked step (the definition on the inner parameters), and the
    learned carry0 still gets its gradient."""
    inner = BUILT_IN[name]()
    learned = jaxseq.cells.learned_init(
        inner, carry_init=jax.nn.initializers.normal(0.5)
    )
    cell = recurrent_dropout(learned, 0.5)
    params = cell.init(jax.random.key(0), F)
    carry = dropout_carry(jax.random.key(5), cell, params, batch_size=B)
    x = jax.random.normal(jax.random.key(7), (B, F))
    got = cell.step(params, carry, x)[0].inner.h
    want = _rows_masked_step(inner, params.inner, carry, x)[0].h
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    xs = jax.random.normal(jax.random.key(8), (B, 4, F))

    def loss(p):
        c0 = dropout_carry(jax.random.key(5), cell, p, batch_size=B)
        return (jaxseq.rnn(cell, p, xs, carry0=c0)[1] ** 2).sum()

    grad = jax.grad(loss)(params)
    assert float(jnp.abs(grad.carry0.h).sum()) > 0.0
