r"""The seed's blocked Gibbs/Metropolis sampler as pure, blackjax-style functions.

One sweep (:func:`step`) of the Müller–Ríos Insua sampler, with
:math:`\nu = (\mu_\beta, \sigma_\beta, \mu_\gamma, S_\gamma, \sigma)`:

1. for ``j = 1..m``: Metropolis on :math:`\gamma_j` targeting
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
All these Metropolis-Hastings moves run as one ``lax.scan`` with one marginal
likelihood in its body (:func:`_metropolis`), and step 2 reuses the factors of
the last accepted point.

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


class _Moving(NamedTuple):
    """What the Metropolis-Hastings moves of a sweep change (``m``: ``[]`` int,
    the number of slots when ``m`` is fixed)."""

    gamma: Array
    prec_gamma: Array
    prec_beta: Array
    m: Array


def _hmc_gradient(gamma, moving, pos, data, prior, bias, active):
    """Gradient ``[m, d]`` of the ``"hmc"`` move's surrogate log target (the
    Gram-matrix marginal likelihood plus the units' normal prior) in closed form
    (:func:`~jaxseq.bayes.conditionals.marginal_loglik_gram_grad` and the chain
    rule through the logistic units); inactive units get none."""
    prior_mean, prior_var = beta_prior(
        pos._replace(prec_beta=moving.prec_beta), prior, bias
    )
    s = jax.nn.sigmoid(data.x1 @ gamma.T)
    z = cond.design(data.x1, gamma, bias, active)
    grad_z = cond.marginal_loglik_gram_grad(z, data.y, pos.prec, prior_mean, prior_var)
    grad_units = grad_z[:, 1:] if bias else grad_z
    grad = (grad_units * s * (1.0 - s)).T @ data.x1
    grad = grad - (gamma - pos.mu_gamma) @ moving.prec_gamma
    return grad if active is None else jnp.where(active[:, None], grad, 0.0)


def _dimension_candidate(noise, moving, mu_gamma, hidden):
    """The birth/death candidate (:func:`jaxseq.bayes.dimension.propose`) and the
    part of its log ratio other than the marginal likelihoods'."""
    dtype = moving.gamma.dtype
    log_prior = jnp.asarray(dim.log_prior_m(hidden), dtype)
    birth_prob = jnp.asarray(dim.birth_probabilities(hidden), dtype)
    cand, cand_m, _ = dim.propose(
        noise, moving.gamma, moving.m, mu_gamma, moving.prec_gamma, birth_prob
    )
    zero = jnp.zeros((), dtype)
    correction = dim.log_accept_ratio(
        moving.m, cand_m, zero, zero, log_prior, birth_prob
    )
    return moving._replace(gamma=cand, m=cand_m), correction


def _metropolis(
    noise, moving, pos, data, prior, proposal, bias, kinds, hidden
) -> tuple[_Moving, tuple[Array, Array, Array], Array]:
    r"""Every Metropolis-Hastings move of a sweep, :math:`\beta` integrated out, as
    *one* ``lax.scan`` over a static schedule of moves whose body evaluates one
    marginal likelihood (``lax.switch`` picks the candidate), so the compiled
    sweep holds one copy of that linear algebra however many moves there are.

    The schedule: a first step that evaluates the marginal likelihood at the
    incoming point (always accepted), the unit moves of :mod:`jaxseq.bayes.moves`
    for units ``0..m-1`` (each unit's moves in :data:`~jaxseq.bayes.moves.MOVES`
    order; with variable ``m`` the inactive slots' moves are rejected), then
    ``"hmc"``, ``"group"`` and ``"sigma_beta"`` (:mod:`jaxseq.bayes.blocks`) and,
    with variable ``m``, one birth/death attempt (:mod:`jaxseq.bayes.dimension`).
    Every candidate's log ratio is ``mll(candidate) - mll + correction``; each
    move is an exact Metropolis-Hastings kernel for
    :math:`p(\gamma, S_\gamma^{-1}, \sigma_\beta^{-2}, m \mid \text{rest}, y)`
    or a conditional of it, so their composition is too.

    Args:
        noise: ``(units, momentum, eps_sweep, dim_noise, log_u)``: the units'
            :class:`~jaxseq.bayes.moves.UnitNoise` (``[m, ...]``), the HMC
            momentum ``[m, d]``, the two sweep-level normals ``[2]``, the
            birth/death :class:`~jaxseq.bayes.dimension.DimensionNoise` (or
            ``None``) and one log uniform per scheduled move.

    Returns:
        ``(moving, (mll, beta_hat, L_M), accept)``: the final point, the
        marginal likelihood and posterior of :math:`\beta` there
        (:func:`~jaxseq.bayes.conditionals.marginal_posterior`), and the
        acceptance probabilities ``[m * 4 + 4]`` (units' moves by
        ``[unit, move]``, then hmc, group, sigma_beta, birth/death; NaN when not
        used).
    """
    units, momentum, eps_sweep, dim_noise, log_u = noise
    slots, d = moving.gamma.shape
    dtype = moving.gamma.dtype
    variable = hidden is not None
    tau = jnp.exp(proposal.log_tau_sweep)
    n_moves = len(moves.MOVES)
    sweep_slot = slots * n_moves  # accept index of "hmc"; then group, sigma_beta, dim

    def active_of(m):
        return jnp.arange(slots) < m if variable else None

    def evaluate(moving):
        prior_mean, prior_var = beta_prior(
            pos._replace(prec_beta=moving.prec_beta), prior, bias
        )
        z = cond.design(data.x1, moving.gamma, bias, active_of(moving.m))
        return cond.marginal_posterior(z, data.y, pos.prec, prior_mean, prior_var)

    def refresh(moving, j):
        return moving, jnp.asarray(jnp.inf, dtype)

    def unit_move(kind):
        index = moves.MOVES.index(kind)

        def branch(moving, j):
            unit_pos = pos._replace(prec_gamma=moving.prec_gamma)
            unit = jax.tree.map(lambda a: a[j], units)
            gamma = moving.gamma
            cand, log_jac = moves._candidate(index, j, gamma, unit, unit_pos, proposal)
            zero = jnp.zeros((), dtype)
            correction = moves._log_ratio(
                index, cand, gamma[j], zero, zero, unit_pos, log_jac
            )
            if variable:  # an inactive slot does not move
                correction = jnp.where(j < moving.m, correction, -jnp.inf)
            return moving._replace(gamma=gamma.at[j].set(cand)), correction

        return branch

    def hmc(moving, j):
        active = active_of(moving.m)
        grad = lambda g: _hmc_gradient(g, moving, pos, data, prior, bias, active)
        gamma1, p1 = blocks.leapfrog(
            momentum, moving.gamma, grad, proposal.chol, tau[0], HMC_STEPS
        )

        def log_prior(g):
            lp = jax.vmap(cond.gamma_log_prior, (0, None, None))(
                g, pos.mu_gamma, moving.prec_gamma
            )
            return jnp.sum(lp if active is None else jnp.where(active, lp, 0.0))

        kinetic = 0.5 * (jnp.sum(momentum**2) - jnp.sum(p1**2))
        correction = log_prior(gamma1) - log_prior(moving.gamma) + kinetic
        return moving._replace(gamma=gamma1), correction

    def group(moving, j):
        cand, cand_prec, correction = blocks.group_scale_candidate(
            tau[1] * eps_sweep[0],
            moving.gamma,
            moving.prec_gamma,
            pos.mu_gamma,
            prior,
        )
        return moving._replace(gamma=cand, prec_gamma=cand_prec), correction

    def sigma_beta(moving, j):
        cand, correction = blocks.sigma_beta_candidate(
            tau[2] * eps_sweep[1], moving.prec_beta, prior
        )
        return moving._replace(prec_beta=cand), correction

    def dimension(moving, j):
        return _dimension_candidate(dim_noise, moving, pos.mu_gamma, hidden)

    # The static schedule: (branch, unit, accept index) per step.
    branches, schedule = [refresh], [(0, 0, sweep_slot + 4)]
    for kind in kinds.unit:
        branches.append(unit_move(kind))
    for j in range(slots):
        for b, kind in enumerate(kinds.unit):
            schedule.append((1 + b, j, j * n_moves + moves.MOVES.index(kind)))
    for name, branch in (("hmc", hmc), ("group", group), ("sigma_beta", sigma_beta)):
        if name in kinds:
            branches.append(branch)
            schedule.append(
                (len(branches) - 1, 0, sweep_slot + moves.SWEEP_MOVES.index(name))
            )
    if variable and slots > 1:  # with m_max = 1, m = 1 is the only value
        branches.append(dimension)
        schedule.append((len(branches) - 1, 0, sweep_slot + 3))
    which, unit_index, slot = (
        jnp.asarray(c, jnp.int32) for c in zip(*schedule, strict=True)
    )

    def body(carry, xs):
        moving, (mll, mean, chol), accept = carry
        which, j, slot, log_u = xs
        cand, correction = jax.lax.switch(which, branches, moving, j)
        cand_mll, cand_mean, cand_chol = evaluate(cand)
        log_r = cand_mll - mll + correction
        log_r = jnp.where(which == 0, jnp.inf, log_r)  # the first step evaluates
        # NaN (e.g. a numerically singular candidate) is rejected.
        log_r = jnp.where(jnp.isnan(log_r), -jnp.inf, log_r)
        ok = log_u < log_r
        pick = lambda a, b: jnp.where(ok, a, b)
        moving = jax.tree.map(pick, cand, moving)
        post = jax.tree.map(pick, (cand_mll, cand_mean, cand_chol), (mll, mean, chol))
        prob = jnp.where(
            jnp.isneginf(correction), jnp.nan, jnp.exp(jnp.minimum(log_r, 0.0))
        )
        return (moving, post, accept.at[slot].set(prob)), None

    k = slots + int(bias)
    post = (
        jnp.zeros((), dtype),
        jnp.zeros((k,), dtype),
        jnp.eye(k, dtype=dtype),
    )
    accept = jnp.full((sweep_slot + 5,), jnp.nan, dtype)
    carry = (moving, post, accept)
    xs = (which, unit_index, slot, log_u[: len(schedule)])
    (moving, post, accept), _ = jax.lax.scan(body, carry, xs)
    return moving, post, accept[:-1]


def step(
    key: Key,
    state: GibbsState,
    data: Data,
    prior: Prior,
    proposal: Proposal,
    *,
    bias: bool = True,
    kind: str | moves.Moves = moves.DEFAULT,
    hidden: dim.HiddenUnits | None = None,
) -> tuple[GibbsState, GibbsInfo]:
    """One full sweep (module docstring): gamma moves, then beta, then nu.

    All random variates of the sweep are drawn up front in two vectorised calls
    (random words for the normals and uniforms, then the Gammas). This is
    exact: the Gamma *shapes* of the conjugate draws are fixed (only their rates
    depend on the other blocks, and ``Gamma(a, rate) = Gamma(a, 1) / rate``),
    and it keeps the compiled sweep small (each PRNG call inlines a threefry
    hash loop) and fast. The Metropolis-Hastings moves run as one scan with one
    marginal likelihood in its body (:func:`_metropolis`), and :math:`\\beta`
    is drawn from the posterior that the last accepted move factorised, so the
    compiled sweep holds a single copy of that linear algebra.

    Args:
        key: PRNG key.
        state: current :class:`GibbsState` (with ``m`` when ``hidden`` is given).
        data: :class:`Data` (augmented inputs and responses).
        prior: hyperparameters (:class:`~jaxseq.bayes.Prior`).
        proposal: move scales and shapes (:class:`~jaxseq.bayes.adaptation.Proposal`).
        bias: whether the output bias ``b0`` is sampled (else it stays 0).
        kind: the moves, a :class:`~jaxseq.bayes.moves.Moves` or its string form
            joined by ``"+"``: per unit ``"rw"``, ``"scale"``, ``"flip"``,
            ``"prior"``; per sweep ``"hmc"``, ``"group"``, ``"sigma_beta"``
            (:meth:`jaxseq.bayes.moves.Moves.parse`; parse it once outside a loop).
        hidden: sample the number of units too
            (:class:`~jaxseq.bayes.dimension.HiddenUnits`, validated; its ``max``
            equals the position's number of slots): the unit moves act on the
            active units, then one birth/death attempt
            (:mod:`jaxseq.bayes.dimension`) runs before the draw of beta, and the
            hyperparameters' conditionals count the active units only.

    Returns:
        ``(new_state, info)``.
    """
    kinds = moves.as_moves(kind, "kind")
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
    k_words, k_gamma = jax.random.split(key)
    # Normals for beta [k], mu_beta [1], mu_gamma [d], the Bartlett factor [d, d],
    # the two sweep-level moves [2], the HMC momentum [m, d], the units' moves
    # [m, 2d + 1] and a newborn unit [d] (variable m); uniforms for the
    # birth/death proposal [2] and one decision per scheduled move (at most
    # 1 + 4m + 4).
    n_sweep = k + 1 + d + d * d + 2 + m * d
    n_units = m * (2 * d + 1)
    n_normal = n_sweep + n_units + d * variable
    n_steps = 1 + m * len(kinds.unit) + len(kinds.sweep) + int(variable)
    # One PRNG call for the normals and the uniforms (each call compiles to a
    # threefry hash loop), turned into variates as jax.random does.
    words = cond.random_words(k_words, n_normal + 2 + n_steps, dtype)
    eps = cond.normal_from_words(words[:n_normal], dtype)
    u = cond.uniform_from_words(words[n_normal:], dtype)
    eps_dim = eps[n_sweep + n_units :]
    eps, eps_units = eps[:n_sweep], eps[n_sweep : n_sweep + n_units]
    eps_units = eps_units.reshape(m, 2 * d + 1)
    eps_beta, eps_mu_b = eps[:k], eps[k]
    eps_mu_g = eps[k + 1 : k + 1 + d]
    eps_w = eps[k + 1 + d : k + 1 + d + d * d].reshape(d, d)
    eps_sweep, momentum = eps[-2 - m * d : -m * d], eps[-m * d :].reshape(m, d)
    units = moves.UnitNoise(
        eps_units[:, :d],
        eps_units[:, d : 2 * d],
        eps_units[:, 2 * d],
        jnp.zeros((m, len(moves.MOVES)), dtype),  # (decisions: one per step below)
    )
    dim_noise = dim.DimensionNoise(eps_dim, u[:3]) if variable else None
    moving = _Moving(
        pos.gamma,
        pos.prec_gamma,
        pos.prec_beta,
        state.m if variable else jnp.asarray(m, jnp.int32),
    )
    noise = (units, momentum, eps_sweep, dim_noise, jnp.log(u[2:]))
    moving, (_, mean, chol_m), accept = _metropolis(
        noise, moving, pos, data, prior, proposal, bias, kinds, hidden
    )
    gamma, prec_gamma, prec_beta = moving.gamma, moving.prec_gamma, moving.prec_beta
    units_m, active, count = None, None, m
    if variable:
        units_m = moving.m
        active = jnp.arange(m) < units_m
        gamma = jnp.where(active[:, None], gamma, 0.0)
        count = units_m.astype(dtype)  # the conjugate draws count the active units
    # Gamma(shape, 1) variates of the conjugate draws of prec_beta, prec and the
    # Bartlett factor of prec_gamma.
    shapes = jnp.concatenate(
        [
            jnp.array([(prior.c_b + count) / 2, (prior.s + n) / 2], dtype),
            (prior.c_gamma + count - jnp.arange(d, dtype=dtype)) / 2,
        ]
    )
    std_gamma = cond.gamma_variates(k_gamma, shapes)
    _, prior_var = beta_prior(pos._replace(prec_beta=prec_beta), prior, bias)
    z = cond.design(data.x1, gamma, bias, active)
    coef = cond.beta_from_posterior(eps_beta, mean, chol_m, prior_var)
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
    n_moves = len(moves.MOVES)
    acc_units = accept[: m * n_moves].reshape(m, n_moves)
    acc_sweep = accept[m * n_moves : m * n_moves + 3]
    acc_dim = accept[-1] if variable else None
    info = GibbsInfo(*acc_units.T, *acc_sweep, loglik(new, data, bias), acc_dim)
    return GibbsState(new, units_m), info


def _birth_death(
    noise, gamma, m, pos, prec_gamma, data, prior_mean, prior_var, bias, hidden
):
    """One birth/death attempt (:mod:`jaxseq.bayes.dimension`), beta integrated
    out, decided by ``noise.u[2]``; returns ``(gamma, m, acceptance
    probability)``. (The sweep runs the same candidate inside
    :func:`_metropolis`.)"""
    slots = gamma.shape[0]
    if slots == 1:  # m = 1 is the only value
        return gamma, m, jnp.array(jnp.nan, gamma.dtype)

    def marginal(g, units):
        z = cond.design(data.x1, g, bias, jnp.arange(slots) < units)
        return cond.marginal_loglik(z, data.y, pos.prec, prior_mean, prior_var)

    moving = _Moving(gamma, prec_gamma, pos.prec_beta, m)
    cand, correction = _dimension_candidate(noise, moving, pos.mu_gamma, hidden)
    log_r = marginal(cand.gamma, cand.m) - marginal(gamma, m) + correction
    log_r = jnp.where(jnp.isnan(log_r), -jnp.inf, log_r)
    ok = jnp.log(noise.u[2]) < log_r
    return (
        jnp.where(ok, cand.gamma, gamma),
        jnp.where(ok, cand.m, m),
        jnp.exp(jnp.minimum(log_r, 0.0)),
    )


def init(position: NetParams) -> GibbsState:
    """Wrap a starting point as a :class:`GibbsState` (deterministic, no key)."""
    return GibbsState(jax.tree.map(jnp.asarray, position))
