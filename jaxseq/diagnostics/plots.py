"""PNG figures for gradient flow: norms against lag, eigenvalues against the unit
circle.

The functions use matplotlib's object-oriented API (``matplotlib.figure.Figure``
rendered by the Agg canvas), never ``pyplot``: no display is needed and no global
backend is changed. Each returns the ``Figure`` and, given ``path``, writes a PNG.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from jaxtyping import ArrayLike

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _figure(size: tuple[float, float]) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


def _log10_rows(values: ArrayLike, log10: bool, label: str) -> np.ndarray:
    """``[N, K]`` log10 values (NaN where not positive) from ``[K]`` or ``[N, K]``."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim not in (1, 2):
        raise ValueError(
            f"curves[{label!r}]: expected shape [K] or [N, K] (lags last), got "
            f"{v.shape}."
        )
    v = np.atleast_2d(v)
    if log10:
        return np.where(np.isfinite(v), v, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)


def plot_lag_curves(
    curves: Mapping[str, ArrayLike],
    path: str | Path | None = None,
    *,
    log10: bool = False,
    title: str | None = None,
    ylabel: str = "gradient norm",
    xlabel: str = "lag T - t (steps back from the last state)",
    styles: Mapping[str, Mapping[str, Any]] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Norms against lag for several models on one log-scale figure.

    A 2-D curve ``[N, K]`` (e.g. one row per example) is drawn as its geometric
    mean over rows (the mean of ``log10``, ignoring NaN) with a band from the 10th
    to the 90th percentile.

    Args:
        curves: ``{label: values}``, values ``[K]`` or ``[N, K]`` indexed by lag
            (e.g. :func:`~jaxseq.diagnostics.jacobian_norms`, or
            :func:`~jaxseq.diagnostics.by_lag` of
            :func:`~jaxseq.diagnostics.hidden_grad_norms`).
        path: where to write the PNG (parent folders are created); ``None`` writes
            nothing.
        log10: the values are already ``log10`` of the norms (as from
            ``jacobian_norms(..., log10=True)``), which keeps lags whose norm
            leaves the float range.
        title, ylabel, xlabel: labels.
        styles: optional matplotlib line keywords per label (``color``,
            ``linestyle``, ...).
        ax: draw into these axes instead of a new figure.

    Returns:
        The ``Figure``.

    Examples:
        >>> import numpy as np
        >>> from jaxseq.diagnostics import plot_lag_curves
        >>> lags = np.arange(50)
        >>> fig = plot_lag_curves({"rho 0.9": 0.9**lags, "rho 1.1": 1.1**lags})
        >>> fig.axes[0].get_yscale()
        'log'
    """
    if ax is None:
        fig = _figure((6.4, 4.2))
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    for label, values in curves.items():
        rows = _log10_rows(values, log10, label)
        lags = np.arange(rows.shape[1])
        kwargs = dict((styles or {}).get(label, {}))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # lags where all are NaN
            centre = np.nanmean(rows, axis=0)
            lo, hi = np.nanpercentile(rows, [10, 90], axis=0)
        (line,) = ax.plot(lags, 10.0**centre, label=label, **kwargs)
        if rows.shape[0] > 1:
            band = dict(color=line.get_color(), alpha=0.15)
            ax.fill_between(lags, 10.0**lo, 10.0**hi, **band)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if curves:
        ax.legend(fontsize="small")
    return _save(fig, path)  # type: ignore[arg-type]


def plot_eigenvalues(
    eigenvalues: Mapping[str, ArrayLike],
    path: str | Path | None = None,
    *,
    title: str | None = None,
    markers: Sequence[str] = ("o", "x", "+", "s", "^", "v", "d"),
    ax: Axes | None = None,
) -> Figure:
    """Eigenvalues in the complex plane, with the unit circle.

    Eigenvalues outside the circle grow along their eigenvector at every step
    (exploding gradients), those inside shrink (vanishing gradients).

    Args:
        eigenvalues: ``{label: [H] complex}`` (e.g.
            ``recurrent_spectrum(cell, params)["W"].eigenvalues``).
        path: where to write the PNG; ``None`` writes nothing.
        title: figure title.
        markers: marker per series, cycled.
        ax: draw into these axes instead of a new figure.

    Returns:
        The ``Figure``.

    Examples:
        >>> import numpy as np
        >>> from jaxseq.diagnostics import plot_eigenvalues
        >>> fig = plot_eigenvalues({"W": np.array([0.5 + 0.5j, 0.5 - 0.5j, 1.2])})
        >>> fig.axes[0].get_aspect()
        1.0
    """
    if ax is None:
        fig = _figure((5.2, 5.2))
        ax = fig.add_subplot()
    else:
        fig = ax.figure  # type: ignore[assignment]
    theta = np.linspace(0.0, 2.0 * np.pi, 400)
    ax.plot(np.cos(theta), np.sin(theta), color="0.4", lw=1.0, label="unit circle")
    radius = 1.0
    for i, (label, values) in enumerate(eigenvalues.items()):
        z = np.asarray(values).astype(np.complex128).ravel()
        rho = float(np.abs(z).max()) if z.size else 0.0
        radius = max(radius, rho)
        marker = markers[i % len(markers)]
        label = f"{label} (rho = {rho:.3f})"
        ax.scatter(z.real, z.imag, s=14, marker=marker, label=label)
    lim = 1.1 * radius
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.axhline(0.0, color="0.8", lw=0.5)
    ax.axvline(0.0, color="0.8", lw=0.5)
    ax.set_xlabel("Re(lambda)")
    ax.set_ylabel("Im(lambda)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", loc="upper right")
    return _save(fig, path)  # type: ignore[arg-type]


__all__ = ["plot_eigenvalues", "plot_lag_curves"]
