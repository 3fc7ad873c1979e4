r"""A learnable initial state for any cell.

Every cell's ``init_carry`` gives zeros. :func:`learned_init` wraps a cell so that
the initial carry is a parameter: ``params = LearnedInitParams(inner, carry0)``
and ``init_carry(params)`` returns ``params.carry0``. The runners start every
sequence of a batch from it (broadcast over the batch) when no ``carry0`` is
passed, so ``jax.grad`` of a loss with respect to ``params`` reaches
``params.carry0`` like any other weight. A wrapped cell keeps the inner cell's
fused kernel (``learned_init(lstm(H))`` runs as fast as ``lstm(H)``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._base import Cell, Initializer, initialize


class LearnedInitParams(NamedTuple):
    """Parameters of a :func:`learned_init` cell.

    Attributes:
        inner: the wrapped cell's parameters (``LSTMParams``, ...).
        carry0: the learned initial carry of one example, the wrapped cell's carry
            type with ``[H]`` leaves (e.g. ``LSTMCarry(h, c)``).
    """

    inner: Any
    carry0: Any


def learned_init(cell: Cell, *, carry_init: Initializer | None = None) -> Cell:
    """Wrap ``cell`` so that its initial carry is learned.

    Args:
        cell: any :class:`~jaxseq.cells.Cell`.
        carry_init: optional initialiser ``(key, shape, dtype)`` of each carry
            leaf; ``None`` (default) starts from ``cell.init_carry`` (zeros), so a
            fresh wrapped cell computes what ``cell`` computes.

    Returns:
        A :class:`~jaxseq.cells.Cell` with parameters :class:`LearnedInitParams`
        (``init(key, F)`` gives ``inner = cell.init(key, F)``, the same weights as
        the unwrapped cell), ``init_carry(params) = params.carry0``, the same
        ``step`` on ``params.inner``, ``name`` ``"<name>+learned_init"`` and
        ``option("learned_init") == True``. The inner cell's fused kernel, if it
        has one, is kept (acting on ``params.inner``; the gradient of
        ``carry0`` comes back through the runner's initial carry).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import jaxseq
        >>> cell = jaxseq.cells.learned_init(jaxseq.cells.gru(4))
        >>> params = cell.init(jax.random.key(0), 3)
        >>> xs = jnp.ones((2, 5, 3))
        >>> loss = lambda p: (jaxseq.rnn(cell, p, xs)[1] ** 2).sum()
        >>> jax.grad(loss)(params).carry0.h.shape
        (4,)
    """
    if not isinstance(cell, Cell):
        raise TypeError(
            f"cell: expected a jaxseq.cells.Cell, got {type(cell).__name__}."
        )
    if carry_init is not None and not callable(carry_init):
        raise TypeError(
            "carry_init: expected None or an initialiser (key, shape, dtype), got "
            f"{type(carry_init).__name__}."
        )

    def init(key: jax.Array, input_size: int) -> LearnedInitParams:
        inner = cell.init(key, input_size)
        carry0 = cell.init_carry(inner)
        if carry_init is not None:
            leaves, treedef = jax.tree.flatten(carry0)
            keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
            leaves = [
                initialize(carry_init, k, a.shape, a.dtype)
                for k, a in zip(keys, leaves, strict=True)
            ]
            carry0 = jax.tree.unflatten(treedef, leaves)
        return LearnedInitParams(inner, carry0)

    def init_carry(params: LearnedInitParams) -> Any:
        if not isinstance(params, LearnedInitParams):
            raise TypeError(
                f"params: expected LearnedInitParams(inner, carry0) of a "
                f"learned_init({cell.name}) cell, got {type(params).__name__}."
            )
        return params.carry0

    def step(params: LearnedInitParams, carry: Any, x: jax.Array) -> tuple[Any, Any]:
        return cell.step(params.inner, carry, x)

    return Cell(
        init,
        init_carry,
        step,
        hidden_size=cell.hidden_size,
        name=f"{cell.name}+learned_init",
        options=(*cell.options, ("learned_init", True)),
        kernel=None if cell.kernel is None else _on_inner(cell.kernel),
        h_only_in_product=cell.h_only_in_product,
    )


def _on_inner(kernel: Any) -> Any:
    """The inner cell's :class:`~jaxseq._fused.SequenceKernel` on
    :class:`LearnedInitParams`: every function reads ``params.inner`` (the
    layouts' ``prepare`` only touch 2-D leaves, so ``carry0`` passes through
    them unchanged, its :class:`~jaxseq._fused.ProductSplit` included), and
    ``grads`` returns zeros for ``carry0``, whose gradient the fused runner
    returns as the initial carry's."""

    def lift(fn):
        return lambda lay, p, *args: fn(lay, p.inner, *args)

    def grads(lay, p, *args):
        dinner, dxs = kernel.grads(lay, p.inner, *args)
        return LearnedInitParams(dinner, jax.tree.map(jnp.zeros_like, p.carry0)), dxs

    return kernel._replace(
        equations=lift(kernel.equations),
        project=lift(kernel.project),
        forward=lift(kernel.forward),
        backward=lift(kernel.backward),
        grads=grads,
        split=None if kernel.split is None else _split_on_inner(kernel.split, lift),
    )


def _split_on_inner(split: Any, lift: Any) -> Any:
    """The inner kernel's ``split`` with each function reading ``params.inner``."""
    return split._replace(**{name: lift(fn) for name, fn in split._asdict().items()})
