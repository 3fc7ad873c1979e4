r"""The seed's blocked Gibbs/Metropolis sampler as pure, blackjax-style functions.

One sweep (:func:`step`) of the Müller–Ríos Insua sampler, with
:math:`\nu = (\mu_\beta, \sigma_\beta, \mu_\gamma, S_\gamma, \sigma)`:

1. for ``j = 1..m`` (a ``lax.fori_loop``): Metropolis on :math:`\gamma_j` targeting
   :math:`p(\gamma_j \mid \gamma_{-j}, \nu, y)` with the output weights integrated
   out (:func:`~jaxseq.bayes.conditionals.marginal_loglik`);
2. :math:`\beta \mid \gamma, \nu, y`, a multivariate normal (output bias included);
3. :math:`\mu_\beta`, :math:`\sigma_\beta^{-2}`, :math:`\mu_\gamma`,
   :math:`S_\gamma^{-1}` (Wishart) and :math:`\sigma^{-2}` from their conjugate
   conditionals.

**Order of steps.** The seed's listing draws :math:`\beta` *before* the
:math:`\gamma` loop. Because the :math:`\gamma` moves integrate :math:`\beta` out, a
:math:`\beta` drawn before them is stale once any :math:`\gamma_j` moves, and feeding
it to the :math:`\nu` updates would not leave the posterior invariant (a partially
collapsed Gibbs sampler must redraw the marginalised block right after the
collapsed step; van Dyk and Park, 2008). Steps 1-2 together draw
:math:`(\gamma, \beta) \mid \nu, y` and step 3 draws :math:`\nu \mid \beta, \gamma, y`,
so the sweep is a valid blocked Gibbs sampler.

**Moves for** :math:`\gamma_j` (``kind``, default ``"rw+scale+flip"`` plus the
sweep-level ``"hmc"``, ``"group"`` and ``"sigma_beta"`` moves of
:mod:`jaxseq.bayes.blocks`):
Metropolis-Hastings moves on :math:`p(\gamma_j \mid \gamma_{-j}, \nu, y)`,
described with their acceptance ratios in :mod:`jaxseq.bayes.moves`: a random walk
(``"rw"``; the prior ratio enters), a multiplicative scale move (``"scale"``; prior
ratio and Jacobian), a sign flip (``"flip"``) and the seed's independence
proposal from the conditional prior (``"prior"``; the prior cancels). Their
scales are tuned during warm-up by :func:`jaxseq.bayes.adaptation.adapt` and
frozen afterwards. The sweep-level moves (Hamiltonian Monte Carlo on all units'
weights at once, joint rescaling of all units with :math:`S_\gamma`, and
:math:`\sigma_\beta` with :math:`\beta` integrated out) run between steps 1 and 2.

**Variable m** (``step(..., hidden=HiddenUnits(...))``, state ``GibbsState(position,
m)``): the unit moves act on the first ``m`` slots, one birth/death attempt
(:mod:`jaxseq.bayes.dimension`, :math:`\beta` integrated out) follows the
sweep-level moves, and steps 2-3 see the active units only (inactive slots hold
zeros).

References:
    D. A. van Dyk and T. Park (2008), "Partially collapsed Gibbs samplers",
    *JASA* 103(482), 790-796.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._typing import Key
from . import _linalg as la
from . import blocks, moves
from . import conditionals as cond
from . import dimension as dim
from .adaptation import Proposal
from .models import Prior

#: Leapfrog steps of the ``"hmc"`` sweep move (its step size is adapted).
HMC_STEPS = 5

__all__ = [
    "Data",
    "GibbsInfo",
    "GibbsState",
    "NetParams",
    "Proposal",
    "beta_prior",
    "init",
    "loglik",
    "step",
]


class NetParams(NamedTuple):
    """A point of the posterior; field names equal the model's sample sites.

    Attributes:
        beta: ``[m]`` output weights. b0: ``[]`` output bias (0 without bias).
        gamma: ``[m, d]`` unit weights (intercept first). mu_beta, prec_beta: ``[]``.
        mu_gamma: ``[d]``. prec_gamma: ``[d, d]`` (:math:`S_\\gamma^{-1}`).
        prec: ``[]`` noise precision :math:`\\sigma^{-2}`.
    """

    beta: Array
    b0: Array
    gamma: Array
    mu_beta: Array
    prec_beta: Array
    mu_gamma: Array
    prec_gamma: Array
    prec: Array


class Data(NamedTuple):
    """``x1`` ``[n, d]`` augmented inputs (leading ones), ``y`` ``[n]`` responses."""

    x1: Array
    y: Array


class GibbsState(NamedTuple):
    """Sampler state: the current ``position`` (:class:`NetParams`) and, when the
    number of hidden units is sampled (:mod:`jaxseq.bayes.dimension`), ``m``
    (``[]`` int): the first ``m`` of the position's units are active, the others
    have ``beta = 0`` and ``gamma = 0``. ``m = None``: all units, fixed."""

    position: NetParams
    m: Array | None = None


class GibbsInfo(NamedTuple):
    """Per-sweep diagnostics (returned, never raised).

    Attributes:
        accept_rw, accept_scale, accept_flip, accept_prior: ``[m]`` acceptance
            probabilities of each unit's moves (:mod:`jaxseq.bayes.moves`; NaN if
            the move is not used).
        accept_hmc, accept_group, accept_sigma_beta: ``[]`` acceptance
            probabilities of the sweep-level moves (:mod:`jaxseq.bayes.blocks`;
            NaN if not used).
        loglik: ``[]`` :math:`\\log p(y \\mid \\beta, \\gamma, \\sigma)` after the
            sweep.
        accept_dim: ``[]`` acceptance probability of the birth/death attempt
            (variable ``m`` only; ``None`` otherwise).
    """

    accept_rw: Array
    accept_scale: Array
    accept_flip: Array
    accept_prior: Array
    accept_hmc: Array
    accept_group: Array
    accept_sigma_beta: Array
    loglik: Array
    accept_dim: Array | None = None


def beta_prior(pos: NetParams, prior: Prior, bias: bool) -> tuple[Array, Array]:
    """Prior mean and variance ``[k]`` of the output layer ``(b0, beta)``."""
    m = pos.beta.shape[0]
    mean = jnp.full((m,), pos.mu_beta)
    var = jnp.full((m,), 1.0 / pos.prec_beta)
    if not bias:
        return mean, var
    dtype = mean.dtype
    return (
        jnp.concatenate([jnp.full((1,), prior.a_0, dtype), mean]),
        jnp.concatenate([jnp.full((1,), prior.A_0, dtype), var]),
    )


def loglik(pos: NetParams, data: Data, bias: bool) -> Float[Array, ""]:
    """:math:`\\sum_i \\log N(y_i \\mid f(x_i), \\sigma^2)` (label invariant)."""
    mean = cond.design(data.x1, pos.gamma, False) @ pos.beta + (pos.b0 if bias else 0.0)
    resid = data.y - mean
    n = data.y.shape[0]
    return 0.5 * (n * jnp.log(pos.prec / (2 * jnp.pi)) - pos.prec * resid @ resid)


def _update_gamma(
    noise, pos, data, prior_mean, prior_var, proposal, bias, kinds, m=None
):
    """The unit loop; with a traced ``m`` only the first ``m`` units move."""
    slots = pos.gamma.shape[0]
    active = None if m is None else jnp.arange(slots) < m
    z = cond.design(data.x1, pos.gamma, bias, active)
    mll = cond.marginal_loglik(z, data.y, pos.prec, prior_mean, prior_var)
    nan = jnp.full((slots, len(moves.MOVES)), jnp.nan, pos.gamma.dtype)

    def body(j, carry):
        gamma, mll, accept = carry
        unit = jax.tree.map(lambda a: a[j], noise)
        gamma, mll, acc = moves.move_unit(
            unit,
            j,
            gamma,
            mll,
            pos,
            data,
            prior_mean,
            prior_var,
            proposal,
            bias=bias,
            kinds=kinds,
            active=active,
        )
        return gamma, mll, accept.at[j].set(acc)

    upper = slots if m is None else m
    return jax.lax.fori_loop(0, upper, body, (pos.gamma, mll, nan))


def _sweep_moves(
    noise, log_u, gamma, mll, pos, data, prior, bias, kinds, proposal, active=None
):
    """The sweep-level moves of :mod:`jaxseq.bayes.blocks` (those in ``kinds``).

    Returns ``(gamma, prec_gamma, prec_beta, accept [3])``; ``mll`` is the marginal
    log-likelihood at the incoming ``gamma``. The ``"hmc"`` leapfrog uses the
    cheaper Gram-matrix marginal likelihood for its gradient only
    (:func:`jaxseq.bayes.blocks.hmc_move` explains why that stays exact).

    With ``active`` (variable ``m``) the inactive units are masked out of the
    design and of the HMC target's prior, so they have no gradient: they drift
    with their momentum, whose kinetic energy cancels in the acceptance ratio,
    and they are not part of the state (the sweep zeroes them). The ``"group"``
    ratio holds for the active units alone (its Jacobian and the units' normal
    densities cancel unit by unit).
    """
    momentum, eps = noise
    tau = jnp.exp(proposal.log_tau_sweep)
    prec_gamma, prec_beta = pos.prec_gamma, pos.prec_beta
    accept = [jnp.array(jnp.nan, gamma.dtype)] * 3

    def mll_at(gamma, prec_beta, marginal=cond.marginal_loglik):
        prior_mean, prior_var = beta_prior(
            pos._replace(prec_beta=prec_beta), prior, bias
        )
        z = cond.design(data.x1, gamma, bias, active)
        return marginal(z, data.y, pos.prec, prior_mean, prior_var)

    if "hmc" in kinds:
        unit_prior = jax.vmap(cond.gamma_log_prior, (0, None, None))
        if active is None:
            log_prior = unit_prior
        else:
            log_prior = lambda *a: jnp.where(active, unit_prior(*a), 0.0)

        def log_target(g, marginal=cond.marginal_loglik):
            lp = log_prior(g, pos.mu_gamma, prec_gamma).sum()
            value = mll_at(g, prec_beta, marginal)
            return value + lp, value

        surrogate = lambda g: log_target(g, cond.marginal_loglik_gram)[0]
        current = log_prior(gamma, pos.mu_gamma, prec_gamma).sum() + mll, mll
        gamma, accept[0], mll = blocks.hmc_move(
            momentum,
            log_u[0],
            gamma,
            log_target,
            proposal.chol,
            tau[0],
            HMC_STEPS,
            surrogate,
            current=current,
            has_aux=True,
        )
    if "group" in kinds:
        gamma, prec_gamma, mll, accept[1] = blocks.group_scale_move(
            tau[1] * eps[0],
            log_u[1],
            gamma,
            prec_gamma,
            pos.mu_gamma,
            mll,
            lambda g: mll_at(g, prec_beta),
            prior,
        )
    if "sigma_beta" in kinds:
        prec_beta, accept[2] = blocks.sigma_beta_move(
            tau[2] * eps[1], log_u[2], prec_beta, mll, lambda p: mll_at(gamma, p), prior
        )
    return gamma, prec_gamma, prec_beta, jnp.stack(accept)


def step(
    key: Key,
    state: GibbsState,
    data: Data,
    prior: Prior,
    proposal: Proposal,
    *,
    bias: bool = True,
    kind: str = moves.DEFAULT,
    hidden: dim.HiddenUnits | None = None,
) -> tuple[GibbsState, GibbsInfo]:
    """One full sweep (module docstring): gamma loop, then beta, then nu.

    All random variates of the sweep are drawn up front in three vectorised calls
    (normals, uniforms, Gammas). This is exact: the Gamma *shapes* of the
    conjugate draws are fixed (only their rates depend on the other blocks, and
    ``Gamma(a, rate) = Gamma(a, 1) / rate``), and it keeps the compiled sweep
    small (each PRNG call inlines a threefry hash) and fast.

    Args:
        key: PRNG key.
        state: current :class:`GibbsState` (with ``m`` when ``hidden`` is given).
        data: :class:`Data` (augmented inputs and responses).
        prior: hyperparameters (:class:`~jaxseq.bayes.Prior`).
        proposal: move scales and shapes (:class:`~jaxseq.bayes.adaptation.Proposal`).
        bias: whether the output bias ``b0`` is sampled (else it stays 0).
        kind: the moves joined by ``"+"``: per unit ``"rw"``, ``"scale"``,
            ``"flip"``, ``"prior"``; per sweep ``"hmc"``, ``"group"``,
            ``"sigma_beta"``
            (:func:`jaxseq.bayes.moves.parse_moves`).
        hidden: sample the number of units too
            (:class:`~jaxseq.bayes.dimension.HiddenUnits`, validated; its ``max``
            equals the position's number of slots): the unit moves act on the
            active units, then one birth/death attempt
            (:mod:`jaxseq.bayes.dimension`) runs before the draw of beta, and the
            hyperparameters' conditionals count the active units only.

    Returns:
        ``(new_state, info)``.
    """
    kinds = moves.parse_moves(kind)
    pos = state.position
    dtype = pos.gamma.dtype
    m, d = pos.gamma.shape
    n, k = data.y.shape[0], m + int(bias)
    variable = hidden is not None
    if variable != (state.m is not None):
        raise ValueError(
            "hidden, state.m: expected both (variable m) or neither, got "
            f"hidden={hidden!r} and state.m={state.m!r}."
        )
    if variable and hidden.max != m:
        raise ValueError(
            f"hidden.max: expected the position's number of slots {m}, got "
            f"{hidden.max}."
        )
    k_norm, k_gamma, k_u = jax.random.split(key, 3)
    # Normals for beta [k], mu_beta [1], mu_gamma [d], the Bartlett factor [d, d],
    # the two sweep-level moves [2], the HMC momentum [m, d], the units' moves
    # [m, 2d + 1] and a newborn unit [d] (variable m); uniforms for the
    # sweep-level moves' decisions [3], the units' [m, 4] and the birth/death
    # attempt [3] (variable m).
    n_sweep = k + 1 + d + d * d + 2 + m * d
    n_units = m * (2 * d + 1)
    eps = jax.random.normal(k_norm, (n_sweep + n_units + d * variable,), dtype)
    if variable:  # (the fixed-m program stays as it was)
        eps_dim, eps = eps[n_sweep + n_units :], eps[: n_sweep + n_units]
    eps, eps_units = eps[:n_sweep], eps[n_sweep:].reshape(m, 2 * d + 1)
    eps_beta, eps_mu_b = eps[:k], eps[k]
    eps_mu_g = eps[k + 1 : k + 1 + d]
    eps_w = eps[k + 1 + d : k + 1 + d + d * d].reshape(d, d)
    eps_sweep, momentum = eps[-2 - m * d : -m * d], eps[-m * d :].reshape(m, d)
    n_unit_u = m * len(moves.MOVES)
    u = jax.random.uniform(k_u, (3 + n_unit_u + 3 * variable,), dtype)
    if variable:
        u_dim, u = u[3 + n_unit_u :], u[: 3 + n_unit_u]
    log_u = jnp.log(u)
    log_u, log_u_units = log_u[:3], log_u[3:].reshape(m, len(moves.MOVES))
    units = moves.UnitNoise(
        eps_units[:, :d], eps_units[:, d : 2 * d], eps_units[:, 2 * d], log_u_units
    )

    def conjugate_variates(count):
        """Gamma(shape, 1) variates of the conjugate draws of prec_beta, prec and
        the Bartlett factor of prec_gamma, for ``count`` active units."""
        shapes = jnp.concatenate(
            [
                jnp.array([(prior.c_b + count) / 2, (prior.s + n) / 2], dtype),
                (prior.c_gamma + count - jnp.arange(d, dtype=dtype)) / 2,
            ]
        )
        return cond.gamma_variates(k_gamma, shapes)

    if not variable:
        std_gamma = conjugate_variates(m)

    active = jnp.arange(m) < state.m if variable else None
    prior_mean, prior_var = beta_prior(pos, prior, bias)
    gamma, mll, accept = _update_gamma(
        units, pos, data, prior_mean, prior_var, proposal, bias, kinds, state.m
    )
    gamma, prec_gamma, prec_beta, acc_sweep = _sweep_moves(
        (momentum, eps_sweep),
        log_u,
        gamma,
        mll,
        pos,
        data,
        prior,
        bias,
        kinds,
        proposal,
        active,
    )
    prior_mean, prior_var = beta_prior(pos._replace(prec_beta=prec_beta), prior, bias)
    units_m, acc_dim = state.m, None
    if variable:
        noise = dim.DimensionNoise(eps_dim, u_dim)
        gamma, units_m, acc_dim = _birth_death(
            noise,
            gamma,
            state.m,
            pos,
            prec_gamma,
            data,
            prior_mean,
            prior_var,
            bias,
            hidden,
        )
        active = jnp.arange(m) < units_m
        gamma = jnp.where(active[:, None], gamma, 0.0)
        # The conjugate draws below count the units after the move.
        std_gamma = conjugate_variates(units_m.astype(dtype))
    z = cond.design(data.x1, gamma, bias, active)
    coef = cond.beta_from_noise(eps_beta, z, data.y, pos.prec, prior_mean, prior_var)
    b0, beta = (coef[0], coef[1:]) if bias else (pos.b0, coef)
    if variable:
        beta = jnp.where(active, beta, 0.0)

    mean, var = cond.mu_beta_params(beta, prec_beta, prior.a_beta, prior.A_beta, active)
    mu_beta = mean + jnp.sqrt(var) * eps_mu_b
    _, rate = cond.prec_beta_params(beta, mu_beta, prior.c_b, prior.C_b, active)
    prec_beta = std_gamma[0] / rate
    a_gamma = jnp.asarray(prior.a_gamma, dtype)
    A_gamma = jnp.asarray(prior.A_gamma, dtype)
    mean, chol = cond.mu_gamma_params(gamma, prec_gamma, a_gamma, A_gamma, active)
    mu_gamma = mean + la.solve_triangular(chol, eps_mu_g, lower=True, transpose=True)
    C_gamma = jnp.asarray(prior.C_gamma, dtype)
    _, factor = cond.prec_gamma_params(gamma, mu_gamma, prior.c_gamma, C_gamma, active)
    prec_gamma = cond.bartlett(2.0 * std_gamma[2:], eps_w, factor)
    _, rate = cond.prec_params(data.y - z @ coef, prior.s, prior.S)
    prec = std_gamma[1] / rate
    new = NetParams(beta, b0, gamma, mu_beta, prec_beta, mu_gamma, prec_gamma, prec)
    info = GibbsInfo(*accept.T, *acc_sweep, loglik(new, data, bias), acc_dim)
    return GibbsState(new, units_m), info


def _birth_death(
    noise, gamma, m, pos, prec_gamma, data, prior_mean, prior_var, bias, hidden
):
    """One birth/death attempt (:mod:`jaxseq.bayes.dimension`), beta integrated
    out; returns ``(gamma, m, acceptance probability)``."""
    slots = gamma.shape[0]
    if slots == 1:  # m = 1 is the only value
        return gamma, m, jnp.array(jnp.nan, gamma.dtype)
    dtype = gamma.dtype
    log_prior = jnp.asarray(dim.log_prior_m(hidden), dtype)
    birth_prob = jnp.asarray(dim.birth_probabilities(hidden), dtype)

    def marginal(g, units):
        z = cond.design(data.x1, g, bias, jnp.arange(slots) < units)
        return cond.marginal_loglik(z, data.y, pos.prec, prior_mean, prior_var)

    cand, cand_m, _ = dim.propose(noise, gamma, m, pos.mu_gamma, prec_gamma, birth_prob)
    log_r = dim.log_accept_ratio(
        m, cand_m, marginal(cand, cand_m), marginal(gamma, m), log_prior, birth_prob
    )
    log_r = jnp.where(jnp.isnan(log_r), -jnp.inf, log_r)
    ok = jnp.log(noise.u[2]) < log_r
    return (
        jnp.where(ok, cand, gamma),
        jnp.where(ok, cand_m, m),
        jnp.exp(jnp.minimum(log_r, 0.0)),
    )


def init(position: NetParams) -> GibbsState:
    """Wrap a starting point as a :class:`GibbsState` (deterministic, no key)."""
    return GibbsState(jax.tree.map(jnp.asarray, position))
