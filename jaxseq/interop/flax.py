"""Parameters from ``flax.linen`` recurrent cells (``LSTMCell``,
``OptimizedLSTMCell``, ``GRUCell``, ``SimpleCell``).

Flax keeps one ``Dense`` per gate: ``i{g}`` on the input and ``h{g}`` on the hidden
state. Their kernels are ``[F, H]``/``[H, H]`` (already right-multiplied, as
jaxseq's), so importing only concatenates them in jaxseq's gate order. Only the
``params`` collection is read; flax itself is not imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from ..cells import ElmanParams, GRUParams, LSTMParams


def _tree(variables: Mapping[str, Any]) -> Mapping[str, Any]:
    return variables["params"] if "params" in variables else variables


def _cat(tree: Mapping[str, Any], names: list[str], leaf: str) -> jnp.ndarray:
    missing = [n for n in names if n not in tree]
    if missing:
        raise ValueError(
            f"variables: expected Dense sub-modules {names}, missing {missing}."
        )
    return jnp.concatenate([jnp.asarray(tree[n][leaf]) for n in names], axis=-1)


def lstm_from_linen(variables: Mapping[str, Any]) -> LSTMParams:
    """:class:`LSTMParams` from ``LSTMCell``/``OptimizedLSTMCell`` variables.

    Flax adds no forget bias in the step, so import into ``lstm(H, forget_bias=...)``
    is exact whatever that option (it only affects ``init``).
    """
    t = _tree(variables)
    gates = list("ifgo")
    return LSTMParams(
        w_x=_cat(t, [f"i{g}" for g in gates], "kernel"),
        w_h=_cat(t, [f"h{g}" for g in gates], "kernel"),
        b=_cat(t, [f"h{g}" for g in gates], "bias"),
    )


def gru_from_linen(variables: Mapping[str, Any]) -> GRUParams:
    """:class:`GRUParams` from ``GRUCell`` variables (the ``reset_after`` form)."""
    t = _tree(variables)
    gates = list("rzn")
    b_hn = jnp.asarray(t["hn"]["bias"])
    zeros = jnp.zeros_like(b_hn)
    return GRUParams(
        w_x=_cat(t, [f"i{g}" for g in gates], "kernel"),
        w_h=_cat(t, [f"h{g}" for g in gates], "kernel"),
        b_x=_cat(t, [f"i{g}" for g in gates], "bias"),
        b_h=jnp.concatenate([zeros, zeros, b_hn]),
    )


def elman_from_linen(variables: Mapping[str, Any]) -> ElmanParams:
    """:class:`ElmanParams` from ``SimpleCell`` variables (``residual=False``)."""
    t = _tree(variables)
    return ElmanParams(
        w_x=jnp.asarray(t["i"]["kernel"]),
        w_h=jnp.asarray(t["h"]["kernel"]),
        b=jnp.asarray(t["i"]["bias"]),
    )
