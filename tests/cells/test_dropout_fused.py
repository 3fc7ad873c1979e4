"""Recurrent dropout on the fused kernels: a wrapped Elman, LSTM-type or GRU-type
cell runs its inner cell's hand-written backward with the mask applied to
``h_{t-1}`` in the recurrent product (the GRU's update ``z * h_{t-1}`` reads it
unmasked). Checked against the reference path (``impl="scan"``), against the
definition written independently of the wrapper (each example run by the plain
cell with the rows of ``w_h`` scaled by its mask, gradients by autodiff through
that scaling, the mask's included), against the plain cell for a mask of ones,
and against float64 finite differences."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxseq
import jaxseq._runner
from jaxseq.cells import (
    LearnedInitParams,
    dropout_carry,
    elman,
    gru,
    layernorm_gru,
    layernorm_lstm,
    learned_init,
    lstm,
    peephole_lstm,
    recurrent_dropout,
)
from jaxseq.lm.reset import resettable, with_resets

B, T, F, H = 4, 7, 3, 5
LENGTHS = np.array([7, 3, 0, 5])
RATE = 0.4

CELLS = {
    "lstm": lstm,
    "elman": elman,
    "elman_relu": lambda h, **kw: elman(h, activation="relu", **kw),
    "peephole_lstm": peephole_lstm,
    "layernorm_lstm": layernorm_lstm,
    "learned_init_lstm": lambda h, **kw: learned_init(
        lstm(h, **kw), carry_init=jax.nn.initializers.normal(0.5)
    ),
    "gru": gru,
    "gru_seed": lambda h, **kw: gru(h, reset_after=False, **kw),
    "layernorm_gru": layernorm_gru,
    "learned_init_gru_seed": lambda h, **kw: learned_init(
        gru(h, reset_after=False, **kw), carry_init=jax.nn.initializers.normal(0.5)
    ),
}
GRUS = ["gru", "gru_seed"]


def make(name, hidden=H, features=F, batch=B, dtype=jnp.float32):
    """(plain cell, dropout cell, perturbed params, xs, carry0 with a random inner
    carry and a fresh mask)."""
    base = CELLS[name](hidden, dtype=dtype)
    cell = recurrent_dropout(base, RATE)
    params = cell.init(jax.random.key(0), features)
    params = jax.tree.map(
        lambda a: a + 0.3 * jax.random.normal(jax.random.key(7), a.shape, dtype),
        params,
    )
    xs = jax.random.normal(jax.random.key(1), (batch, T, features), dtype)
    carry0 = dropout_carry(jax.random.key(2), cell, params, batch_size=batch)
    inner = jax.tree.map(
        lambda a: 0.5 * jax.random.normal(jax.random.key(3), a.shape, dtype),
        carry0.inner,
    )
    return base, cell, params, xs, carry0._replace(inner=inner)


def weighted(ys, carry):
    """A loss in which every output and every carry leaf matters differently."""
    w = jnp.linspace(0.5, 1.5, ys.size, dtype=ys.dtype).reshape(ys.shape)
    leaves = jax.tree.leaves(carry)
    return (w * ys * ys).sum() + sum(
        (jnp.sin(a) * (i + 1)).sum() for i, a in enumerate(leaves)
    )


def value_and_grads(cell, impl, of_carry=lambda c: c, **opts):
    """jit(value_and_grad) of :func:`weighted` (of the outputs and
    ``of_carry(carry)``) w.r.t. params, xs and carry0."""

    def loss(params, xs, carry0):
        carry, ys = jaxseq.rnn(cell, params, xs, carry0=carry0, impl=impl, **opts)
        return weighted(ys, of_carry(carry))

    return jax.jit(jax.value_and_grad(loss, (0, 1, 2)))


def assert_trees_close(got, want, rtol=2e-5, atol=2e-5):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def resets_of(batch=B):
    return jax.random.bernoulli(jax.random.key(9), 0.25, (batch, T))


def test_the_wrapped_cells_have_a_kernel():
    for name in CELLS:
        assert recurrent_dropout(CELLS[name](H), RATE).kernel is not None, name
    # a kernel that reads h_{t-1} outside the product and states no split
    assert recurrent_dropout(resettable(lstm(H)), RATE).kernel is None  # none inside
    with pytest.raises(ValueError, match="impl: 'fused' needs a cell with a fused"):
        cell = recurrent_dropout(resettable(lstm(H)), RATE)
        jaxseq.rnn(cell, cell.init(jax.random.key(0), F), jnp.ones((B, T, F)),
                   impl="fused")  # fmt: skip


@pytest.mark.parametrize("name", GRUS)
@pytest.mark.parametrize("batch", [1, B])
def test_auto_runs_the_gru_dropout_kernel(name, batch, monkeypatch):
    """``impl="auto"`` hands a dropout-wrapped GRU to the fused runner with the
    kernel's own backward (H = 5 is outside the GRU's autodiff range)."""
    _, cell, params, xs, carry0 = make(name, batch=batch)
    seen = []
    fused_rnn = jaxseq._runner.fused_rnn

    def spy(kernel, *args, **kwargs):
        seen.append((kernel, kwargs["reference"] is None))
        return fused_rnn(kernel, *args, **kwargs)

    monkeypatch.setattr(jaxseq._runner, "fused_rnn", spy)
    grad = jax.grad(lambda p: jaxseq.rnn(cell, p, xs, carry0=carry0)[1].sum())
    jax.eval_shape(grad, params)
    assert seen and all(k is cell.kernel and own for k, own in seen)


CASES = [
    (name, impl, reverse, lengths, resets)
    for name in CELLS
    for impl in ("fused", "fused_fm", "hoist")
    for reverse, lengths, resets in ((False, None, False), (True, LENGTHS, True))
] + [
    (name, "fused", reverse, LENGTHS, False)
    for name in ("lstm", "elman", *GRUS)
    for reverse in (False, True)
]


@pytest.mark.parametrize("name,impl,reverse,lengths,resets", CASES)
def test_fused_values_and_gradients_match_reference(
    name, impl, reverse, lengths, resets
):
    _, cell, params, xs, carry0 = make(name)
    opts = dict(reverse=reverse, lengths=lengths)
    opts["resets"] = resets_of() if resets else None
    v_ref, g_ref = value_and_grads(cell, "scan", **opts)(params, xs, carry0)
    v_new, g_new = value_and_grads(cell, impl, **opts)(params, xs, carry0)
    np.testing.assert_allclose(v_new, v_ref, rtol=1e-5)
    assert float(jnp.abs(g_ref[2].mask).max()) > 1e-3  # the mask's gradient too
    assert_trees_close(g_new, g_ref)


def scale_rows(params, mask):
    """The definition of recurrent dropout on the product ``h_{t-1} W_h``: the
    rows of ``w_h`` scaled by ``mask`` (written here, not taken from jaxseq)."""
    if isinstance(params, LearnedInitParams):
        return params._replace(inner=scale_rows(params.inner, mask))
    return params._replace(w_h=mask[:, None] * params.w_h)


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("reverse", [False, True])
def test_fused_equals_the_definition_per_example(name, reverse):
    """Each example run alone by the plain cell with its own rows of ``w_h``
    scaled: the outputs, and every gradient (the mask's by autodiff through the
    scaling), equal the fused dropout cell's."""
    base, cell, params, xs, carry0 = make(name)
    resets = resets_of()
    opts = dict(reverse=reverse, lengths=LENGTHS)

    def definition(params, xs, carry0):
        def one(x, inner, mask, length, r):
            carry, ys = jaxseq.rnn(
                base, scale_rows(params, mask), x[None], impl="scan",
                carry0=jax.tree.map(lambda a: a[None], inner),
                lengths=length[None], resets=r[None], reverse=reverse,
            )  # fmt: skip
            return jax.tree.map(lambda a: a[0], carry), ys[0]

        inner, ys = jax.vmap(one)(
            xs, carry0.inner, carry0.mask, jnp.asarray(LENGTHS), resets
        )
        return weighted(ys, carry0._replace(inner=inner))

    def fused(params, xs, carry0):
        carry, ys = jaxseq.rnn(
            cell, params, xs, carry0=carry0, impl="fused", resets=resets, **opts
        )
        return weighted(ys, carry)

    v_def, g_def = jax.value_and_grad(definition, (0, 1, 2))(params, xs, carry0)
    v_new, g_new = jax.value_and_grad(fused, (0, 1, 2))(params, xs, carry0)
    np.testing.assert_allclose(v_new, v_def, rtol=1e-5)
    assert_trees_close(g_new, g_def)


@pytest.mark.parametrize("name", list(CELLS))
@pytest.mark.parametrize("impl", ["fused", "fused_fm"])
def test_a_mask_of_ones_is_the_plain_cell(name, impl):
    base, cell, params, xs, carry0 = make(name)
    ones = carry0._replace(mask=jnp.ones_like(carry0.mask))
    opts = dict(reverse=True, lengths=LENGTHS, resets=resets_of())
    inner = lambda c: c.inner  # noqa: E731
    v, (gp, gx, gc) = value_and_grads(cell, impl, inner, **opts)(params, xs, ones)
    v0, (gp0, gx0, gc0) = value_and_grads(base, impl, **opts)(params, xs, carry0.inner)
    np.testing.assert_allclose(v, v0, rtol=1e-6)
    assert_trees_close((gp, gx, gc.inner), (gp0, gx0, gc0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["lstm", "elman", "layernorm_lstm", *GRUS])
@pytest.mark.parametrize("hidden", [H, 20])  # 20: batch-major forward-only loop
def test_batch_of_one_matches_reference(name, hidden):
    """B = 1: ``auto`` projects the inputs first and unrolls; values, the
    forward-only call and gradients as the reference's."""
    _, cell, params, xs, carry0 = make(name, hidden=hidden, batch=1)
    opts = dict(reverse=True, lengths=np.array([5]))
    v_ref, g_ref = value_and_grads(cell, "scan", **opts)(params, xs, carry0)
    v_new, g_new = value_and_grads(cell, "auto", **opts)(params, xs, carry0)
    np.testing.assert_allclose(v_new, v_ref, rtol=1e-5)
    assert_trees_close(g_new, g_ref)
    run = jax.jit(lambda p, x, c: jaxseq.rnn(cell, p, x, carry0=c, **opts)[1])
    np.testing.assert_allclose(
        run(params, xs, carry0),
        jaxseq.rnn(cell, params, xs, carry0=carry0, impl="scan", **opts)[1],
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("name", ["lstm", "elman", *GRUS])
def test_gradient_checkpointing_matches_reference(name):
    _, cell, params, xs, carry0 = make(name)
    opts = dict(lengths=LENGTHS, resets=resets_of(), remat=3)
    v_ref, g_ref = value_and_grads(cell, "scan", **opts)(params, xs, carry0)
    v_new, g_new = value_and_grads(cell, "fused", **opts)(params, xs, carry0)
    np.testing.assert_allclose(v_new, v_ref, rtol=1e-5)
    assert_trees_close(g_new, g_ref)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_stacked_layers_match_reference(name):
    """Two layers of recurrent dropout (one mask per layer and sequence) with
    dropout between them: the fused stack equals the reference stack."""
    cell = recurrent_dropout(CELLS[name](H), RATE)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    resets = resets_of()

    def loss(impl):
        layer = jaxseq.stack(cell, num_layers=2, dropout=0.3, impl=impl)

        def fn(params, xs):
            carry0 = tuple(
                dropout_carry(jax.random.key(5 + i), cell, p, batch_size=B)
                for i, p in enumerate(params)
            )
            carries, ys = layer.apply(
                params, xs, lengths=LENGTHS, carry0=carry0, resets=resets,
                key=jax.random.key(6),
            )  # fmt: skip
            return weighted(ys, carries)

        return layer, jax.jit(jax.value_and_grad(fn, (0, 1)))

    layer, ref = loss("scan")
    params = layer.init(jax.random.key(0), F)
    v_ref, g_ref = ref(params, xs)
    v_new, g_new = loss("auto")[1](params, xs)
    np.testing.assert_allclose(v_new, v_ref, rtol=1e-5)
    assert_trees_close(g_new, g_ref)


@pytest.mark.parametrize("name", ["lstm", "elman", *GRUS])
def test_resets_restart_the_cell_and_keep_the_mask(name):
    """A segment start restarts the inner carry only: the same as the reset
    applied inside the wrapped step (``recurrent_dropout(resettable(cell))``,
    the reference path), and the mask is never reset to ones."""
    base, cell, params, xs, carry0 = make(name)
    resets = resets_of()
    stepped = recurrent_dropout(resettable(base), RATE)
    carry, ys = jaxseq.rnn(
        cell, params, xs, carry0=carry0, lengths=LENGTHS, resets=resets, impl="fused"
    )
    carry_ref, ys_ref = jaxseq.rnn(
        stepped, params, with_resets(xs, resets), carry0=carry0, lengths=LENGTHS
    )
    np.testing.assert_allclose(ys, ys_ref, rtol=1e-5, atol=1e-6)
    assert_trees_close(carry, carry_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(carry.mask, carry0.mask)
    # a reset to init_carry's mask (ones) would give other outputs
    ones = jaxseq.rnn(
        cell, params, xs, lengths=LENGTHS, resets=resets, impl="fused",
        carry0=carry0._replace(mask=jnp.ones_like(carry0.mask)),
    )[1]  # fmt: skip
    assert float(jnp.abs(ones - ys).max()) > 1e-3


@pytest.mark.parametrize(
    "name", ["lstm", "elman", "peephole_lstm", "layernorm_lstm", *GRUS, "layernorm_gru"]
)
def test_check_grads_float64(name, x64):
    """The fused backward (``impl="fused"``) against float64 finite differences,
    w.r.t. params, inputs and the initial carry (mask included)."""
    _, cell, params, xs, carry0 = make(
        name, hidden=3, features=2, batch=2, dtype=jnp.float64
    )
    resets = resets_of(batch=2)

    def loss(params, xs, carry0):
        carry, ys = jaxseq.rnn(
            cell, params, xs, carry0=carry0, lengths=np.array([7, 4]),
            reverse=True, resets=resets, impl="fused",
        )  # fmt: skip
        return (ys**2).sum() + (carry.h**3).sum()

    # eps 1e-5 (float64): the LN-GRU's loss is curved enough at H = 3 that the
    # central differences' own error at the default 1e-4 exceeds the tolerance
    # (autodiff of impl="scan" misses them there too)
    check_grads(loss, (params, xs, carry0), order=1, modes=("rev",), eps=1e-5)
