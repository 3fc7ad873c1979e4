"""Running a cell over time with ``jax.lax.scan``: the only code that calls it.

Semantics shared by every runner (``unroll``, ``rnn``, ``bidirectional``):

- Sequences are right-padded. With ``length`` (per sequence), the steps
  ``t >= length`` leave the carry unchanged (a per-step ``where``, as haiku's
  ``ResetCore``) and output zeros. The final carry is therefore the carry after
  step ``length - 1``; with ``length == 0`` it is the initial carry.
- ``reverse=True`` processes the valid prefix right to left
  (``xs[length-1], ..., xs[0]``): Keras ``go_backwards`` and PyTorch packed-sequence
  semantics. It is a reverse ``lax.scan`` under the same mask: the padded tail is
  visited first and leaves the carry untouched, so no gather or flip is needed.
  Outputs are always aligned with the input time index; padding stays at the end.
- With ``resets`` (``[B, T]`` bool), ``resets[b, t]`` starts a new segment of
  sequence ``b`` at step ``t`` (a document start in a language model's stream,
  haiku's ``ResetCore``): each segment runs from the cell's initial carry
  ``cell.init_carry(params)`` as a sequence of its own, so the carry is put back
  to it *before* step ``t`` (forward) or before the segment's last step, where a
  reverse run enters it. The first segment starts from ``carry0``. Flags at padded
  steps are ignored; ``resets[:, 0]`` restarts from ``init_carry`` instead of
  ``carry0`` (forward only). What is fixed for a whole sequence stays: a
  recurrent-dropout carry restarts its cell's carry and keeps ``carry0``'s mask
  (its ``restart_carry``). Every runner and fused kernel applies it in the loop
  (:mod:`jaxseq._loop`), forward and backward, so no path falls back because of it.
- The runners contain no ``jax.jit``: jit once at the outermost level.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import (
    check_carry,
    check_floating,
    check_lengths,
    check_params,
    check_rank,
)
from ._fused import fused_rnn
from ._loop import (
    Resets,
    from_blocks,
    masked_step,
    n_blocks,
    padded_lengths,
    restart,
    restart_points,
    to_blocks,
)
from ._plan import EXPLICIT
from ._plan import plan as _plan
from .cells import Cell

Merge = Literal["concat", "sum"]
Impl = Literal["auto", "fused", "fused_fm", "hoist", "fm_autodiff", "autodiff", "scan"]
_IMPLS = ("auto", "fused", "fused_fm", "hoist", "fm_autodiff", "autodiff", "scan")
_FUSED = tuple(EXPLICIT)


def _batched_carry0(cell: Cell, params: Any, batch: int) -> Any:
    carry = cell.init_carry(params)
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (batch, *a.shape)), carry)


def _restart_carry(carry0: Any, fresh: Any) -> Any:
    """What a reset puts back: ``fresh``, or, for a carry type with a
    ``restart_carry(fresh)`` method, what it says (a recurrent-dropout carry
    keeps its per-sequence mask and restarts only the cell's own carry)."""
    restart_to = getattr(carry0, "restart_carry", None)
    return fresh if restart_to is None else restart_to(fresh)


def _check_resets(resets: Any, batch: int, time: int) -> jax.Array:
    """``resets`` ``[B, T]`` bool (an integer dtype counts nonzero as true)."""
    if np.ndim(resets) != 2 or tuple(np.shape(resets)) != (batch, time):
        raise ValueError(
            f"resets: expected shape ({batch}, {time}) ([B, T], one flag per "
            f"step of xs), got shape {tuple(np.shape(resets))}."
        )
    dtype = jnp.result_type(resets)
    if not (dtype == jnp.bool_ or jnp.issubdtype(dtype, jnp.integer)):
        raise ValueError(f"resets: expected a bool (or integer) dtype, got {dtype}.")
    resets = jnp.asarray(resets)
    return resets if dtype == jnp.bool_ else resets != jnp.zeros((), dtype)


def _check_unroll(unroll: int | bool | None) -> None:
    if unroll is None or isinstance(unroll, bool):
        return
    if not isinstance(unroll, int) or unroll < 1:
        raise ValueError(
            f"unroll: expected None, a positive int or a bool, got {unroll!r}."
        )


def rnn(
    cell: Cell,
    params: Any,
    xs: jax.Array,
    *,
    lengths: jax.Array | None = None,
    carry0: Any | None = None,
    reverse: bool = False,
    unroll: int | bool | None = None,
    impl: Impl = "auto",
    remat: int | None = None,
    resets: jax.Array | None = None,
) -> tuple[Any, jax.Array]:
    """Run ``cell`` over a batch of sequences.

    Args:
        cell: a :class:`~jaxseq.cells.Cell`.
        params: the cell's parameters, shared by every example.
        xs: ``[B, T, F]`` inputs, batch-major.
        lengths: optional ``[B]`` integer valid lengths in ``[0, T]``
            (right padding). ``None`` means every sequence has length ``T``.
        carry0: optional initial carry, each leaf ``[B, ...]``; zeros by default.
        reverse: run each sequence backwards within its own length.
        unroll: steps per loop iteration, forwarded to ``lax.scan``. ``None``
            (default): 1, except where ``impl="auto"`` measured a better value
            (batch 1 on CPU: the LSTM gradient unrolls 2, the GRU's 4; see
            the kernel's ``Tuning``). Unrolling never changes the result.
        impl: ``"auto"`` (default) uses the cell's fused kernel when it has one
            (hand-written backward, see :mod:`jaxseq._fused`), else ``"scan"``:
            ``lax.scan`` over ``cell.step`` with autodiff, the reference path.
            The fused variants: ``"fused"`` (batch-major steps, input projected
            inside the loop), ``"fused_fm"`` (feature-major steps: gate blocks
            contiguous along the batch), ``"hoist"`` (batch-major, input projected
            for all steps before the loop), ``"fm_autodiff"`` (feature-major
            forward, gradient by autodiff of the reference loop). ``"auto"`` picks
            among them by the kernel's measured ``Tuning`` and the sizes
            (benchmarks/results/layouts.md), on CPU; on another backend it runs
            the plain plan (batch-major, hand-written backward); see
            :mod:`jaxseq._plan`.
            ``"autodiff"``: the forward-only call as ``"auto"`` runs it, every
            derivative by autodiff of the reference loop (``"scan"`` for a cell
            without a fused kernel).

            Forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``), with or
            without ``jax.jit``, needs ``"autodiff"``, ``"fm_autodiff"`` or
            ``"scan"``: the hand-written backward of the other fused paths is a
            ``jax.custom_vjp``, reverse mode only, and JAX raises ``TypeError:
            can't apply forward-mode autodiff (jvp) to a custom_vjp function`` (under
            ``jit``, when the jvp is compiled). ``"auto"`` may pick that backward.
        remat: gradient checkpointing: keep the state only every ``remat`` steps
            and recompute each block in the backward pass (memory ``O(T/remat +
            remat)`` steps instead of ``O(T)``, one extra forward pass). ``None``
            (default) stores every step. ``sqrt(T)`` is a good choice for long T.
        resets: optional ``[B, T]`` bool (or integer, nonzero is true) segment
            starts: where ``resets[b, t]``, sequence ``b``'s carry is put back to
            ``cell.init_carry(params)`` before step ``t`` (haiku's ``ResetCore``),
            so each segment runs as a sequence of its own; with ``reverse``, each
            segment is run backwards from its own last step. Flags at padded steps
            are ignored (a recurrent-dropout cell keeps ``carry0``'s mask). Every
            ``impl`` supports it (the fused kernels included), and the gradient
            of a learned initial state reaches it.

    Returns:
        ``(carry, ys)``: the final carry (leaves ``[B, ...]``, the carry after each
        sequence's last valid step, of its last segment in the run's order) and
        the outputs ``ys`` ``[B, T, H]``, zero at padded steps, aligned with
        ``xs``'s time index.

    Raises:
        ValueError, TypeError: at trace time, for a wrong rank, feature size, dtype,
            ``lengths`` shape or values (when concrete), ``resets`` shape or
            dtype, or carry shape, and for
            ``params`` that ``cell.init`` would not make (another cell type or
            hidden size).
    """
    check_rank("xs", xs, 3, "[B, T, F]: batch, time, features")
    check_floating("xs", xs)
    check_params("params", cell, params, xs.shape[2])
    _check_unroll(unroll)
    batch, time = xs.shape[0], xs.shape[1]
    if lengths is not None:
        lengths = check_lengths(lengths, batch, time)
    fresh = None
    if resets is not None:
        resets = _check_resets(resets, batch, time)
        fresh = _batched_carry0(cell, params, batch)
    if carry0 is None:
        carry0 = _batched_carry0(cell, params, batch) if fresh is None else fresh
    else:
        expected = jax.eval_shape(lambda p: _batched_carry0(cell, p, batch), params)
        check_carry("carry0", carry0, expected)
        if fresh is not None:
            fresh = _restart_carry(carry0, fresh)

    if impl not in _IMPLS:
        raise ValueError(f"impl: expected one of {_IMPLS}, got {impl!r}.")
    if remat is not None and (
        isinstance(remat, bool) or not isinstance(remat, int) or remat < 1
    ):
        raise ValueError(f"remat: expected None or a positive int, got {remat!r}.")
    xs_tm = jnp.swapaxes(xs, 0, 1)  # [T, B, F]: scan runs over the leading axis
    if resets is not None:
        resets = Resets(restart_points(resets, lengths, reverse), fresh)
    if impl != "scan" and cell.kernel is not None:
        # the step's own trace-time checks (feature size, carry), at no run cost
        x_t = jax.ShapeDtypeStruct(xs_tm.shape[1:], xs_tm.dtype)
        jax.eval_shape(cell.step, params, carry0, x_t)
        plan = _plan(
            impl, batch, cell.hidden_size, cell.kernel.tuning, unroll,
            masked_reverse=reverse and lengths is not None,
        )  # fmt: skip
        x_dtype = jax.tree.leaves(params)[0].dtype
        reference = None
        # "auto" measured its autodiff sizes without remat; with remat it keeps the
        # kernel's blocked backward. The explicit autodiff impls always use autodiff.
        if plan.autodiff and (remat is None or impl != "auto"):

            def reference(p, c, x, n, r):
                return _scan_rnn(cell, p, c, x, n, reverse=reverse,
                                 unroll=plan.unroll, remat=remat, resets=r)  # fmt: skip

        carry, ys = fused_rnn(
            cell.kernel, params, carry0, xs_tm.astype(x_dtype), lengths,
            reverse=reverse, plan=plan, remat=remat, reference=reference,
            resets=resets,
        )  # fmt: skip
        return carry, jnp.swapaxes(ys, 0, 1)
    if impl in _FUSED:
        raise ValueError(
            f"impl: {impl!r} needs a cell with a fused kernel; {cell.name!r} has none "
            "(use 'auto' or 'scan')."
        )
    unroll = 1 if unroll is None else unroll
    carry, ys = _scan_rnn(
        cell,
        params,
        carry0,
        xs_tm,
        lengths,
        reverse=reverse,
        unroll=unroll,
        remat=remat,
        resets=resets,
    )
    return carry, jnp.swapaxes(ys, 0, 1)


def _scan_rnn(cell, params, carry0, xs_tm, lengths, *, reverse, unroll, remat,
              resets=None):  # fmt: skip
    """The reference path: ``lax.scan`` over the vmapped ``cell.step``; autodiff
    (and ``jax.checkpoint`` over blocks of ``remat`` steps) for the gradient.
    ``resets``: a :class:`~jaxseq._loop.Resets` or ``None``."""
    step = jax.vmap(cell.step, in_axes=(None, 0, 0))
    time, batch = xs_tm.shape[0], xs_tm.shape[1]
    lengths = padded_lengths(lengths, time, batch, remat)
    at = None if resets is None else resets.at

    def body(carry, tx):
        t, x, r = tx
        c_in = carry
        if r is not None:
            c_in = restart(lambda a: _expand(r, a), carry, resets.carry)
        new_carry, y = step(params, c_in, x)
        if lengths is None:
            return new_carry, y
        valid = t < lengths  # [B]
        return masked_step(lambda a: _expand(valid, a), new_carry, carry, y)

    if remat is None:
        ts = jnp.arange(time, dtype=jnp.int32)
        return jax.lax.scan(
            body, carry0, (ts, xs_tm, at), reverse=reverse, unroll=unroll
        )
    n = n_blocks(time, remat)
    ts = jnp.arange(n * remat, dtype=jnp.int32).reshape(n, remat)

    @jax.checkpoint
    def block(carry, inp):
        return jax.lax.scan(body, carry, inp, reverse=reverse, unroll=unroll)

    at_b = None if at is None else to_blocks(at, remat)
    carry, ys = jax.lax.scan(
        block, carry0, (ts, to_blocks(xs_tm, remat), at_b), reverse=reverse
    )
    return carry, from_blocks(ys, time)


def _expand(mask: jax.Array, like: jax.Array) -> jax.Array:
    return mask.reshape(mask.shape + (1,) * (like.ndim - mask.ndim))


def unroll(
    cell: Cell,
    params: Any,
    carry0: Any,
    xs: jax.Array,
    *,
    length: jax.Array | int | None = None,
    reverse: bool = False,
    unroll: int | bool = 1,
    impl: Impl = "auto",
    resets: jax.Array | None = None,
) -> tuple[Any, jax.Array]:
    """Run ``cell`` over one sequence; the argument order mirrors ``lax.scan``.

    Args:
        cell: a :class:`~jaxseq.cells.Cell`.
        params: its parameters.
        carry0: the initial carry for one example (``cell.init_carry(params)``).
        xs: ``[T, F]`` inputs.
        length: optional scalar valid length in ``[0, T]``.
        reverse: run backwards over the valid prefix.
        unroll: forwarded to ``lax.scan``.
        impl: as for :func:`rnn` (``"autodiff"`` for forward mode).
        resets: optional ``[T]`` bool (or integer, nonzero is true) segment
            starts, as :func:`rnn`'s ``resets`` for one sequence: where
            ``resets[t]``, the carry is put back to ``cell.init_carry(params)``
            before step ``t`` (forward), so each segment runs on its own.

    Returns:
        ``(carry, ys)`` with ``ys`` of shape ``[T, H]`` (see :func:`rnn`).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import jaxseq
        >>> cell = jaxseq.cells.gru(4)
        >>> params = cell.init(jax.random.key(0), 2)
        >>> xs = jnp.arange(1.0, 11.0).reshape(5, 2) / 10
        >>> carry, ys = jaxseq.unroll(cell, params, cell.init_carry(params), xs,
        ...                           length=3)
        >>> bool((ys[3:] == 0).all()), bool((carry.h == ys[2]).all())
        (True, True)

        A reset at step 3 makes the last two steps a sequence of their own:

        >>> _, ys = jaxseq.unroll(cell, params, cell.init_carry(params), xs,
        ...                       resets=jnp.arange(5) == 3)
        >>> _, tail = jaxseq.unroll(cell, params, cell.init_carry(params), xs[3:])
        >>> bool(jnp.allclose(ys[3:], tail, atol=1e-6))
        True
    """
    check_rank("xs", xs, 2, "[T, F]: time, features (use jaxseq.rnn for a batch)")
    lengths = None
    if length is not None:
        if np.ndim(length) != 0:
            raise ValueError(
                f"length: expected a scalar, got shape {tuple(np.shape(length))}."
            )
        lengths = jnp.reshape(jnp.asarray(length), (1,))
    if resets is not None and (
        np.ndim(resets) != 1 or np.shape(resets)[0] != xs.shape[0]
    ):
        raise ValueError(
            f"resets: expected shape ({xs.shape[0]},) ([T], one flag per step of "
            f"xs), got shape {tuple(np.shape(resets))}."
        )
    carry0_b = jax.tree.map(lambda a: jnp.expand_dims(a, 0), carry0)
    carry, ys = rnn(
        cell,
        params,
        xs[None],
        lengths=lengths,
        carry0=carry0_b,
        reverse=reverse,
        unroll=unroll,
        impl=impl,
        resets=None if resets is None else jnp.asarray(resets)[None],
    )
    return jax.tree.map(lambda a: a[0], carry), ys[0]


def merge_outputs(y_fw: jax.Array, y_bw: jax.Array, merge: Merge) -> jax.Array:
    """Merge both directions' outputs: ``"concat"`` (``[.., 2H]``) or ``"sum"``."""
    if merge == "concat":
        return jnp.concatenate([y_fw, y_bw], axis=-1)
    if merge == "sum":
        return y_fw + y_bw
    raise ValueError(f"merge: expected 'concat' or 'sum', got {merge!r}.")


def bidirectional(
    cell_fw: Cell,
    cell_bw: Cell,
    params_fw: Any,
    params_bw: Any,
    xs: jax.Array,
    *,
    lengths: jax.Array | None = None,
    carry0: tuple[Any, Any] | None = None,
    merge: Merge = "concat",
    unroll: int | bool | None = None,
    impl: Impl = "auto",
    remat: int | None = None,
    resets: jax.Array | None = None,
) -> tuple[tuple[Any, Any], jax.Array]:
    """A forward and a length-aware backward run over ``xs``, outputs merged.

    Parameters are passed separately and explicitly so that they cannot be shared
    by accident.

    Args:
        cell_fw, cell_bw: the two cells (often the same factory's result).
        params_fw, params_bw: their parameters.
        xs: ``[B, T, F]``.
        lengths: optional ``[B]`` valid lengths.
        carry0: optional ``(carry_fw, carry_bw)``.
        merge: ``"concat"`` (outputs ``[B, T, H_fw + H_bw]``) or ``"sum"``.
        unroll, impl, remat: as for :func:`rnn`.
        resets: optional ``[B, T]`` segment starts, as for :func:`rnn`: both
            directions run each segment on its own (the backward one from the
            segment's last step), so no state crosses a segment boundary.

    Returns:
        ``((carry_fw, carry_bw), ys)``. ``carry_bw`` is the state after the backward
        run reached ``xs[:, 0]``, as PyTorch's ``h_n`` for the reverse direction.
    """
    if merge not in ("concat", "sum"):
        raise ValueError(f"merge: expected 'concat' or 'sum', got {merge!r}.")
    check_rank("xs", xs, 3, "[B, T, F]: batch, time, features")
    check_params("params_fw", cell_fw, params_fw, xs.shape[2])
    check_params("params_bw", cell_bw, params_bw, xs.shape[2])
    c_fw, c_bw = (None, None) if carry0 is None else carry0
    opts = dict(lengths=lengths, unroll=unroll, impl=impl, remat=remat, resets=resets)
    carry_fw, y_fw = rnn(cell_fw, params_fw, xs, carry0=c_fw, **opts)
    carry_bw, y_bw = rnn(cell_bw, params_bw, xs, carry0=c_bw, reverse=True, **opts)
    return (carry_fw, carry_bw), merge_outputs(y_fw, y_bw, merge)


def lengths_from_mask(mask: Any) -> np.ndarray:
    """Lengths ``[B]`` from a right-padded boolean mask ``[B, T]`` (host-side).

    Raises:
        ValueError: if a row is not of the form ``True...True False...False``.
    """
    m = np.asarray(mask).astype(bool)
    check_rank("mask", m, 2, "[B, T]")
    lengths = m.sum(axis=1)
    expected = np.arange(m.shape[1])[None, :] < lengths[:, None]
    bad = np.flatnonzero((expected != m).any(axis=1))
    if bad.size:
        raise ValueError(
            f"mask: expected right padding (valid steps first) in every row, got a "
            f"gap in row {int(bad[0])} ({bad.size} such rows)."
        )
    return lengths.astype(np.int32)
