"""``impl="auto"``'s plan is a function of the kernel, the sizes and the backend,
never of the cell's name (jaxseq/_plan.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq
import jaxseq._plan
import jaxseq._runner
from jaxseq._fused import SequenceKernel
from jaxseq._layout import BATCH_MAJOR
from jaxseq._plan import Tuning
from jaxseq.cells import elman, gru, learned_init, lstm

#: (batch, hidden, reverse with lengths): sizes where the built-in tunings differ
#: from the generic one (autodiff backward, feature-major, batch-1 unroll/hoist)
SIZES = [
    (512, 4, False),
    (512, 4, True),
    (64, 16, False),
    (1, 20, False),
    (8, 40, True),
]
#: the subset traced end to end: each built-in kernel's tuning matters at two
END_TO_END = [(512, 4, False), (64, 16, True), (1, 20, False)]
T, F = 3, 2
_FUSED_RNN = jaxseq._runner.fused_rnn


def fused_call(cell, batch, masked_reverse, monkeypatch):
    """What ``jaxseq.rnn`` hands the fused runner (traced only, not compiled)."""
    seen = {}

    def spy(*args, **kwargs):
        seen.update(kwargs, **kwargs["plan"]._asdict())
        seen.update(reference=kwargs["reference"] is not None)
        return _FUSED_RNN(*args, **kwargs)

    monkeypatch.setattr(jaxseq._runner, "fused_rnn", spy)
    params = cell.init(jax.random.key(0), F)
    xs = jnp.ones((batch, T, F))
    lengths = jnp.full((batch,), T - 1) if masked_reverse else None
    jax.eval_shape(
        lambda p: jaxseq.rnn(cell, p, xs, lengths=lengths, reverse=masked_reverse),
        params,
    )
    return seen


@pytest.mark.parametrize("batch,hidden,masked_reverse", END_TO_END)
@pytest.mark.parametrize("factory", [lstm, gru, elman])
def test_renamed_cell_with_builtin_kernel_gets_its_plan(
    factory, batch, hidden, masked_reverse, monkeypatch
):
    cell = factory(hidden)
    renamed = cell._replace(name="my" + cell.name)
    wrapped = learned_init(cell)  # named "<name>+learned_init"
    expected = fused_call(cell, batch, masked_reverse, monkeypatch)
    assert fused_call(renamed, batch, masked_reverse, monkeypatch) == expected
    assert fused_call(wrapped, batch, masked_reverse, monkeypatch) == expected


def test_builtin_tunings_differ_from_generic():
    """The sizes above exercise the kernels' own tunings (else the test above
    could not tell a name-keyed plan from a kernel-keyed one)."""
    generic = Tuning()
    for factory in (lstm, gru, elman):
        tuning = factory(4).kernel.tuning
        assert tuning != generic
        assert any(
            jaxseq._runner._plan("auto", b, h, tuning, masked_reverse=m)
            != jaxseq._runner._plan("auto", b, h, generic, masked_reverse=m)
            for b, h, m in END_TO_END
        ), factory


@pytest.mark.parametrize("batch,hidden,masked_reverse", END_TO_END)
def test_custom_kernel_named_lstm_gets_generic_plan(
    batch, hidden, masked_reverse, monkeypatch
):
    """A kernel that states no tuning runs the generic plan, whatever its name."""
    base = lstm(hidden)
    fields = base.kernel._asdict()
    fields.pop("tuning")
    cell = base._replace(kernel=SequenceKernel(**fields))
    generic = jaxseq._runner._plan(
        "auto", batch, hidden, Tuning(), masked_reverse=masked_reverse
    )
    seen = fused_call(cell, batch, masked_reverse, monkeypatch)
    assert seen["reference"] == generic.autodiff
    assert (seen["layout"], seen["primal_layout"]) == (
        generic.layout,
        generic.primal_layout,
    )
    assert (seen["unroll"], seen["primal_unroll"]) == (
        generic.unroll,
        generic.primal_unroll,
    )
    assert (seen["hoist"], seen["primal_hoist"]) == (
        generic.hoist,
        generic.primal_hoist,
    )


@pytest.mark.parametrize("impl", ["auto", "autodiff"])
def test_non_cpu_backend_gets_plain_plan(impl, monkeypatch):
    monkeypatch.setattr(jaxseq._plan, "_backend", lambda: "gpu")
    for factory in (lstm, gru, elman):
        tuning = factory(4).kernel.tuning
        for batch, hidden, masked_reverse in SIZES:
            plan = jaxseq._runner._plan(
                impl, batch, hidden, tuning, masked_reverse=masked_reverse
            )
            assert plan == jaxseq._plan.Plan(
                hoist=False,
                layout=BATCH_MAJOR,
                primal_layout=BATCH_MAJOR,
                autodiff=impl == "autodiff",
                unroll=1,
                primal_unroll=1,
                primal_hoist=False,
            )
            # an explicit unroll is kept
            assert jaxseq._runner._plan(impl, batch, hidden, tuning, 3).unroll == 3


def test_plain_plan_numerics_match_reference(monkeypatch):
    """The plain plan (here forced on CPU) computes what the reference path does,
    values and gradients."""
    monkeypatch.setattr(jaxseq._plan, "_backend", lambda: "gpu")
    cell = lstm(4)
    params = cell.init(jax.random.key(0), F)
    xs = jax.random.normal(jax.random.key(1), (5, 6, F))
    lengths = np.array([6, 2, 0, 5, 3])

    def loss(impl):
        def f(p, x):
            _, ys = jaxseq.rnn(cell, p, x, lengths=lengths, reverse=True, impl=impl)
            return (ys * ys).sum()

        return jax.jit(jax.value_and_grad(f, (0, 1)))

    (v, g), (v_ref, g_ref) = loss("auto")(params, xs), loss("scan")(params, xs)
    np.testing.assert_allclose(v, v_ref, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
