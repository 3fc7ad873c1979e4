"""Host-side batching: epoch orders, row selection and length buckets.

Data are pytrees (typically tuples) of NumPy arrays sharing a leading example
axis, e.g. ``(ids [N, T], lengths [N], labels [N])``.

A :data:`BatchOrder` chooses an epoch's minibatches for :func:`~jaxseq.train.fit`
(``batch_order=``): by default each epoch is a uniformly random permutation
(:func:`epoch_order`); :func:`sortish_order` draws batches of examples of
similar lengths, which with :func:`bucket_by_length` lets a recurrent layer
run about as many steps as the sequences have tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

Collate = Callable[[Any], Any]
#: ``batch_order(epoch) -> batches``: the example indices of each minibatch of
#: the 0-based ``epoch``, in order. It must be a pure function of ``epoch`` (a
#: resumed run recomputes the epoch it stopped in) and give the same number of
#: batches of ``batch_size`` indices every epoch.
BatchOrder = Callable[[int], Sequence[np.ndarray]]


def bucket_by_length(
    buckets: tuple[int, ...], *, lengths: int = 1, sequences: tuple[int, ...] = (0,)
) -> Collate:
    """A ``collate`` that pads or trims the time axis to a few bucket lengths.

    The batch's time axis becomes the smallest bucket ``>= max(lengths)``, so
    the train step compiles once per bucket instead of once per batch.

    Args:
        buckets: increasing time lengths, e.g. ``(128, 256, 512)``.
        lengths: index (in the batch tuple) of the ``[B]`` lengths array.
        sequences: indices of the ``[B, T, ...]`` arrays to pad/trim on axis 1
            (padded with zeros).

    Returns:
        ``collate(batch) -> batch`` for :func:`fit`.

    Raises:
        ValueError: at call time if a length exceeds the largest bucket.

    Examples:
        >>> import numpy as np
        >>> from jaxseq.train import bucket_by_length
        >>> collate = bucket_by_length((4, 8))
        >>> ids = np.arange(1, 21).reshape(2, 10); n = np.array([3, 5])
        >>> [a.shape for a in collate((ids, n, np.array([0, 1])))]
        [(2, 8), (2,), (2,)]
    """
    sizes = tuple(int(b) for b in buckets)
    if not sizes or any(b < 1 for b in sizes) or list(sizes) != sorted(set(sizes)):
        raise ValueError(
            f"buckets: expected strictly increasing positive lengths, got {buckets!r}."
        )

    def collate(batch):
        batch = list(batch)
        longest = int(np.max(batch[lengths])) if len(batch[lengths]) else 0
        fits = [b for b in sizes if b >= longest]
        if not fits:
            raise ValueError(
                f"lengths: expected every length <= the largest bucket {sizes[-1]}, "
                f"got {longest}. Truncate the sequences or add a bucket."
            )
        t = fits[0]
        for i in sequences:
            a = np.asarray(batch[i])
            if a.shape[1] >= t:
                batch[i] = a[:, :t]
            else:
                pad = [(0, 0)] * a.ndim
                pad[1] = (0, t - a.shape[1])
                batch[i] = np.pad(a, pad)
        return tuple(batch)

    return collate


def num_examples(name: str, data: Any) -> int:
    """The shared leading size ``N`` of a data pytree (``ValueError`` otherwise)."""
    leaves = jax.tree_util.tree_flatten_with_path(data)[0]
    if not leaves:
        raise ValueError(f"{name}: expected a pytree of arrays, got {data!r}.")
    sizes = {
        jax.tree_util.keystr(p) or "<leaf>": np.shape(x)[0] if np.ndim(x) else None
        for p, x in leaves
    }
    if None in sizes.values() or len(set(sizes.values())) != 1:
        raise ValueError(
            f"{name}: expected arrays sharing a leading example axis, got leading "
            f"sizes {sizes}."
        )
    return next(iter(sizes.values()))


def take(data: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of every array of a data pytree (host-side NumPy)."""
    return jax.tree.map(lambda a: np.asarray(a)[idx], data)


def epoch_order(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """The permutation of example indices for 0-based ``epoch`` (reproducible)."""
    return np.random.default_rng((seed, epoch)).permutation(num_examples)


def bucket_lengths(maxlen: int, count: int = 4) -> tuple[int, ...]:
    """``count`` evenly spaced bucket lengths up to ``maxlen`` (for
    :func:`bucket_by_length`), e.g. ``(100, 200, 300, 400)`` for 400."""
    if isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1:
        raise ValueError(f"maxlen: expected a positive int, got {maxlen!r}.")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count: expected a positive int, got {count!r}.")
    return tuple(sorted({max(1, maxlen * k // count) for k in range(1, count + 1)}))


def sortish_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 32
) -> list[np.ndarray]:
    """One epoch's batches: indices of examples of similar lengths.

    A random permutation is cut into pools of ``pool * batch_size`` examples;
    each pool is sorted by length and cut into batches of ``batch_size``; the
    batches are shuffled (the "sortish" sampling of bucketed iterators). Only
    the last pool can end in an incomplete batch, which is dropped: as in
    :func:`fit`'s own order, ``N // batch_size`` batches, and the up to
    ``batch_size - 1`` examples left out differ from epoch to epoch.

    Args:
        lengths: ``[N]`` sequence lengths.
        batch_size: examples per batch.
        rng: the epoch's NumPy generator.
        pool: batches per sorted pool (larger: more uniform lengths per batch,
            less randomness in which examples share a batch).

    Returns:
        ``N // batch_size`` index arrays of ``batch_size``.
    """
    lengths = np.asarray(lengths)
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), pool * batch_size):
        chunk = order[start : start + pool * batch_size]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        full = len(chunk) // batch_size * batch_size
        batches.extend(chunk[:full].reshape(-1, batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def sortish_order(
    lengths: np.ndarray, batch_size: int, *, seed: int = 0, pool: int = 32
) -> BatchOrder:
    """A :data:`BatchOrder` of :func:`sortish_batches`, epoch ``e`` drawn from
    ``numpy.random.default_rng((seed, e))`` (so a resumed run redraws it).

    Examples:
        >>> import numpy as np
        >>> from jaxseq.train import sortish_order
        >>> order = sortish_order(np.arange(1000) % 97, 10, pool=4)
        >>> batches = order(0)
        >>> len(batches), batches[0].shape, bool((order(0)[3] == batches[3]).all())
        (100, (10,), True)
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise ValueError(
            f"lengths: expected a 1-D array [N], got shape {lengths.shape}."
        )
    for name, value in (("batch_size", batch_size), ("pool", pool)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value!r}.")
    if len(lengths) < batch_size:
        raise ValueError(
            f"batch_size: expected at most the number of examples ({len(lengths)}), "
            f"got {batch_size}."
        )

    def order(epoch: int) -> list[np.ndarray]:
        rng = np.random.default_rng((seed, epoch))
        return sortish_batches(lengths, batch_size, rng, pool)

    return order
