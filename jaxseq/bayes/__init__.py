"""Bayesian shallow neural networks (Müller and Ríos Insua, 1998) in NumPyro.

* Models (:mod:`jaxseq.bayes.models`): :func:`regression` with the seed's full
  hierarchical prior (:class:`Prior`, :func:`default_prior`), :func:`classifier`
  (softmax), and :func:`lagged` inputs for non-linear autoregression.
* Samplers: NUTS (:func:`run_nuts`) and the seed's blocked Gibbs/Metropolis
  sampler, pure functions in :mod:`jaxseq.bayes.gibbs` offered as the NumPyro
  kernel :class:`BlockedGibbs` (:func:`run_gibbs`).
* The number of hidden units as a parameter: ``fit(..., hidden=HiddenUnits(max=8))``
  (birth/death moves, :mod:`jaxseq.bayes.dimension`).
* Fitting and prediction: :func:`fit`, :func:`predict`, :func:`forecast`,
  :func:`predictive`; the penalised least-squares network :func:`fit_ridge`.
* :meth:`Fit.to_arviz` (:func:`to_inference_data`): an ArviZ ``InferenceData`` in
  original units with sample stats and the pointwise log-likelihood
  (``arviz.loo``).
* Diagnostics on label-invariant quantities (:func:`label_invariant`,
  :func:`summary`, :func:`relabel`) and plots (:mod:`jaxseq.bayes.plots`);
  :func:`fit` warns (:class:`ConvergenceWarning`, ``Fit.warnings``) about
  divergences, NUTS tree-depth saturation, R-hat and ESS.
* Simulation-based calibration of a sweep (:mod:`jaxseq.bayes.sbc`).
* Gaussian-process baselines (:mod:`jaxseq.bayes.gp`: :func:`fit_gp`,
  :func:`predict_gp`) and the prior's infinite-width kernel
  (:mod:`jaxseq.bayes.nngp`).
* Command line: ``jaxseq bayes fit --data file.csv --hidden 4 --sampler gibbs``.
"""

import importlib
from typing import Any

from . import adaptation, conditionals, dimension, gibbs, moves, sbc, simulate
from ._arviz import original_units, pointwise_loglik, to_inference_data
from ._sweep import GibbsKernelState
from .datasets import load_csv, load_sunspots, sine_data
from .dimension import Geometric, HiddenUnits, TruncatedPoisson
from .infer import (
    ConvergenceWarning,
    Fit,
    NutsOptions,
    Scaler,
    compile_timer,
    fit,
    fit_scaler,
    predictive,
    run_gibbs,
    run_nuts,
)
from .models import (
    Prior,
    augment,
    check_prior,
    classifier,
    default_prior,
    lagged,
    network_mean,
    regression,
)
from .predict import Prediction, forecast, function_draws, noise_sd, predict
from .simulate import initial_position, sample_prior

#: Names imported at first use (PEP 562), by module: these modules import NumPyro
#: or Optax, which a Gibbs fit does not need before its draws are diagnosed
#: (``jaxseq bayes fit`` imports them while the chains run).
_LAZY = {
    "diagnostics": (
        "SummaryRow",
        "convergence_warnings",
        "coverage",
        "ess_bulk",
        "ess_tail",
        "fit_warnings",
        "format_summary",
        "label_invariant",
        "nuts_warnings",
        "reference_inputs",
        "relabel",
        "rhat",
        "summary",
    ),
    "gp": (
        "GPFit",
        "GPOptions",
        "GPParams",
        "GPPrediction",
        "fit_gp",
        "fit_gp_nuts",
        "predict_gp",
    ),
    "kernel": ("BlockedGibbs",),
    "mle": ("RidgeFit", "fit_ridge", "ridge_predict"),
}
_LAZY_MODULES = ("gp", "nngp")
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        value = importlib.import_module(f".{name}", __name__)
    elif name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE) | set(_LAZY_MODULES))


__all__ = [
    "BlockedGibbs",
    "ConvergenceWarning",
    "Fit",
    "Geometric",
    "GPFit",
    "GPOptions",
    "GPParams",
    "GPPrediction",
    "GibbsKernelState",
    "HiddenUnits",
    "NutsOptions",
    "Prediction",
    "Prior",
    "RidgeFit",
    "Scaler",
    "SummaryRow",
    "adaptation",
    "augment",
    "check_prior",
    "classifier",
    "compile_timer",
    "conditionals",
    "convergence_warnings",
    "coverage",
    "default_prior",
    "dimension",
    "ess_bulk",
    "ess_tail",
    "fit",
    "fit_gp",
    "fit_gp_nuts",
    "fit_ridge",
    "fit_warnings",
    "fit_scaler",
    "forecast",
    "format_summary",
    "function_draws",
    "gibbs",
    "gp",
    "initial_position",
    "label_invariant",
    "lagged",
    "load_csv",
    "load_sunspots",
    "moves",
    "network_mean",
    "nngp",
    "noise_sd",
    "nuts_warnings",
    "original_units",
    "pointwise_loglik",
    "predict",
    "predict_gp",
    "predictive",
    "reference_inputs",
    "regression",
    "relabel",
    "ridge_predict",
    "rhat",
    "run_gibbs",
    "run_nuts",
    "sample_prior",
    "sbc",
    "simulate",
    "sine_data",
    "summary",
    "to_inference_data",
    "TruncatedPoisson",
]
