r"""Per-step readout and the language-modelling loss.

The lecture's recurrent net emits one output per step,

.. math::

    o_t = c + V h_t, \qquad \hat y_t = \operatorname{softmax}(o_t),

and is trained on the negative log-likelihood of the sequence,

.. math::

    L = -\sum_t \log p_{\text{model}}(y_t \mid x_1, \dots, x_t),

where the label ``y_t`` is the next token ``x_{t+1}`` (:func:`shift_targets`).
Here ``V`` is the readout kernel ``w`` ``[H, V]`` (``V`` the vocabulary size) and
``c`` its bias ``b``. With weight tying (Press & Wolf, 2017, "Using the Output
Embedding to Improve Language Models") the kernel is the transposed input
embedding table ``E^T``, which needs ``H == D``.

Padded steps are excluded by a boolean ``mask`` ``[B, T]`` (or per-row ``lengths``);
:func:`sequence_nll` returns the *sum* over valid steps and their count, so that
chunks and batches of any size add up, and :func:`sequence_cross_entropy` the sum
or the mean over valid steps. Perplexity is ``exp`` of the mean, bits per
character (or token) the mean divided by ``ln 2``.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from .. import nn as jnn
from ._checks import check_ids

Reduction = Literal["mean", "sum"]
REDUCTIONS = ("mean", "sum")


class Readout(NamedTuple):
    """Parameters of the per-step readout ``o_t = b + h_t w``.

    Attributes:
        w: ``[H, V]`` kernel, or ``None`` when tied to the embedding table.
        b: ``[V]`` bias (the lecture's ``c``).
    """

    w: jax.Array | None
    b: jax.Array


def readout_init(
    key: jax.Array, hidden: int, vocab_size: int, *, tied: bool = False
) -> Readout:
    """A fresh readout: Glorot-uniform ``[H, V]`` kernel (absent when ``tied``),
    zero bias."""
    w = None
    if not tied:
        w = jax.nn.initializers.glorot_uniform()(key, (hidden, vocab_size))
    return Readout(w=w, b=jnp.zeros((vocab_size,), jnp.float32))


def readout(
    params: Readout, hs: Float[Array, "*B H"], table: jax.Array | None = None
) -> Float[Array, "*B V"]:
    """Logits ``o_t = b + h_t w`` for every step; ``w = table^T`` when tied.

    Args:
        params: a :class:`Readout`.
        hs: hidden states ``[..., H]``.
        table: the ``[V, D]`` embedding table; required when ``params.w`` is None.

    Raises:
        ValueError: when tied without a table, or when ``H`` does not match.
    """
    if params.w is None:
        if table is None:
            raise ValueError(
                "table: expected the [V, D] embedding table for a tied readout "
                "(params.w is None), got None."
            )
        if table.shape[1] != hs.shape[-1]:
            raise ValueError(
                f"hs: expected feature size {table.shape[1]} (tied readout: embedding "
                f"dim D), got {hs.shape[-1]}. Tying needs hidden == embed_dim."
            )
        return _project_tied(hs, table.astype(hs.dtype), params.b)
    if params.w.shape[0] != hs.shape[-1]:
        raise ValueError(
            f"hs: expected feature size {params.w.shape[0]} (readout w.shape[0]), got "
            f"{hs.shape[-1]}."
        )
    return _project(hs, params.w, params.b)


def _project(hs: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
    """``hs @ w + b`` as one ``[N, H] @ [H, V]`` product over the flattened leading
    axes (reshapes are free). XLA on CPU compiles the rank-3 product and its
    gradient slower: the word-level benchmark's readout and loss (B 20, T 35,
    H 200, V 10k, forward and backward, one core) took 160-175 ms as
    ``[B, T, H] @ [H, V]`` and 122-133 ms flattened (:func:`token_log_probs`
    flattens too), against 134-151 ms for PyTorch's."""
    lead = hs.shape[:-1]
    out = hs.reshape(-1, hs.shape[-1]) @ w + b
    return out.reshape(*lead, out.shape[-1])


def _project_tied(hs: jax.Array, table: jax.Array, b: jax.Array) -> jax.Array:
    """``hs @ table.T + b`` with the ``[V, D]`` table contracted on its own last
    axis (no ``table.T`` in the program): written as a product with a transposed
    operand, XLA on CPU lays the ``[D, V]`` transpose out in memory, and inside a
    generation loop it did so for every token (an 8 MB copy at ``V = 10k``,
    ``D = 200``: 2.4 ms of a 2.7 ms token at batch 1)."""
    lead = hs.shape[:-1]
    flat = hs.reshape(-1, hs.shape[-1])
    out = jax.lax.dot_general(flat, table, (((1,), (1,)), ((), ()))) + b
    return out.reshape(*lead, out.shape[-1])


def shift_targets(
    ids: Int[Array, "B T"], lengths: Int[Array, " B"] | None = None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Inputs and next-token labels of right-padded sequences.

    Returns ``(inputs, targets, mask)``: ``inputs = ids[:, :-1]``, ``targets =
    ids[:, 1:]`` and ``mask`` ``[B, T-1]`` true where ``t + 1 < lengths`` (a
    sequence of ``n`` tokens gives ``n - 1`` predictions).

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxseq.lm import shift_targets
        >>> x, y, m = shift_targets(jnp.array([[5, 6, 7, 0]]), jnp.array([3]))
        >>> x.tolist(), y.tolist(), m.tolist()
        ([[5, 6, 7]], [[6, 7, 0]], [[True, True, False]])
    """
    if jnp.ndim(ids) != 2 or ids.shape[1] < 2:
        raise ValueError(
            f"ids: expected [B, T] with T >= 2 (one input and one label), got shape "
            f"{jnp.shape(ids)}."
        )
    time = ids.shape[1] - 1
    if lengths is None:
        mask = jnp.ones((ids.shape[0], time), bool)
    else:
        mask = jnn.mask_from_lengths(jnp.asarray(lengths) - 1, time)
    return ids[:, :-1], ids[:, 1:], mask


def token_log_probs(
    logits: Float[Array, "*B V"], targets: Int[Array, "*B"]
) -> Float[Array, "*B"]:
    """``log softmax(logits)[target]`` at every position (float32).

    Raises:
        ValueError: when the shapes disagree, or (concrete targets) when an id
            lies outside ``[0, V)``.
    """
    if logits.shape[:-1] != jnp.shape(targets):
        raise ValueError(
            f"targets: expected shape {logits.shape[:-1]} (logits without the vocab "
            f"axis), got {jnp.shape(targets)}."
        )
    check_ids("targets", targets, logits.shape[-1])
    # over [N, V] (see _project: rank-3 softmax and gather compile slower on CPU)
    flat = logits.reshape(-1, logits.shape[-1]).astype(jnp.float32)
    logp = jax.nn.log_softmax(flat, axis=-1)
    ids = jnp.reshape(targets, (-1, 1)).astype(jnp.int32)
    return jnp.take_along_axis(logp, ids, -1)[:, 0].reshape(jnp.shape(targets))


def sequence_nll(
    logits: Float[Array, "B T V"],
    targets: Int[Array, "B T"],
    mask: Bool[Array, "B T"] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """``(sum of -log p(y_t | x_<=t) over valid steps, number of valid steps)``.

    Both float32 scalars; the sums of several chunks or batches add up, and
    ``sum / count`` is the mean negative log-likelihood per token.
    """
    nll = -token_log_probs(logits, targets)
    if mask is None:
        return nll.sum(), jnp.asarray(nll.size, jnp.float32)
    if jnp.shape(mask) != jnp.shape(targets):
        raise ValueError(
            f"mask: expected shape {jnp.shape(targets)} (as targets), got "
            f"{jnp.shape(mask)}."
        )
    mask = jnp.asarray(mask, bool)
    total = jnp.where(mask, nll, 0.0).sum()
    return total, mask.sum().astype(jnp.float32)


def sequence_cross_entropy(
    logits: Float[Array, "B T V"],
    targets: Int[Array, "B T"],
    *,
    mask: Bool[Array, "B T"] | None = None,
    lengths: Int[Array, " B"] | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    """The masked sequence cross-entropy ``-sum_t log p(y_t | x_<=t)``.

    Args:
        logits: ``[B, T, V]`` per-step logits.
        targets: ``[B, T]`` labels (the next tokens, see :func:`shift_targets`).
        mask: ``[B, T]`` true at valid steps; or ``lengths`` ``[B]`` (right
            padding); neither: every step counts.
        reduction: ``"mean"`` over valid steps (0 when there are none) or
            ``"sum"``.

    Examples:
        >>> import jax.numpy as jnp
        >>> from jaxseq.lm import sequence_cross_entropy
        >>> logits = jnp.zeros((1, 3, 4))       # uniform over 4 tokens
        >>> loss = sequence_cross_entropy(logits, jnp.array([[1, 2, 3]]),
        ...                               lengths=jnp.array([2]), reduction="sum")
        >>> round(float(loss), 4) == round(2 * float(jnp.log(4.0)), 4)
        True
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}.")
    if mask is not None and lengths is not None:
        raise ValueError("mask, lengths: expected at most one of them, got both.")
    if lengths is not None:
        mask = jnn.mask_from_lengths(lengths, jnp.shape(targets)[1])
    total, count = sequence_nll(logits, targets, mask)
    if reduction == "sum":
        return total
    return total / jnp.maximum(count, 1.0)


def perplexity(mean_nll: Any) -> Any:
    """``exp(mean negative log-likelihood per token)`` (natural log)."""
    return np.exp(mean_nll) if _is_host(mean_nll) else jnp.exp(mean_nll)


def bits_per_token(mean_nll: Any) -> Any:
    """Mean NLL in bits: ``mean_nll / ln 2`` (bits per character at char level)."""
    return mean_nll / np.log(2.0)


def _is_host(x: Any) -> bool:
    return isinstance(x, float | int | np.ndarray | np.generic)
