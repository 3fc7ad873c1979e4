"""Carry resets in the runners (``jaxseq.rnn(..., resets=)``), on every path.

Values are checked against the NumPy equations (``reference.py``) run on each
segment separately; gradients against ``jax.grad`` of the independent wrapper
``jaxseq.lm.resettable`` run through ``impl="scan"`` (forward direction, where
its per-step semantics are the runner's).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
from jaxseq.lm import resettable, with_resets

from . import reference as ref
from .test_cells import ALL_CELLS, make, random_carry, ref_state

B, T, F, H = 4, 9, 3, 5
LENGTHS = np.array([9, 6, 0, 8])
#: segment starts: row 0 starts afresh at 0 and 4; row 1 at 3 and at a padded
#: step (7 >= 6, ignored); row 2 is empty; row 3 has starts at 1, 2 (a segment of
#: one step) and at its last step 7 (a one-step last segment)
RESETS = np.zeros((B, T), bool)
RESETS[0, [0, 4]] = True
RESETS[1, [3, 7]] = True
RESETS[2, [1]] = True
RESETS[3, [1, 2, 7]] = True
KERNEL_CELLS = ["lstm", "gru", "gru_seed", "elman", "peephole_lstm", "layernorm_lstm"]
IMPLS = ("scan", "fused", "fused_fm", "hoist", "fm_autodiff", "auto")


def segments_reference(name, params, carry0, xs, lengths, resets, reverse):
    """Each segment of each row as a sequence of its own (NumPy, float64): the
    first segment in the run's order from ``carry0``, the others from zeros (the
    built-in cells' ``init_carry``); forward, ``resets[b, 0]`` restarts too."""
    _, ref_name, act = ALL_CELLS[name]
    step = ref.steppers(ref_name, params, act)
    finals, ys = [], np.zeros((B, T, H))
    for b in range(B):
        state = ref_state(jax.tree.map(lambda a, b=b: a[b], carry0))
        zero = tuple(np.zeros_like(s) for s in state)
        n = T if lengths is None else int(lengths[b])
        bounds = [0] + [t for t in range(1, n) if resets[b, t]] + [n]
        segs = [(s, e) for s, e in zip(bounds[:-1], bounds[1:], strict=True) if e > s]
        if not reverse and n and resets[b, 0]:
            state = zero
        for i, (s, e) in enumerate(segs[::-1] if reverse else segs):
            if i:
                state = zero
            state, ys[b, s:e] = ref.run(step, state, xs[b, s:e], reverse=reverse)
        finals.append(state)
    return [np.stack(leaf) for leaf in zip(*finals, strict=True)], ys


def _inputs(name, key):
    cell, params = make(name, key, hidden=H)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    carry0 = random_carry(cell, params, jax.random.key(2), batch=(B,))
    return cell, params, xs, carry0


def _leaves(carry):
    # LSTMCarry(h, c) / GRUCarry(h): the reference's state order
    return [carry.h] + ([carry.c] if hasattr(carry, "c") else [])


#: the unmasked loops (no ``lengths``) for the LSTM; every cell with lengths
VALUE_CASES = [
    (name, reverse, with_lengths)
    for name in KERNEL_CELLS
    for reverse in (False, True)
    for with_lengths in (False, True)
    if with_lengths or name == "lstm"
]


@pytest.mark.parametrize("name,reverse,with_lengths", VALUE_CASES)
def test_every_impl_equals_segments_run_separately(name, reverse, with_lengths, key):
    cell, params, xs, carry0 = _inputs(name, key)
    lengths = LENGTHS if with_lengths else None

    @jax.jit
    def run_all(params, xs, carry0):
        return [
            jaxseq.rnn(cell, params, xs, lengths=lengths, carry0=carry0,
                       reverse=reverse, impl=impl, resets=jnp.asarray(RESETS))
            for impl in IMPLS
        ]  # fmt: skip

    want_carry, want_ys = segments_reference(
        name, params, carry0, np.asarray(xs), lengths, RESETS, reverse
    )
    for impl, (carry, ys) in zip(IMPLS, run_all(params, xs, carry0), strict=True):
        np.testing.assert_allclose(ys, want_ys, rtol=1e-5, atol=1e-5, err_msg=impl)
        for got, want in zip(_leaves(carry), want_carry, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=impl)


def _loss(cell, impl, lengths, resets, *, reverse=False, remat=None, wrapped=False):
    """A loss in which every output and carry leaf matters differently."""

    def loss(params, xs, carry0):
        if wrapped:  # the reference: the reset inside the wrapped cell's step
            run_cell, xs, kw = resettable(cell), with_resets(xs, resets), {}
        else:
            run_cell, kw = cell, dict(resets=resets, reverse=reverse, remat=remat)
        carry, ys = jaxseq.rnn(run_cell, params, xs, lengths=lengths, carry0=carry0,
                               impl=impl, **kw)  # fmt: skip
        w = jnp.linspace(0.5, 1.5, ys.size, dtype=ys.dtype).reshape(ys.shape)
        extra = sum(
            (jnp.sin(a) * (i + 1)).sum() for i, a in enumerate(jax.tree.leaves(carry))
        )
        return (w * ys * ys).sum() + extra

    return loss


def _assert_grads_close(got, want, msg=""):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=msg)


#: every impl for the LSTM; the other kernels' own backward passes (the
#: autodiff impls differentiate the reference loop, the same code for every cell)
GRAD_CASES = [("lstm", False, IMPLS), ("lstm", True, IMPLS)] + [
    (name, True, ("fused", "fused_fm", "hoist")) for name in KERNEL_CELLS[1:]
]


@pytest.mark.parametrize("name,with_lengths,impls", GRAD_CASES)
def test_gradients_equal_resettable_reference(name, with_lengths, impls, key):
    cell, params, xs, carry0 = _inputs(name, key)
    lengths = LENGTHS if with_lengths else None
    resets = jnp.asarray(RESETS)
    grad = jax.grad(_loss(cell, "scan", lengths, resets, wrapped=True), (0, 1, 2))

    @jax.jit
    def all_grads(params, xs, carry0):
        want = grad(params, xs, carry0)
        return want, [
            jax.grad(_loss(cell, impl, lengths, resets), (0, 1, 2))(params, xs, carry0)
            for impl in impls
        ]

    want, got = all_grads(params, xs, carry0)
    for impl, g in zip(impls, got, strict=True):
        _assert_grads_close(g, want, impl)


def test_reverse_and_remat_gradients_equal_scan(key):
    """Reverse (per segment) and remat blocks (restarts inside and at the edges
    of a block) against autodiff of the reference loop, whose values the test
    above pins down."""
    cell, params, xs, carry0 = _inputs("lstm", key)
    resets = jnp.asarray(RESETS)
    cases = [("fused_fm", True, None), ("fused", False, 4), ("fused", True, 4)]

    @jax.jit
    def grads(params, xs, carry0):
        def grad(impl, reverse, remat):
            loss = _loss(cell, impl, LENGTHS, resets, reverse=reverse, remat=remat)
            return jax.grad(loss, (0, 1, 2))(params, xs, carry0)

        return [(grad(*c), grad("scan", *c[1:])) for c in cases]

    for case, (got, want) in zip(cases, grads(params, xs, carry0), strict=True):
        _assert_grads_close(got, want, str(case))


def test_learned_initial_state_gets_the_gradient_of_every_restart(key):
    """With a learned initial state, each restart reads ``params.carry0``: its
    gradient from the fused kernels' backward equals autodiff of the wrapper."""
    cell = jaxseq.cells.learned_init(
        jaxseq.cells.lstm(H), carry_init=jax.nn.initializers.normal(0.5)
    )
    params = cell.init(key, F)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    resets = jnp.asarray(RESETS)

    @jax.jit
    def grads(params):
        want = jax.grad(
            lambda p: _loss(cell, "scan", LENGTHS, resets, wrapped=True)(p, xs, None)
        )(params)
        got = [
            jax.grad(lambda p, i=impl: _loss(cell, i, LENGTHS, resets)(p, xs, None))(
                params
            )
            for impl in ("fused", "fused_fm", "hoist")
        ]
        return want, got

    want, got = grads(params)
    assert float(jnp.abs(want.carry0.c).sum()) > 0  # the restarts do reach carry0
    for g in got:
        _assert_grads_close(g, want)


@pytest.mark.parametrize("name", ["layernorm_gru"])
def test_cells_without_kernel_reset_on_the_scan_path(name, key):
    """Every cell resets: one without a fused kernel, against the wrapper."""
    factory = getattr(jaxseq.cells, name)
    cell = factory(H)
    params = cell.init(key, F)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    resets = jnp.asarray(RESETS)
    got = jaxseq.rnn(cell, params, xs, lengths=LENGTHS, resets=resets)
    want = jaxseq.rnn(resettable(cell), params, with_resets(xs, resets),
                      lengths=LENGTHS)  # fmt: skip
    _assert_grads_close(got, want)


def test_bidirectional_runs_each_segment_on_its_own(key):
    cell, params, xs, _ = _inputs("gru", key)
    resets = jnp.asarray(RESETS)
    (c_fw, c_bw), ys = jaxseq.bidirectional(
        cell, cell, params, params, xs, lengths=LENGTHS, resets=resets
    )
    zeros = jax.tree.map(jnp.zeros_like, random_carry(cell, params, key, (B,)))
    want_fw = segments_reference("gru", params, zeros, xs, LENGTHS, RESETS, False)
    want_bw = segments_reference("gru", params, zeros, xs, LENGTHS, RESETS, True)
    np.testing.assert_allclose(ys[..., :H], want_fw[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ys[..., H:], want_bw[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c_fw.h, want_fw[0][0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c_bw.h, want_bw[0][0], rtol=1e-5, atol=1e-5)


def _custom_calls(fn, *args):
    jaxpr = jax.make_jaxpr(fn)(*args)
    return [e.primitive.name for e in jaxpr.eqns if "custom" in e.primitive.name]


@pytest.mark.parametrize("impl", ["fused", "fused_fm", "hoist", "fm_autodiff", "auto"])
def test_resets_keep_the_fused_kernel(impl, key):
    """No fallback: with resets the run is still the fused one (its
    ``custom_vjp``/``custom_jvp``), exactly as without."""
    cell, params, xs, _ = _inputs("lstm", key)
    resets = jnp.asarray(RESETS)
    without = _custom_calls(lambda p: jaxseq.rnn(cell, p, xs, impl=impl), params)
    with_ = _custom_calls(
        lambda p: jaxseq.rnn(cell, p, xs, impl=impl, resets=resets), params
    )
    assert with_ == without and len(with_) == 1
    assert (
        _custom_calls(
            lambda p: jaxseq.rnn(cell, p, xs, impl="scan", resets=resets), params
        )
        == []
    )


def test_language_model_with_resets_runs_the_fused_kernels():
    model = jaxseq.lm.rnn_lm(vocab_size=11, cell="lstm", embed_dim=6, hidden=6,
                             num_layers=2)  # fmt: skip
    params = model.init(jax.random.key(0))
    ids = jnp.ones((2, 5), jnp.int32)
    resets = jnp.zeros((2, 5), bool).at[1, 2].set(True)
    carry = model.init_carry(params, 2)
    with jax.numpy_rank_promotion("allow"):  # the readout's bias (not a runner's)
        calls = _custom_calls(
            lambda p: model.apply(p, carry, ids, resets=resets), params
        )
    assert len(calls) == 2  # one fused run per layer


@pytest.mark.parametrize(
    "resets,expected",
    [
        (
            np.zeros((B, T - 1), bool),
            r"resets: expected shape \(4, 9\).*got shape \(4, 8\)",
        ),
        (
            np.zeros((T, B), bool),
            r"resets: expected shape \(4, 9\).*got shape \(9, 4\)",
        ),
        (np.zeros((B, T), np.float32), r"resets: expected a bool.*got float32"),
    ],
)
def test_bad_resets_raise_at_trace_time(resets, expected, key):
    cell, params, xs, _ = _inputs("lstm", key)
    with pytest.raises(ValueError, match=expected):
        jax.eval_shape(lambda r: jaxseq.rnn(cell, params, xs, resets=r), resets)


def test_integer_resets_count_nonzero_as_true(key):
    cell, params, xs, _ = _inputs("gru", key)
    flags = jnp.asarray(RESETS)
    a = jaxseq.rnn(cell, params, xs, resets=flags, impl="fused")
    b = jaxseq.rnn(cell, params, xs, resets=flags.astype(jnp.int32) * 3, impl="fused")
    _assert_grads_close(a, b)


def test_stacked_layers_restart_every_layer(key):
    """A 2-layer stack (fused kernels) with resets equals the stack run on each
    segment separately."""
    layer = jaxseq.layers.stack(jaxseq.cells.lstm(H), 2, impl="fused")
    params = layer.init(key, F)
    xs = jax.random.normal(jax.random.key(1), (1, T, F))
    resets = jnp.zeros((1, T), bool).at[0, 4].set(True)
    carries, ys = layer.apply(params, xs, resets=resets)
    _, head = layer.apply(params, xs[:, :4])
    tail_carries, tail = layer.apply(params, xs[:, 4:])
    np.testing.assert_allclose(
        ys, jnp.concatenate([head, tail], axis=1), rtol=1e-5, atol=1e-6
    )
    _assert_grads_close(carries, tail_carries)


@pytest.mark.parametrize("reverse", [False, True])
def test_unroll_resets_equal_rnn_row_and_segments(reverse, key):
    """``jaxseq.unroll(..., resets=[T])`` is one row of ``rnn``'s resets: each
    row of the batch, unrolled on its own, matches the NumPy segments."""
    cell, params, xs, carry0 = _inputs("gru", key)
    want_carry, want_ys = segments_reference(
        "gru", params, carry0, np.asarray(xs), LENGTHS, RESETS, reverse
    )
    for b in range(B):
        c0 = jax.tree.map(lambda a, b=b: a[b], carry0)
        carry, ys = jaxseq.unroll(cell, params, c0, xs[b], length=int(LENGTHS[b]),
                                  reverse=reverse, resets=RESETS[b])  # fmt: skip
        np.testing.assert_allclose(ys, want_ys[b], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(carry.h, want_carry[0][b], rtol=1e-5, atol=1e-5)


def test_unroll_resets_shape_is_checked(key):
    cell, params, xs, carry0 = _inputs("gru", key)
    c0 = jax.tree.map(lambda a: a[0], carry0)
    with pytest.raises(ValueError, match=r"resets: expected shape \(9,\).*\(4, 9\)"):
        jaxseq.unroll(cell, params, c0, xs[0], resets=RESETS)
    with pytest.raises(ValueError, match=r"resets: expected a bool"):
        jaxseq.unroll(cell, params, c0, xs[0], resets=np.zeros(T, np.float32))


def test_lengths_and_resets_under_strict_promotion_in_float64(x64, key):
    """Step indices take the lengths' dtype: int32 lengths in an x64 process
    with strict dtype promotion (no implicit int64/int32 mix) still run."""
    cell = jaxseq.cells.lstm(H)
    params = cell.init(key, F)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    with jax.numpy_dtype_promotion("strict"):
        for impl in ("scan", "fused"):
            _, ys = jaxseq.rnn(cell, params, xs, lengths=jnp.asarray(LENGTHS, jnp.int32),
                               resets=jnp.asarray(RESETS), impl=impl)  # fmt: skip
            assert ys.shape == (B, T, H)
