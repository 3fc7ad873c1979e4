"""Optimisers by name: thin lookups of Optax's own transformations.

The seed's "SGD variants" (Ruder, 2016): plain SGD, SGD with (Nesterov) momentum,
Adagrad, RMSProp and Adam. Every entry returns the ``optax`` transformation
itself; jaxseq re-implements none of them. Gradient clipping by global norm (the
cure for exploding gradients through time) is ``optax.clip_by_global_norm``,
chained in front when ``clip_norm`` is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
        ValueError: for an unknown ``name`` or a non-positive ``clip_norm``.

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
    factory, defaults = OPTIMIZERS[name]
    opt = factory(learning_rate=learning_rate, **{**defaults, **kwargs})
    if clip_norm is None:
        return opt
    if not float(clip_norm) > 0.0:
        raise ValueError(f"clip_norm: expected a positive norm, got {clip_norm!r}.")
    return optax.chain(optax.clip_by_global_norm(float(clip_norm)), opt)
