r"""Warm-up adaptation of the random-walk proposals of :mod:`jaxseq.bayes.gibbs`.

Pure functions; :class:`~jaxseq.bayes.BlockedGibbs` calls :func:`adapt` after every
sweep and the adaptation switches itself off once warm-up is over, so the
sampling phase runs a fixed, valid Metropolis-within-Gibbs kernel.

References:
    H. Haario, E. Saksman and J. Tamminen (2001), "An adaptive Metropolis
    algorithm", *Bernoulli* 7(2), 223-242. G. O. Roberts and J. S. Rosenthal (2001),
    "Optimal scaling for various Metropolis-Hastings algorithms", *Stat. Sci.* 16(4).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import _linalg as la

__all__ = ["AdaptState", "Proposal", "adapt", "init_adaptation", "init_proposal"]


class Proposal(NamedTuple):
    """Per-unit move scales (:mod:`jaxseq.bayes.moves`).

    Attributes:
        log_scale: ``[m]`` and chol: ``[m, d, d]`` lower-triangular shape factors
            of the random walk, step ``exp(log_scale[j]) * chol[j] @ eps``.
        log_tau: ``[m]`` log standard deviation of the scale move's log factor.
        log_tau_sweep: ``[2]`` log step sizes of the sweep-level ``"group"`` and
            ``"sigma_beta"`` moves (:mod:`jaxseq.bayes.blocks`).
    """

    log_scale: Array
    chol: Array
    log_tau: Array
    log_tau_sweep: Array


class AdaptState(NamedTuple):
    """Welford accumulators of each unit's ``gamma`` during the covariance window."""

    count: Array
    mean: Array
    m2: Array


def init_proposal(hidden: int, d: int, dtype=jnp.float32) -> Proposal:
    """Identity shapes, the optimal-scaling start ``2.38 / sqrt(d)`` for the random
    walk and ``tau = 0.3`` for the scale move. (Built with NumPy, so that a call
    outside ``jit`` compiles nothing.)"""
    dtype = np.dtype(dtype)
    log_scale = np.full((hidden,), np.log(2.38 / d**0.5), dtype)
    chol = np.broadcast_to(np.eye(d, dtype=dtype), (hidden, d, d))
    log_tau = np.full((hidden,), np.log(0.3), dtype)
    log_tau_sweep = np.log(np.asarray([0.1, 0.1, 0.1], dtype))
    return Proposal(*map(_to_device, (log_scale, chol, log_tau, log_tau_sweep)))


def _to_device(a: np.ndarray) -> Array:
    """A host array on the default device without a compiled program
    (``jnp.asarray`` of a 0-d or broadcast array compiles one)."""
    return jax.device_put(np.ascontiguousarray(a))


def init_adaptation(hidden: int, d: int, dtype=jnp.float32) -> AdaptState:
    """Empty accumulators for :func:`adapt`."""
    dtype = np.dtype(dtype)
    return AdaptState(
        _to_device(np.zeros((), dtype)),
        _to_device(np.zeros((hidden, d), dtype)),
        _to_device(np.zeros((hidden, d, d), dtype)),
    )


def adapt(
    proposal: Proposal,
    state: AdaptState,
    gamma: Float[Array, "m d"],
    accept_rw: Float[Array, " m"],
    accept_scale: Float[Array, " m"],
    accept_sweep: Float[Array, " 3"],
    t: Array,
    num_warmup: Array,
    *,
    target: float = 0.3,
    target_scale: float = 0.44,
    target_sweep: tuple[float, float, float] = (0.7, 0.44, 0.44),
) -> tuple[Proposal, AdaptState]:
    r"""Warm-up adaptation of the moves' scales after sweep ``t`` (0-based).

    Windows over the ``W = num_warmup`` warm-up sweeps:

    * all of warm-up: Robbins–Monro on each unit's log scale,
      :math:`\ell_j \leftarrow \ell_j + (t' + 1)^{-0.6}(\alpha_j - \alpha^*)` toward
      the target acceptance :math:`\alpha^*` (0.3 by default; ~0.23-0.44 is
      optimal for random walks in moderate dimension), where :math:`t'` restarts
      at ``3W/4``;
    * ``[W/4, 3W/4)``: Welford estimates of each unit's covariance of
      :math:`\gamma_j`; at ``3W/4`` the shape becomes its (regularised) Cholesky
      factor and the scale restarts at :math:`2.38/\sqrt d` (Haario et al., 2001).

    The scale move's :math:`\log\tau_j` and the ``"group"`` and ``"sigma_beta"``
    step sizes follow the same Robbins–Monro rule (without restart) toward 0.44,
    the optimum for one-dimensional random walks (Roberts and Rosenthal, 2001),
    and the ``"hmc"`` step size toward 0.7. (Restarting the HMC step together
    with the random-walk shapes at ``3W/4`` mixed worse on the benchmark data.)

    For ``t >= W`` nothing changes, so the sampling phase is a fixed, valid
    Metropolis-within-Gibbs kernel. Units whose acceptance is NaN (move not used)
    keep their scale.
    """
    dtype = gamma.dtype
    d = gamma.shape[1]
    w1, w2 = num_warmup // 4, (3 * num_warmup) // 4
    warm = t < num_warmup
    t_rel = jnp.where(t >= w2, t - w2, t).astype(dtype)
    gain = (t_rel + 1.0) ** -0.6
    delta = jnp.where(jnp.isnan(accept_rw), 0.0, accept_rw - target)
    log_scale = jnp.clip(proposal.log_scale + gain * delta, -12.0, 5.0)
    log_scale = jnp.where(warm, log_scale, proposal.log_scale)

    def one_dimensional(log_tau, accept, target, gain):
        step_tau = jnp.where(jnp.isnan(accept), 0.0, accept - target)
        new = jnp.clip(log_tau + gain * step_tau, -8.0, 3.0)
        return jnp.where(warm, new, log_tau)

    log_tau = one_dimensional(
        proposal.log_tau, accept_scale, target_scale, (t + 1.0) ** -0.6
    )
    sweep_gain = (t + 1.0) ** -0.6
    sweep_targets = jnp.asarray(target_sweep, dtype)
    log_tau_sweep = one_dimensional(
        proposal.log_tau_sweep, accept_sweep, sweep_targets, sweep_gain
    )

    collect = (t >= w1) & (t < w2)
    count = state.count + collect
    diff = gamma - state.mean
    mean = jnp.where(collect, state.mean + diff / jnp.maximum(count, 1.0), state.mean)
    outer = jnp.einsum("md,me->mde", diff, gamma - mean)
    m2 = jnp.where(collect, state.m2 + outer, state.m2)

    switch = (t == w2 - 1) & (count > 2 * d)
    cov = m2 / jnp.maximum(count - 1.0, 1.0)
    shrink = count / (count + 5.0)
    reg = shrink * cov + 1e-3 * (1 - shrink) * jnp.eye(d, dtype=dtype)
    chol = jnp.where(switch, jax.vmap(la.cholesky)(reg), proposal.chol)
    chol = jnp.where(jnp.isnan(chol).any(), proposal.chol, chol)
    log_scale = jnp.where(switch, jnp.log(2.38 / d**0.5).astype(dtype), log_scale)
    new = Proposal(log_scale, chol, log_tau, log_tau_sweep)
    return new, AdaptState(count, mean, m2)
