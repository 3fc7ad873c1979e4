"""The PNG figures: written, log-scaled, robust to NaN and out-of-range norms."""

from __future__ import annotations

import numpy as np
import pytest

from jaxseq.diagnostics import plot_eigenvalues, plot_lag_curves

PNG = b"\x89PNG\r\n\x1a\n"


def test_lag_curves_png(tmp_path):
    lags = np.arange(60)
    rows = np.stack([0.9**lags, 0.8**lags, np.full(60, np.nan)])  # [N, K] with NaN
    path = tmp_path / "sub" / "lag.png"
    fig = plot_lag_curves(
        {"rho 1.05": 1.05**lags, "batch": rows, "log10": -400 + 0 * lags},
        path,
        title="gradient norm vs lag",
        styles={"batch": {"linestyle": "--"}},
    )
    assert path.read_bytes()[:8] == PNG
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == 3


def test_lag_curves_accept_log10_values_beyond_float_range(tmp_path):
    fig = plot_lag_curves({"exploding": np.arange(400) * 0.2}, log10=True)
    y = fig.axes[0].get_lines()[0].get_ydata()
    assert y[-1] == pytest.approx(10.0 ** (399 * 0.2))


def test_eigenvalues_png(tmp_path):
    path = tmp_path / "eig.png"
    z = np.exp(2j * np.pi * np.arange(8) / 8) * 1.3
    fig = plot_eigenvalues({"W": z, "f": [0.2, 0.5]}, path, title="spectrum")
    assert path.read_bytes()[:8] == PNG
    ax = fig.axes[0]
    assert (
        ax.get_xlim()[1] >= 1.3
        and "rho = 1.300" in ax.get_legend_handles_labels()[1][1]
    )


def test_plot_errors():
    with pytest.raises(
        ValueError, match=r"curves\['x'\]: expected shape \[K\] or \[N, K\]"
    ):
        plot_lag_curves({"x": np.ones((2, 2, 2))})
