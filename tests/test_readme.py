"""Every Python block of README.md runs, in order, in one namespace.

The blocks write under ``runs/`` relative to the working directory, so the test
runs them in a temporary directory. The ecosystem block needs the optional peers
(torch, keras); without them the test is skipped with that reason.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ._markdown import run_python_blocks

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
# Keras' Variable.__array__ predates NumPy 2's ``copy`` keyword: get_weights warns.
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    missing = [m for m in ("torch", "keras") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"README's ecosystem block needs the optional peers {missing}")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.chdir(tmp_path)
    assert run_python_blocks(README, "readme") >= 4
    # the training block really trained: better than chance on held-out data
    best, acc = capsys.readouterr().out.split()[-2:]
    assert int(best) >= 1 and float(acc) > 0.7, (best, acc)
    assert (tmp_path / "runs" / "x" / "curves.png").is_file()
    assert (tmp_path / "runs" / "encoder").exists()
