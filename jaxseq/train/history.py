"""Per-epoch metrics files and training curves (host side, process 0 only)."""

from __future__ import annotations

import csv
import json
import math
import os
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


def plot_history(history: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Training and validation curves, one panel per metric, saved as a PNG.

    Uses matplotlib's object API with the Agg canvas (no pyplot, no global
    backend switch), so it is safe in scripts, tests and threads.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = []
    for col in _columns(history):
        for prefix in ("train_", "valid_"):
            if col.startswith(prefix) and col[len(prefix) :] not in names:
                names.append(col[len(prefix) :])
    names = names or ["loss"]
    fig = Figure(figsize=(4.5 * len(names), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    epochs = [r.get("epoch", i + 1) for i, r in enumerate(history)]
    for i, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), i + 1)
        for prefix, style in (("train_", "-o"), ("valid_", "-s")):
            ys = [r.get(prefix + name, math.nan) for r in history]
            if any(isinstance(y, float | int) and math.isfinite(y) for y in ys):
                ax.plot(epochs, ys, style, ms=3, label=prefix.rstrip("_"))
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.savefig(os.fspath(path), dpi=100)
