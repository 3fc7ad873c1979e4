"""A learned embedding is a ``[V, D]`` parameter table and a row lookup.

Frozen or fine-tuned is decided by the optimiser, not by the table: put the
table in the parameter pytree and give it a zero update when it must stay
fixed, e.g. with ``optax.multi_transform``::

    params = {"embedding": table, "head": head_params}
    labels = {"embedding": "frozen", "head": "train"}
    tx = optax.multi_transform(
        {"train": optax.adam(1e-3), "frozen": optax.set_to_zero()}, labels
    )

(``optax.masked(optax.adam(1e-3), mask)`` with ``mask = {"embedding": False,
"head": True}`` leaves the masked-out leaves' updates untouched, i.e. it would
pass raw gradients through: use ``multi_transform`` + ``set_to_zero`` to freeze.)
Fine-tuning a pretrained table is the default: just train it with the rest.
Freezing it for the first epochs and then switching is a change of ``labels``
and a fresh ``tx.init``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from .._typing import Key


def embedding_init(
    key: Key,
    vocab_size: int,
    dim: int,
    *,
    scale: float = 0.05,
    padding_id: int | None = None,
    dtype: jnp.dtype = jnp.float32,
) -> Float[Array, "V D"]:
    """A fresh embedding table, uniform in ``[-scale, scale]``.

    The default ``scale=0.05`` is Keras' ``Embedding`` initialiser
    (``RandomUniform(-0.05, 0.05)``), so a model built on it starts like the
    Keras one.

    Args:
        key: PRNG key.
        vocab_size: ``V``, rows (``len(vocab)``).
        dim: ``D``, embedding size.
        scale: half-width of the uniform distribution.
        padding_id: if given, that row is zero (e.g. :data:`PAD_ID` for models
            that pool over the padded positions without a mask).
        dtype: floating dtype of the table.

    Returns:
        ``[V, D]`` table.

    Raises:
        TypeError: when ``key`` is not a PRNG key or ``dtype`` not floating.
        ValueError: when a size is not an int >= 1, ``scale`` is negative or
            not finite, or ``padding_id`` is not a row of the table.

    Examples:
        >>> import jax
        >>> from jaxseq.text import embed, embedding_init
        >>> table = embedding_init(jax.random.key(0), 10, 4, padding_id=0)
        >>> embed(table, jax.numpy.array([[3, 0]])).shape
        (1, 2, 4)
    """
    if not (
        isinstance(key, jax.Array)
        and (
            jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
            or (key.dtype == jnp.uint32 and key.ndim == 1)
        )
    ):
        raise TypeError(
            "key: expected a PRNG key (jax.random.key(seed)), got "
            f"{type(key).__name__} {getattr(key, 'dtype', '')}".rstrip()
            + "."
        )
    for name, value in (("vocab_size", vocab_size), ("dim", dim)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: expected an int >= 1, got {value!r}.")
    if not isinstance(scale, int | float) or not 0 <= scale < float("inf"):
        raise ValueError(f"scale: expected a finite number >= 0, got {scale!r}.")
    if padding_id is not None and (
        not isinstance(padding_id, int)
        or isinstance(padding_id, bool)
        or not 0 <= padding_id < vocab_size
    ):
        raise ValueError(
            f"padding_id: expected None or an id in [0, {vocab_size}), got "
            f"{padding_id!r}."
        )
    try:
        floating = jnp.issubdtype(dtype, jnp.floating)
    except TypeError:
        floating = False
    if not floating:
        raise TypeError(f"dtype: expected a floating dtype, got {dtype!r}.")
    table = jax.random.uniform(
        key, (vocab_size, dim), dtype=dtype, minval=-scale, maxval=scale
    )
    if padding_id is not None:
        table = table.at[padding_id].set(0)
    return table


def embed(
    table: Float[Array, "V D"], ids: Int[Array, "*shape"]
) -> Float[Array, "*shape D"]:
    """Rows of ``table`` for integer ``ids`` of any shape -> ``[*ids.shape, D]``.

    Pure and jit-able; the gradient w.r.t. ``table`` is a scatter-add into the
    looked-up rows. Ids outside ``[0, V)`` give NaN rows (``jnp.take`` with
    ``mode="fill"``), so a vocabulary/model size mismatch shows up in the loss
    instead of silently reading a clamped row.

    Raises:
        ValueError: when ``table`` is not 2-D.
        TypeError: when ``ids`` is not an integer array.
    """
    if jnp.ndim(table) != 2:
        raise ValueError(
            f"table: expected rank 2 ([V, D]), got shape {jnp.shape(table)}."
        )
    dtype = jnp.result_type(ids)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"ids: expected an integer dtype, got {dtype}.")
    # jnp.take wraps negative indices like NumPy; an id is never negative, so
    # send those out of range as well.
    ids = jnp.where(ids < 0, table.shape[0], ids)
    return jnp.take(table, ids, axis=0, mode="fill", fill_value=jnp.nan)
