r"""Sweep-level Metropolis-Hastings moves that break the hierarchical couplings.

Single-unit Metropolis moves cannot follow correlations *between* units (several
units changing together to keep the fit), and a centred hierarchical Gibbs
sampler mixes slowly along two directions of this model: the common scale of the
hidden units' weights and their covariance
:math:`S_\gamma` (small :math:`S_\gamma` keeps every :math:`\gamma_j` small, which
keeps :math:`S_\gamma` small), and the output weights' scale :math:`\sigma_\beta`
with :math:`\beta`. Three moves, all with :math:`\beta` integrated out (like the
unit moves) and all exact Metropolis-Hastings kernels for the conditional they
update, address these. They run after the unit loop and before the draw
of :math:`\beta`, so the sweep stays a valid partially collapsed Gibbs sampler.

* ``"hmc"``: Hamiltonian Monte Carlo on all :math:`\gamma_j` jointly, targeting
  :math:`p(\gamma \mid \nu, y)`, in coordinates whitened by the random walk's
  adapted shapes (:func:`hmc_move`). Inside the Gibbs sweep the hyperparameters
  are fixed, so HMC sees a smooth target without the hierarchical funnels that
  trouble NUTS on the full posterior.
* ``"group"``: for :math:`\delta \sim N(0, \tau_g^2)`, move
  :math:`\gamma_j \to \mu_\gamma + e^{\delta}(\gamma_j - \mu_\gamma)` for all ``j``
  and :math:`W = S_\gamma^{-1} \to e^{-2\delta} W` jointly, targeting
  :math:`p(\gamma, W \mid \text{rest}, y)`. The normal densities of the
  :math:`\gamma_j` are invariant under the joint move and their change of
  :math:`\log|W|` cancels the Jacobian of the ``m d`` weights; with the
  Jacobian :math:`e^{-\delta d(d+1)}` of the symmetric matrix and the
  :math:`\mathrm{Wishart}(c, (cC)^{-1})` prior,

  .. math::

      \log r = \log\frac{p(y\mid\tilde\gamma,\nu)}{p(y\mid\gamma,\nu)}
               - c\,d\,\delta - \tfrac{c}{2}\,\mathrm{tr}(C W)\,(e^{-2\delta} - 1).

* ``"sigma_beta"``: a random walk on :math:`\log\sigma_\beta^{-2}` targeting
  :math:`p(\sigma_\beta^{-2} \mid \gamma, \mu_\beta, \sigma, y)` with :math:`\beta`
  integrated out: for :math:`\lambda \to \lambda e^{\delta}`, with the
  :math:`\mathrm{Gamma}(a, b)` prior (:math:`a = c_b/2`, :math:`b = c_b C_b/2`) and
  the Jacobian :math:`e^{\delta}`,

  .. math::

      \log r = \log\frac{p(y\mid\gamma,\tilde\lambda)}{p(y\mid\gamma,\lambda)}
               + a\,\delta - b\,(\tilde\lambda - \lambda).

The conjugate redraws of :math:`S_\gamma^{-1}` and :math:`\sigma_\beta^{-2}` later
in the sweep stay; these moves only add the missing directions.

References:
    R. M. Neal (2011), "MCMC using Hamiltonian dynamics", *Handbook of Markov
    Chain Monte Carlo*, ch. 5. J. S. Liu and Y. N. Wu (1999), "Parameter
    expansion for data augmentation", *JASA* 94(448). Y. Yu and X.-L. Meng
    (2011), "To center or not to center", *JCGS* 20(3).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from . import _linalg as la
from .models import Prior

__all__ = [
    "group_scale_candidate",
    "group_scale_move",
    "hmc_move",
    "leapfrog",
    "sigma_beta_candidate",
    "sigma_beta_move",
]


def _accept(log_r: Array, log_u: Array) -> tuple[Array, Array]:
    log_r = jnp.where(jnp.isnan(log_r), -jnp.inf, log_r)
    return log_u < log_r, jnp.exp(jnp.minimum(log_r, 0.0))


def group_scale_candidate(
    delta: Float[Array, ""],
    gamma: Float[Array, "m d"],
    prec_gamma: Float[Array, "d d"],
    mu_gamma: Float[Array, " d"],
    prior: Prior,
) -> tuple[Array, Array, Array]:
    r"""The ``"group"`` candidate for the step ``delta`` and the part of its log
    ratio other than the marginal likelihoods' (module docstring).

    Returns:
        ``(gamma', prec_gamma', log_correction)``: ``log r = mll(gamma') -
        mll(gamma) + log_correction``.
    """
    d = gamma.shape[1]
    cand = mu_gamma + jnp.exp(delta) * (gamma - mu_gamma)
    c = prior.c_gamma
    trace = jnp.trace(jnp.asarray(prior.C_gamma, gamma.dtype) @ prec_gamma)
    correction = -c * d * delta - 0.5 * c * trace * jnp.expm1(-2.0 * delta)
    return cand, jnp.exp(-2.0 * delta) * prec_gamma, correction


def group_scale_move(
    delta: Float[Array, ""],
    log_u: Float[Array, ""],
    gamma: Float[Array, "m d"],
    prec_gamma: Float[Array, "d d"],
    mu_gamma: Float[Array, " d"],
    mll: Float[Array, ""],
    marginal: Any,
    prior: Prior,
) -> tuple[Array, Array, Array]:
    r"""The ``"group"`` move (module docstring) for a given step ``delta``.

    Args:
        delta: the log scale step. log_u: log of a uniform for the decision.
        gamma, prec_gamma, mu_gamma: current values. mll: marginal
            log-likelihood at ``gamma``. marginal: ``gamma -> mll`` function.
        prior: supplies ``c_gamma`` and ``C_gamma``.

    Returns:
        ``(gamma, prec_gamma, mll, acceptance probability)``.
    """
    cand, cand_prec, correction = group_scale_candidate(
        delta, gamma, prec_gamma, mu_gamma, prior
    )
    cand_mll = marginal(cand)
    ok, prob = _accept(cand_mll - mll + correction, log_u)
    gamma = jnp.where(ok, cand, gamma)
    prec_gamma = jnp.where(ok, cand_prec, prec_gamma)
    return gamma, prec_gamma, jnp.where(ok, cand_mll, mll), prob


def sigma_beta_candidate(
    delta: Float[Array, ""], prec_beta: Float[Array, ""], prior: Prior
) -> tuple[Array, Array]:
    r"""The ``"sigma_beta"`` candidate :math:`\lambda e^{\delta}` and the part of
    its log ratio other than the marginal likelihoods' (module docstring)."""
    cand = prec_beta * jnp.exp(delta)
    a, b = prior.c_b / 2, prior.c_b * prior.C_b / 2
    return cand, a * delta - b * (cand - prec_beta)


def sigma_beta_move(
    delta: Float[Array, ""],
    log_u: Float[Array, ""],
    prec_beta: Float[Array, ""],
    mll: Float[Array, ""],
    marginal: Any,
    prior: Prior,
) -> tuple[Array, Array]:
    r"""The ``"sigma_beta"`` move (module docstring) for a given step ``delta``.

    Args:
        delta: the log step. log_u: log of a uniform. prec_beta: current
            :math:`\sigma_\beta^{-2}`. mll: marginal log-likelihood at it.
        marginal: ``prec_beta -> mll`` function (``gamma`` fixed).
        prior: supplies ``c_b`` and ``C_b``.

    Returns:
        ``(prec_beta, acceptance probability)``.
    """
    cand, correction = sigma_beta_candidate(delta, prec_beta, prior)
    ok, prob = _accept(marginal(cand) - mll + correction, log_u)
    return jnp.where(ok, cand, prec_beta), prob


def leapfrog(
    momentum: Float[Array, "m d"],
    gamma: Float[Array, "m d"],
    grad_fn: Any,
    chol: Float[Array, "m d d"],
    step_size: Float[Array, ""],
    num_steps: int,
) -> tuple[Array, Array]:
    r"""``num_steps`` leapfrog steps of :func:`hmc_move`'s dynamics in the whitened
    coordinates :math:`u_j = L_j^{-1}\gamma_j` (``chol`` holds the :math:`L_j`).

    The ``num_steps + 1`` gradients are evaluated in one loop (the half kicks of
    consecutive steps merged), so the compiled move holds one copy of the
    gradient.

    Args:
        grad_fn: ``gamma [m, d] -> [m, d]``, the gradient of the log target (or of
            any fixed surrogate) in the original coordinates.

    Returns:
        ``(gamma', momentum')`` at the end of the trajectory.
    """
    to_gamma = lambda u: jnp.einsum("mde,me->md", chol, u)
    # d/du f(L u) = L' grad f, unit by unit.
    grad = lambda u: -jnp.einsum("mde,md->me", chol, grad_fn(to_gamma(u)))
    u0 = jax.vmap(lambda c, g: la.solve_triangular(c, g, lower=True))(chol, gamma)

    def step(i, state):
        # Step i's closing half kick and step i + 1's opening half kick use the
        # same gradient; the first iteration only opens, the last only closes.
        u, p = state
        g = grad(u)
        kick = jnp.where(i > 0, 0.5, 0.0) + jnp.where(i < num_steps, 0.5, 0.0)
        p = p - (kick * step_size) * g
        u = jnp.where(i < num_steps, u + step_size * p, u)
        return u, p

    u1, p1 = jax.lax.fori_loop(0, num_steps + 1, step, (u0, momentum))
    return to_gamma(u1), p1


def hmc_move(
    momentum: Float[Array, "m d"],
    log_u: Float[Array, ""],
    gamma: Float[Array, "m d"],
    log_target: Any,
    chol: Float[Array, "m d d"],
    step_size: Float[Array, ""],
    num_steps: int,
    grad_target: Any = None,
    *,
    current: Any = None,
    has_aux: bool = False,
) -> tuple[Array, ...]:
    r"""The ``"hmc"`` move: Hamiltonian Monte Carlo on all units' weights at once.

    Targets :math:`\pi(\gamma) \propto p(y\mid\gamma,\nu)\prod_j N(\gamma_j\mid
    \mu_\gamma, S_\gamma)` (``log_target``) with :math:`\beta` integrated out, in the
    whitened coordinates :math:`u_j = L_j^{-1}\gamma_j` given by the random walk's
    adapted shapes ``chol``; ``num_steps`` leapfrog steps of ``step_size``, then
    a Metropolis correction :math:`\min\{1, e^{H(u, p) - H(\tilde u, \tilde p)}\}`
    (the linear change of variables has a constant Jacobian, which cancels).

    ``grad_target`` (default ``log_target``) supplies the gradient used by the
    leapfrog integrator. Any fixed function keeps the move exact, because the
    integrator stays volume preserving and reversible and the acceptance uses
    ``log_target``; a cheaper surrogate only lowers the acceptance rate.

    The trajectory is :func:`leapfrog`'s; ``current`` (``log_target`` at
    ``gamma``, when the caller knows it) saves one evaluation of ``log_target``.

    Args:
        has_aux: ``log_target`` returns ``(value, aux)`` (e.g. the marginal
            likelihood inside it); ``current`` is then ``(value, aux)`` too and
            the aux of the returned point is returned as well.

    Returns:
        ``(gamma, acceptance probability)``, plus ``aux`` with ``has_aux``.
    """
    target = log_target if has_aux else lambda g: (log_target(g), ())
    if grad_target is None:
        grad_target = lambda g: target(g)[0]
    gamma1, p1 = leapfrog(
        momentum, gamma, jax.grad(grad_target), chol, step_size, num_steps
    )
    value0, aux0 = target(gamma) if current is None else current
    value1, aux1 = target(gamma1)
    h0 = -value0 + 0.5 * jnp.sum(momentum**2)
    h1 = -value1 + 0.5 * jnp.sum(p1**2)
    ok, prob = _accept(h0 - h1, log_u)
    gamma = jnp.where(ok, gamma1, gamma)
    if not has_aux:
        return gamma, prob
    aux = jax.tree.map(lambda a, b: jnp.where(ok, a, b), aux1, aux0)
    return gamma, prob, aux
