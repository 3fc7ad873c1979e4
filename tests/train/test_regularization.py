"""Ridge penalties per parameter group (the seed's lambda_1 sum beta^2 +
lambda_2 sum gamma^2) against hand-computed values and gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxseq
from jaxseq.train import labels_by_path, ridge, ridge_penalty

LAMBDAS = {"beta": 0.3, "gamma": 0.05}


def _params():
    cell = jaxseq.cells.elman(3)
    return {
        "cell": cell.init(jax.random.key(0), 2),  # w_x, w_h: gamma; b: unpenalised
        "out": {"w": jnp.array([0.5, -1.5, 2.0]), "b": jnp.array(0.7)},  # w: beta
    }


LABELS = labels_by_path({r"^cell/w_": "gamma", r"^out/w$": "beta"})


def test_labels_by_path():
    labels = LABELS(_params())
    assert labels["cell"].w_x == labels["cell"].w_h == "gamma"
    assert labels["cell"].b == labels["out"]["b"] == "unpenalized"
    assert labels["out"]["w"] == "beta"


def test_penalty_value_and_gradient_per_group():
    p = _params()
    n = jax.tree.map(np.asarray, p)
    expected = 0.3 * np.sum(n["out"]["w"] ** 2) + 0.05 * (
        np.sum(n["cell"].w_x ** 2) + np.sum(n["cell"].w_h ** 2)
    )
    np.testing.assert_allclose(ridge_penalty(p, LAMBDAS, LABELS), expected, rtol=1e-6)
    grads = jax.grad(ridge_penalty)(p, LAMBDAS, LABELS)
    np.testing.assert_allclose(grads["out"]["w"], 2 * 0.3 * n["out"]["w"], rtol=1e-6)
    np.testing.assert_allclose(grads["cell"].w_x, 2 * 0.05 * n["cell"].w_x, rtol=1e-6)
    np.testing.assert_allclose(grads["cell"].w_h, 2 * 0.05 * n["cell"].w_h, rtol=1e-6)
    np.testing.assert_array_equal(grads["cell"].b, 0.0)
    np.testing.assert_array_equal(grads["out"]["b"], 0.0)


def test_ridge_transformation_adds_the_penalty_gradient():
    """optax.chain(ridge, sgd) == sgd on loss + penalty, for a non-trivial loss."""
    p = _params()
    loss = lambda q: (
        jnp.sum(q["out"]["w"] * jnp.arange(3.0)) + jnp.sum(jnp.sin(q["cell"].w_h))
    )
    g = jax.grad(loss)(p)
    opt = optax.chain(ridge(LAMBDAS, LABELS), optax.sgd(0.1))
    updates, _ = opt.update(g, opt.init(p), p)
    g_pen = jax.grad(lambda q: loss(q) + ridge_penalty(q, LAMBDAS, LABELS))(p)
    for u, gp in zip(jax.tree.leaves(updates), jax.tree.leaves(g_pen), strict=True):
        np.testing.assert_allclose(u, -0.1 * np.asarray(gp), rtol=1e-6, atol=1e-7)


def test_explicit_label_tree_and_errors():
    p = {"a": jnp.array([1.0, 2.0]), "b": jnp.array([3.0])}
    np.testing.assert_allclose(ridge_penalty(p, {"x": 2.0}, {"a": "x", "b": "y"}), 10.0)
    with pytest.raises(
        ValueError, match=r"lambdas\['x'\]: expected a penalty strength >= 0, got -1"
    ):
        ridge_penalty(p, {"x": -1.0}, {"a": "x", "b": "y"})
    with pytest.raises(
        ValueError, match=r"labels: expected one label per parameter leaf"
    ):
        ridge_penalty(p, {"x": 1.0}, {"a": "x"})
