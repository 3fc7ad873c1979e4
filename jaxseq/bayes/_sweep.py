"""The blocked Gibbs sweep with its warm-up adaptation, without NumPyro.

:class:`GibbsSweep` holds the sampler's configuration and runs one sweep of a
chain (:mod:`jaxseq.bayes.gibbs`'s :func:`~jaxseq.bayes.gibbs.step`, then
:func:`jaxseq.bayes.adaptation.adapt`); :class:`~jaxseq.bayes.BlockedGibbs` adds
NumPyro's ``MCMCKernel`` interface to it, and :mod:`jaxseq.bayes.driver` runs it
directly, so a Gibbs fit imports no NumPyro before its draws are diagnosed.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from . import adaptation, gibbs, moves
from ._validate import check_hidden
from .models import Prior, augment, default_prior

__all__ = ["GibbsKernelState", "GibbsSweep"]


class GibbsKernelState(NamedTuple):
    """State of a chain between sweeps (:class:`GibbsSweep`,
    :class:`~jaxseq.bayes.BlockedGibbs`).

    Attributes:
        i: number of sweeps done (warm-up included).
        z: the current :class:`~jaxseq.bayes.gibbs.NetParams` (the sample field).
        proposal: move scales and shapes (adapted during warm-up).
        adapt_state: covariance accumulators used by the adaptation.
        info: :class:`~jaxseq.bayes.gibbs.GibbsInfo` of the last sweep
            (acceptance probabilities and log-likelihood).
        num_warmup: number of warm-up sweeps (adaptation stops after them).
        rng_key: PRNG key for the next sweep.
    """

    i: Array
    z: gibbs.NetParams
    proposal: adaptation.Proposal
    adapt_state: adaptation.AdaptState
    info: gibbs.GibbsInfo
    num_warmup: Array
    rng_key: Array


class GibbsSweep:
    """One sweep of the Müller–Ríos Insua sampler and its adaptation (the
    arguments as for :class:`~jaxseq.bayes.BlockedGibbs`, which extends it)."""

    def __init__(
        self,
        hidden: int,
        *,
        prior: Prior | None = None,
        bias: bool = True,
        proposal: str | moves.Moves = moves.DEFAULT,
        target_accept: float = 0.3,
    ) -> None:
        hidden = check_hidden(hidden)
        proposal = moves.as_moves(proposal)  # raises ValueError naming `proposal`
        if not 0.0 < target_accept < 1.0:
            raise ValueError(
                f"target_accept: expected a value in (0, 1), got {target_accept}."
            )
        self.hidden = int(hidden)
        self.prior = prior
        self.bias = bool(bias)
        self.proposal = proposal
        self.target_accept = float(target_accept)

    def _prior(self, x) -> Prior:
        return default_prior(int(np.shape(x)[1])) if self.prior is None else self.prior

    def _sample_one(self, state: GibbsKernelState, x, y) -> GibbsKernelState:
        return self._sweep(state, x, y)[0]

    def _sweep(self, state: GibbsKernelState, x, y, m=None, hidden=None):
        """One sweep and the adaptation after it; with variable ``m``
        (``hidden``, :mod:`jaxseq.bayes.dimension`) ``m`` is carried beside the
        state. Returns ``(state, m)``."""
        dtype = state.z.prec.dtype
        data = gibbs.Data(augment(jnp.asarray(x, dtype)), jnp.asarray(y, dtype))
        key, k_step = jax.random.split(state.rng_key)
        new, info = gibbs.step(
            k_step,
            gibbs.GibbsState(state.z, m),
            data,
            self._prior(x),
            state.proposal,
            bias=self.bias,
            kind=self.proposal,
            hidden=hidden,
        )
        proposal, adapt_state = adaptation.adapt(
            state.proposal,
            state.adapt_state,
            new.position.gamma,
            info.accept_rw,
            info.accept_scale,
            jnp.stack([info.accept_hmc, info.accept_group, info.accept_sigma_beta]),
            state.i,
            state.num_warmup,
            target=self.target_accept,
        )
        state = GibbsKernelState(
            state.i + 1,
            new.position,
            proposal,
            adapt_state,
            info,
            state.num_warmup,
            key,
        )
        return state, new.m
