r"""A :class:`~jaxseq.bayes.Fit` as an :class:`arviz.InferenceData`, in original units.

:func:`~jaxseq.bayes.fit` samples on the standardised scale
(:math:`x_s = (x - \bar x)/s_x`, :math:`y_s = (y - \bar y)/s_y`). The network is
exactly the same function in original units with

.. math::

    \beta^o = s_y\beta,\quad b_0^o = \bar y + s_y b_0,\quad
    \gamma^o_{j,k} = \gamma_{j,k}/s_{x,k},\quad
    \gamma^o_{j,0} = \gamma_{j,0} - \textstyle\sum_k \gamma_{j,k}\bar x_k/s_{x,k},
    \quad \sigma = s_y/\sqrt{\text{prec}},

i.e. :math:`\gamma^o = A\gamma` per unit with :math:`A = B^{-1}`,
:math:`B = \begin{pmatrix}1 & \bar x'\\ 0 & \mathrm{diag}(s_x)\end{pmatrix}`; the
hyperparameters follow: :math:`\mu_\beta^o = s_y\mu_\beta`,
:math:`\sigma_\beta^o = s_y\,\text{prec\_beta}^{-1/2}`,
:math:`\mu_\gamma^o = A\mu_\gamma` and the precision matrix of the unit weights
:math:`B' S_\gamma^{-1} B`. So
:math:`f(x) = b_0^o + \sum_j \beta^o_j\,\psi(\gamma^o_{j,0} + x'\gamma^o_{j,1:})`;
without an output bias :math:`b_0^o = \bar y` (constant).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from jaxtyping import Float

from .infer import Fit
from .predict import function_draws

__all__ = ["original_units", "pointwise_loglik", "to_inference_data"]


def _import_arviz() -> Any:
    try:
        with warnings.catch_warnings():
            # ArviZ announces its 1.0 refactor with a FutureWarning on import.
            warnings.simplefilter("ignore", FutureWarning)
            import arviz
    except ImportError:
        raise ImportError(
            "Fit.to_arviz needs arviz: pip install arviz (or jaxseq[bayes])"
        ) from None
    return arviz


def original_units(fit: Fit) -> dict[str, np.ndarray]:
    """The posterior draws ``[chains, draws, ...]`` in original units (module doc):
    ``m`` (only when the fit sampled the number of hidden units), ``sigma``,
    ``b0``, ``beta`` ``[m]``, ``gamma`` ``[m, p + 1]`` (intercept first),
    ``mu_beta``, ``sigma_beta``, ``mu_gamma`` ``[p + 1]`` and ``prec_gamma``
    ``[p + 1, p + 1]``."""
    s, sc = fit.samples, fit.scaler
    x_mean, x_scale = np.asarray(sc.x_mean, float), np.asarray(sc.x_scale, float)
    d = x_mean.shape[0] + 1
    back = np.eye(d)  # B: gamma_standardised = B @ gamma_original
    back[0, 1:], back[1:, 1:] = x_mean, np.diag(x_scale)
    forward = np.linalg.inv(back)  # A = B^-1
    b0 = s["b0"] if fit.bias else np.zeros_like(s["prec"])
    as64 = {k: np.asarray(v, dtype=float) for k, v in s.items()}
    units = {"m": np.asarray(s["m"])} if "m" in s else {}
    return units | {
        "sigma": sc.y_scale / np.sqrt(as64["prec"]),
        "b0": sc.y_mean + sc.y_scale * np.asarray(b0, dtype=float),
        "beta": sc.y_scale * as64["beta"],
        "gamma": np.einsum("kl,...jl->...jk", forward, as64["gamma"]),
        "mu_beta": sc.y_scale * as64["mu_beta"],
        "sigma_beta": sc.y_scale / np.sqrt(as64["prec_beta"]),
        "mu_gamma": np.einsum("kl,...l->...k", forward, as64["mu_gamma"]),
        "prec_gamma": np.einsum("lk,...lm,mn->...kn", back, as64["prec_gamma"], back),
    }


def pointwise_loglik(fit: Fit) -> Float[np.ndarray, "chains draws n"]:
    """``log N(y_i | f(x_i), sigma^2)`` per draw and training observation, in
    original units (float64), one chain at a time."""
    y = np.asarray(fit.y, dtype=float)
    sigma = fit.scaler.y_scale / np.sqrt(np.asarray(fit.samples["prec"], float))
    out = np.empty(sigma.shape + y.shape)
    for c in range(sigma.shape[0]):
        one = fit._replace(samples={k: v[c : c + 1] for k, v in fit.samples.items()})
        f = np.asarray(function_draws(one, fit.x)[0], dtype=float)
        z = (y - f) / sigma[c][:, None]
        out[c] = -0.5 * z**2 - np.log(sigma[c])[:, None] - 0.5 * np.log(2 * np.pi)
    return out


def _sample_stats(fit: Fit) -> dict[str, np.ndarray]:
    extra = {k: np.asarray(v) for k, v in fit.extra.items()}
    if fit.sampler == "nuts":
        steps = extra["num_steps"].astype(np.int64)
        stats = {
            "diverging": extra["diverging"].astype(bool),
            "n_steps": steps,
            # A tree of depth D takes 2**(D-1) .. 2**D - 1 leapfrog steps.
            "tree_depth": np.floor(np.log2(np.maximum(steps, 1))).astype(np.int64) + 1,
        }
        for ours, theirs in [
            ("accept_prob", "acceptance_rate"),
            ("energy", "energy"),
            ("step_size", "step_size"),
        ]:
            if ours in extra:
                stats[theirs] = extra[ours].astype(float)
        return stats
    # Gibbs: the moves in use (a move not in `proposal` is NaN throughout).
    return {k: v for k, v in extra.items() if not np.all(np.isnan(v))}


def to_inference_data(
    fit: Fit, *, input_names: list[str] | None = None, standardised: bool = False
) -> Any:
    """``fit`` as an :class:`arviz.InferenceData` (imports ``arviz``).

    Groups (dims ``chain``, ``draw``; ``unit`` = hidden unit, ``weight`` =
    ``["intercept", *input_names]``, ``obs``, ``input``):

    * ``posterior``: :func:`original_units`; with ``standardised=True`` also the
      sampled sites on the standardised scale, named ``<site>_std``
      (``prec_std``, ``beta_std``, ...).
    * ``sample_stats``: NUTS ``diverging``, ``n_steps`` (leapfrog steps),
      ``tree_depth``, ``acceptance_rate``, ``energy``, ``step_size``; Gibbs the
      acceptance probability of each move in use, ``accept_<move>`` (per unit
      for the per-unit moves).
    * ``log_likelihood``: ``y`` ``[chain, draw, obs]`` (:func:`pointwise_loglik`),
      so ``arviz.loo(idata)`` works.
    * ``observed_data``: ``y``; ``constant_data``: ``x`` ``[obs, input]`` and
      the scaler (``x_mean``, ``x_scale``, ``y_mean``, ``y_scale``).

    Attributes name the sampler, ``hidden`` (``m_max`` when ``m`` was sampled;
    then ``hidden_variable`` is 1 and the posterior holds ``m``), ``bias`` (0/1),
    wall and compile seconds and the fit's warnings (one string, ``""`` if none).

    Args:
        fit: from :func:`~jaxseq.bayes.fit`.
        input_names: names of the ``p`` input columns (default ``x0``, ``x1``, ...).
        standardised: also keep the standardised-scale sites.
    """
    az = _import_arviz()
    p = fit.x.shape[1]
    names = [f"x{k}" for k in range(p)] if input_names is None else list(input_names)
    if len(names) != p or len(set(names)) != p or "intercept" in names:
        raise ValueError(
            f"input_names: expected {p} distinct names other than 'intercept', got "
            f"{input_names!r}."
        )
    hidden, weight = "unit", "weight"
    dims = {
        "beta": [hidden],
        "gamma": [hidden, weight],
        "mu_gamma": [weight],
        "prec_gamma": [weight, "weight_"],
        "y": ["obs"],
        "x": ["obs", "input"],
        "x_mean": ["input"],
        "x_scale": ["input"],
    }
    posterior = original_units(fit)
    if standardised:
        for site, value in fit.samples.items():
            posterior[f"{site}_std"] = np.asarray(value)
            dims[f"{site}_std"] = dims.get(site, [])
    stats = _sample_stats(fit)
    for name, value in stats.items():
        if value.ndim == 3:
            dims[name] = [hidden]
    weights = ["intercept", *names]
    coords = {
        hidden: np.arange(fit.hidden),
        weight: weights,
        "weight_": weights,
        "input": names,
        "obs": np.arange(fit.y.shape[0]),
    }
    constant = {"x": fit.x, "x_mean": fit.scaler.x_mean, "x_scale": fit.scaler.x_scale}
    constant |= {"y_mean": fit.scaler.y_mean, "y_scale": fit.scaler.y_scale}
    attrs = {
        "sampler": fit.sampler,
        "hidden": fit.hidden,
        "hidden_variable": int(fit.dimension is not None),
        "bias": int(fit.bias),
        "wall_s": fit.wall_s,
        "compile_s": fit.compile_s,
        "warnings": "\n".join(fit.warnings),
        "inference_library": "jaxseq.bayes (NumPyro)",
    }
    with warnings.catch_warnings():
        # ArviZ guesses mis-shaped input when there are more chains than draws.
        warnings.filterwarnings("ignore", "More chains", UserWarning)
        return az.from_dict(
            posterior=posterior,
            sample_stats=stats,
            log_likelihood={"y": pointwise_loglik(fit)},
            observed_data={"y": fit.y},
            constant_data=constant,
            coords=coords,
            dims=dims,
            attrs=attrs,
            posterior_attrs=dict(attrs),
        )
