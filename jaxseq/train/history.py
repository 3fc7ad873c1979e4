"""Per-epoch metrics files and training curves (host side, process 0 only)."""

from __future__ import annotations

import csv
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def _columns(history: Sequence[Mapping[str, Any]]) -> list[str]:
    cols: list[str] = []
    for record in history:
        cols.extend(k for k in record if k not in cols)
    return cols


def write_metrics(
    history: Sequence[Mapping[str, Any]], log_dir: str | os.PathLike
) -> None:
    """Write ``metrics.jsonl`` (one JSON object per epoch) and ``metrics.csv``.

    Both files are rewritten whole from ``history`` through a temporary file and
    ``os.replace``, so a resumed run's files match an uninterrupted run's.
    """
    os.makedirs(log_dir, exist_ok=True)
    jsonl = os.path.join(log_dir, "metrics.jsonl")
    with open(jsonl + ".tmp", "w") as f:
        for record in history:
            f.write(json.dumps(dict(record)) + "\n")
    os.replace(jsonl + ".tmp", jsonl)
    path = os.path.join(log_dir, "metrics.csv")
    with open(path + ".tmp", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_columns(history))
        writer.writeheader()
        writer.writerows(history)
    os.replace(path + ".tmp", path)


def epoch_seconds(history: Sequence[Mapping[str, Any]]) -> float | None:
    """Seconds per epoch of a run: the median ``seconds`` of the epochs after
    the first in which no call of :func:`~jaxseq.train.fit` started.

    Epoch 1 compiles the training step (and any other batch shape and the
    validation step), and so does the epoch a resumed call starts in (its
    ``compile_seconds`` > 0): their times are not step times. ``None`` when no
    epoch is left (a one-epoch run: its time is ``history[0]["seconds"]``,
    compile included; ``FitResult.compile_seconds`` is the first step's).

    >>> epoch_seconds([{"seconds": 9.0}, {"seconds": 2.0}, {"seconds": 3.0}])
    2.5
    >>> epoch_seconds([{"seconds": 9.0}, {"seconds": 8.0, "compile_seconds": 6.0}])
    """
    times = [
        float(r["seconds"])
        for r in history[1:]
        if "seconds" in r and not r.get("compile_seconds")
    ]
    return float(statistics.median(times)) if times else None


def plot_history(
    history: Sequence[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    best_epoch: int | None = None,
    monitor: str | None = None,
) -> None:
    """Save :func:`history_figure` as a PNG at ``path`` (same arguments)."""
    fig = history_figure(history, title=title, best_epoch=best_epoch, monitor=monitor)
    fig.savefig(os.fspath(path), dpi=100)


def history_figure(
    history: Sequence[Mapping[str, Any]],
    *,
    title: str | None = None,
    best_epoch: int | None = None,
    monitor: str | None = None,
) -> Any:
    """Training and validation curves, one panel per metric (a matplotlib
    ``Figure``).

    Epochs are whole numbers on the x axis; ``best_epoch`` (the epoch whose
    parameters were kept) is a dashed vertical line in every panel, named in
    the legend with its ``monitor`` value when known.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no global
    backend switch), so it is safe in scripts, tests and threads.

    Args:
        history: one mapping per epoch (``epoch``, ``train_<metric>``,
            ``valid_<metric>``), as :func:`~jaxseq.train.fit` returns.
        title: the figure's title (what was trained on what).
        best_epoch: the 1-based epoch to mark, or ``None``.
        monitor: the validation metric that chose ``best_epoch``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    names = []
    for col in _columns(history):
        for prefix in ("train_", "valid_"):
            if col.startswith(prefix) and col[len(prefix) :] not in names:
                names.append(col[len(prefix) :])
    names = names or ["loss"]
    fig = Figure(figsize=(4.5 * len(names), 3.6), layout="constrained")
    FigureCanvasAgg(fig)
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(history)]
    best = None
    if best_epoch is not None and 1 <= best_epoch <= len(history):
        best = history[best_epoch - 1]
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for prefix, style, label in (
            ("train_", "-o", "training"),
            ("valid_", "-s", "validation"),
        ):
            ys = [r.get(prefix + name, math.nan) for r in history]
            if any(isinstance(y, float | int) and math.isfinite(y) for y in ys):
                ax.plot(epochs, ys, style, ms=3, label=label)
        if best is not None:
            value = best.get(f"valid_{monitor}") if monitor else None
            what = f", valid {monitor} {value:.4g}" if value is not None else ""
            ax.axvline(
                best_epoch,
                color="0.35",
                ls="--",
                lw=1,
                label=f"kept: epoch {best_epoch}{what}",
            )
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(f"{name} per epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title or "training curves")
    return fig
