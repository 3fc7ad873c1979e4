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


def _level(pred: Prediction) -> str:
    """``"90% "`` from ``pred.prob`` (empty when unknown)."""
    return f"{pred.prob:.0%} " if np.isfinite(pred.prob) else ""


def plot_band(
    ax: Axes,
    x_grid: ArrayLike,
    pred: Prediction,
    *,
    x: ArrayLike | None = None,
    y: ArrayLike | None = None,
    held_out: tuple[ArrayLike, ArrayLike] | None = None,
    label: str = "posterior",
    color: str = "C0",
) -> Axes:
    """Posterior mean of ``f``, its credible band and the predictive interval over a
    1-D grid ``[G]`` (legend entries state the level, ``pred.prob``), with
    optional training points ``(x, y)`` and held-out points ``held_out =
    (x_test, y_test)`` (red crosses)."""
    g = np.asarray(x_grid).reshape(-1)
    level = _level(pred)
    ax.fill_between(
        g,
        pred.lower,
        pred.upper,
        color=color,
        alpha=0.15,
        label=f"{label}: {level}predictive interval of y",
    )
    ax.fill_between(
        g,
        pred.f_lower,
        pred.f_upper,
        color=color,
        alpha=0.35,
        label=f"{label}: {level}credible band of f",
    )
    ax.plot(g, pred.mean, color=color, lw=1.5, label=f"{label}: mean of f")
    if x is not None and y is not None:
        x = np.asarray(x).reshape(-1)
        ax.plot(x, y, "k.", ms=3, alpha=0.6, label="training data")
    if held_out is not None:
        xt, yt = held_out
        ax.plot(np.asarray(xt).reshape(-1), yt, "rx", ms=4, label="held-out data")
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
        label=f"{_level(pred)}predictive interval",
    )
    ax.plot(idx, pred.mean[order], lw=1.2, label="posterior mean of f")
    inside = (pred.lower <= y) & (y <= pred.upper)
    ax.plot(idx, y[order], "k.", ms=3, label="observed")
    ax.plot(idx[~inside[order]], y[order][~inside[order]], "r.", ms=4, label="outside")
    ax.set_xlabel("observations sorted by posterior mean of f")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return ax


def plot_diagnostics(
    draws: dict[str, ArrayLike],
    *,
    title: str = "",
    units: dict[str, str] | None = None,
) -> Figure:
    """Trace plot and rank histogram per chain for each quantity ``[chains, draws]``.

    Rank plots (Vehtari et al., 2021): the pooled draws are ranked and each
    chain's ranks histogrammed; roughly flat, overlapping histograms mean the chains
    explore the same distribution (the dotted line is the uniform count).
    ``units`` maps a quantity's name to its unit, shown on its axis (e.g.
    ``{"sigma": "units of y", "loglik": "nats"}``). One colour per chain, with a
    legend.
    """
    names = list(draws)
    units = units or {}
    fig = Figure(figsize=(10, 1.2 + 2.2 * len(names)), layout="constrained")
    # one x axis per column: tick labels only under the last row (the layout and
    # drawing time goes mostly to tick labels)
    axes = fig.subplots(len(names), 2, squeeze=False, sharex="col")
    for row, name in enumerate(names):
        x = np.asarray(draws[name], dtype=float)
        if x.ndim != 2:
            raise ValueError(
                f"draws[{name!r}]: expected shape [chains, draws], got {x.shape}."
            )
        chains, size = x.shape
        ranks = np.argsort(np.argsort(x, axis=None)).reshape(x.shape)
        bins = np.linspace(0, x.size, 21)
        for c in range(chains):
            color = f"C{c % 10}"
            axes[row, 0].plot(x[c], lw=0.4, alpha=0.8, color=color, label=f"chain {c}")
            counts, _ = np.histogram(ranks[c], bins=bins)
            axes[row, 1].stairs(counts, bins, lw=1.0, color=color)
        axes[row, 1].axhline(size / 20, color="k", ls=":", lw=0.8, label="uniform")
        unit = units.get(name)
        axes[row, 0].set_ylabel(f"{name}\n({unit})" if unit else name)
        axes[row, 1].set_ylabel("draws per bin")
    axes[-1, 0].set_xlabel("draw (after warm-up)")
    axes[-1, 1].set_xlabel("rank of the draw among all chains' draws")
    axes[0, 0].set_title("trace")
    axes[0, 1].set_title("rank histogram per chain")
    axes[0, 0].legend(fontsize="small", ncols=min(chains, 4), loc="upper right")
    axes[0, 1].legend(fontsize="small", loc="lower right")
    fig.suptitle(title or f"{chains} chains of {size} draws each")
    return fig


def save(fig: Figure, path: str | Path, *, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG (parent folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
