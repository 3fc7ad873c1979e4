"""Optimisers by name: thin lookups of Optax's own transformations.

The seed's "SGD variants" (Ruder, 2016): plain SGD, SGD with (Nesterov) momentum,
Adagrad, RMSProp and Adam. Every entry returns the ``optax`` transformation
itself; jaxseq re-implements none of them. Gradient clipping by global norm (the
cure for exploding gradients through time) is ``optax.clip_by_global_norm``,
chained in front when ``clip_norm`` is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import optax

#: name -> (optax factory, default keyword arguments).
OPTIMIZERS: dict[str, tuple[Callable[..., optax.GradientTransformation], dict]] = {
    "sgd": (optax.sgd, {}),
    "momentum": (optax.sgd, {"momentum": 0.9}),
    "nesterov": (optax.sgd, {"momentum": 0.9, "nesterov": True}),
    "adagrad": (optax.adagrad, {}),
    "rmsprop": (optax.rmsprop, {}),
    "adam": (optax.adam, {}),
    "adamw": (optax.adamw, {}),
}


#: counts at which a schedule's values are checked (finite and >= 0)
_SCHEDULE_COUNTS = (0, 1, 10, 100, 1_000, 10_000, 100_000)


def check_learning_rate(learning_rate: Any) -> float | optax.Schedule:
    """A positive finite learning rate, or a schedule whose values at counts
    ``0, 1, 10, ..., 100000`` are finite and ``>= 0`` (a warm-up may start at 0);
    otherwise a ``TypeError`` or ``ValueError`` naming ``learning_rate``."""
    if callable(learning_rate):
        for count in _SCHEDULE_COUNTS:
            value = float(np.asarray(learning_rate(count)))
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(
                    "learning_rate: expected a schedule of finite step sizes >= 0, "
                    f"got {value!r} at count {count}."
                )
        return learning_rate
    if isinstance(learning_rate, (bool, str, bytes)) or np.ndim(learning_rate) != 0:
        raise TypeError(
            "learning_rate: expected a positive number or a schedule count -> lr, "
            f"got {type(learning_rate).__name__} {learning_rate!r}."
        )
    try:
        value = float(learning_rate)
    except (TypeError, ValueError):
        raise TypeError(
            "learning_rate: expected a positive number or a schedule count -> lr, "
            f"got {type(learning_rate).__name__} {learning_rate!r}."
        ) from None
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(
            f"learning_rate: expected a positive finite number, got {value!r}."
        )
    return value


def optimizer(
    name: str,
    learning_rate: float | optax.Schedule,
    *,
    clip_norm: float | None = None,
    **kwargs: Any,
) -> optax.GradientTransformation:
    """An Optax optimiser by name, optionally behind global-norm clipping.

    Args:
        name: one of ``"sgd"``, ``"momentum"`` (``optax.sgd(momentum=0.9)``),
            ``"nesterov"``, ``"adagrad"``, ``"rmsprop"``, ``"adam"``, ``"adamw"``.
        learning_rate: a float or a schedule ``count -> lr`` (e.g.
            :func:`~jaxseq.train.robbins_monro`; ``count`` is 0-based).
        clip_norm: if given, ``optax.clip_by_global_norm(clip_norm)`` is chained
            before the optimiser, so the gradient is clipped before any
            moment estimate sees it.
        **kwargs: forwarded to the Optax factory (they override the defaults
            above, e.g. ``momentum=0.5`` or ``b1=0.8``).

    Returns:
        An ``optax.GradientTransformation``.

    Raises:
        ValueError: for an unknown ``name``, a ``learning_rate`` that is not
            positive and finite (a schedule: negative or not finite at one of
            the counts 0, 1, 10, ..., 100000), or a non-positive ``clip_norm``.
        TypeError: for a ``learning_rate`` that is neither a number nor a
            schedule.

    Examples:
        >>> from jaxseq.train import optimizer, robbins_monro
        >>> opt = optimizer("sgd", robbins_monro(0.5, 1.0, 0.75), clip_norm=1.0)
        >>> opt = optimizer("adam", 1e-3, b2=0.99)
    """
    if name not in OPTIMIZERS:
        raise ValueError(
            f"name: expected one of {sorted(OPTIMIZERS)}, got {name!r}. Other "
            "optimisers: pass any optax.GradientTransformation directly."
        )
    learning_rate = check_learning_rate(learning_rate)
    if clip_norm is not None and not float(clip_norm) > 0.0:
        raise ValueError(f"clip_norm: expected a positive norm, got {clip_norm!r}.")
    factory, defaults = OPTIMIZERS[name]
    opt = factory(learning_rate=learning_rate, **{**defaults, **kwargs})
    if clip_norm is None:
        return opt
    return optax.chain(optax.clip_by_global_norm(float(clip_norm)), opt)
