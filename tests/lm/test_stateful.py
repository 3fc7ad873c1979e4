"""Stateful truncated BPTT and resets: chunks with the carry passed on equal one
unchunked run; one chunk's gradient equals full BPTT; several chunks' gradient
equals BPTT cut at the chunk boundaries; a reset equals running the documents
separately. Every built-in cell, stacked, against a step-by-step reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxseq
from jaxseq import lm

from ._reference import nll_sum, reference_lm

V, D, B, N, T = 11, 5, 2, 12, 4
CELLS = {
    "lstm": lambda: jaxseq.cells.lstm(D),
    "gru": lambda: jaxseq.cells.gru(D),
    "gru_v1": lambda: jaxseq.cells.gru(D, reset_after=False),
    "elman": lambda: jaxseq.cells.elman(D),
}


def _data(seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(2, V, size=(B, N + 1)).astype(np.int32)
    resets = np.zeros((B, N), bool)
    resets[0, 5] = resets[1, 2] = resets[1, 9] = True
    return jnp.asarray(ids[:, :-1]), jnp.asarray(ids[:, 1:]), jnp.asarray(resets)


def _model(name, tied=False):
    cell = CELLS[name]()
    model = lm.rnn_lm(V, cell=cell, embed_dim=D, num_layers=2, tied=tied)
    params = model.init(jax.random.key(1))
    # a non-zero readout bias and carry, so that no term hides behind a zero
    params["out"] = params["out"]._replace(b=jnp.linspace(-1.0, 1.0, V))
    return cell, model, params


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CELLS))
def test_chunks_equal_unchunked_and_reference(name):
    cell, model, params = _model(name, tied=name == "gru")
    inputs, targets, resets = _data()
    carry0 = jax.tree.map(lambda a: a + 0.1, model.init_carry(params, B))
    tied = name == "gru"
    reference = jax.jit(
        lambda p, c, x, r: reference_lm(cell, p, x, c, resets=r, tied=tied)
    )
    for rs in (None, resets):
        no_resets = jnp.zeros_like(resets)
        ref_carry, ref_logits = reference(
            params, carry0, inputs, no_resets if rs is None else rs
        )
        # in chunks of T, the carry passed on (the jitted eval step)
        eval_step = lm.make_stream_eval_step(model)
        c, total = carry0, 0.0
        zeros = jnp.zeros_like(inputs, dtype=bool)
        for s in range(0, N, T):
            batch = lm.Chunks(
                inputs[:, s : s + T],
                targets[:, s : s + T],
                (zeros if rs is None else rs)[:, s : s + T],
            )
            c, metrics = eval_step(params, c, batch)
            total += float(metrics["loss"])
        for got, want in zip(
            jax.tree.leaves(c), jax.tree.leaves(ref_carry), strict=True
        ):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(total, nll_sum(ref_logits, targets), rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm"])
def test_gradients_full_and_truncated(name):
    cell, model, params = _model(name)
    inputs, targets, resets = _data(1)
    carry0 = model.init_carry(params, B)

    def ref_loss(p, cuts):  # cuts [N] bool
        _, logits = reference_lm(cell, p, inputs, carry0, resets=resets, cuts=cuts)
        return nll_sum(logits, targets) / targets.size

    # one chunk: the chunk loss's gradient is full BPTT
    one = lm.Chunks(inputs, targets, resets)
    ref_grad = jax.jit(jax.grad(ref_loss))
    got = jax.jit(jax.grad(lambda p: lm.chunk_loss(model, p, carry0, one)[0]))(params)
    want = ref_grad(params, np.zeros(N, bool))
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)

    # chunks of T: the summed chunk gradients are BPTT cut at each boundary, and
    # they differ from full BPTT
    def truncated(p):
        c, total = carry0, 0.0
        for s in range(0, N, T):
            batch = lm.Chunks(*(a[:, s : s + T] for a in (inputs, targets, resets)))
            mean, (c, _, count) = lm.chunk_loss(model, p, c, batch)
            total = total + mean * count / targets.size
        return total

    got = jax.jit(jax.grad(truncated))(params)
    cut = ref_grad(params, (np.arange(N) % T == 0) & (np.arange(N) > 0))
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(cut), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    full = want
    diff = max(
        float(jnp.abs(a - b).max())
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(full), strict=True)
    )
    assert diff > 1e-4


@pytest.mark.parametrize("name", list(CELLS))
def test_reset_equals_separate_documents(name):
    _, model, params = _model(name)
    rng = np.random.default_rng(3)
    ids = jnp.asarray(rng.integers(2, V, size=(1, 8)), jnp.int32)
    resets = jnp.zeros((1, 8), bool).at[0, 4].set(True)
    carry0 = jax.tree.map(lambda a: a + 0.3, model.init_carry(params, 1))
    apply = jax.jit(model.apply)
    _, logits = apply(params, carry0, ids, resets=resets)
    _, first = apply(params, carry0, ids[:, :4])
    _, second = apply(params, model.init_carry(params, 1), ids[:, 4:])
    np.testing.assert_allclose(logits[:, :4], first, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits[:, 4:], second, rtol=1e-5, atol=1e-5)


def test_train_step_keeps_carry_and_updates_like_sgd():
    cell, model, params = _model("lstm")
    inputs, targets, resets = _data(2)
    opt = optax.sgd(0.5)
    state = lm.init_stream_state(model, params, opt, jax.random.key(0), B)
    step = lm.make_stream_train_step(model, opt)
    first = lm.Chunks(inputs[:, :T], targets[:, :T], resets[:, :T])
    state, metrics = step(state, first)
    carry0 = model.init_carry(params, B)

    def ref(p):
        c, logits = reference_lm(cell, p, first.inputs, carry0, resets=first.resets)
        return nll_sum(logits, first.targets) / first.targets.size, c

    (loss, ref_carry), grads = jax.jit(jax.value_and_grad(ref, has_aux=True))(params)
    np.testing.assert_allclose(float(metrics["loss"]) / float(metrics["count"]),
                               float(loss), rtol=1e-5)  # fmt: skip
    for g, w in zip(
        jax.tree.leaves(state.carry), jax.tree.leaves(ref_carry), strict=True
    ):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    new = jax.tree.map(lambda p, g: p - 0.5 * g, params, grads)
    for g, w in zip(
        jax.tree.leaves(state.train.params), jax.tree.leaves(new), strict=True
    ):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    assert int(state.train.step) == 1


def test_dropout_needs_a_key_and_is_deterministic_given_it():
    model = lm.rnn_lm(V, cell="gru", embed_dim=D, hidden=D, num_layers=1,
                      dropout=0.3, recurrent_dropout=0.3)  # fmt: skip
    params = model.init(jax.random.key(0))
    inputs, _, resets = _data()
    carry0 = model.init_carry(params, B)
    apply = jax.jit(model.apply)
    _, plain = apply(params, carry0, inputs)
    for rs in (None, resets):
        c1, a = apply(params, carry0, inputs, resets=rs, key=jax.random.key(5))
        _, b = apply(params, carry0, inputs, resets=rs, key=jax.random.key(5))
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, plain)
        # the carry kept for the next chunk is the plain cell carry (no mask)
        assert jax.tree.structure(c1) == jax.tree.structure(carry0)


def test_errors():
    model = lm.rnn_lm(V, cell="lstm", embed_dim=D, hidden=D, num_layers=2)
    params = model.init(jax.random.key(0))
    carry = model.init_carry(params, 1)
    with pytest.raises(ValueError, match=r"ids: expected token ids in \[0, 11\)"):
        model.apply(params, carry, jnp.array([[3, 11]]))
    with pytest.raises(ValueError, match="ids: expected rank 2"):
        model.apply(params, carry, jnp.array([3, 4]))
    with pytest.raises(ValueError, match="carry: expected a tuple of 2"):
        model.apply(params, carry[:1], jnp.array([[3, 4]]))
    with pytest.raises(ValueError, match="resets: expected shape"):
        model.apply(params, carry, jnp.array([[3, 4]]), resets=jnp.zeros((1, 3), bool))
    with pytest.raises(ValueError, match="tied: expected hidden == embed_dim"):
        lm.rnn_lm(V, embed_dim=4, hidden=5, tied=True)
    with pytest.raises(ValueError, match="cell: expected one of"):
        lm.rnn_lm(V, cell="rnn")
