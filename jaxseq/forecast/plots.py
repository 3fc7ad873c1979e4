"""Forecast figures: history, forecast, prediction bands and held-out truth.

Built on :class:`matplotlib.figure.Figure` directly (no pyplot state), so they
work headless.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from jaxtyping import ArrayLike
from matplotlib.figure import Figure

__all__ = ["plot_forecast"]


def plot_forecast(
    path: str | Path | None,
    *,
    time: ArrayLike,
    history: ArrayLike,
    forecasts: Mapping[str, tuple[ArrayLike, ArrayLike, Mapping[float, tuple]]],
    truth: tuple[ArrayLike, ArrayLike] | None = None,
    title: str,
    units: str,
    time_label: str = "time",
    history_tail: int | None = None,
) -> Figure:
    """One panel: the history, each method's forecast with its bands, the truth.

    Args:
        path: PNG file to write (``None``: only return the figure).
        time: ``[T]`` time stamps of ``history`` ``[T]``.
        forecasts: label -> ``(time [H], mean [H], {prob: (lower [H], upper
            [H])})``; the widest band is drawn lightest.
        truth: ``(time [H'], values [H'])`` held-out values, or ``None``.
        title, units: the figure title and the y-axis label (units).
        time_label: the x-axis label.
        history_tail: draw only the last this many history values.
    """
    t, y = np.asarray(time), np.asarray(history)
    if history_tail is not None:
        t, y = t[-history_tail:], y[-history_tail:]
    fig = Figure(figsize=(11, 4.2), dpi=110)
    ax = fig.add_subplot()
    ax.plot(t, y, color="0.2", lw=1.2, label="history")
    for c, (label, (ft, mean, bands)) in enumerate(forecasts.items()):
        color = f"C{c}"
        for prob in sorted(bands, reverse=True):
            lo, hi = bands[prob]
            ax.fill_between(
                np.asarray(ft),
                lo,
                hi,
                color=color,
                alpha=0.15 if prob >= 0.9 else 0.3,
                label=f"{label}: {round(100 * prob)}% interval",
            )
        ax.plot(ft, mean, color=color, lw=1.6, label=f"{label}: forecast")
    if truth is not None:
        ax.plot(*truth, "o", color="k", ms=3.5, mfc="none", label="held-out truth")
    ax.set_title(title)
    ax.set_xlabel(time_label)
    ax.set_ylabel(units)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    if path is not None:
        fig.savefig(Path(path))
    return fig
