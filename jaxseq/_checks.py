"""Input validation that runs at trace time (shapes, ranks and dtypes are static).

Every error names the argument, the expected value and the received value, so a
user can fix the call without reading jaxseq's source.
"""

from __future__ import annotations

import weakref
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def check_rank(name: str, x: Any, rank: int | tuple[int, ...], layout: str) -> None:
    """Raise ``ValueError`` unless ``x.ndim`` is ``rank`` (or one of ``rank``)."""
    ranks = (rank,) if isinstance(rank, int) else rank
    ndim = np.ndim(x)
    if ndim not in ranks:
        raise ValueError(
            f"{name}: expected rank {' or '.join(map(str, ranks))} ({layout}), "
            f"got rank {ndim} with shape {tuple(np.shape(x))}."
        )


def check_floating(name: str, x: Any) -> None:
    """Raise ``TypeError`` unless ``x`` has a floating dtype."""
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(
            f"{name}: expected a floating dtype (float32, bfloat16, float16, float64), "
            f"got {dtype}. Cast with xs.astype(jnp.float32); token ids go through an "
            "embedding first."
        )


def check_feature_size(name: str, got: int, expected: int, where: str) -> None:
    """Raise ``ValueError`` when a trailing feature axis has the wrong size."""
    if got != expected:
        raise ValueError(
            f"{name}: expected feature size {expected} ({where}), got {got}."
        )


def check_lengths(lengths: Any, batch: int, time: int) -> jax.Array:
    """Validate per-sequence ``lengths`` for a ``[B, T, F]`` batch; return int32.

    Shape and dtype are checked always (trace time). Values are checked when they
    are concrete (not traced): inside ``jax.jit`` a length outside ``[0, T]``
    behaves as if clipped to that range, because the runner masks with ``t < length``.
    """
    if np.ndim(lengths) != 1 or np.shape(lengths)[0] != batch:
        raise ValueError(
            f"lengths: expected shape ({batch},) (one length per sequence in the "
            f"batch), got shape {tuple(np.shape(lengths))}."
        )
    dtype = jnp.result_type(lengths)
    if not jnp.issubdtype(dtype, jnp.integer):
        raise TypeError(f"lengths: expected an integer dtype, got {dtype}.")
    if not isinstance(lengths, jax.core.Tracer):
        values = np.asarray(lengths)
        bad = (values < 0) | (values > time)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"lengths: expected every value in [0, {time}] (T = {time}), got "
                f"lengths[{i}] = {int(values[i])} ({int(bad.sum())} out of range)."
            )
    return jnp.asarray(lengths, dtype=jnp.int32)


def check_carry(name: str, carry: Any, expected: Any) -> None:
    """Raise ``ValueError`` unless ``carry`` matches ``expected`` leaf for leaf.

    ``expected`` is a pytree of ``jax.ShapeDtypeStruct`` (e.g. from
    ``jax.eval_shape``); only structure and shapes are compared.
    """
    got_def = jax.tree.structure(carry)
    exp_def = jax.tree.structure(expected)
    if got_def != exp_def:
        raise ValueError(
            f"{name}: expected a carry with structure {_describe(expected)}, got "
            f"{_describe(carry)}."
        )
    got = jax.tree_util.tree_flatten_with_path(carry)[0]
    for (path, g), e in zip(got, jax.tree.leaves(expected), strict=True):
        if tuple(np.shape(g)) != tuple(e.shape):
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)}: expected shape "
                f"{tuple(e.shape)}, got shape {tuple(np.shape(g))}."
            )


def _describe(tree: Any) -> str:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    fields = ", ".join(
        f"{jax.tree_util.keystr(p) or '<leaf>'}: {tuple(np.shape(x))}"
        for p, x in leaves
    )
    return f"{type(tree).__name__}({fields})"


def check_params(
    name: str,
    cell: Any,
    params: Any,
    input_size: int,
    *,
    input_axes: bool = False,
) -> None:
    """Raise ``ValueError`` unless ``params`` could come from
    ``cell.init(key, input_size)``: the same pytree structure (parameter type and
    fields) and leaf shapes. Dtypes are not compared (imported or cast
    parameters are fine).

    Works for any :class:`~jaxseq.cells.Cell`: the expected shapes come from an
    abstract evaluation of ``cell.init`` (``jax.eval_shape``, nothing computed,
    cached per cell and input size). The axes that grow with the input size
    (found by evaluating ``init`` at ``input_size + 1`` too) are compared only
    with ``input_axes=True`` (a later layer of a stack, whose input size the
    layer below fixes); the runner leaves them to the cell's step, which names
    ``xs`` and may legitimately read more features than ``init`` was given (a
    wrapper that appends inputs, as the gradient-flow diagnostics do).
    """
    shapes = _init_shapes(cell, input_size)
    if shapes is None:  # an init that cannot be evaluated abstractly: the step checks
        return
    expected, grown = shapes
    what = f"{cell.name} cell of hidden size {cell.hidden_size}"
    if jax.tree.structure(params) != jax.tree.structure(expected):
        raise ValueError(
            f"{name}: expected the parameters of the {what} (cell.init(key, "
            f"{input_size})): {_describe(expected)}, got {_describe(params)}. "
            "Parameters of another cell type or of another layer?"
        )
    got = jax.tree_util.tree_flatten_with_path(params)[0]
    for (path, g), e, e1 in zip(
        got, jax.tree.leaves(expected), jax.tree.leaves(grown), strict=True
    ):
        g_shape, e_shape = tuple(np.shape(g)), tuple(e.shape)
        if len(g_shape) == len(e_shape) and not input_axes:
            # axes that grow with the input size: as received (the step checks)
            e_shape = tuple(
                gd if ed != e1d else ed
                for gd, ed, e1d in zip(g_shape, e_shape, e1.shape, strict=True)
            )
        if g_shape != e_shape:
            raise ValueError(
                f"{name}{jax.tree_util.keystr(path)}: expected shape {e_shape} (the "
                f"{what} at input size {input_size}), got shape {g_shape}."
            )


#: ``cell.init`` -> {input_size: shapes}. Keyed weakly on the init function (the
#: shapes depend on nothing else), so the cache never keeps a user's cell alive.
_INIT_SHAPES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _init_shapes(cell: Any, input_size: int) -> tuple[Any, Any] | None:
    """``cell.init``'s abstract output at ``input_size`` and ``input_size + 1``."""
    try:
        per_size = _INIT_SHAPES.setdefault(cell.init, {})
    except TypeError:  # an init that cannot be weakly referenced or hashed
        return _init_shapes_uncached(cell, input_size)
    if input_size not in per_size:
        per_size[input_size] = _init_shapes_uncached(cell, input_size)
    return per_size[input_size]


def _init_shapes_uncached(cell: Any, input_size: int) -> tuple[Any, Any] | None:
    try:
        return tuple(  # type: ignore[return-value]
            jax.eval_shape(lambda n=n: cell.init(jax.random.key(0), n))
            for n in (input_size, input_size + 1)
        )
    except Exception:  # noqa: BLE001 - a user init that is not traceable
        return None
