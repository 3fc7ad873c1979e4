"""Learned embedding table: init, lookup, gradient, freezing with optax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseq.text import PAD_ID, embed, embedding_init


def test_init_shape_range_padding_and_determinism(key):
    table = embedding_init(key, 50, 8)
    assert table.shape == (50, 8) and table.dtype == jnp.float32
    assert float(jnp.abs(table).max()) <= 0.05
    assert float(jnp.abs(table[PAD_ID]).min()) > 0  # Keras-like: no zero row
    np.testing.assert_array_equal(table, embedding_init(key, 50, 8))
    zero_pad = embedding_init(key, 50, 8, padding_id=PAD_ID, scale=0.5)
    assert (zero_pad[PAD_ID] == 0).all() and float(jnp.abs(zero_pad).max()) > 0.05


def test_init_errors(key):
    with pytest.raises(ValueError, match="vocab_size: expected an int >= 1"):
        embedding_init(key, 0, 4)
    with pytest.raises(ValueError, match=r"padding_id: expected None or an id in"):
        embedding_init(key, 5, 4, padding_id=5)
    with pytest.raises(TypeError, match="floating"):
        embedding_init(key, 5, 4, dtype=jnp.int32)


def test_embed_is_row_lookup_under_jit(key):
    table = jax.random.normal(key, (7, 3))
    ids = jnp.array([[1, 6, 0], [2, 2, 5]], dtype=jnp.int32)
    out = jax.jit(embed)(table, ids)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out, np.asarray(table)[np.asarray(ids)])


def test_embed_gradient_counts_rows(key):
    table = jax.random.normal(key, (5, 2))
    ids = jnp.array([[1, 1, 3], [0, 3, 3]])
    grad = jax.grad(lambda t: embed(t, ids).sum())(table)
    np.testing.assert_array_equal(grad[:, 0], [1, 2, 0, 3, 0])


def test_out_of_range_ids_give_nan(key):
    table = jax.random.normal(key, (4, 2))
    out = embed(table, jnp.array([3, 4, -1]))
    assert not jnp.isnan(out[0]).any() and jnp.isnan(out[1:]).all()


def test_embed_errors(key):
    with pytest.raises(ValueError, match="table: expected rank 2"):
        embed(jnp.zeros(3), jnp.array([0]))
    with pytest.raises(TypeError, match="ids: expected an integer dtype"):
        embed(jnp.zeros((3, 2)), jnp.array([0.0]))


def test_frozen_table_with_optax_multi_transform(key):
    """The freezing recipe of the docs: the table stays, the head trains."""
    optax = pytest.importorskip("optax")
    params = {"embedding": embedding_init(key, 6, 2), "head": jnp.ones(2)}
    ids = jnp.array([[1, 2, 3]])

    def loss(p):
        return ((embed(p["embedding"], ids).mean(1) @ p["head"] - 1.0) ** 2).sum()

    for frozen in (True, False):
        labels = {"embedding": "frozen" if frozen else "train", "head": "train"}
        tx = optax.multi_transform(
            {"train": optax.sgd(0.5), "frozen": optax.set_to_zero()}, labels
        )
        updates, _ = tx.update(jax.grad(loss)(params), tx.init(params), params)
        new = optax.apply_updates(params, updates)
        assert not jnp.array_equal(new["head"], params["head"])
        assert jnp.array_equal(new["embedding"], params["embedding"]) == frozen
