"""An independent reference LM forward: a ``lax.scan`` over ``cell.step`` (no
runner, no fused kernel, no reset wrapper), with per-step resets and an optional
cut of the gradient (``stop_gradient`` on the carry) before chosen steps."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def reference_lm(cell, params, ids, carry, *, resets=None, cuts=None, tied=False):
    """``(carry, logits)`` of ``rnn_lm`` computed step by step; ``cuts`` ``[T]``
    bool: the carry's gradient stops before those steps."""
    batch, time = ids.shape
    xs = jnp.swapaxes(params["embed"][ids], 0, 1)  # [T, B, D]
    rs = (
        jnp.zeros((time, batch), bool) if resets is None else jnp.swapaxes(resets, 0, 1)
    )
    cut = jnp.zeros((time,), bool) if cuts is None else jnp.asarray(cuts)
    zero = [cell.init_carry(p) for p in params["rnn"]]

    def body(carries, inp):
        h, r, k = inp
        out = []
        for c, p, z in zip(carries, params["rnn"], zero, strict=True):
            c = jax.tree.map(lambda a: jnp.where(k, jax.lax.stop_gradient(a), a), c)
            c = jax.tree.map(lambda a, b: jnp.where(r[:, None], b, a), c, z)
            c, h = cell.step(p, c, h)
            out.append(c)
        return tuple(out), h

    carries, hs = jax.lax.scan(body, tuple(carry), (xs, rs, cut))
    w = params["embed"].T if tied else params["out"].w
    return carries, jnp.swapaxes(hs, 0, 1) @ w + params["out"].b


def nll_sum(logits, targets):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, targets[..., None], -1).sum()
