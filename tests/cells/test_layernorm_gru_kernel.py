"""The LayerNorm GRU's fused kernel (hand-written backward, built from the
reset-after GRU's pieces and two layer norms).

What the generic suites (``ALL_CELLS``) do for the other cells: the step and
every impl's outputs against the NumPy equations (tests/cells/reference.py), and
the gradients against autodiff of ``impl="scan"``, with lengths, reverse and
resets. The checks shared with the other variant kernels (equations == step in
both layouts, ``impl="auto"`` runs the kernel, float64 finite differences,
checkpointing, a learned initial state, bfloat16) are in test_variant_kernels.py.
Recurrent dropout on it is in test_dropout_fused.py.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseq

from . import reference as ref
from .test_new_cells import make, random_carry

B, T, F, H = 3, 6, 2, 5
LENGTHS = np.array([6, 2, 0])
RESETS = np.zeros((B, T), bool)
RESETS[0, 3] = RESETS[1, 1] = True
IMPLS = ["fused", "fused_fm", "hoist", "autodiff", "fm_autodiff"]
#: the parameter fields that exist only through the layer norms (make() draws
#: every gain and bias away from its initial value, so each LN's derivative counts)
LN_FIELDS = ("g_x", "g_h", "b_x", "b_h")


def test_step_is_the_numpy_equations(key):
    cell, params = make("layernorm_gru", key, hidden=H, features=F)
    h = np.asarray(random_carry(cell, params, jax.random.key(1)).h)
    x = np.asarray(jax.random.normal(jax.random.key(2), (F,)))
    _, y = cell.step(params, cell.init_carry(params)._replace(h=jnp.asarray(h)), x)
    want = ref.layernorm_gru_step(params, h, x, 1e-5)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reverse", [False, True])
def test_outputs_are_the_numpy_recurrence(impl, reverse, key):
    """Each example's outputs and final state against the NumPy equations run
    over its valid prefix (right to left if ``reverse``), from a random carry."""
    cell, params = make("layernorm_gru", key, hidden=H, features=F)
    xs = jax.random.normal(jax.random.key(1), (B, T, F))
    carry0 = random_carry(cell, params, jax.random.key(2), batch=(B,))
    carry, ys = jax.jit(
        lambda p, x, c: jaxseq.rnn(
            cell, p, x, carry0=c, lengths=LENGTHS, reverse=reverse, impl=impl
        )  # fmt: skip
    )(params, xs, carry0)
    step = ref.steppers("layernorm_gru", params)
    for b in range(B):
        (h,), want = ref.run(step, (carry0.h[b],), np.asarray(xs[b]), LENGTHS[b],
                             reverse)  # fmt: skip
        np.testing.assert_allclose(ys[b], want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(carry.h[b], h, rtol=1e-4, atol=1e-5)


def _weighted_loss(cell, impl, **opts):
    def loss(params, xs, carry0):
        carry, ys = jaxseq.rnn(cell, params, xs, carry0=carry0, impl=impl, **opts)
        w = jnp.linspace(0.5, 1.5, ys.size, dtype=ys.dtype).reshape(ys.shape)
        return (w * ys * ys).sum() + jnp.sin(carry.h).sum()

    return jax.jit(jax.value_and_grad(loss, (0, 1, 2)))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "reverse,lengths,resets", [(False, None, None), (True, LENGTHS, RESETS),
                               (False, LENGTHS, RESETS)],
)  # fmt: skip
@pytest.mark.parametrize("batch", [1, B])
def test_gradients_match_autodiff_of_the_scan(
    impl, reverse, lengths, resets, batch, key
):
    cell, params = make("layernorm_gru", key, hidden=H, features=F)
    xs = jax.random.normal(jax.random.key(1), (batch, T, F))
    carry0 = random_carry(cell, params, jax.random.key(2), batch=(batch,))
    opts = dict(
        reverse=reverse,
        lengths=None if lengths is None else lengths[:batch],
        resets=None if resets is None else resets[:batch],
    )
    v_ref, g_ref = _weighted_loss(cell, "scan", **opts)(params, xs, carry0)
    v_new, g_new = _weighted_loss(cell, impl, **opts)(params, xs, carry0)
    np.testing.assert_allclose(v_new, v_ref, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g_new), jax.tree.leaves(g_ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5)
    for field in LN_FIELDS:
        assert np.abs(np.asarray(getattr(g_ref[0], field))).max() > 1e-3, field
