r"""Recurrent (variational) dropout: one mask per sequence, the same at every step.

Gal & Ghahramani (2016), "A theoretically grounded application of dropout in
recurrent neural networks": the hidden state is dropped where it enters the
recurrent product, with a mask ``m`` (entries ``0`` or ``1 / (1 - rate)``) drawn
once per sequence and reused at every step,

.. math:: h_{t-1} W_h \;\longrightarrow\; (m \odot h_{t-1}) W_h .

Resampling the mask at every step (naive dropout on ``h``) injects noise that
compounds over time; a fixed mask is a dropout of rows of ``W_h`` and keeps the
Bayesian interpretation.

The wrapped cell keeps the mask in its carry (:class:`RecurrentDropoutCarry`), so
the runners, lengths and ``reverse`` work unchanged; a segment start (the
runners' ``resets``) restarts the wrapped cell's carry and keeps the mask. The
mask is sampled by a pure function from an explicit key (:func:`dropout_carry`);
``init_carry`` gives a mask of ones, i.e. inference (no dropout) gives the inner
cell's results (up to float rounding where XLA fuses the unit mask into the
product).

The masking is written once (:func:`_masked`, :func:`_unmasked_grad`) and used
by the step and by the fused kernel, which wraps the inner cell's own
(:class:`~jaxseq._fused.SequenceKernel`) through its
:class:`~jaxseq._fused.ProductSplit`, the step with the recurrent product's
input ``hp`` taken apart from the carry: the forward feeds it ``m * h_{t-1}``;
the backward turns the gradient ``u = dpre W_h^T`` of ``hp`` into ``m * u`` for
``h_{t-1}`` and ``h_{t-1} * u`` for the mask; the weight gradients take the
masked states (``dW_h = (m h)^T dpre``). Where ``h_{t-1}`` enters the step only
through the product (the cell's ``h_only_in_product``: Elman and the LSTMs,
peephole and LayerNorm included) the split is derived from the kernel itself
(:func:`~jaxseq._fused.product_split`), and masking the product's input is
masking ``carry.h``. The GRUs (both forms, LayerNorm included), whose update
also reads ``z * h_{t-1}``, state their ``split`` in their kernel and run fused
too. Cells with neither run ``step`` on rows of ``w_h`` scaled per example,
through the reference path.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._fused import ProductSplit, SequenceKernel, product_split
from .._layout import Layout
from ._base import Cell
from ._learned import LearnedInitParams


class RecurrentDropoutCarry(NamedTuple):
    """Carry of a :func:`recurrent_dropout` cell.

    Attributes:
        inner: the wrapped cell's carry (``LSTMCarry``, ``GRUCarry``, ...).
        mask: ``[H]`` (``[B, H]`` batched) dropout mask applied to ``h_{t-1}`` in
            the recurrent product: ``0`` or ``1 / (1 - rate)``; ones at inference.
            It never changes along the sequence.
    """

    inner: Any
    mask: jax.Array

    @property
    def h(self) -> jax.Array:
        """The output-bearing hidden state, ``inner.h`` (unmasked)."""
        return self.inner.h

    def restart_carry(self, fresh: RecurrentDropoutCarry) -> RecurrentDropoutCarry:
        """The carry a segment start (the runners' ``resets``) puts back: the
        inner carry of ``fresh`` (``init_carry``'s), this carry's mask (one mask
        per sequence, not per segment)."""
        return RecurrentDropoutCarry(fresh.inner, self.mask)


def _masked(carry: RecurrentDropoutCarry) -> jax.Array:
    """The input of the recurrent product: ``mask * h_{t-1}`` (one step ``[B,
    H]`` in either layout, or stacked over time)."""
    return carry.mask * carry.inner.h


def _masked_carry(carry: RecurrentDropoutCarry) -> Any:
    """The inner carry with ``h`` replaced by the product's input :func:`_masked`
    (for steps and gradients that read ``h_{t-1}`` only there)."""
    return carry.inner._replace(h=_masked(carry))


def _unmasked_grad(
    prev: RecurrentDropoutCarry, dprev: Any, dhp: jax.Array, dmask: jax.Array
) -> RecurrentDropoutCarry:
    """The gradient of a step's incoming carry ``prev`` from ``dprev`` (through
    its uses outside the product) and ``dhp`` (the product's input's,
    :func:`_masked`): ``h`` adds ``mask * dhp``, the mask ``h * dhp`` (summed
    over the steps in ``dmask``)."""
    dh = dprev.h + prev.mask * dhp
    return RecurrentDropoutCarry(dprev._replace(h=dh), dmask + prev.inner.h * dhp)


def recurrent_dropout(cell: Cell, rate: float) -> Cell:
    """Wrap ``cell`` with recurrent dropout at ``rate`` (one mask per sequence).

    Args:
        cell: a :class:`~jaxseq.cells.Cell` whose parameters have a recurrent
            kernel ``w_h`` ``[H, G]`` and whose carry has ``h`` (all built-in cells).
        rate: probability of dropping each hidden unit, in ``[0, 1)``.

    Returns:
        A :class:`~jaxseq.cells.Cell` with the same ``init`` and parameters, carry
        :class:`RecurrentDropoutCarry`, ``init_carry`` with a mask of ones (no
        dropout), and ``option("recurrent_dropout") == rate``. Draw a training
        mask with :func:`dropout_carry`. Where ``cell`` has a fused kernel that
        states a ``split`` (the GRUs) or reads ``h_{t-1}`` only in the product
        (``cell.h_only_in_product``: Elman, the LSTMs; a ``learned_init`` of any
        of them), so has the result: its kernel masked (module docstring), with
        the same ``impl`` choices and tuning; other cells run on the reference
        path.

    Raises:
        ValueError: if ``rate`` is not in ``[0, 1)``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> import jaxseq
        >>> from jaxseq.cells._dropout import recurrent_dropout, dropout_carry
        >>> cell = recurrent_dropout(jaxseq.cells.lstm(8), 0.25)
        >>> params = cell.init(jax.random.key(0), 3)
        >>> xs = jax.random.normal(jax.random.key(1), (4, 10, 3))
        >>> carry0 = dropout_carry(jax.random.key(2), cell, params, batch_size=4)
        >>> carry, ys = jaxseq.rnn(cell, params, xs, carry0=carry0)  # training
        >>> carry.h.shape, bool((carry.mask == carry0.mask).all())
        ((4, 8), True)
        >>> _, ys_eval = jaxseq.rnn(cell, params, xs)    # inference: no mask
    """
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"rate: expected a dropout rate in [0, 1), got {rate!r}.")
    rate = float(rate)
    # Where h_{t-1} enters the step only through h_{t-1} @ w_h (Cell's flag),
    # masking carry.h is exactly masking the product's input; other cells (the
    # GRU, whose update also reads z * h_{t-1}) get the mask on the rows of w_h.
    mask_h = cell.h_only_in_product

    def init_carry(params: Any) -> RecurrentDropoutCarry:
        inner = cell.init_carry(params)
        return RecurrentDropoutCarry(inner, jnp.ones_like(inner.h))

    def step(
        params: Any, carry: RecurrentDropoutCarry, x: jax.Array
    ) -> tuple[RecurrentDropoutCarry, jax.Array]:
        if mask_h:
            new_inner, y = cell.step(params, _masked_carry(carry), x)
        elif carry.mask.ndim > 1:  # a batched call: one example at a time
            return jax.vmap(step, in_axes=(None, 0, 0))(params, carry, x)
        else:
            # (m * h) @ W_h == h @ (m[:, None] * W_h): drop rows of W_h, so terms
            # that read h_{t-1} outside the product (GRU's z * h) see it unmasked.
            masked = _drop_rows(params, carry.mask, cell.name)
            new_inner, y = cell.step(masked, carry.inner, x)
        return RecurrentDropoutCarry(new_inner, carry.mask), y

    split = None if cell.kernel is None else product_split(cell.kernel, mask_h)
    return Cell(
        cell.init,
        init_carry,
        step,
        hidden_size=cell.hidden_size,
        name=cell.name,
        options=(*cell.options, ("recurrent_dropout", rate)),
        kernel=None if split is None else _dropout_kernel(cell.kernel, split),
    )


def _dropout_kernel(kernel: SequenceKernel, split: ProductSplit) -> SequenceKernel:
    """The inner cell's fused kernel on :class:`RecurrentDropoutCarry`, through
    its :class:`~jaxseq._fused.ProductSplit`: the product reads the masked state
    (:func:`_masked`), the backward maps the product input's gradient back
    (:func:`_unmasked_grad`), and the weight gradients see the masked states.
    The mask rides in the carry, so lengths, ``reverse``, restarts and ``remat``
    act on it as on any carry leaf (it never changes)."""

    def equations(lay: Layout, p: Any, carry: RecurrentDropoutCarry, x: jax.Array):
        new, y = split.equations(lay, p, carry.inner, _masked(carry), x)
        return RecurrentDropoutCarry(new, carry.mask), y

    def forward(lay: Layout, p: Any, carry: RecurrentDropoutCarry, ax: jax.Array):
        new, y, res = split.forward(lay, p, carry.inner, _masked(carry), ax)
        return RecurrentDropoutCarry(new, carry.mask), y, res

    def backward(lay: Layout, p: Any, res: Any, prev: RecurrentDropoutCarry, d):
        hp = _masked(prev)
        dprev, dhp, dpre = split.backward(lay, p, res, prev.inner, hp, d.inner)
        return _unmasked_grad(prev, dprev, dhp, d.mask), dpre

    def grads(lay: Layout, p: Any, xs, prevs: RecurrentDropoutCarry, res, dpre):
        return kernel.grads(lay, p, xs, _masked_carry(prevs), res, dpre)

    def output_grad(d: RecurrentDropoutCarry, dy: jax.Array) -> RecurrentDropoutCarry:
        return d._replace(inner=kernel.output_grad(d.inner, dy))

    return kernel._replace(
        equations=equations,
        forward=forward,
        backward=backward,
        grads=grads,
        output_grad=output_grad,
        split=None,
    )


def _drop_rows(params: Any, mask: jax.Array, name: str) -> Any:
    """``params`` with the rows of its recurrent kernel ``w_h`` ``[H, G]`` scaled
    by ``mask`` ``[H]``; a :class:`~jaxseq.cells.LearnedInitParams` passes it on to
    its inner parameters (its ``carry0`` is not a weight of the product)."""
    if isinstance(params, LearnedInitParams):
        return params._replace(inner=_drop_rows(params.inner, mask, name))
    if not hasattr(params, "w_h"):
        raise TypeError(
            f"params: expected a recurrent kernel field 'w_h' for recurrent "
            f"dropout on a {name} cell, got {type(params).__name__}."
        )
    return params._replace(w_h=mask[:, None] * params.w_h)


def recurrent_mask(
    key: jax.Array, rate: float, shape: tuple[int, ...], dtype: Any = jnp.float32
) -> jax.Array:
    """An inverted-dropout mask: ``1 / (1 - rate)`` with probability ``1 - rate``,
    else ``0`` (so ``E[mask] = 1``)."""
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"rate: expected a dropout rate in [0, 1), got {rate!r}.")
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    scale = jnp.asarray(1.0 / (1.0 - rate), dtype)
    return jnp.where(keep, scale, jnp.zeros((), dtype))


def dropout_carry(
    key: jax.Array,
    cell: Cell,
    params: Any,
    *,
    batch_size: int | None = None,
    inner: Any | None = None,
) -> RecurrentDropoutCarry:
    """An initial carry for a :func:`recurrent_dropout` cell with a fresh mask.

    Pure: the mask is a function of ``key`` alone. Each of the ``batch_size``
    sequences gets its own mask, which the cell then applies at every step.

    Args:
        key: PRNG key for the mask.
        cell: a cell returned by :func:`recurrent_dropout`.
        params: its parameters.
        batch_size: ``B`` for a batch (leaves ``[B, ...]``); ``None`` for one
            sequence.
        inner: optional initial inner carry (e.g. the previous chunk's state);
            zeros by default.

    Returns:
        A :class:`RecurrentDropoutCarry` whose mask has the shape of ``inner.h``.
    """
    rate = cell.option("recurrent_dropout")
    if rate is None:
        raise ValueError(
            f"cell: expected a cell made by recurrent_dropout(...), got a plain "
            f"{cell.name} cell (no 'recurrent_dropout' option)."
        )
    if inner is None:
        inner = cell.init_carry(params).inner
        if batch_size is not None:
            inner = jax.tree.map(
                lambda a: jnp.broadcast_to(a, (batch_size, *a.shape)), inner
            )
    mask = recurrent_mask(key, rate, inner.h.shape, inner.h.dtype)
    return RecurrentDropoutCarry(inner, mask)
