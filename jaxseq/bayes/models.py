r"""NumPyro model functions for the Müller–Ríos Insua (1998) shallow network.

The regression model is

.. math::

    y_i = b_0 + \sum_{j=1}^m \beta_j \psi(\tilde x_i'\gamma_j) + \epsilon_i,
    \qquad \epsilon_i \sim N(0, \sigma^2),\qquad \psi(\eta) = 1 / (1 + e^{-\eta}),

where :math:`\tilde x_i = (1, x_i)` carries a leading one, so each
:math:`\gamma_j \in \mathbb{R}^d`, :math:`d = p + 1`, holds the unit's intercept
followed by its ``p`` slopes. The hierarchical prior is the seed's:

.. math::

    \beta_j \sim N(\mu_\beta, \sigma_\beta^2),\quad
    \gamma_j \sim N_d(\mu_\gamma, S_\gamma),\quad
    \mu_\beta \sim N(a_\beta, A_\beta),\quad
    \mu_\gamma \sim N_d(a_\gamma, A_\gamma),

.. math::

    \sigma_\beta^{-2} \sim \mathrm{Gamma}(c_b/2,\ c_b C_b/2),\quad
    S_\gamma^{-1} \sim \mathrm{Wishart}(c_\gamma,\ (c_\gamma C_\gamma)^{-1}),\quad
    \sigma^{-2} \sim \mathrm{Gamma}(s/2,\ s S/2),

with Gamma in the (shape, rate) form and the Wishart with ``E[W] = df * scale``.
So :math:`C_b`, :math:`C_\gamma` and :math:`S` are prior *guesses* of
:math:`\sigma_\beta^2`, :math:`S_\gamma` and :math:`\sigma^2`, and :math:`c_b`,
:math:`c_\gamma`, :math:`s` the number of pseudo-observations behind each guess.
The optional output bias has its own fixed prior :math:`b_0 \sim N(a_0, A_0)`.

Sample sites (shared with :mod:`jaxseq.bayes.gibbs`, so samples from either
sampler feed the same :func:`numpyro.infer.Predictive`): ``mu_beta``, ``prec_beta``
(:math:`\sigma_\beta^{-2}`), ``mu_gamma`` ``[d]``, ``prec_gamma``
(:math:`S_\gamma^{-1}`, ``[d, d]``), ``prec`` (:math:`\sigma^{-2}`), ``beta`` ``[m]``,
``gamma`` ``[m, d]``, ``b0`` (when ``bias=True``) and the observed ``y``.

References:
    P. Müller and D. Ríos Insua (1998), "Issues in Bayesian analysis of neural
    network models", *Neural Computation* 10(3), 749-770.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

__all__ = [
    "Prior",
    "augment",
    "check_prior",
    "classifier",
    "default_prior",
    "lagged",
    "network_mean",
    "regression",
]


class Prior(NamedTuple):
    r"""Hyperparameters of the hierarchical prior (see the module docstring).

    Attributes:
        a_beta: prior mean of :math:`\mu_\beta` (scalar).
        A_beta: prior variance of :math:`\mu_\beta` (scalar, > 0).
        c_b: pseudo-observations behind :math:`C_b` (> 0).
        C_b: prior guess of :math:`\sigma_\beta^2` (> 0).
        a_gamma: ``[d]`` prior mean of :math:`\mu_\gamma`.
        A_gamma: ``[d, d]`` prior covariance of :math:`\mu_\gamma` (positive definite).
        c_gamma: Wishart degrees of freedom (> d - 1).
        C_gamma: ``[d, d]`` prior guess of :math:`S_\gamma` (positive definite).
        s: pseudo-observations behind :math:`S` (> 0).
        S: prior guess of the noise variance :math:`\sigma^2` (> 0).
        a_0: prior mean of the output bias.
        A_0: prior variance of the output bias (> 0).
    """

    a_beta: float
    A_beta: float
    c_b: float
    C_b: float
    a_gamma: Array
    A_gamma: Array
    c_gamma: float
    C_gamma: Array
    s: float
    S: float
    a_0: float
    A_0: float


def default_prior(num_inputs: int) -> Prior:
    r"""The data-scaled default prior for ``num_inputs`` (``p``) standardised inputs.

    :func:`jaxseq.bayes.fit` standardises every input column and the response to
    mean 0 and standard deviation 1 before sampling, so these unit-free values are
    *data-scaled*: in original units the noise-variance guess is
    ``S * sd(y)**2`` and an input's slope is measured per standard deviation of
    that input.

    ================  ===========  ============================================
    hyperparameter    default      meaning on the standardised scale
    ================  ===========  ============================================
    a_beta, A_beta    0, 1         mean output weight ~ N(0, 1)
    c_b, C_b          2, 1         :math:`\sigma_\beta^{-2}\sim` Gamma(1, 1)
    a_gamma, A_gamma  0, I_d       mean unit weights ~ N(0, I)
    c_gamma, C_gamma  d + 1, I_d   vague Wishart (df must exceed d - 1)
    s, S              2, 0.1       noise sd guessed at 0.32 sd(y), 2 pseudo-obs
    a_0, A_0          0, 10        vague output bias, sd 3.2 sd(y)
    ================  ===========  ============================================

    Args:
        num_inputs: ``p``, the number of input columns (the intercept is added).

    Returns:
        A :class:`Prior` with ``d = num_inputs + 1``.

    Raises:
        ValueError: if ``num_inputs`` is not a positive integer.
    """
    if not isinstance(num_inputs, int | np.integer) or num_inputs < 1:
        raise ValueError(
            f"num_inputs: expected a positive integer, got {num_inputs!r}."
        )
    d = int(num_inputs) + 1
    return Prior(
        a_beta=0.0,
        A_beta=1.0,
        c_b=2.0,
        C_b=1.0,
        a_gamma=np.zeros(d),
        A_gamma=np.eye(d),
        c_gamma=float(d + 1),
        C_gamma=np.eye(d),
        s=2.0,
        S=0.1,
        a_0=0.0,
        A_0=10.0,
    )


def check_prior(prior: Prior, num_inputs: int) -> None:
    """Validate a :class:`Prior` on the host; raise ``ValueError`` naming the field.

    Checks positivity of the scalar scales, ``c_gamma > d - 1``, shapes of the
    vector/matrix fields and positive definiteness (symmetric, Cholesky succeeds) of
    ``A_gamma`` and ``C_gamma``.
    """
    if not isinstance(prior, Prior):
        raise TypeError(f"prior: expected a jaxseq.bayes.Prior, got {type(prior)}.")
    d = num_inputs + 1
    for name in ("A_beta", "c_b", "C_b", "s", "S", "A_0"):
        value = np.asarray(getattr(prior, name), dtype=float)
        if value.shape != () or not np.isfinite(value) or value <= 0:
            raise ValueError(
                f"prior.{name}: expected a finite positive scalar, got {value!r}."
            )
    for name in ("a_beta", "a_0"):
        value = np.asarray(getattr(prior, name), dtype=float)
        if value.shape != () or not np.isfinite(value):
            raise ValueError(f"prior.{name}: expected a finite scalar, got {value!r}.")
    c_gamma = float(prior.c_gamma)
    if not c_gamma > d - 1:
        raise ValueError(
            f"prior.c_gamma: expected Wishart degrees of freedom > d - 1 = {d - 1} "
            f"(d = {d} = inputs + intercept), got {c_gamma}."
        )
    a_gamma = np.asarray(prior.a_gamma, dtype=float)
    if a_gamma.shape != (d,) or not np.all(np.isfinite(a_gamma)):
        raise ValueError(
            f"prior.a_gamma: expected {d} finite values (d = inputs + 1), got shape "
            f"{a_gamma.shape}."
        )
    for name in ("A_gamma", "C_gamma"):
        _check_positive_definite(f"prior.{name}", getattr(prior, name), d)


def _check_positive_definite(name: str, matrix: ArrayLike, d: int) -> None:
    m = np.asarray(matrix, dtype=float)
    if m.shape != (d, d):
        raise ValueError(f"{name}: expected shape ({d}, {d}), got {m.shape}.")
    if not np.all(np.isfinite(m)) or not np.allclose(m, m.T, rtol=1e-8, atol=1e-10):
        raise ValueError(f"{name}: expected a finite symmetric matrix, got {m!r}.")
    eigenvalues = np.linalg.eigvalsh(m)
    if eigenvalues.min() <= 0:
        raise ValueError(
            f"{name}: expected a positive-definite matrix, got smallest eigenvalue "
            f"{eigenvalues.min():.3g}. Use e.g. numpy.eye({d}) times a positive scale."
        )


def augment(x: Float[ArrayLike, "n p"]) -> Float[Array, "n d"]:
    """Prepend a column of ones: ``[n, p] -> [n, p + 1]`` (the units' intercepts)."""
    x = jnp.asarray(x)
    return jnp.concatenate([jnp.ones_like(x[:, :1]), x], axis=1)


def network_mean(
    x: Float[ArrayLike, "n p"],
    beta: Float[Array, "... m"],
    gamma: Float[Array, "... m d"],
    b0: Float[Array, ...] | float = 0.0,
) -> Float[Array, "... n"]:
    r"""The network output :math:`f(x) = b_0 + \sum_j \beta_j \psi(\tilde x'\gamma_j)`.

    Leading axes of ``beta``, ``gamma`` and ``b0`` (e.g. chains and draws)
    broadcast, so a whole posterior is evaluated in one call.
    """
    hidden = jax.nn.sigmoid(jnp.einsum("nd,...md->...nm", augment(x), gamma))
    return jnp.einsum("...nm,...m->...n", hidden, beta) + jnp.asarray(b0)[..., None]


def _hyperpriors(prior: Prior):
    """Sample the shared hyperparameters (sites mu_beta ... prec_gamma)."""
    import numpyro  # imported when a model runs: the Gibbs sampler needs none
    import numpyro.distributions as dist

    mu_beta = numpyro.sample("mu_beta", dist.Normal(prior.a_beta, prior.A_beta**0.5))
    prec_beta = numpyro.sample(
        "prec_beta", dist.Gamma(prior.c_b / 2, prior.c_b * prior.C_b / 2)
    )
    a_gamma = jnp.asarray(prior.a_gamma)
    mu_gamma = numpyro.sample(
        "mu_gamma", dist.MultivariateNormal(a_gamma, jnp.asarray(prior.A_gamma))
    )
    # S_gamma^{-1} ~ Wishart(c, (c C)^{-1}): numpyro's rate_matrix is the inverse scale.
    prec_gamma = numpyro.sample(
        "prec_gamma",
        dist.Wishart(
            prior.c_gamma, rate_matrix=prior.c_gamma * jnp.asarray(prior.C_gamma)
        ),
    )
    return mu_beta, prec_beta, mu_gamma, prec_gamma


def regression(
    x: Float[ArrayLike, "n p"],
    y: Float[ArrayLike, " n"] | None = None,
    *,
    hidden: int,
    prior: Prior | None = None,
    bias: bool = True,
) -> None:
    """The Müller–Ríos Insua regression network as a NumPyro model.

    Args:
        x: ``[n, p]`` inputs (standardised when called through
            :func:`~jaxseq.bayes.fit`).
        y: ``[n]`` responses, or ``None`` for the prior/posterior predictive.
        hidden: ``m``, the number of logistic hidden units.
        prior: hyperparameters; :func:`default_prior` when ``None``.
        bias: include the output bias ``b0``.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from numpyro.infer import Predictive
        >>> x = jnp.linspace(-1.0, 1.0, 5)[:, None]
        >>> predictive = Predictive(regression, num_samples=3)
        >>> draws = predictive(jax.random.key(0), x, hidden=2)
        >>> draws["y"].shape, draws["gamma"].shape
        ((3, 5), (3, 2, 2))
    """
    import numpyro  # imported when a model runs: the Gibbs sampler needs none
    import numpyro.distributions as dist

    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x: expected rank 2 [n, p], got shape {x.shape}.")
    prior = default_prior(x.shape[1]) if prior is None else prior
    mu_beta, prec_beta, mu_gamma, prec_gamma = _hyperpriors(prior)
    prec = numpyro.sample("prec", dist.Gamma(prior.s / 2, prior.s * prior.S / 2))
    with numpyro.plate("hidden", hidden):
        beta = numpyro.sample("beta", dist.Normal(mu_beta, prec_beta**-0.5))
        gamma = numpyro.sample(
            "gamma", dist.MultivariateNormal(mu_gamma, precision_matrix=prec_gamma)
        )
    b0 = numpyro.sample("b0", dist.Normal(prior.a_0, prior.A_0**0.5)) if bias else 0.0
    mean = network_mean(x, beta, gamma, b0)
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Normal(mean, prec**-0.5), obs=y)


def classifier(
    x: Float[ArrayLike, "n p"],
    y: Int[ArrayLike, " n"] | None = None,
    *,
    hidden: int,
    num_classes: int,
    prior: Prior | None = None,
) -> None:
    r"""Softmax (multinomial, one trial) classification with the same hidden layer.

    .. math::

        p_k(x) = \frac{\exp\{\eta_k(x)\}}{\sum_{l=1}^K \exp\{\eta_l(x)\}},\qquad
        \eta_k(x) = b_k + \sum_j \beta_{jk}\psi(\tilde x'\gamma_j)

    The seed's form :math:`p_k \propto \exp\{\beta_k\psi(x'\gamma_k)\}` is the
    special case ``hidden == num_classes`` with a diagonal ``beta`` and no bias.
    ``beta`` ``[m, K]`` and the class biases ``b`` ``[K]`` get the hierarchical
    normal prior of the regression's output weights (the noise sites ``prec``
    do not exist here). Fit it with :func:`~jaxseq.bayes.run_nuts`.

    Args:
        x: ``[n, p]`` inputs.
        y: ``[n]`` integer labels in ``[0, num_classes)``, or ``None`` to predict.
        hidden: ``m``.
        num_classes: ``K >= 2``.
        prior: hyperparameters (``s`` and ``S`` unused); :func:`default_prior` if None.
    """
    import numpyro  # imported when a model runs: the Gibbs sampler needs none
    import numpyro.distributions as dist

    x = jnp.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x: expected rank 2 [n, p], got shape {x.shape}.")
    if num_classes < 2:
        raise ValueError(f"num_classes: expected an integer >= 2, got {num_classes}.")
    prior = default_prior(x.shape[1]) if prior is None else prior
    mu_beta, prec_beta, mu_gamma, prec_gamma = _hyperpriors(prior)
    with numpyro.plate("hidden", hidden, dim=-1):
        gamma = numpyro.sample(
            "gamma", dist.MultivariateNormal(mu_gamma, precision_matrix=prec_gamma)
        )
    beta = numpyro.sample(
        "beta",
        dist.Normal(mu_beta, prec_beta**-0.5).expand((hidden, num_classes)).to_event(2),
    )
    b = numpyro.sample(
        "b",
        dist.Normal(prior.a_0, prior.A_0**0.5).expand((num_classes,)).to_event(1),
    )
    features = jax.nn.sigmoid(augment(x) @ gamma.T)
    logits = numpyro.deterministic("logits", features @ beta + b)
    with numpyro.plate("data", x.shape[0]):
        numpyro.sample("y", dist.Categorical(logits=logits), obs=y)


def lagged(
    series: Float[ArrayLike, " T"], order: int
) -> tuple[Float[np.ndarray, "n order"], Float[np.ndarray, " n"]]:
    """Inputs and targets of a non-linear autoregression of the given ``order``.

    Row ``t`` of the inputs is ``(y[t-1], ..., y[t-order])`` (most recent first) and
    the target is ``y[t]``, for ``t = order, ..., T-1``; so ``n = T - order``.

    Raises:
        ValueError: if ``series`` is not 1-D, not finite, or too short.
    """
    series = np.asarray(series, dtype=float)
    if series.ndim != 1:
        raise ValueError(f"series: expected rank 1 [T], got shape {series.shape}.")
    if not isinstance(order, int | np.integer) or order < 1:
        raise ValueError(f"order: expected a positive integer, got {order!r}.")
    if series.shape[0] <= order + 1:
        raise ValueError(
            f"series: expected more than order + 1 = {order + 1} values, got "
            f"{series.shape[0]}."
        )
    if not np.all(np.isfinite(series)):
        bad = int(np.flatnonzero(~np.isfinite(series))[0])
        raise ValueError(
            f"series: expected finite values, got series[{bad}] = {series[bad]}."
        )
    n = series.shape[0] - order
    inputs = np.stack(
        [series[order - k : order - k + n] for k in range(1, order + 1)], 1
    )
    return inputs, series[order:]
