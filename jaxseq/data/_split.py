"""Train/validation index splits: by group (no group on both sides) or at random.

Both return sorted NumPy index arrays ``(train_idx, valid_idx)`` that partition
``range(n)``, are deterministic given ``seed``, and never leave a side empty.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Int


def _check_seed(seed: object) -> None:
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed!r}.")


def _check_fraction(fraction: float) -> float:
    if not isinstance(fraction, int | float) or not 0.0 < fraction < 1.0:
        raise ValueError(
            f"fraction: expected a validation fraction in (0, 1), got {fraction!r}."
        )
    return float(fraction)


def random_split(
    n: int, *, fraction: float = 0.2, seed: int = 0
) -> tuple[Int[np.ndarray, " n_train"], Int[np.ndarray, " n_valid"]]:
    """Uniformly random split of ``range(n)``; ``round(fraction * n)`` (at least
    1, at most ``n - 1``) indices go to validation.

    Raises:
        ValueError: when ``n`` is not an int >= 2, ``fraction`` is not in
            ``(0, 1)`` or ``seed`` is not an int >= 0.
    """
    fraction = _check_fraction(fraction)
    _check_seed(seed)
    if not isinstance(n, int | np.integer) or isinstance(n, bool) or n < 2:
        raise ValueError(f"n: expected an int >= 2 (examples to split), got {n!r}.")
    n_valid = min(max(round(fraction * n), 1), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


def group_split(
    groups: Int[np.ndarray, " n"], *, fraction: float = 0.2, seed: int = 0
) -> tuple[Int[np.ndarray, " n_train"], Int[np.ndarray, " n_valid"]]:
    """Split ``range(len(groups))`` so that no group has members on both sides.

    The distinct groups are shuffled with ``seed``; whole groups then go to
    validation, in that order, until it holds at least ``fraction`` of the
    examples. The validation fraction is therefore approximate (it overshoots by
    less than one group); read it off the returned sizes.

    Args:
        groups: ``[n]`` integer group label of each example (e.g. a movie id).
        fraction: target share of examples in validation, in ``(0, 1)``.
        seed: seed of the group shuffle.

    Returns:
        ``(train_idx, valid_idx)``, sorted int64 index arrays.

    Raises:
        ValueError: on a bad ``fraction`` or ``seed``, fewer than two distinct
            groups, or negative labels (jaxseq marks unknown groups with -1).
    """
    fraction = _check_fraction(fraction)
    _check_seed(seed)
    groups = np.asarray(groups)
    if groups.ndim != 1 or not np.issubdtype(groups.dtype, np.integer):
        raise ValueError(
            f"groups: expected a 1-D integer array, got shape {groups.shape} and "
            f"dtype {groups.dtype}."
        )
    if (groups < 0).any():
        raise ValueError(
            f"groups: expected non-negative group ids, got {int((groups < 0).sum())} "
            "unknown (-1) entries. Every example needs its group for a grouped split."
        )
    uniq, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    if len(uniq) < 2:
        raise ValueError(
            f"groups: expected at least 2 distinct groups, got {len(uniq)}."
        )
    order = np.random.default_rng(seed).permutation(len(uniq))
    cum = np.cumsum(sizes[order])
    # Smallest number of shuffled groups reaching the target, keeping >= 1 group
    # on each side.
    k = int(np.searchsorted(cum, fraction * len(groups))) + 1
    k = min(max(k, 1), len(uniq) - 1)
    in_valid = np.zeros(len(uniq), dtype=bool)
    in_valid[order[:k]] = True
    mask = in_valid[inverse]
    return np.flatnonzero(~mask), np.flatnonzero(mask)
