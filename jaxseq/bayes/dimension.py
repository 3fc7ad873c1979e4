r"""The number of hidden units ``m`` as a parameter: its prior and birth/death moves.

With :class:`HiddenUnits` the blocked Gibbs sampler of :mod:`jaxseq.bayes.gibbs`
samples ``m`` together with the rest (Müller and Ríos Insua, 1998, Sec. 5). The
arrays keep ``m_max`` slots; the first ``m`` are the active units and the others
are masked out of the design matrix (:func:`jaxseq.bayes.conditionals.design`),
so they contribute nothing to the mean, the marginal likelihood, the unit moves or
the hyperparameters' conditionals, and the whole sweep stays one compiled program.

**The move** (one attempt per sweep, after the unit moves and before the draw of
:math:`\beta`, conditional on :math:`\nu`, with :math:`\beta` integrated out). From
``m`` units, propose a *birth* with probability :math:`b_m` and a *death* with
:math:`d_m = 1 - b_m` (:math:`b_1 = 1`, :math:`b_{m_{max}} = 0`, ``birth``
otherwise):

* birth: draw :math:`\gamma^* \sim N(\mu_\gamma, S_\gamma)` and a slot ``j``
  uniformly in ``0..m``; put :math:`\gamma^*` in slot ``j`` and the unit that was
  there in slot ``m``;
* death: pick a slot ``j`` uniformly in ``0..m-1``; move the unit in slot
  ``m - 1`` into slot ``j`` (dropping unit ``j``).

The death with slot ``j`` undoes the birth with slot ``j``, the map
:math:`(\gamma_{1:m}, \gamma^*) \leftrightarrow \gamma'_{1:m+1}` permutes
coordinates (Jacobian 1), and the two slot choices have the same probability
:math:`1/(m+1)`. Detailed balance for the target
:math:`\pi(m, \gamma) \propto p(m) \prod_{j \le m} N(\gamma_j \mid \mu_\gamma,
S_\gamma)\, p(y \mid \gamma, m, \nu)` then gives the birth's ratio

.. math::

    r_{m \to m+1} = \frac{p(m+1)}{p(m)}\,\frac{d_{m+1}}{b_m}\,
    \frac{p(y \mid \gamma', m+1, \nu)}{p(y \mid \gamma, m, \nu)},

(the new unit's prior density cancels the proposal density) and the death's
:math:`r_{m+1 \to m} = 1 / r_{m \to m+1}` with the roles swapped. The derivation
is in ``docs/bayes.md`` ("The number of hidden units").
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import _linalg as la

__all__ = [
    "DimensionNoise",
    "Geometric",
    "HiddenUnits",
    "TruncatedPoisson",
    "birth_probabilities",
    "check_hidden_units",
    "log_accept_ratio",
    "log_prior_m",
    "propose",
]


class TruncatedPoisson(NamedTuple):
    r"""Prior :math:`p(m) \propto \lambda^m / m!` on ``1..max``.

    Attributes:
        rate: :math:`\lambda > 0`.
    """

    rate: float = 3.0

    def log_weights(self, m: np.ndarray) -> np.ndarray:
        """Unnormalised log masses at the integers ``m``."""
        return m * math.log(self.rate) - np.array([math.lgamma(k + 1.0) for k in m])


class Geometric(NamedTuple):
    r"""Prior :math:`p(m) \propto (1 - q)^{m - 1}` on ``1..max``.

    Attributes:
        q: success probability in ``(0, 1]`` (``q = 1`` puts all mass on ``m = 1``).
    """

    q: float = 0.5

    def log_weights(self, m: np.ndarray) -> np.ndarray:
        """Unnormalised log masses at the integers ``m``."""
        if self.q == 1.0:
            return np.where(m == 1, 0.0, -np.inf)
        return (m - 1) * math.log1p(-self.q)


class HiddenUnits(NamedTuple):
    """An unknown number of hidden units (pass as ``fit(..., hidden=...)``).

    Attributes:
        max: ``m_max >= 1``, the number of slots (the largest ``m``).
        prior: the prior of ``m`` on ``1..max`` (:class:`TruncatedPoisson` or
            :class:`Geometric`).
        birth: probability ``b_m`` of proposing a birth when ``1 < m < max``,
            in ``(0, 1)``.
    """

    max: int = 8
    prior: TruncatedPoisson | Geometric = TruncatedPoisson()
    birth: float = 0.5


def check_hidden_units(hidden: HiddenUnits) -> HiddenUnits:
    """Validate on the host; return it with plain Python numbers.

    Raises:
        ValueError: ``max < 1``, a prior parameter out of range or with no mass on
            ``1..max``, ``birth`` outside ``(0, 1)``. TypeError: wrong types.
    """
    if not isinstance(hidden, HiddenUnits):
        raise TypeError(f"hidden: expected an int or HiddenUnits, got {hidden!r}.")
    m_max, prior, birth = hidden
    if isinstance(m_max, bool) or not isinstance(m_max, int | np.integer) or m_max < 1:
        raise ValueError(f"hidden.max: expected an integer >= 1, got {m_max!r}.")
    if isinstance(prior, TruncatedPoisson):
        rate = float(prior.rate)
        if not (np.isfinite(rate) and rate > 0):
            raise ValueError(
                f"hidden.prior.rate: expected a finite rate > 0 (else the prior has "
                f"no mass on 1..{m_max}), got {prior.rate!r}."
            )
        prior = TruncatedPoisson(rate)
    elif isinstance(prior, Geometric):
        q = float(prior.q)
        if not 0.0 < q <= 1.0:
            raise ValueError(
                f"hidden.prior.q: expected a probability in (0, 1] (q = 0 puts no "
                f"mass on 1..{m_max}), got {prior.q!r}."
            )
        prior = Geometric(q)
    else:
        raise TypeError(
            f"hidden.prior: expected TruncatedPoisson or Geometric, got {prior!r}."
        )
    log_w = prior.log_weights(np.arange(1, int(m_max) + 1))
    if not np.any(np.isfinite(log_w)):
        raise ValueError(f"hidden.prior: expected mass on 1..{m_max}, got {prior!r}.")
    if isinstance(birth, bool) or not isinstance(birth, float | int):
        raise TypeError(f"hidden.birth: expected a number, got {birth!r}.")
    if not 0.0 < birth < 1.0:
        raise ValueError(
            f"hidden.birth: expected a birth probability in (0, 1), got {birth!r}."
        )
    return HiddenUnits(int(m_max), prior, float(birth))


def log_prior_m(hidden: HiddenUnits) -> np.ndarray:
    """``[max + 2]`` normalised :math:`\\log p(m)` at ``m = 0..max + 1`` (``-inf``
    outside ``1..max``), a table the sweep indexes with a traced ``m``."""
    m = np.arange(1, hidden.max + 1)
    log_w = hidden.prior.log_weights(m)
    log_w = log_w - np.logaddexp.reduce(log_w)
    return np.concatenate([[-np.inf], log_w, [-np.inf]])


def birth_probabilities(hidden: HiddenUnits) -> np.ndarray:
    """``[max + 2]`` birth probabilities :math:`b_m` at ``m = 0..max + 1``:
    1 at ``m = 1`` (when ``max > 1``), 0 at ``m = max``, ``birth`` between;
    :math:`d_m = 1 - b_m`."""
    m = np.arange(hidden.max + 2)
    b = np.where(m <= 1, 1.0, np.where(m >= hidden.max, 0.0, hidden.birth))
    return b.astype(float)


class DimensionNoise(NamedTuple):
    """Random variates of one birth/death attempt.

    Attributes:
        eps: ``[d]`` standard normals for the newborn's weights.
        u: ``[3]`` uniforms: birth or death, the slot, the decision.
    """

    eps: Array
    u: Array


def propose(
    noise: DimensionNoise,
    gamma: Float[Array, "M d"],
    m: Array,
    mu_gamma: Float[Array, " d"],
    prec_gamma: Float[Array, "d d"],
    birth_prob: Array,
) -> tuple[Array, Array, Array]:
    """The candidate of one birth/death attempt (module docstring).

    Args:
        noise: :class:`DimensionNoise`. gamma: ``[M, d]`` slots, the first ``m``
            active. m: ``[]`` int. mu_gamma, prec_gamma: the newborn's prior.
        birth_prob: ``[M + 2]`` table of :func:`birth_probabilities`.

    Returns:
        ``(gamma', m', birth)``: candidate slots (inactive ones zero), its number
        of units and whether it is a birth.
    """
    birth = noise.u[0] < birth_prob[m]
    chol = la.cholesky(prec_gamma)
    new = mu_gamma + la.solve_triangular(chol, noise.eps, lower=True, transpose=True)
    # Birth: slot j in 0..m gets the newborn, its unit moves to slot m.
    j = jnp.minimum(jnp.floor(noise.u[1] * (m + 1)).astype(m.dtype), m)
    born = gamma.at[m].set(gamma[j]).at[j].set(new)
    # Death: slot j in 0..m-1 loses its unit, the unit of slot m - 1 moves there.
    k = jnp.minimum(jnp.floor(noise.u[1] * m).astype(m.dtype), m - 1)
    dead = gamma.at[k].set(gamma[m - 1]).at[m - 1].set(0.0)
    cand_m = jnp.where(birth, m + 1, m - 1)
    return jnp.where(birth, born, dead), cand_m, birth


def log_accept_ratio(
    m: Array,
    cand_m: Array,
    cand_mll: Float[Array, ""],
    mll: Float[Array, ""],
    log_prior: Array,
    birth_prob: Array,
) -> Float[Array, ""]:
    r"""Log acceptance ratio of a move from ``m`` to ``cand_m = m ± 1`` units
    (module docstring): :math:`\log p(m') - \log p(m) + \log q(m' \to m) -
    \log q(m \to m') + \ell' - \ell`, with :math:`q(m \to m+1) = b_m`,
    :math:`q(m \to m-1) = d_m = 1 - b_m` and :math:`\ell` the marginal
    log-likelihoods. ``log_prior`` and ``birth_prob`` are the tables of
    :func:`log_prior_m` and :func:`birth_probabilities`."""
    up = cand_m > m
    move = lambda k, birth: jnp.log(jnp.where(birth, birth_prob[k], 1 - birth_prob[k]))
    log_q = move(cand_m, ~up) - move(m, up)
    return log_prior[cand_m] - log_prior[m] + log_q + cand_mll - mll
