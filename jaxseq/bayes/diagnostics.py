r"""Convergence diagnostics on label-invariant quantities, and relabelling.

The network's posterior is invariant to permuting the hidden units (label
switching) and, with an output bias, nearly so to flipping a unit's sign
(:math:`\beta\psi(t) = \beta - \beta\psi(-t)`), so per-unit R-hat and ESS mean little.
Convergence is judged on quantities that do not depend on labels
(:func:`label_invariant`): the noise sd :math:`\sigma`, the log-likelihood of the
training data and the regression function :math:`f(x)` at a few inputs.

R-hat and ESS follow Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021):
rank-normalised split R-hat (the larger of the bulk and folded versions),
bulk-ESS on rank-normalised split chains and tail-ESS as the smaller ESS of the
5% and 95% quantile indicators. Autocorrelations and the Geyer truncation come
from :func:`numpyro.diagnostics.effective_sample_size`.

References:
    A. Vehtari et al. (2021), "Rank-normalization, folding, and localization: an
    improved R-hat for assessing convergence of MCMC", *Bayesian Analysis* 16(2).
    M. Stephens (2000), "Dealing with label switching in mixture models", *JRSS B*.
"""

from __future__ import annotations

import itertools
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
from jaxtyping import ArrayLike
from numpyro.diagnostics import effective_sample_size, gelman_rubin

from .infer import ConvergenceWarning, Fit
from .predict import function_draws, noise_sd

__all__ = [
    "ConvergenceWarning",
    "SummaryRow",
    "convergence_warnings",
    "coverage",
    "ess_bulk",
    "ess_tail",
    "fit_warnings",
    "format_summary",
    "nuts_warnings",
    "label_invariant",
    "reference_inputs",
    "relabel",
    "rhat",
    "summary",
]


_ndtri = np.vectorize(NormalDist().inv_cdf, otypes=[float])


def _split(x: np.ndarray) -> np.ndarray:
    """``[C, S] -> [2C, S // 2]`` (first and last halves; a middle draw is dropped)."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] < 4:
        raise ValueError(f"draws: expected shape [chains, draws >= 4], got {x.shape}.")
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, -half:]], axis=0)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks over all entries, ties getting their average rank."""
    flat = x.ravel()
    order = np.argsort(flat, kind="mergesort")
    ordered = flat[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts) - 1
    bounds = np.r_[np.flatnonzero(starts), flat.size]
    ranks = np.empty(flat.size)
    ranks[order] = 0.5 * (bounds[group] + 1 + bounds[group + 1])
    return ranks.reshape(x.shape)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Rank-normalise: ``Phi^{-1}((r - 3/8) / (N + 1/4))`` (Blom offsets)."""
    return _ndtri((_average_ranks(x) - 0.375) / (x.size + 0.25))


def rhat(draws: ArrayLike) -> float:
    """Rank-normalised split R-hat of ``[chains, draws]`` (max of bulk and folded)."""
    x = _split(draws)
    if np.ptp(x) == 0:
        return float("nan")
    bulk = gelman_rubin(_z_scale(x))
    folded = gelman_rubin(_z_scale(np.abs(x - np.median(x))))
    return float(max(bulk, folded))


def ess_bulk(draws: ArrayLike) -> float:
    """Bulk effective sample size of ``[chains, draws]``."""
    x = _split(draws)
    if np.ptp(x) == 0:
        return float("nan")
    return float(effective_sample_size(_z_scale(x)))


def ess_tail(draws: ArrayLike) -> float:
    """Tail effective sample size: min ESS of ``1{x <= q05}`` and ``1{x >= q95}``."""
    x = _split(draws)
    lo, hi = np.quantile(x, [0.05, 0.95])
    values = []
    for indicator in (x <= lo, x >= hi):
        ind = indicator.astype(float)
        values.append(float(effective_sample_size(ind)) if np.ptp(ind) > 0 else np.nan)
    return float(np.nanmin(values)) if not np.all(np.isnan(values)) else float("nan")


class SummaryRow(NamedTuple):
    """Posterior summary of one scalar quantity."""

    mean: float
    sd: float
    q05: float
    q95: float
    mcse: float
    ess_bulk: float
    ess_tail: float
    rhat: float


def summary(draws: dict[str, ArrayLike]) -> dict[str, SummaryRow]:
    """Summaries of scalar quantities ``name -> [chains, draws]``.

    ``mcse`` is the Monte Carlo standard error of the mean, ``sd / sqrt(ess_bulk)``.
    """
    rows = {}
    for name, value in draws.items():
        x = np.asarray(value, dtype=float)
        bulk = ess_bulk(x)
        q05, q95 = np.quantile(x, [0.05, 0.95])
        rows[name] = SummaryRow(
            float(x.mean()),
            float(x.std(ddof=1)),
            float(q05),
            float(q95),
            float(x.std(ddof=1) / np.sqrt(bulk)),
            bulk,
            ess_tail(x),
            rhat(x),
        )
    return rows


def _decimals(row: SummaryRow) -> int:
    """Decimal places that show the row's sd (else its mean) to 3 significant
    figures, between 0 and 10."""
    for value in (row.sd, row.mean):
        if np.isfinite(value) and value != 0:
            return int(np.clip(2 - np.floor(np.log10(abs(value))), 0, 10))
    return 3


def format_summary(
    rows: dict[str, SummaryRow],
    *,
    x_ref: ArrayLike | None = None,
    input_names: list[str] | None = None,
) -> str:
    """A text table of :func:`summary` rows.

    One rounding rule: the mean, sd, 5% and 95% quantiles and MCSE of a row are
    shown to the same decimal place, the one that gives the row's sd three
    significant figures; ESS as whole numbers, R-hat to 3 decimals (as ArviZ).
    With ``x_ref`` (``[k, p]``, the inputs of the ``f[i]`` rows of
    :func:`label_invariant`) a footnote names the input of each ``f[i]``, its
    columns named by ``input_names`` (default ``x0``, ``x1``, ...).
    """
    head = ["", "mean", "sd", "5%", "95%", "mcse", "ess_bulk", "ess_tail", "r_hat"]
    table = [head]
    for name, r in rows.items():
        dec = _decimals(r)
        real = [f"{v:.{dec}f}" for v in (r.mean, r.sd, r.q05, r.q95, r.mcse)]
        ess = [f"{v:.0f}" for v in (r.ess_bulk, r.ess_tail)]
        table.append([name, *real, *ess, f"{r.rhat:.3f}"])
    widths = [max(len(line[i]) for line in table) for i in range(len(head))]
    lines = [
        " ".join(
            f"{cell:<{w}}" if i == 0 else f"{cell:>{w}}"
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in table
    ]
    if x_ref is not None:
        lines += _reference_footnote(np.asarray(x_ref, dtype=float), input_names)
    return "\n".join(lines)


def _reference_footnote(x_ref: np.ndarray, names: list[str] | None) -> list[str]:
    if x_ref.ndim != 2:
        raise ValueError(f"x_ref: expected shape [k, p], got {x_ref.shape}.")
    p = x_ref.shape[1]
    names = [f"x{j}" for j in range(p)] if names is None else list(names)
    if len(names) != p:
        raise ValueError(f"input_names: expected {p} names, got {names!r}.")
    out = []
    for i, point in enumerate(x_ref):
        at = ", ".join(f"{n} = {v:.4g}" for n, v in zip(names, point, strict=True))
        out.append(f"f[{i}]: the regression function f at {at}")
    return out


def convergence_warnings(
    rows: dict[str, SummaryRow],
    num_chains: int,
    *,
    max_rhat: float = 1.01,
    min_ess_per_chain: float = 100.0,
) -> list[str]:
    """Messages for quantities with R-hat above ``max_rhat`` or bulk/tail ESS below
    ``min_ess_per_chain * num_chains`` (the thresholds of Vehtari et al., 2021)."""
    min_ess = min_ess_per_chain * num_chains
    out = []
    for name, r in rows.items():
        if not r.rhat <= max_rhat:
            out.append(f"{name}: R-hat {r.rhat:.3f} > {max_rhat} (chains disagree)")
        if not min(r.ess_bulk, r.ess_tail) >= min_ess:
            out.append(
                f"{name}: ESS bulk {r.ess_bulk:.0f} / tail {r.ess_tail:.0f} < "
                f"{min_ess:.0f} (run longer)"
            )
    return out


def nuts_warnings(
    diverging: ArrayLike, num_steps: ArrayLike, max_tree_depth: int
) -> list[str]:
    """Messages for divergent transitions and trees that reached ``max_tree_depth``.

    Args:
        diverging: ``[chains, draws]`` booleans (NumPyro's ``diverging`` field).
        num_steps: ``[chains, draws]`` leapfrog steps per transition; a tree of
            depth ``D`` takes between ``2**(D-1)`` and ``2**D - 1`` steps, so a
            transition reached the limit when ``num_steps >= 2**(max_tree_depth-1)``
            (Stan's rule: the limit was reached, whether or not the last doubling
            ended in a U-turn).
        max_tree_depth: the NUTS setting the run used.
    """
    diverging, num_steps = np.asarray(diverging), np.asarray(num_steps)
    total = diverging.size
    out = []
    n_div = int(diverging.sum())
    if n_div:
        out.append(
            f"NUTS: {n_div} of {total} transitions after warm-up diverged "
            f"({n_div / total:.1%}); the draws may be biased. Raise "
            "target_accept_prob (NutsOptions) or use the Gibbs sampler."
        )
    n_max = int(np.sum(num_steps >= 2 ** (max_tree_depth - 1)))
    if n_max:
        out.append(
            f"NUTS: {n_max} of {total} transitions ({n_max / total:.1%}) reached "
            f"the maximum tree depth {max_tree_depth}; the trajectories were cut "
            "short, so sampling is slow and may not have explored the posterior. "
            "Raise max_tree_depth (NutsOptions)."
        )
    return out


def fit_warnings(fit: Fit, *, max_tree_depth: int = 10) -> tuple[str, ...]:
    """Every problem :func:`~jaxseq.bayes.fit` warns about, as messages.

    Non-finite draws; for NUTS, :func:`nuts_warnings`; R-hat and ESS of the
    label-invariant quantities (:func:`label_invariant`,
    :func:`convergence_warnings`), or a note that fewer than 4 draws per chain
    cannot be assessed. An empty tuple means none was found.
    """
    out = []
    bad = {k: int(np.sum(~np.isfinite(v))) for k, v in fit.samples.items()}
    bad = {k: v for k, v in bad.items() if v}
    if bad:
        listed = ", ".join(f"{k} ({v})" for k, v in bad.items())
        out.append(f"non-finite draws in {listed}; the run failed numerically.")
    if fit.sampler == "nuts":
        out += nuts_warnings(
            fit.extra["diverging"], fit.extra["num_steps"], max_tree_depth
        )
    chains, draws = fit.samples["prec"].shape[:2]
    if draws < 4:
        out.append(
            f"convergence: {draws} draws per chain are too few to compute R-hat "
            "and ESS (at least 4 are needed); run longer."
        )
    elif not bad:
        draws = label_invariant(fit)
        if "m" in draws and np.ptp(draws["m"]) == 0:  # one m throughout: no R-hat
            draws.pop("m")
        out += convergence_warnings(summary(draws), chains)
    return tuple(out)


def reference_inputs(x: ArrayLike, num: int = 3) -> np.ndarray:
    """``num`` inputs at which to monitor ``f``: the columnwise quantiles at
    ``linspace(0.1, 0.9, num)`` of the training inputs ``[n, p] -> [num, p]``."""
    return np.quantile(np.asarray(x, dtype=float), np.linspace(0.1, 0.9, num), axis=0)


def label_invariant(fit: Fit, x_ref: ArrayLike | None = None) -> dict[str, np.ndarray]:
    """Label-invariant draws ``[chains, draws]`` of a :class:`~jaxseq.bayes.Fit`.

    Returns ``sigma`` (noise sd), ``loglik`` (training-data log-likelihood, original
    units), ``f[i]`` (the regression function at ``x_ref[i]``; default
    :func:`reference_inputs`) and, when the fit sampled the number of hidden units,
    ``m``.
    """
    x_ref = reference_inputs(fit.x) if x_ref is None else np.asarray(x_ref, dtype=float)
    sigma = noise_sd(fit)
    # One chain at a time: [draws, n] residuals rather than [chains, draws, n].
    sse = np.concatenate(
        [
            ((fit.y - function_draws(_chain(fit, c), fit.x)) ** 2).sum(-1)
            for c in range(sigma.shape[0])
        ]
    )
    n = fit.y.shape[0]
    loglik = -0.5 * sse / sigma**2 - n * np.log(sigma)
    loglik -= 0.5 * n * np.log(2 * np.pi)
    out = {"sigma": sigma, "loglik": loglik}
    f_ref = function_draws(fit, x_ref)
    for i in range(x_ref.shape[0]):
        out[f"f[{i}]"] = f_ref[..., i]
    if "m" in fit.samples:
        out["m"] = np.asarray(fit.samples["m"], dtype=float)
    return out


def _chain(fit: Fit, c: int) -> Fit:
    return fit._replace(samples={k: v[c : c + 1] for k, v in fit.samples.items()})


def coverage(y: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> float:
    """Fraction of ``y`` inside ``[lower, upper]``."""
    y = np.asarray(y)
    return float(np.mean((np.asarray(lower) <= y) & (y <= np.asarray(upper))))


def relabel(
    samples: dict[str, ArrayLike],
    *,
    bias: bool = True,
    flip_signs: bool = True,
    order: str = "location",
    pivot: tuple[ArrayLike, ArrayLike] | None = None,
) -> dict[str, np.ndarray]:
    r"""Put every draw's hidden units in a canonical labelling.

    1. Sign (only with ``bias``): a unit whose first slope is negative becomes
       :math:`(-\beta_j, -\gamma_j)` and :math:`b_0 \leftarrow b_0 + \beta_j`, which
       leaves :math:`f` unchanged. Exact symmetry of the likelihood; of the prior
       only when :math:`\mu_\beta = 0, \mu_\gamma = 0`, so hyperparameter sites are
       left as drawn.
    2. Order: sort units by ``"location"`` (:math:`-\gamma_{j0}/\gamma_{j1}`, where
       the unit crosses 1/2 along the first input), by ``"beta"``, or, given a
       ``pivot = (beta [m], gamma [m, d])``, choose the permutation closest to the
       pivot in squared distance (all ``m!`` permutations; ``m <= 8``).

    Args:
        samples: ``beta`` ``[..., m]``, ``gamma`` ``[..., m, d]`` and (with bias)
            ``b0`` ``[...]``; other sites are copied unchanged.
        bias, flip_signs, order, pivot: see above.

    Returns:
        A new dict; ``f`` evaluated at any input is unchanged draw by draw.
    """
    out = {k: np.array(v) for k, v in samples.items()}
    beta, gamma = out["beta"], out["gamma"]
    if flip_signs and bias:
        flip = gamma[..., 1] < 0
        out["b0"] = out["b0"] + np.where(flip, beta, 0.0).sum(-1)
        beta = np.where(flip, -beta, beta)
        gamma = np.where(flip[..., None], -gamma, gamma)
    if pivot is not None:
        perm = _pivot_permutation(beta, gamma, *map(np.asarray, pivot))
    elif order == "location":
        perm = np.argsort(-gamma[..., 0] / gamma[..., 1], axis=-1)
    elif order == "beta":
        perm = np.argsort(beta, axis=-1)
    else:
        raise ValueError(f"order: expected 'location' or 'beta', got {order!r}.")
    out["beta"] = np.take_along_axis(beta, perm, -1)
    out["gamma"] = np.take_along_axis(gamma, perm[..., None], -2)
    return out


def _pivot_permutation(beta, gamma, pivot_beta, pivot_gamma) -> np.ndarray:
    m = beta.shape[-1]
    if m > 8:
        raise ValueError(
            f"pivot: expected at most 8 hidden units, got {m}; use order=."
        )
    units = np.concatenate([beta[..., None], gamma], -1)  # [..., m, d+1]
    ref = np.concatenate([pivot_beta[:, None], pivot_gamma], -1)  # [m, d+1]
    perms = np.array(list(itertools.permutations(range(m))))  # [P, m]
    # cost[..., a, b]: squared distance between the draw's unit a and pivot slot b.
    cost = ((units[..., :, None, :] - ref[None, :, :]) ** 2).sum(-1)
    totals = cost[..., perms, np.arange(m)].sum(-1)  # [..., P]
    return perms[np.argmin(totals, axis=-1)]
