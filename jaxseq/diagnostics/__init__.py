r"""Gradient flow through time: see vanishing and exploding gradients.

Back-propagation through time multiplies the gradient by one state Jacobian per
step; for Elman's ``h_t = tanh(W h_{t-1} + U x_t)`` that is
``diag(1 - h_t^2) W``, so the gradient reaching ``k`` steps back scales like
``\rho(W)^k`` (the seed's "repeated multiplication by ``W``"). This package
measures it for any jaxseq cell or layer, with exact autodiff:

=============================  ===================================================
:func:`hidden_grad_norms`      ``||dL/dh_t||`` for every step ``t`` of a batch
:func:`by_lag`                 per-step values re-indexed by lag ``T - 1 - t``
:func:`jacobian_norms`         ``||ds_T/ds_{T-k}||`` against the lag ``k``
:func:`jacobian_products`      the products ``ds_T/ds_{T-k}`` themselves
:func:`step_jacobians`         ``D_t = ds_t/ds_{t-1}`` along a trajectory
:func:`step_jacobian_norms`    their norms
:func:`recurrent_matrices`     the recurrent weight blocks (per gate)
:func:`recurrent_spectrum`     eigenvalues, spectral radius, singular values
:func:`spectrum`               the same for any square matrix
:func:`plot_lag_curves`        PNG: norms against lag, log scale, many models
:func:`plot_eigenvalues`       PNG: eigenvalues and the unit circle
=============================  ===================================================

Examples:
    >>> import jax
    >>> import jaxseq
    >>> from jaxseq import diagnostics
    >>> cell = jaxseq.cells.elman(8)
    >>> params = cell.init(jax.random.key(0), 2)
    >>> xs = jax.random.normal(jax.random.key(1), (2, 30, 2))
    >>> norms = diagnostics.jacobian_norms(cell, params, xs, log10=True)  # [2, 31]
    >>> bool((norms[:, -1] < norms[:, 1]).all())     # tanh Elman: it vanishes
    True
"""

from .gradient_flow import by_lag, hidden_grad_norms, jacobian_norms, jacobian_products
from .plots import plot_eigenvalues, plot_lag_curves
from .spectrum import (
    Spectrum,
    recurrent_matrices,
    recurrent_spectrum,
    spectrum,
    step_jacobian_norms,
    step_jacobians,
)

__all__ = [
    "Spectrum",
    "by_lag",
    "hidden_grad_norms",
    "jacobian_norms",
    "jacobian_products",
    "plot_eigenvalues",
    "plot_lag_curves",
    "recurrent_matrices",
    "recurrent_spectrum",
    "spectrum",
    "step_jacobian_norms",
    "step_jacobians",
]
