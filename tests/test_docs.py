"""The documentation site builds in strict mode (broken links fail), and the
examples in the guide pages run.

The build needs the docs requirements (``pip install -r docs/requirements.txt``);
without mkdocs it is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._markdown import run_python_blocks

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Guide pages whose ```python blocks run here, in order, in one namespace per
# page (docs/text.md has its own test in tests/text). Pages needing optional
# peers run only when the peers are installed.
GUIDES = {
    "index.md": (),
    "quickstart.md": (),
    "cells.md": (),
    "lengths.md": (),
    "bidirectional.md": (),
    "nnx.md": (),
    "serialization.md": (),
    "interop.md": ("torch", "keras"),
}


def _missing(modules):
    return [m for m in modules if importlib.util.find_spec(m) is None]


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    if _missing(["mkdocs", "mkdocstrings", "material"]):
        pytest.skip("mkdocs not installed (pip install -r docs/requirements.txt)")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "api" / "index.html").is_file()


@pytest.mark.parametrize("page", list(GUIDES))
# Keras' Variable.__array__ predates NumPy 2's ``copy`` keyword: get_weights warns.
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
def test_guide_examples_run(page, capsys, monkeypatch):
    missing = _missing(GUIDES[page])
    if missing:
        pytest.skip(f"{page} needs the optional peers {missing}")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert run_python_blocks(DOCS / page, f"docs_{page[:-3]}"), f"{page}: no blocks"
    capsys.readouterr()
