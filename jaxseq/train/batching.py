"""Host-side batching: epoch orders, row selection and length buckets.

Data are pytrees (typically tuples) of NumPy arrays sharing a leading example
axis, e.g. ``(ids [N, T], lengths [N], labels [N])``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

Collate = Callable[[Any], Any]


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
