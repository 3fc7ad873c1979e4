"""Per-step carry resets at document boundaries (Haiku's ``ResetCore`` semantics).

A stateful language model reads ``B`` streams in which documents follow one
another. Where a document starts inside a chunk, that stream's carry must be put
back to the initial state *before* the step whose input starts the document, so
that no document's predictions depend on the one before it.

The runners do it themselves: ``jaxseq.rnn(cell, params, xs, resets=resets)``
(``[B, T]`` bool) restarts the carry inside the loop, on every path including
the fused kernels, and is what the language models use.

:func:`resettable` is the same semantics as a cell wrapper, for code that can
only pass inputs: its input carries the reset flag as one extra trailing
feature, ``x = [features..., reset]``. A wrapped cell has no fused kernel, so it
runs on the reference ``lax.scan`` path (the tests compare the runners' resets
with it); a reverse run applies its flags in the loop's order (before step
``t``), not per segment as ``rnn(..., reverse=True, resets=...)`` does.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .._loop import restart
from ..cells import Cell


def reset_carry(carry: Any, fresh: Any, reset: jax.Array) -> Any:
    """``fresh`` where ``reset`` is true, else ``carry``, leaf by leaf.

    ``reset`` has the carry's leading (batch) shape; ``fresh`` is broadcast.
    """

    def keep(c: jax.Array) -> jax.Array:
        return reset.reshape(reset.shape + (1,) * (c.ndim - reset.ndim))

    fresh = jax.tree.map(
        lambda c, z: jnp.broadcast_to(z, c.shape).astype(c.dtype), carry, fresh
    )
    return restart(keep, carry, fresh)


def resettable(cell: Cell) -> Cell:
    """``cell`` with a reset flag as the input's last feature.

    ``step(params, carry, x)`` with ``x`` ``[F + 1]``: when ``x[-1] > 0.5`` the
    carry is replaced by ``cell.init_carry(params)`` (zeros) and then the step
    runs on ``x[:-1]``. Its input size counts the flag: ``init(key, F + 1)`` is
    ``cell.init(key, F)``, so the parameters are the cell's own. The name and
    options are the cell's (plus ``("reset", True)``), so wrappers that read them
    (:func:`jaxseq.cells.recurrent_dropout`) treat it as the cell itself.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import jaxseq
        >>> from jaxseq.lm import resettable
        >>> cell = jaxseq.cells.gru(3)
        >>> p = cell.init(jax.random.key(0), 2)
        >>> xs = jax.random.normal(jax.random.key(1), (1, 5, 2))
        >>> flags = jnp.array([[0, 0, 1, 0, 0]], jnp.float32)[..., None]
        >>> _, ys = jaxseq.rnn(resettable(cell), p, jnp.concatenate([xs, flags], -1))
        >>> _, tail = jaxseq.rnn(cell, p, xs[:, 2:])   # the third step starts afresh
        >>> bool(jnp.allclose(ys[:, 2:], tail, atol=1e-6))
        True
    """

    def init(key: jax.Array, input_size: int) -> Any:
        if (
            isinstance(input_size, bool)
            or not isinstance(input_size, int)
            or (input_size < 2)
        ):
            raise ValueError(
                f"input_size: expected an int >= 2 (features plus the reset flag), "
                f"got {input_size!r}."
            )
        return cell.init(key, input_size - 1)

    def step(params: Any, carry: Any, x: jax.Array) -> tuple[Any, jax.Array]:
        reset = x[..., -1] > 0.5
        carry = reset_carry(carry, cell.init_carry(params), reset)
        return cell.step(params, carry, x[..., :-1])

    return Cell(
        init,
        cell.init_carry,
        step,
        hidden_size=cell.hidden_size,
        name=cell.name,
        options=(*cell.options, ("reset", True)),
        h_only_in_product=cell.h_only_in_product,
    )


def with_resets(xs: jax.Array, resets: jax.Array) -> jax.Array:
    """``xs`` ``[B, T, F]`` with the ``[B, T]`` reset flags as feature ``F``."""
    if jnp.shape(resets) != xs.shape[:2]:
        raise ValueError(
            f"resets: expected shape {xs.shape[:2]} ([B, T], as the inputs), got "
            f"{jnp.shape(resets)}."
        )
    return jnp.concatenate([xs, jnp.asarray(resets, xs.dtype)[..., None]], axis=-1)
