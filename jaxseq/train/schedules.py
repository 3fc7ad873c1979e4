"""Step-size schedules: plain functions ``count -> learning rate`` for Optax.

Convention: ``count`` is **0-based** and is the number of updates already applied,
which is what Optax passes to a schedule (``optax.scale_by_schedule`` reads its
own ``count``, starting at 0). The first update therefore uses ``schedule(0)``,
the second ``schedule(1)``, and so on.
"""

from __future__ import annotations

import math
from numbers import Real

import jax.numpy as jnp
import optax


def _check_positive(name: str, value: float, meaning: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(
            f"{name}: expected a positive real number ({meaning}), got "
            f"{type(value).__name__} {value!r}."
        )
    value = float(value)
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(
            f"{name}: expected a positive finite number ({meaning}), got {value!r}."
        )
    return value


def robbins_monro(a: float, b: float = 1.0, power: float = 1.0) -> optax.Schedule:
    r"""The step size ``eps_k = a / (b + k) ** power`` with a 0-based ``k``.

    With ``0.5 < power <= 1`` and ``a, b > 0`` the sequence satisfies the
    Robbins–Monro conditions (Robbins & Monro, 1951)

    .. math:: \sum_k \epsilon_k = \infty, \qquad \sum_k \epsilon_k^2 < \infty,

    under which SGD with unbiased gradient estimates converges almost surely (to a
    local optimum; to the optimum of a convex problem). ``power`` is the exponent
    often written ``kappa``: for ``power <= 0.5`` the squares no longer sum, for
    ``power > 1`` the steps themselves sum to a finite distance, so both are
    refused rather than silently accepted.

    Args:
        a: scale, ``> 0``. The first step is ``a / b ** power``.
        b: offset, ``> 0``: delays the decay (larger ``b`` keeps early steps
            similar), and keeps ``eps_0`` finite.
        power: decay exponent ``kappa`` in ``(0.5, 1]``.

    Returns:
        A schedule ``count -> lr`` for ``optax.sgd(learning_rate=...)``; ``count``
        is 0-based (the first update uses ``schedule(0) = a / b ** power``).

    Raises:
        ValueError: if ``a <= 0``, ``b <= 0`` (or not finite), or ``power`` is not
            in ``(0.5, 1]``; the message names the offending value.
        TypeError: if an argument is not a real number.

    Examples:
        >>> import optax
        >>> from jaxseq.train import robbins_monro
        >>> schedule = robbins_monro(a=1.0, b=10.0, power=1.0)
        >>> [round(float(schedule(k)), 6) for k in (0, 1, 10)]
        [0.1, 0.090909, 0.05]
        >>> opt = optax.sgd(learning_rate=schedule)
        >>> robbins_monro(1.0, 1.0, power=0.5)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: power: expected kappa in (0.5, 1] so that ... got 0.5.
    """
    a = _check_positive("a", a, "the scale of a / (b + k) ** power")
    b = _check_positive("b", b, "the offset of a / (b + k) ** power")
    if isinstance(power, bool) or not isinstance(power, Real):
        raise TypeError(
            f"power: expected a real number in (0.5, 1], got "
            f"{type(power).__name__} {power!r}."
        )
    power = float(power)
    if not 0.5 < power <= 1.0:
        raise ValueError(
            "power: expected kappa in (0.5, 1] so that sum eps_k = inf and "
            f"sum eps_k^2 < inf (Robbins-Monro), got {power!r}."
        )

    def schedule(count):
        # float64 under jax_enable_x64, float32 otherwise.
        k = jnp.asarray(count).astype(jnp.result_type(float))
        return a / (b + k) ** power

    return schedule
