"""The bag-of-n-grams linear baseline: logistic regression on which n-grams a
review contains.

The input is the same ``(ids, lengths)`` pair as for the sequence models, but
built from an n-gram vocabulary (``word_tokenizer(ngram_range=(1, 2))``) with
each id kept once per review (``InputSpec(unique=True)``): row ``b`` is the set
of n-grams of review ``b``, i.e. its binary bag of words. The logit is

.. math::  z_b = c + \\sum_{j \\in S_b} w_j s_j / n_b, \\qquad
           n_b = \\lVert s_{S_b} \\rVert_2 \\text{ (or 1)}

with a fixed per-n-gram scale ``s`` computed from the training data by
``adapt``:

- ``"nb"``: the naive-Bayes log-count ratio ``s_j = log((p_j / |p|_1) / (q_j /
  |q|_1))``, ``p = alpha + (number of positive reviews containing j)``, ``q``
  likewise for negative ones (Wang & Manning, 2012, "Baselines and Bigrams:
  Simple, Good Sentiment and Topic Classification", ACL, NBSVM's features);
- ``"idf"``: scikit-learn's smooth inverse document frequency, with
  ``normalize=True`` binary TF-IDF rows;
- ``"none"``: ``s_j = 1``.

The scale lives in ``params["stats"]`` and is never trained.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import nn as jnn
from ._base import STATS, Model, check_inputs, check_positive, register

SCALES = ("nb", "idf", "none")


@register("bow", "bag-of-n-grams logistic regression (NB-scaled binary features)")
def bow(
    vocab_size: int,
    *,
    scale: str = "nb",
    normalize: bool = False,
    alpha: float = 1.0,
) -> Model:
    """Linear classifier over the set of a review's n-gram ids.

    Args:
        vocab_size: ``V``, the n-gram vocabulary size.
        scale: per-feature scale ``"nb"``, ``"idf"`` or ``"none"`` (see the
            module docstring).
        normalize: divide each review's scaled features by their L2 norm.
        alpha: smoothing count of the naive-Bayes ratio.

    Returns:
        A :class:`~jaxseq.models.Model` with ``adapt`` (sets the scale).

    Examples:
        >>> import jax, jax.numpy as jnp, numpy as np
        >>> from jaxseq import models
        >>> model = models.build("bow", vocab_size=6)
        >>> params = model.init(jax.random.key(0))
        >>> ids = np.array([[2, 3, 0], [4, 5, 3]]); n = np.array([2, 3])
        >>> params = model.adapt(params, ids, n, np.array([1, 0]))  # 3 in both
        >>> [round(float(s), 3) for s in params["stats"]["scale"][2:]]
        [0.811, 0.118, -0.575, -0.575]
    """
    check_positive("vocab_size", vocab_size)
    if scale not in SCALES:
        raise ValueError(f"scale: expected one of {SCALES}, got {scale!r}.")
    if not isinstance(alpha, int | float) or alpha <= 0:
        raise ValueError(f"alpha: expected a positive number, got {alpha!r}.")

    def init(key: jax.Array) -> dict[str, Any]:
        del key  # zeros: a convex problem needs no random start
        return {
            "w": jnp.zeros((vocab_size,), jnp.float32),
            "b": jnp.zeros((), jnp.float32),
            STATS: {"scale": jnp.ones((vocab_size,), jnp.float32)},
        }

    def apply(
        params: dict[str, Any],
        ids: jax.Array,
        lengths: jax.Array,
        *,
        key: jax.Array | None = None,
    ) -> jax.Array:
        del key  # deterministic
        check_inputs("bow", ids, lengths)
        valid = jnn.mask_from_lengths(lengths, ids.shape[1])
        s = jnp.where(valid, jax.lax.stop_gradient(params[STATS]["scale"])[ids], 0.0)
        if normalize:
            s = s / jnp.maximum(jnp.linalg.norm(s, axis=1, keepdims=True), 1e-12)
        return (params["w"][ids] * s).sum(axis=1) + params["b"]

    def adapt(params: dict[str, Any], ids: Any, lengths: Any, labels: Any) -> Any:
        values = feature_scale(ids, lengths, labels, vocab_size, scale, alpha)
        return {**params, STATS: {"scale": jnp.asarray(values)}}

    return Model(init=init, apply=apply, config={"name": "bow"}, adapt=adapt)


def feature_scale(
    ids: np.ndarray,
    lengths: np.ndarray,
    labels: np.ndarray,
    vocab_size: int,
    scale: str,
    alpha: float = 1.0,
) -> np.ndarray:
    """The per-id scale ``[V]`` (float32) from training ``ids [N, T]``,
    ``lengths [N]`` and 0/1 ``labels [N]`` (see the module docstring).

    Counts are document frequencies: an id repeated within a row counts once.
    """
    ids, lengths = np.asarray(ids), np.asarray(lengths)
    labels = np.asarray(labels).astype(bool)
    if scale == "none":
        return np.ones(vocab_size, np.float32)
    valid = np.arange(ids.shape[1])[None, :] < lengths[:, None]
    rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)[valid]
    pairs = np.unique(rows.astype(np.int64) * vocab_size + ids[valid])
    doc, token = pairs // vocab_size, pairs % vocab_size
    if scale == "idf":
        df = np.bincount(token, minlength=vocab_size)
        return (np.log((1 + len(ids)) / (1 + df)) + 1).astype(np.float32)
    pos = alpha + np.bincount(token[labels[doc]], minlength=vocab_size)
    neg = alpha + np.bincount(token[~labels[doc]], minlength=vocab_size)
    return np.log((pos / pos.sum()) / (neg / neg.sum())).astype(np.float32)
