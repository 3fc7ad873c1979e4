"""Matplotlib figures: predictive bands over data, traces and rank plots.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot
state, no GUI backend), so they work in scripts, tests and headless servers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from jaxtyping import ArrayLike
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .predict import Prediction

__all__ = ["plot_band", "plot_diagnostics", "plot_observed", "save"]


def plot_band(
    ax: Axes,
    x_grid: ArrayLike,
    pred: Prediction,
    *,
    x: ArrayLike | None = None,
    y: ArrayLike | None = None,
    label: str = "posterior",
    color: str = "C0",
) -> Axes:
    """Posterior mean of ``f``, its credible band and the predictive interval over a
    1-D grid ``[G]``, with optional data points ``(x, y)``."""
    g = np.asarray(x_grid).reshape(-1)
    ax.fill_between(
        g,
        pred.lower,
        pred.upper,
        color=color,
        alpha=0.15,
        label=f"{label}: predictive interval",
    )
    ax.fill_between(
        g,
        pred.f_lower,
        pred.f_upper,
        color=color,
        alpha=0.35,
        label=f"{label}: credible band of f",
    )
    ax.plot(g, pred.mean, color=color, lw=1.5, label=f"{label}: mean of f")
    if x is not None and y is not None:
        ax.plot(np.asarray(x).reshape(-1), y, "k.", ms=3, alpha=0.6, label="data")
    ax.legend(fontsize="small")
    return ax


def plot_observed(ax: Axes, y: ArrayLike, pred: Prediction, *, title: str = "") -> Axes:
    """For several inputs: observations against the predictive interval, ordered by
    the posterior mean (points outside the interval in red)."""
    y = np.asarray(y)
    order = np.argsort(pred.mean)
    idx = np.arange(y.shape[0])
    ax.fill_between(
        idx,
        pred.lower[order],
        pred.upper[order],
        alpha=0.2,
        label="predictive interval",
    )
    ax.plot(idx, pred.mean[order], lw=1.2, label="posterior mean of f")
    inside = (pred.lower <= y) & (y <= pred.upper)
    ax.plot(idx, y[order], "k.", ms=3, label="observed")
    ax.plot(idx[~inside[order]], y[order][~inside[order]], "r.", ms=4, label="outside")
    ax.set_xlabel("observations sorted by posterior mean")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def plot_diagnostics(draws: dict[str, ArrayLike], *, title: str = "") -> Figure:
    """Trace plot and rank histogram per chain for each quantity ``[chains, draws]``.

    Rank plots (Vehtari et al., 2021): the pooled draws are ranked and each
    chain's ranks histogrammed; roughly flat, overlapping histograms mean the chains
    explore the same distribution.
    """
    names = list(draws)
    fig = Figure(figsize=(10, 2.2 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 2, squeeze=False)
    for row, name in enumerate(names):
        x = np.asarray(draws[name], dtype=float)
        chains, size = x.shape
        ranks = np.argsort(np.argsort(x, axis=None)).reshape(x.shape)
        bins = np.linspace(0, x.size, 21)
        for c in range(chains):
            axes[row, 0].plot(x[c], lw=0.4, alpha=0.8, label=f"chain {c}")
            axes[row, 1].hist(ranks[c], bins=bins, histtype="step", lw=1.0)
        axes[row, 1].axhline(size / 20, color="k", ls=":", lw=0.8)
        axes[row, 0].set_ylabel(name)
        axes[row, 1].set_yticks([])
    axes[0, 0].set_title("trace")
    axes[0, 1].set_title("rank histogram per chain")
    if title:
        fig.suptitle(title)
    return fig


def save(fig: Figure, path: str | Path, *, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG (parent folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
