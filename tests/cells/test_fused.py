"""The fused kernels (hand-written backward) against the reference path
(``impl="scan"``: ``lax.scan`` over ``cell.step`` with JAX autodiff)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq

from .test_cells import NAMES, make, random_carry

B, T, F, H = 4, 7, 3, 5
LENGTHS = np.array([7, 3, 0, 5])


def loss_fn(cell, impl, lengths, reverse):
    def loss(params, xs, carry0):
        carry, ys = jaxseq.rnn(
            cell, params, xs, lengths=lengths, carry0=carry0, reverse=reverse, impl=impl
        )
        # weights make every output and every carry leaf matter differently
        w = jnp.linspace(0.5, 1.5, ys.size, dtype=ys.dtype).reshape(ys.shape)
        extra = sum(
            (jnp.sin(a) * (i + 1)).sum() for i, a in enumerate(jax.tree.leaves(carry))
        )
        return (w * ys * ys).sum() + extra

    return loss


FUSED_CASES = [
    (name, impl, reverse, with_lengths)
    for name in NAMES
    for impl in ("fused", "fused_fm")
    for reverse in (False, True)
    for with_lengths in (False, True)
    if impl == "fused" or with_lengths
] + [(name, "hoist", rev, True) for name in ("lstm", "gru") for rev in (False, True)]


@pytest.mark.parametrize("name,impl,reverse,with_lengths", FUSED_CASES)
def test_fused_values_and_gradients_match_reference(
    name, impl, reverse, with_lengths, key
):
    cell, params = make(name, key, hidden=H)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    carry0 = random_carry(cell, params, jax.random.key(2), batch=(B,))
    lengths = LENGTHS if with_lengths else None
    ref = jax.jit(
        jax.value_and_grad(loss_fn(cell, "scan", lengths, reverse), (0, 1, 2))
    )
    new = jax.jit(jax.value_and_grad(loss_fn(cell, impl, lengths, reverse), (0, 1, 2)))
    (v_ref, g_ref), (v_new, g_new) = ref(params, xs, carry0), new(params, xs, carry0)
    np.testing.assert_allclose(v_new, v_ref, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g_new), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reverse,with_lengths", [(False, False), (True, True)])
@pytest.mark.parametrize("hidden", [H, 20])  # 20: batch-major forward-only loop
def test_batch_of_one_plan_matches_reference(name, reverse, with_lengths, hidden, key):
    """At B = 1 "auto" projects all inputs first, unrolls, and (LSTM) takes the
    gate nonlinearities in one pass over the block via sigma(x) = (1 + tanh(x/2))/2:
    the forward-only call and the gradient must still equal the reference."""
    kind = name.split("_")[0]
    cell, params = make(name, key, hidden=hidden)
    plan = jaxseq._runner._plan("auto", 1, hidden, cell.kernel.tuning)
    assert plan.hoist and plan.primal_hoist == (hidden == 20 and kind != "gru")
    xs = jax.random.normal(jax.random.key(1), (1, 3 * T, F)) * 3.0  # saturating too
    carry0 = random_carry(cell, params, jax.random.key(2), batch=(1,))
    lengths = np.array([2 * T]) if with_lengths else None

    def run(impl):
        return jax.jit(
            lambda p, x, c: jaxseq.rnn(
                cell, p, x, lengths=lengths, carry0=c, reverse=reverse, impl=impl
            )
        )(params, xs, carry0)

    def close(a, b):  # float32 summation order differs: errors scale with |b|max
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5 * max(np.abs(b).max(), 1))

    for a, b in zip(
        jax.tree.leaves(run("auto")), jax.tree.leaves(run("scan")), strict=True
    ):
        close(a, b)
    ref = jax.jit(
        jax.value_and_grad(loss_fn(cell, "scan", lengths, reverse), (0, 1, 2))
    )
    new = jax.jit(
        jax.value_and_grad(loss_fn(cell, "auto", lengths, reverse), (0, 1, 2))
    )
    (v_ref, g_ref), (v_new, g_new) = ref(params, xs, carry0), new(params, xs, carry0)
    np.testing.assert_allclose(v_new, v_ref, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g_new), jax.tree.leaves(g_ref), strict=True):
        close(a, b)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_fused_bfloat16_gradients_close_to_reference(name, key):
    cell, params = make(name, key, hidden=H, dtype=jnp.bfloat16)
    xs = jax.random.normal(jax.random.key(1), (B, T, F), jnp.bfloat16)
    ref = jax.grad(loss_fn(cell, "scan", LENGTHS, False))(params, xs, None)
    new = jax.grad(loss_fn(cell, "fused", LENGTHS, False))(params, xs, None)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(ref), strict=True):
        assert a.dtype == jnp.bfloat16
        scale = float(jnp.abs(b.astype(jnp.float32)).max()) + 1e-3
        np.testing.assert_allclose(
            np.asarray(a, np.float32), np.asarray(b, np.float32), atol=0.05 * scale
        )


def test_second_order_reverse_mode_through_fused(key):
    """grad of grad differentiates the hand-written backward with autodiff."""
    cell, params = make("gru", key, hidden=H)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))

    def inner(impl):
        loss = loss_fn(cell, impl, LENGTHS, True)
        return lambda x: jnp.sum(jax.grad(loss)(params, x, None).w_h ** 2)

    g_ref = jax.grad(inner("scan"))(xs)
    g_new = jax.grad(inner("fused"))(xs)
    np.testing.assert_allclose(g_new, g_ref, rtol=1e-4, atol=1e-5)


def test_forward_mode_through_autodiff_impl(key):
    """``impl="autodiff"`` supports forward mode (tests/test_forward_mode.py tests
    it under jit); the hand-written backward is reverse mode only."""
    cell, params = make("lstm", key, hidden=H)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    tangent = jax.random.normal(jax.random.key(2), xs.shape)

    def f(impl):
        return lambda x: jaxseq.rnn(cell, params, x, lengths=LENGTHS, impl=impl)[1]

    y_auto, t_auto = jax.jvp(f("autodiff"), (xs,), (tangent,))
    y_ref, t_ref = jax.jvp(f("scan"), (xs,), (tangent,))
    np.testing.assert_allclose(t_auto, t_ref, rtol=1e-6, atol=1e-7)
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(f("fused"), (xs,), (tangent,))


def test_impl_errors(key):
    cell, params = make("lstm", key, hidden=H)
    xs = jnp.zeros((B, T, F))
    with pytest.raises(ValueError, match="impl: expected one of"):
        jaxseq.rnn(cell, params, xs, impl="cudnn")
    plain = cell._replace(kernel=None)  # a user cell without a fused kernel
    with pytest.raises(
        ValueError, match="impl: 'fused' needs a cell with a fused kernel"
    ):
        jaxseq.rnn(plain, params, xs, impl="fused")
    np.testing.assert_allclose(
        jaxseq.rnn(plain, params, xs + 0.1)[1],
        jaxseq.rnn(cell, params, xs + 0.1)[1],
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "impl,block,reverse",
    [
        ("fused", 1, False),
        ("fused", 3, True),
        ("fused_fm", 7, False),
        ("fused_fm", 10, True),
        ("scan", 3, False),
        ("scan", 7, True),
    ],
)
def test_remat_blocks_give_same_values_and_gradients(impl, block, reverse, key):
    """Gradient checkpointing (blocks that divide T or not) changes no number."""
    cell, params = make("lstm", key, hidden=H)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))

    def loss(remat):
        def f(p, x):
            carry, ys = jaxseq.rnn(
                cell, p, x, lengths=LENGTHS, reverse=reverse, impl=impl, remat=remat
            )
            return (ys**2).sum() + carry.c.sum(), ys

        return jax.jit(jax.grad(f, (0, 1), has_aux=True))

    (g_ref, ys_ref), (g_new, ys_new) = loss(None)(params, xs), loss(block)(params, xs)
    np.testing.assert_allclose(ys_new, ys_ref, rtol=1e-6, atol=1e-7)
    for a, b in zip(jax.tree.leaves(g_new), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", ["fused", "scan"])
def test_remat_reduces_compiled_memory(impl, key):
    """The compiled gradient's scratch memory shrinks with checkpointing (a
    property of the program XLA builds, not a timing)."""
    cell, params = make("lstm", key, hidden=32)
    xs = jnp.ones((4, 1024, F))

    def temp_bytes(remat):
        f = jax.jit(
            jax.grad(
                lambda p, x: jaxseq.rnn(cell, p, x, impl=impl, remat=remat)[1].sum()
            )
        )
        return f.lower(params, xs).compile().memory_analysis().temp_size_in_bytes

    assert temp_bytes(32) < 0.2 * temp_bytes(None)


def test_remat_refuses_bad_block(key):
    cell, params = make("gru", key, hidden=H)
    with pytest.raises(
        ValueError, match="remat: expected None or a positive int, got 0"
    ):
        jaxseq.rnn(cell, params, jnp.zeros((B, T, F)), remat=0)
