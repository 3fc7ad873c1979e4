"""The seed's lab model against the same model in Keras 3, with the same weights.

keras is an optional peer (``pip install -e .[peers]``); these tests skip without
it. Keras runs on its JAX backend.
"""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "jax")
keras = pytest.importorskip("keras", reason="keras is an optional peer (jaxseq[peers])")

from jaxseq import models  # noqa: E402

# Keras' Variable.__array__ predates NumPy 2's ``copy`` keyword: get_weights warns.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
V, T = 60, 12
L = keras.layers


def keras_lab(time: int):
    """The seed's R/Keras lab model, layer for layer."""
    return keras.Sequential(
        [
            keras.Input((time,), dtype="int32"),
            L.Embedding(V, 4),
            L.LSTM(4, return_sequences=True, go_backwards=True),
            L.GlobalAveragePooling1D(),
            L.Dense(4, activation="relu"),
            L.Dense(1, activation="sigmoid"),
        ]
    )


def copy_weights(params, model) -> None:
    (lstm,) = params["rnn"]
    head = params["head"]
    model.set_weights(
        [
            np.asarray(a)
            for a in (
                params["embed"],
                lstm.w_x,
                lstm.w_h,
                lstm.b,
                head["dense_0"]["kernel"],
                head["dense_0"]["bias"],
                head["dense_1"]["kernel"],
                head["dense_1"]["bias"],
            )
        ]
    )


@pytest.fixture(scope="module")
def lab():
    model = models.build("lab", vocab_size=V)
    params = model.init(jax.random.key(0))
    # larger weights than the initialisation, so every layer matters
    params = jax.tree.map(
        lambda a: a * 8.0 if a.ndim == 2 and a.shape[0] == V else a, params
    )
    return model, params


def test_full_length_reviews_match_keras(lab):
    model, params = lab
    ids = np.random.default_rng(0).integers(1, V, size=(5, T)).astype(np.int32)
    k = keras_lab(T)
    copy_weights(params, k)
    expected = np.asarray(k.predict(ids, verbose=0))[:, 0]
    logits = model.apply(params, ids, np.full(5, T, np.int32))
    np.testing.assert_allclose(jax.nn.sigmoid(logits), expected, rtol=1e-5, atol=1e-6)


def test_padded_batch_matches_keras_on_each_unpadded_review(lab):
    """jaxseq reads each valid prefix backwards (``reverse=True`` with lengths):
    the same as Keras' go_backwards on the review alone, with no padding."""
    model, params = lab
    rng = np.random.default_rng(1)
    lengths = np.array([12, 7, 3, 1], np.int32)
    ids = rng.integers(1, V, size=(4, T)).astype(np.int32)
    ids[np.arange(T)[None, :] >= lengths[:, None]] = 0
    probs = np.asarray(jax.nn.sigmoid(model.apply(params, ids, lengths)))
    for b, n in enumerate(lengths):
        k = keras_lab(int(n))
        copy_weights(params, k)
        alone = np.asarray(k.predict(ids[b : b + 1, :n], verbose=0))[0, 0]
        np.testing.assert_allclose(probs[b], alone, rtol=1e-5, atol=1e-6)
