r"""Metropolis-Hastings moves for one unit's weights, :math:`\beta` integrated out.

The target is :math:`\pi(\gamma_j) \propto p(y \mid \gamma, \nu)\,
N(\gamma_j \mid \mu_\gamma, S_\gamma)`, with the marginal likelihood of
:func:`~jaxseq.bayes.conditionals.marginal_loglik`. Four moves, applied in this
order when several are requested (``"rw+scale+flip"``, then the sweep-level
moves of :mod:`jaxseq.bayes.blocks`, is the default):

* ``"rw"``: random walk :math:`\tilde\gamma_j = \gamma_j + e^{\ell_j} L_j\varepsilon`,
  :math:`\varepsilon \sim N(0, I_d)`. Symmetric, so

  .. math:: a = \min\Big\{1, \frac{p(y\mid\tilde\gamma,\nu)\,N(\tilde\gamma_j\mid
            \mu_\gamma,S_\gamma)}{p(y\mid\gamma,\nu)\,N(\gamma_j\mid\mu_\gamma,
            S_\gamma)}\Big\}

  (the prior ratio enters).
* ``"scale"``: :math:`\tilde\gamma_j = e^{\delta}\gamma_j`,
  :math:`\delta \sim N(0, \tau_j^2)`: a symmetric random walk on
  :math:`\log\|\gamma_j\|` that keeps the unit's hyperplane and changes its
  steepness. The map has Jacobian :math:`e^{d\delta}`, so
  :math:`a = \min\{1, \frac{\pi(\tilde\gamma_j)}{\pi(\gamma_j)} e^{d\delta}\}`.
  It moves along the ridge where a steeper unit and a smaller output weight
  fit equally well, which random walks cross slowly.
* ``"flip"``: :math:`\tilde\gamma_j = -\gamma_j`, a deterministic involution
  (Jacobian 1), so :math:`a = \min\{1, \pi(-\gamma_j)/\pi(\gamma_j)\}`. As
  :math:`\psi(-t) = 1 - \psi(t)`, with an output bias the flipped unit spans the
  same fits (the bias absorbs :math:`\beta_j`); only the priors of the output
  layer and of :math:`\gamma_j` change the marginal likelihood, so these nearly
  symmetric modes, separated by a barrier for local moves, are swapped in one step.
* ``"prior"``: the seed's independence proposal from the conditional prior
  :math:`\tilde\gamma_j \sim N(\mu_\gamma, S_\gamma)`; the proposal density
  cancels the prior, leaving
  :math:`a = \min\{1, p(y\mid\tilde\gamma,\nu)/p(y\mid\gamma,\nu)\}`.

Each move is a valid Metropolis-Hastings kernel for :math:`\pi`, so any
composition is too. The random variates are passed in (:class:`UnitNoise`), so
a sweep can draw them all at once; :func:`update_unit` draws them from a key.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._typing import Key
from . import _linalg as la
from . import conditionals as cond
from .adaptation import Proposal

__all__ = [
    "MOVES",
    "Moves",
    "as_moves",
    "UnitNoise",
    "log_accept_ratio",
    "move_unit",
    "parse_moves",
    "propose_prior",
    "propose_rw",
    "propose_scale",
    "unit_noise",
    "update_unit",
]

#: The per-unit moves, in the order a sweep applies them.
MOVES = ("rw", "scale", "flip", "prior")
#: The sweep-level moves of :mod:`jaxseq.bayes.blocks`, applied after the units.
SWEEP_MOVES = ("hmc", "group", "sigma_beta")
#: The default combination.
DEFAULT = "rw+scale+flip+hmc+group+sigma_beta"


@dataclasses.dataclass(frozen=True)
class Moves:
    """The moves of a sweep, validated once (hashable: a static configuration).

    Attributes:
        unit: the per-unit moves, a subset of :data:`MOVES` in that order (at
            least one).
        sweep: the sweep-level moves, a subset of :data:`SWEEP_MOVES` in that
            order.

    ``str(moves)`` is the ``"+"``-joined form; ``"hmc" in moves`` tests a move.
    Build one with :meth:`parse` (or :func:`as_moves`) from that string form.
    """

    unit: tuple[str, ...]
    sweep: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unit, sweep = tuple(self.unit), tuple(self.sweep)
        misplaced = [m for m in unit if m not in MOVES] + [
            m for m in sweep if m not in SWEEP_MOVES
        ]
        if misplaced:
            raise ValueError(
                f"Moves: expected unit moves from {MOVES} and sweep moves from "
                f"{SWEEP_MOVES}, got unit={unit!r}, sweep={sweep!r}."
            )
        parts = parse_moves("+".join(unit + sweep))  # raises naming `proposal`
        object.__setattr__(self, "unit", tuple(m for m in parts if m in MOVES))
        object.__setattr__(self, "sweep", tuple(m for m in parts if m in SWEEP_MOVES))

    @classmethod
    def parse(cls, kind: str, name: str = "proposal") -> Moves:
        """``"scale+rw+hmc"`` -> ``Moves(("rw", "scale"), ("hmc",))``; errors name
        ``name``."""
        parts = parse_moves(kind, name)
        return cls(
            tuple(p for p in parts if p in MOVES),
            tuple(p for p in parts if p in SWEEP_MOVES),
        )

    def __str__(self) -> str:
        return "+".join(self.unit + self.sweep)

    def __iter__(self):
        return iter(self.unit + self.sweep)

    def __contains__(self, move: object) -> bool:
        return move in self.unit or move in self.sweep


def as_moves(kind: str | Moves, name: str = "proposal") -> Moves:
    """A :class:`Moves` as is, or the string form parsed (:meth:`Moves.parse`)."""
    return kind if isinstance(kind, Moves) else Moves.parse(kind, name)


def parse_moves(kind: str | Moves, name: str = "proposal") -> tuple[str, ...]:
    """``"scale+rw"`` -> ``("rw", "scale")``: validated, in the order applied
    (:data:`MOVES`, then :data:`SWEEP_MOVES`); a :class:`Moves` is accepted too.

    Raises:
        ValueError: empty, unknown or repeated moves, or no per-unit move (the
            message names ``name``).
    """
    if isinstance(kind, Moves):
        return tuple(kind)
    known = MOVES + SWEEP_MOVES
    parts = kind.split("+") if isinstance(kind, str) else []
    valid = parts and all(p in known for p in parts) and len(set(parts)) == len(parts)
    if not valid or not any(p in MOVES for p in parts):
        raise ValueError(
            f"{name}: expected moves joined by '+', at least one of {MOVES} and "
            f"optionally {SWEEP_MOVES}, e.g. {DEFAULT!r}; got {kind!r}."
        )
    return tuple(m for m in known if m in parts)


class UnitNoise(NamedTuple):
    """The random variates one unit's moves consume.

    Attributes:
        eps_rw, eps_prior: ``[d]`` standard normals for the two candidates.
        eps_scale: ``[]`` standard normal for the scale move.
        log_u: ``[4]`` logs of uniforms, one accept/reject decision per move.
    """

    eps_rw: Array
    eps_prior: Array
    eps_scale: Array
    log_u: Array


def unit_noise(key: Key, d: int, dtype=jnp.float32, shape: tuple = ()) -> UnitNoise:
    """Draw :class:`UnitNoise` (with leading ``shape``, e.g. ``(m,)`` for a sweep)."""
    k_eps, k_u = jax.random.split(key)
    eps = jax.random.normal(k_eps, (*shape, 2 * d + 1), dtype)
    log_u = jnp.log(jax.random.uniform(k_u, (*shape, len(MOVES)), dtype))
    return UnitNoise(eps[..., :d], eps[..., d : 2 * d], eps[..., 2 * d], log_u)


def propose_rw(
    gamma_j: Float[Array, " d"], scale_chol: Float[Array, "d d"], eps: Array
) -> Float[Array, " d"]:
    """Random-walk candidate ``gamma_j + scale_chol @ eps`` (``eps ~ N(0, I)``)."""
    return gamma_j + scale_chol @ eps


def propose_scale(gamma_j: Float[Array, " d"], delta: Array) -> Float[Array, " d"]:
    """Scale candidate ``exp(delta) * gamma_j``; log-Jacobian ``d * delta``."""
    return jnp.exp(delta) * gamma_j


def propose_prior(
    mu_gamma: Float[Array, " d"], prec_gamma: Float[Array, "d d"], eps: Array
) -> Float[Array, " d"]:
    r"""Independence candidate from the conditional prior.

    Maps ``eps ~ N(0, I)`` to :math:`N(\mu_\gamma, S_\gamma)` as
    :math:`\mu_\gamma + L'^{-1}\varepsilon` where :math:`S_\gamma^{-1} = LL'`.
    """
    chol = la.cholesky(prec_gamma)
    return mu_gamma + la.solve_triangular(chol, eps, lower=True, transpose=True)


def log_accept_ratio(
    kind: str,
    candidate: Float[Array, " d"],
    current: Float[Array, " d"],
    cand_mll: Float[Array, ""],
    mll: Float[Array, ""],
    pos: Any,
    log_jacobian: Float[Array, ""] | float = 0.0,
) -> Float[Array, ""]:
    r"""Log Metropolis-Hastings ratio for moving a unit from ``current`` to
    ``candidate`` (``*_mll``: marginal log-likelihoods; ``pos`` supplies
    ``mu_gamma`` and ``prec_gamma``).

    ``"rw"`` and ``"flip"``: likelihood ratio times prior ratio. ``"scale"``: the
    same times the Jacobian ``exp(log_jacobian)``. ``"prior"``: the likelihood ratio
    only (prior and proposal densities cancel).
    """
    if kind not in MOVES:
        raise ValueError(f"kind: expected one of {MOVES}, got {kind!r}.")
    index = MOVES.index(kind)
    jac = log_jacobian if kind == "scale" else 0.0
    return _log_ratio(index, candidate, current, cand_mll, mll, pos, jac)


def _log_ratio(index, candidate, current, cand_mll, mll, pos, log_jacobian):
    """:func:`log_accept_ratio` for a (possibly traced) move index."""
    log_prior = lambda g: cond.gamma_log_prior(g, pos.mu_gamma, pos.prec_gamma)
    prior_ratio = log_prior(candidate) - log_prior(current)
    # The independence proposal from the prior cancels the prior ratio.
    prior_ratio = jnp.where(index == MOVES.index("prior"), 0.0, prior_ratio)
    return cand_mll - mll + prior_ratio + log_jacobian


def _candidate(index, j, gamma, noise, pos, proposal):
    """``(candidate, log_jacobian)`` of move ``MOVES[index]`` (index may be traced)."""
    d = gamma.shape[1]
    delta = jnp.exp(proposal.log_tau[j]) * noise.eps_scale
    branches = [
        lambda: (
            propose_rw(
                gamma[j],
                jnp.exp(proposal.log_scale[j]) * proposal.chol[j],
                noise.eps_rw,
            ),
            jnp.zeros((), gamma.dtype),
        ),
        lambda: (propose_scale(gamma[j], delta), d * delta),
        lambda: (-gamma[j], jnp.zeros((), gamma.dtype)),
        lambda: (
            propose_prior(pos.mu_gamma, pos.prec_gamma, noise.eps_prior),
            jnp.zeros((), gamma.dtype),
        ),
    ]
    if isinstance(index, int):  # a static move: only its branch is compiled
        return branches[index]()
    return jax.lax.switch(index, branches)


def move_unit(
    noise: UnitNoise,
    j: Array,
    gamma: Float[Array, "m d"],
    mll: Float[Array, ""],
    pos: Any,
    data: Any,
    prior_mean: Array,
    prior_var: Array,
    proposal: Proposal,
    *,
    bias: bool,
    kinds: tuple[str, ...] | Moves,
    active: Array | None = None,
) -> tuple[Array, Array, Array]:
    r"""Apply the moves ``kinds`` (:func:`parse_moves`) to unit ``j``, in order.

    The moves run as a ``lax.scan`` over their indices with one marginal-likelihood
    evaluation in the body (``lax.switch`` picks the candidate), so the compiled
    sweep holds one copy of the linear algebra however many moves are used.

    Args:
        noise: :class:`UnitNoise` for this unit. j: unit index (may be traced).
        gamma: current ``[m, d]``. mll: :math:`\log p(y\mid\gamma,\nu)` at ``gamma``.
        pos: the current :class:`~jaxseq.bayes.gibbs.NetParams` (supplies
            :math:`\nu`). data: :class:`~jaxseq.bayes.gibbs.Data`.
        prior_mean, prior_var: output-layer prior
            (:func:`~jaxseq.bayes.gibbs.beta_prior`).
        proposal: move scales and shapes. bias: output bias in the design.
        active: ``[m]`` bool mask of the active units (variable ``m``,
            :mod:`jaxseq.bayes.dimension`); ``None``: all.

    Returns:
        ``(gamma, mll, accept)`` with ``accept`` ``[4]`` the acceptance
        probabilities of the moves in :data:`MOVES` order (NaN when not used).
    """
    indices = jnp.asarray([MOVES.index(k) for k in kinds if k in MOVES], jnp.int32)

    def one_move(carry, index):
        gamma, mll, accept = carry
        cand, log_jacobian = _candidate(index, j, gamma, noise, pos, proposal)
        z = cond.design(data.x1, gamma.at[j].set(cand), bias, active)
        cand_mll = cond.marginal_loglik(z, data.y, pos.prec, prior_mean, prior_var)
        log_r = _log_ratio(index, cand, gamma[j], cand_mll, mll, pos, log_jacobian)
        # NaN (e.g. a numerically singular candidate) is rejected.
        log_r = jnp.where(jnp.isnan(log_r), -jnp.inf, log_r)
        ok = noise.log_u[index] < log_r
        gamma = jnp.where(ok, gamma.at[j].set(cand), gamma)
        mll = jnp.where(ok, cand_mll, mll)
        accept = accept.at[index].set(jnp.exp(jnp.minimum(log_r, 0.0)))
        return (gamma, mll, accept), None

    accept = jnp.full((len(MOVES),), jnp.nan, gamma.dtype)
    (gamma, mll, accept), _ = jax.lax.scan(one_move, (gamma, mll, accept), indices)
    return gamma, mll, accept


def update_unit(key: Key, j: Array, gamma: Array, mll: Array, *args, **kwargs):
    """:func:`move_unit` with its :class:`UnitNoise` drawn by :func:`unit_noise`
    from ``key`` (same arguments otherwise)."""
    noise = unit_noise(key, gamma.shape[1], gamma.dtype)
    return move_unit(noise, j, gamma, mll, *args, **kwargs)
