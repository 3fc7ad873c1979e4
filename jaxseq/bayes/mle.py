r"""The same network trained by penalised least squares with gradient descent.

This is the seed's "training with regularisation": minimise

.. math::

    g(\beta, \gamma) = \frac1n\Big[\sum_{i=1}^n \big(y_i - f(x_i)\big)^2
    + \lambda_1 \sum_j \beta_j^2 + \lambda_2 \sum_j\sum_k \gamma_{jk}^2\Big]

(weight decay / ridge; the output bias is not penalised) by (stochastic) gradient
descent, the gradient coming from reverse-mode differentiation (backpropagation).
On the standardised scale this is the posterior mode of the model with fixed
priors :math:`\beta_j \sim N(0, \sigma^2/\lambda_1)`,
:math:`\gamma_{jk} \sim N(0, \sigma^2/\lambda_2)`, which makes it a natural point
of comparison for the hierarchical posterior of :func:`~jaxseq.bayes.fit`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import ArrayLike, Float

from .._typing import Key
from ._validate import check_hidden, check_x, check_xy
from .infer import Scaler, fit_scaler
from .models import network_mean

__all__ = ["RidgeFit", "fit_ridge", "ridge_predict"]


class RidgeFit(NamedTuple):
    """Point estimate (standardised scale), its scaler and the loss per step."""

    beta: np.ndarray
    b0: np.ndarray
    gamma: np.ndarray
    scaler: Scaler
    losses: np.ndarray


def fit_ridge(
    key: Key,
    x: Float[ArrayLike, "n p"],
    y: Float[ArrayLike, " n"],
    *,
    hidden: int,
    lambda_beta: float = 1e-2,
    lambda_gamma: float = 1e-2,
    steps: int = 5000,
    learning_rate: float = 0.05,
    momentum: float = 0.9,
    batch_size: int | None = None,
) -> RidgeFit:
    """Minimise the penalised squared error above with ``optax.sgd``.

    Args:
        key: PRNG key (initialisation and minibatches).
        x: ``[n, p]``; y: ``[n]`` (standardised internally, as in
            :func:`~jaxseq.bayes.fit`).
        hidden: number of hidden units.
        lambda_beta, lambda_gamma: the ridge penalties
            :math:`\\lambda_1, \\lambda_2 \\ge 0`.
        steps: gradient steps. learning_rate, momentum: ``optax.sgd`` settings.
        batch_size: minibatch size for stochastic gradients; ``None`` = full batch.

    Returns:
        A :class:`RidgeFit`; ``losses[t]`` is the objective (on the minibatch) at
        step ``t``.
    """
    xa, ya = check_xy(x, y)
    hidden = check_hidden(hidden)
    for name, value in (("lambda_beta", lambda_beta), ("lambda_gamma", lambda_gamma)):
        if not value >= 0:
            raise ValueError(f"{name}: expected a non-negative penalty, got {value}.")
    n = xa.shape[0]
    if batch_size is not None and not 1 <= batch_size <= n:
        raise ValueError(
            f"batch_size: expected an integer in [1, {n}], got {batch_size}."
        )
    scaler = fit_scaler(xa, ya)
    xs, ys = jnp.asarray(scaler.x(xa)), jnp.asarray(scaler.y(ya))
    k_beta, k_gamma, k_batch = jax.random.split(key, 3)
    params = {
        "beta": jax.random.normal(k_beta, (hidden,)) / hidden**0.5,
        "b0": jnp.zeros(()),
        "gamma": jax.random.normal(k_gamma, (hidden, xa.shape[1] + 1)),
    }

    def objective(params, idx):
        f = network_mean(xs[idx], params["beta"], params["gamma"], params["b0"])
        penalty = lambda_beta * jnp.sum(params["beta"] ** 2)
        penalty += lambda_gamma * jnp.sum(params["gamma"] ** 2)
        return jnp.mean((ys[idx] - f) ** 2) + penalty / n

    optimizer = optax.sgd(learning_rate, momentum=momentum)

    def train_step(carry, t):
        params, opt_state = carry
        if batch_size is None:
            idx = jnp.arange(n)
        else:
            idx = jax.random.choice(
                jax.random.fold_in(k_batch, t), n, (batch_size,), False
            )
        loss, grads = jax.value_and_grad(objective)(params, idx)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    run = jax.jit(
        lambda p: jax.lax.scan(train_step, (p, optimizer.init(p)), jnp.arange(steps))
    )
    (params, _), losses = run(params)
    as_np = {k: np.asarray(v) for k, v in params.items()}
    return RidgeFit(
        as_np["beta"], as_np["b0"], as_np["gamma"], scaler, np.asarray(losses)
    )


def ridge_predict(fit: RidgeFit, x_new: Float[ArrayLike, "n p"]) -> np.ndarray:
    """``f(x_new)`` in original units."""
    xa = check_x(x_new, "x_new", num_inputs=fit.gamma.shape[1] - 1)
    f = network_mean(jnp.asarray(fit.scaler.x(xa)), fit.beta, fit.gamma, fit.b0)
    return np.asarray(fit.scaler.y_inverse(f))
