"""The layouts' feature-axis operations (``feature_mean``, ``scale``) and the
layer norm written with them, in both layouts, against NumPy."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq._layout import BATCH_MAJOR, FEATURE_MAJOR
from jaxseq.cells import layer_norm

from . import reference as ref

T, B, G = 4, 3, 6
LAYOUTS = [BATCH_MAJOR, FEATURE_MAJOR]


def _in(lay, a):
    """A ``[B, G]`` step or ``[T, B, G]`` stack in ``lay``."""
    if lay is BATCH_MAJOR:
        return a
    return a.T if a.ndim == 2 else lay.steps(a)


@pytest.mark.parametrize("lay", LAYOUTS, ids=lambda lay: lay.name)
@pytest.mark.parametrize("stacked", [False, True])
def test_feature_mean_and_scale_act_on_the_feature_axis(lay, stacked):
    shape = (T, B, G) if stacked else (B, G)
    a = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    v = np.linspace(-2.0, 3.0, G, dtype=np.float32)
    mean = lay.feature_mean(_in(lay, jnp.asarray(a)))
    np.testing.assert_allclose(mean, _in(lay, a.mean(-1, keepdims=True)), rtol=1e-6)
    scaled = lay.scale(_in(lay, jnp.asarray(a)), jnp.asarray(v))
    np.testing.assert_allclose(scaled, _in(lay, a * v), rtol=1e-6)


@pytest.mark.parametrize("lay", LAYOUTS, ids=lambda lay: lay.name)
def test_layer_norm_in_either_layout_matches_numpy(lay):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(B, G)).astype(np.float32) * 3.0 + 1.0
    gain, bias = rng.normal(size=G), rng.normal(size=G)
    got = layer_norm(_in(lay, jnp.asarray(a)), jnp.asarray(gain, jnp.float32),
                     jnp.asarray(bias, jnp.float32), 1e-5, lay)  # fmt: skip
    want = np.stack([ref.layer_norm(r.astype(np.float64), gain, bias, 1e-5) for r in a])
    np.testing.assert_allclose(got, _in(lay, want), rtol=1e-5, atol=1e-5)
