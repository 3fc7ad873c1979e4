r"""Synthetic long-range tasks: the adding problem and the copy (memory) task.

Both need information from far back in the sequence and nothing else, so a model
can only beat the trivial baseline if gradient reaches across the whole delay.
The generators are pure JAX functions of an explicit PRNG key (key first); the
sizes are static Python ints, so they run inside ``jax.jit`` (e.g. a fresh batch
per training step from ``jax.random.fold_in(key, step)``). ``np.asarray`` turns the
outputs into NumPy arrays.

**Adding problem** (Hochreiter & Schmidhuber, 1997, experiment 4; here in the
form of Le et al., 2015 and Arjovsky et al., 2016). Each step carries two
numbers: a value ``v_t ~ U[0, 1)`` and a marker ``m_t \in \{0, 1\}``. Exactly two
markers are 1, one at a uniform position in the first half ``[0, T // 2)`` and one
in the second half ``[T // 2, T)``. The target is the sum of the two marked
values, ``y = \sum_t m_t v_t``. Predicting the constant ``E[y] = 1`` gives the
mean squared error ``Var(y) = 2 / 12 = 1/6 \approx 0.167``
(:data:`ADDING_BASELINE_MSE`).

**Copy task** (Hochreiter & Schmidhuber, 1997; in the form of Arjovsky et al.,
2016). Tokens: 0 is blank, ``1 .. A`` are symbols, ``A + 1`` is the delimiter.
The input is ``K`` random symbols, ``delay - 1`` blanks, the delimiter, then ``K``
blanks (length ``delay + 2K``); the target is blank everywhere except the last
``K`` steps, which must reproduce the ``K`` symbols in order. A model without
memory outputs blanks and then guesses: recall accuracy ``1 / A``
(:func:`copy_chance_accuracy`), cross-entropy ``K log(A) / (delay + 2K)`` per step
(:func:`copy_baseline_cross_entropy`).

References:
    Hochreiter, S., Schmidhuber, J. (1997). Long short-term memory. Neural
    Computation 9(8).
    Le, Q. V., Jaitly, N., Hinton, G. E. (2015). A simple way to initialize
    recurrent networks of rectified linear units. arXiv:1504.00941.
    Arjovsky, M., Shah, A., Bengio, Y. (2016). Unitary evolution recurrent neural
    networks. ICML.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

#: MSE of the constant prediction 1.0 on the adding problem: ``Var(v_1 + v_2)``
#: for two independent ``U[0, 1)`` values, ``2 / 12``.
ADDING_BASELINE_MSE: float = 1.0 / 6.0


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}.")
    return value


def adding_problem(
    key: jax.Array,
    num_examples: int,
    length: int,
    *,
    dtype: Any = jnp.float32,
) -> tuple[Float[Array, "N T 2"], Float[Array, " N"]]:
    r"""A batch of the adding problem.

    Args:
        key: PRNG key.
        num_examples: ``N``.
        length: ``T >= 2``, the sequence length.
        dtype: floating dtype of the outputs.

    Returns:
        ``(xs, ys)``: ``xs`` ``[N, T, 2]`` with ``xs[..., 0]`` the values
        ``U[0, 1)`` and ``xs[..., 1]`` the markers (exactly two ones: one in
        ``[0, T // 2)``, one in ``[T // 2, T)``); ``ys`` ``[N]`` the sum of the
        two marked values, in ``[0, 2)``.

    Raises:
        ValueError: for ``num_examples < 1`` or ``length < 2``.

    Examples:
        >>> import jax
        >>> from jaxseq.tasks import adding_problem
        >>> xs, ys = adding_problem(jax.random.key(0), 3, 10)
        >>> xs.shape, ys.shape, xs[..., 1].sum(axis=1).tolist()
        ((3, 10, 2), (3,), [2.0, 2.0, 2.0])
    """
    n = _check_int("num_examples", num_examples, 1)
    t = _check_int("length", length, 2)
    k_v, k_a, k_b = jax.random.split(key, 3)
    half = t // 2
    values = jax.random.uniform(k_v, (n, t), dtype)
    first = jax.random.randint(k_a, (n,), 0, half)
    second = jax.random.randint(k_b, (n,), half, t)
    steps = jnp.arange(t)[None, :]
    markers = (steps == first[:, None]) | (steps == second[:, None])
    markers = markers.astype(dtype)
    xs = jnp.stack([values, markers], axis=-1)
    return xs, jnp.sum(values * markers, axis=1)


def copy_task(
    key: jax.Array,
    num_examples: int,
    delay: int,
    *,
    num_symbols: int = 8,
    copy_length: int = 10,
    dtype: Any = jnp.float32,
) -> tuple[Float[Array, "N L V"], Int[Array, "N L"]]:
    """A batch of the copy task (see the module docstring for the layout).

    Args:
        key: PRNG key.
        num_examples: ``N``.
        delay: ``>= 1``, steps from the end of the symbols to the delimiter (the
            task's ``T``); the sequence length is ``L = delay + 2 * copy_length``.
        num_symbols: ``A``, the alphabet of symbols to remember.
        copy_length: ``K``, the number of symbols to copy.
        dtype: floating dtype of the one-hot inputs.

    Returns:
        ``(xs, ys)``: ``xs`` ``[N, L, A + 2]`` one-hot inputs (0 blank, ``1..A``
        symbols, ``A + 1`` delimiter); ``ys`` ``[N, L]`` int32 target tokens in
        ``[0, A]``, blank except the last ``K`` steps.

    Raises:
        ValueError: for a size below its minimum.

    Examples:
        >>> import jax
        >>> from jaxseq.tasks import copy_task
        >>> xs, ys = copy_task(jax.random.key(0), 2, 5, num_symbols=3, copy_length=2)
        >>> xs.shape, ys.shape
        ((2, 9, 5), (2, 9))
        >>> bool((ys[:, -2:] == xs[:, :2].argmax(-1)).all())
        True
    """
    n = _check_int("num_examples", num_examples, 1)
    d = _check_int("delay", delay, 1)
    a = _check_int("num_symbols", num_symbols, 1)
    k = _check_int("copy_length", copy_length, 1)
    symbols = jax.random.randint(key, (n, k), 1, a + 1, dtype=jnp.int32)
    blanks = jnp.zeros((n, d - 1), jnp.int32)
    delimiter = jnp.full((n, 1), a + 1, jnp.int32)
    tail = jnp.zeros((n, k), jnp.int32)
    tokens = jnp.concatenate([symbols, blanks, delimiter, tail], axis=1)
    ys = jnp.concatenate([jnp.zeros((n, d + k), jnp.int32), symbols], axis=1)
    return jax.nn.one_hot(tokens, a + 2, dtype=dtype), ys


def copy_chance_accuracy(num_symbols: int = 8) -> float:
    """Recall accuracy of guessing on the copy task, ``1 / num_symbols``."""
    return 1.0 / _check_int("num_symbols", num_symbols, 1)


def copy_baseline_cross_entropy(
    delay: int, *, num_symbols: int = 8, copy_length: int = 10
) -> float:
    """Mean per-step cross-entropy (nats) of the best memoryless model: certain
    blanks, then uniform over the symbols for the ``K`` recall steps,
    ``K log(A) / (delay + 2K)``.

    Examples:
        >>> from jaxseq.tasks import copy_baseline_cross_entropy
        >>> round(copy_baseline_cross_entropy(100), 4)     # Arjovsky et al.: T=100
        0.1733
    """
    d = _check_int("delay", delay, 1)
    a = _check_int("num_symbols", num_symbols, 1)
    k = _check_int("copy_length", copy_length, 1)
    return k * math.log(a) / (d + 2 * k)


__all__ = [
    "ADDING_BASELINE_MSE",
    "adding_problem",
    "copy_baseline_cross_entropy",
    "copy_chance_accuracy",
    "copy_task",
]
