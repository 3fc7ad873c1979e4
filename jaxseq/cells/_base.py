"""The cell interface: a bundle of pure functions, in the style of optax's
``GradientTransformation`` and blackjax's ``SamplingAlgorithm``.

A cell is written for **one example**: ``x`` has shape ``(F,)`` and every carry leaf
has shape ``(H,)``. Batching is ``jax.vmap``'s job (the runners do it), and because
the steps use ``@`` on the trailing axis they also accept leading batch axes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._checks import check_feature_size, check_floating
from .._layout import BATCH_MAJOR, Layout, add_bias

__all__ = ["BATCH_MAJOR", "Cell", "Layout", "add_bias"]

Initializer = Callable[[jax.Array, tuple[int, ...], Any], jax.Array]

#: Default initialisers (Keras' defaults for recurrent layers).
GLOROT_UNIFORM: Initializer = jax.nn.initializers.glorot_uniform()
ORTHOGONAL: Initializer = jax.nn.initializers.orthogonal()
ZEROS: Initializer = jax.nn.initializers.zeros


class Cell(NamedTuple):
    """A recurrent cell as pure functions over explicit parameter pytrees.

    Attributes:
        init: ``init(key, input_size) -> params``, a NamedTuple of arrays.
        init_carry: ``init_carry(params) -> carry``, zeros for one example. It takes
            no key: a learned or random initial state is the caller's explicit input.
        step: ``step(params, carry, x) -> (carry, y)``. After
            ``functools.partial(step, params)`` it is the body ``lax.scan`` expects.
        hidden_size: ``H``, the size of ``y`` and of ``carry.h``.
        name: a short name (``"lstm"``, ``"gru"``, ``"elman"``) used in messages and
            by the weight importers.
        options: the factory's static options, for the importers and for saving a
            model's configuration (e.g. ``{"reset_after": True}``).
        kernel: optional :class:`~jaxseq._fused.SequenceKernel`: the same step,
            batched, with a hand-written backward pass. The runners use it when
            present (the fast path); a cell without one runs through ``step`` and
            autodiff.
        h_only_in_product: ``True`` when ``h_{t-1}`` enters ``step`` only through
            the recurrent product ``h_{t-1} @ w_h`` (Elman, the LSTMs; not the
            GRU, whose update reads ``z * h_{t-1}``). Recurrent dropout then masks
            ``carry.h`` itself instead of the rows of ``w_h`` per example.
    """

    init: Callable[[jax.Array, int], Any]
    init_carry: Callable[[Any], Any]
    step: Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]]
    hidden_size: int
    name: str = "cell"
    options: tuple[tuple[str, Any], ...] = ()
    kernel: Any = None
    h_only_in_product: bool = False

    def option(self, key: str, default: Any = None) -> Any:
        """The value of one of the factory's static ``options``."""
        return dict(self.options).get(key, default)


def check_hidden_size(hidden_size: int) -> int:
    """Refuse a non-positive or non-integer ``hidden_size`` with a clear message."""
    if isinstance(hidden_size, bool) or not isinstance(hidden_size, int):
        raise TypeError(
            f"hidden_size: expected a positive int, got {type(hidden_size).__name__} "
            f"{hidden_size!r}."
        )
    if hidden_size <= 0:
        raise ValueError(f"hidden_size: expected a positive int, got {hidden_size}.")
    return hidden_size


def check_input_size(input_size: int) -> int:
    """Refuse a non-positive or non-integer ``input_size`` in ``init``."""
    if (
        isinstance(input_size, bool)
        or not isinstance(input_size, int)
        or input_size <= 0
    ):
        raise ValueError(f"input_size: expected a positive int, got {input_size!r}.")
    return input_size


def check_step_input(
    cell: str, x: jax.Array, w_x: jax.Array, h: jax.Array, hidden_size: int
) -> jax.Array:
    """Trace-time checks shared by the built-in steps; returns ``x`` cast to the
    parameters' dtype (the computation runs in the parameters' dtype)."""
    check_floating("xs", x)
    check_feature_size("xs", x.shape[-1], w_x.shape[0], f"{cell} params.w_x.shape[0]")
    if h.shape[-1] != hidden_size:
        raise ValueError(
            f"carry: expected hidden size {hidden_size} on the last axis of carry.h "
            f"({cell}), got shape {tuple(h.shape)}."
        )
    return x.astype(w_x.dtype)


def initialize(
    fn: Initializer, key: jax.Array, shape: tuple[int, ...], dtype: Any
) -> jax.Array:
    """Call an initialiser, computing in float32 for narrower dtypes (bfloat16 has
    no QR on CPU, which the orthogonal initialiser needs) and casting after."""
    compute = jnp.float32 if jnp.finfo(dtype).bits < 32 else dtype
    return jnp.asarray(fn(key, shape, compute), dtype)


def sigmoid(x: jax.Array) -> jax.Array:
    """Logistic sigmoid, the seed's ``sigma`` (``jax.nn.sigmoid``)."""
    return jax.nn.sigmoid(x)


def gate_kernels(
    k_x: jax.Array,
    k_h: jax.Array,
    input_size: int,
    width: int,
    hidden: int,
    dtype: Any,
    kernel_init: Initializer,
    recurrent_init: Initializer,
) -> tuple[jax.Array, jax.Array]:
    """The input kernel ``w_x`` ``[F, width]`` and the recurrent kernel ``w_h``
    ``[H, width]`` of a cell whose gates are fused along the last axis
    (``width = 4H`` for an LSTM, ``3H`` for a GRU)."""
    return (
        initialize(kernel_init, k_x, (input_size, width), dtype),
        initialize(recurrent_init, k_h, (hidden, width), dtype),
    )


def make_cell(
    name: str,
    hidden: int,
    init: Callable[[jax.Array, int], Any],
    carry_type: Callable[..., Any],
    equations: Callable[[Any, Any, jax.Array], tuple[Any, jax.Array]],
    *,
    options: tuple[tuple[str, Any], ...] = (),
    kernel: Any = None,
    h_only_in_product: bool = False,
) -> Cell:
    """A :class:`Cell` from the parts that differ between cells.

    Args:
        name: the cell's name (messages, importers).
        hidden: ``H``.
        init: ``init(key, input_size) -> params`` with fields ``w_x`` ``[F, G]``
            and ``w_h`` ``[H, G]`` (``input_size`` is checked first).
        carry_type: the carry NamedTuple; ``init_carry`` fills every field with
            zeros ``[H]`` in ``w_h``'s dtype.
        equations: ``equations(params, carry, x) -> (carry, y)``, the step after
            the shared trace-time checks (:func:`check_step_input`; ``x`` cast to
            the parameters' dtype).
        options, kernel, h_only_in_product: as :class:`Cell`'s.
    """

    def init_checked(key: jax.Array, input_size: int) -> Any:
        return init(key, check_input_size(input_size))

    def init_carry(params: Any) -> Any:
        zeros = jnp.zeros((hidden,), params.w_h.dtype)
        return carry_type(*(zeros for _ in carry_type._fields))

    def step(params: Any, carry: Any, x: jax.Array) -> tuple[Any, jax.Array]:
        x = check_step_input(name, x, params.w_x, carry.h, hidden)
        return equations(params, carry, x)

    return Cell(
        init_checked,
        init_carry,
        step,
        hidden_size=hidden,
        name=name,
        options=options,
        kernel=kernel,
        h_only_in_product=h_only_in_product,
    )
