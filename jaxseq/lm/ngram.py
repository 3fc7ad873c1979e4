r"""An interpolated modified Kneser-Ney n-gram model: the count baseline of the
neural language models, over the same token ids.

Chen & Goodman (1998), "An Empirical Study of Smoothing Techniques for Language
Modeling", section 3.5 (interpolated, modified: three discounts per order).
For the highest order ``n`` with counts ``c`` and a context ``h`` of ``n - 1``
tokens,

.. math::

    p_n(w \mid h) = \frac{\max(c(hw) - D(c(hw)), 0)}{c(h)}
                   + \gamma(h)\, p_{n-1}(w \mid h'), \qquad
    \gamma(h) = \frac{D_1 N_1(h\bullet) + D_2 N_2(h\bullet)
                      + D_{3+} N_{3+}(h\bullet)}{c(h)},

where ``c(h) = sum_w c(hw)``, ``N_k(h•)`` is the number of words that follow
``h`` exactly ``k`` times (``3+``: at least three) and ``h'`` drops the first
token of ``h``. A context never seen (``c(h) = 0``) backs off entirely:
``p_n(w | h) = p_{n-1}(w | h')``. Lower orders use the same formula on the
*continuation* counts ``c'(hw) = N_{1+}(•hw)``, the number of distinct tokens
seen before ``hw``; the unigram level is interpolated with the uniform
distribution ``1 / V`` over the whole vocabulary, so every id (``[UNK]``,
padding) has a positive probability and each ``p_k(· | h)`` sums to 1.

Discounts (per order, from that order's counts-of-counts ``n_1 .. n_4``):
``Y = n_1 / (n_1 + 2 n_2)``, ``D_1 = 1 - 2Y n_2 / n_1``, ``D_2 = 2 - 3Y n_3 /
n_2``, ``D_{3+} = 3 - 4Y n_4 / n_3`` (a ratio with a zero denominator counts as
0, and each ``D_k`` is clipped to ``[0, k]``, for tiny corpora), or given.

The stream is read as one sequence (contexts cross the ``<eos>`` between
documents, as the neural models' stateful streams do); the first tokens of a
stream, with fewer than ``n - 1`` tokens before them, are scored with the
shorter context at its own order. Counting is exact in NumPy (sorted int64 keys
of the n-grams in base ``V``; ``V ** n`` must fit in int64).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._checks import check_ids, check_positive


class KNOrder(NamedTuple):
    """The counts of one order ``k`` (contexts of ``k - 1`` tokens).

    Attributes:
        keys: int64 ``[M]`` sorted keys ``context * V + w`` of the k-grams seen.
        counts: float64 ``[M]`` their counts (raw at the highest order,
            continuation counts below).
        contexts: int64 ``[C]`` sorted context keys (base ``V``).
        totals: float64 ``[C]`` ``c(h)``, the sum of the counts after ``h``.
        gammas: float64 ``[C]`` the back-off weight ``gamma(h)``.
        discounts: float64 ``[3]`` ``(D_1, D_2, D_3+)``.
    """

    keys: np.ndarray
    counts: np.ndarray
    contexts: np.ndarray
    totals: np.ndarray
    gammas: np.ndarray
    discounts: np.ndarray


class KneserNey(NamedTuple):
    """A fitted model (:func:`fit_kneser_ney`).

    Attributes:
        vocab_size: ``V``; ids lie in ``[0, V)``.
        orders: one :class:`KNOrder` per order ``1 .. n``.
    """

    vocab_size: int
    orders: tuple[KNOrder, ...]

    @property
    def order(self) -> int:
        """``n``."""
        return len(self.orders)


def _ratio(a: float, b: float) -> float:
    return a / b if b else 0.0


def estimate_discounts(counts: np.ndarray) -> np.ndarray:
    """``(D_1, D_2, D_3+)`` of Chen & Goodman from the counts-of-counts of
    ``counts`` (see the module docstring), each clipped to ``[0, k]``."""
    n = [float(np.sum(counts == k)) for k in (1, 2, 3, 4)]
    y = _ratio(n[0], n[0] + 2 * n[1])
    d = [k - (k + 1) * y * _ratio(n[k], n[k - 1]) for k in (1, 2, 3)]
    return np.clip(np.array(d, np.float64), 0.0, [1.0, 2.0, 3.0])


def _grams(ids: np.ndarray, k: int, vocab_size: int) -> np.ndarray:
    """Keys of the ``N - k + 1`` k-grams of ``ids`` in base ``V``."""
    key = np.zeros(ids.shape[0] - k + 1, np.int64)
    for j in range(k):
        key = key * vocab_size + ids[j : ids.shape[0] - k + 1 + j]
    return key


def _order_table(
    keys: np.ndarray, counts: np.ndarray, vocab_size: int, discounts: Any
) -> KNOrder:
    if discounts is None:
        d = estimate_discounts(counts)
    else:
        d = np.asarray(discounts, np.float64)
    ctx = keys // vocab_size
    contexts, first = np.unique(ctx, return_index=True)
    totals = np.add.reduceat(counts, first) if keys.size else np.zeros(0)
    weight = np.select([counts >= 3, counts == 2], [d[2], d[1]], d[0])
    gammas = np.add.reduceat(weight, first) / totals if keys.size else np.zeros(0)
    return KNOrder(keys, counts, contexts, totals, gammas, d)


def fit_kneser_ney(
    ids: Any,
    vocab_size: int,
    *,
    order: int = 3,
    discounts: Any = None,
) -> KneserNey:
    """Count the n-grams of a training stream.

    Args:
        ids: int ``[N]`` training token ids (``TokenStream.ids``), ``N >= order``.
        vocab_size: ``V``.
        order: ``n`` (3: a trigram model).
        discounts: ``None`` (estimated per order) or ``[n, 3]`` rows ``(D_1,
            D_2, D_3+)`` for orders ``1 .. n``.

    Returns:
        A :class:`KneserNey`.

    Raises:
        ValueError: for ids outside ``[0, V)``, a stream shorter than ``order``,
            ``V ** order`` beyond int64, or discounts of another shape.

    Examples:
        >>> import numpy as np
        >>> from jaxseq.lm.ngram import fit_kneser_ney, kn_probs
        >>> kn = fit_kneser_ney(np.array([2, 3, 4, 3, 4, 2]), 5, order=2,
        ...                     discounts=[[0.5, 0.5, 0.5]] * 2)
        >>> p = kn_probs(kn, [3])
        >>> p.shape, round(float(p.sum()), 12), int(p.argmax())
        ((5,), 1.0, 4)
    """
    check_positive("vocab_size", vocab_size)
    check_positive("order", order)
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids: expected one stream [N], got shape {arr.shape}.")
    check_ids("ids", arr, vocab_size)
    if arr.shape[0] < order:
        raise ValueError(
            f"ids: expected at least order = {order} tokens, got {arr.shape[0]}."
        )
    if float(vocab_size) ** order >= 2.0**62:
        raise ValueError(
            f"order: expected vocab_size ** order < 2 ** 62 (int64 keys), got "
            f"{vocab_size} ** {order}."
        )
    if discounts is not None:
        discounts = np.asarray(discounts, np.float64)
        if discounts.shape != (order, 3):
            raise ValueError(
                f"discounts: expected shape ({order}, 3) (D_1, D_2, D_3+ per order), "
                f"got {discounts.shape}."
            )
    arr = arr.astype(np.int64)
    tables: list[KNOrder] = []
    for k in range(1, order + 1):
        keys, counts = np.unique(_grams(arr, k, vocab_size), return_counts=True)
        if k < order:
            # continuation counts: distinct (k+1)-grams ending in each k-gram
            longer = np.unique(_grams(arr, k + 1, vocab_size))
            suffix = longer % vocab_size**k
            keys, counts = np.unique(suffix, return_counts=True)
        d = None if discounts is None else discounts[k - 1]
        tables.append(_order_table(keys, counts.astype(np.float64), vocab_size, d))
    return KneserNey(int(vocab_size), tuple(tables))


def _lookup(sorted_keys: np.ndarray, values: np.ndarray, query: np.ndarray):
    """``values`` at ``query`` keys (0 where absent)."""
    if sorted_keys.size == 0:
        return np.zeros(query.shape)
    at = np.clip(np.searchsorted(sorted_keys, query), 0, sorted_keys.size - 1)
    return np.where(sorted_keys[at] == query, values[at], 0.0)


def _prob(model: KneserNey, contexts: np.ndarray, words: np.ndarray) -> np.ndarray:
    """``p_k(w | h)`` with ``k = contexts.shape[1] + 1``; ``contexts`` int64
    ``[M, k - 1]`` (most recent last), ``words`` ``[M]``."""
    v = model.vocab_size
    p = np.full(words.shape, 1.0 / v)
    for k in range(1, contexts.shape[1] + 2):
        t = model.orders[k - 1]
        ctx = np.zeros(words.shape, np.int64)
        for j in range(contexts.shape[1] - (k - 1), contexts.shape[1]):
            ctx = ctx * v + contexts[:, j]
        total = _lookup(t.contexts, t.totals, ctx)
        gamma = _lookup(t.contexts, t.gammas, ctx)
        c = _lookup(t.keys, t.counts, ctx * v + words)
        d = t.discounts
        disc = np.select([c >= 3, c == 2, c == 1], [d[2], d[1], d[0]], 0.0)
        seen = total > 0
        safe = np.where(seen, total, 1.0)
        p = np.where(seen, np.maximum(c - disc, 0.0) / safe + gamma * p, p)
    return p


def kn_probs(model: KneserNey, context: Any) -> np.ndarray:
    """``p(w | context)`` for every ``w``: float64 ``[V]`` (sums to 1).

    ``context``: the previous token ids, most recent last; only the last ``n -
    1`` are used, and fewer use the lower order.
    """
    ctx = np.asarray(context, np.int64).reshape(-1)
    check_ids("context", ctx, model.vocab_size)
    ctx = ctx[max(0, ctx.shape[0] - (model.order - 1)) :]
    words = np.arange(model.vocab_size, dtype=np.int64)
    return _prob(model, np.broadcast_to(ctx, (words.shape[0], ctx.shape[0])), words)


def kn_log_probs(model: KneserNey, ids: Any) -> np.ndarray:
    """``log p(ids[t] | ids[:t])`` for ``t = 1 .. N - 1``: float64 ``[N - 1]``
    (natural log; the first token is the stream's given start)."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or arr.shape[0] < 2:
        raise ValueError(
            f"ids: expected one stream [N] with N >= 2, got shape {arr.shape}."
        )
    check_ids("ids", arr, model.vocab_size)
    arr = arr.astype(np.int64)
    n, h = arr.shape[0], model.order - 1
    out = np.empty(n - 1)
    # the first positions have fewer than n - 1 tokens before them
    for t in range(1, min(h, n)):
        out[t - 1] = np.log(_prob(model, arr[None, :t], arr[t : t + 1]))[0]
    if n > h:
        t = np.arange(max(h, 1), n)
        ctx = np.stack([arr[t - h + j] for j in range(h)], axis=1) if h else None
        ctx = np.zeros((t.shape[0], 0), np.int64) if ctx is None else ctx
        out[t - 1] = np.log(_prob(model, ctx, arr[t]))
    return out


def kn_perplexity(model: KneserNey, ids: Any) -> float:
    """``exp(-mean log p)`` of :func:`kn_log_probs` over the stream."""
    return float(np.exp(-np.mean(kn_log_probs(model, ids))))


__all__ = [
    "KNOrder",
    "KneserNey",
    "estimate_discounts",
    "fit_kneser_ney",
    "kn_log_probs",
    "kn_perplexity",
    "kn_probs",
]
