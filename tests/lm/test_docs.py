"""The Python blocks of docs/lm.md run (in order, one namespace)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .._markdown import run_python_blocks

DOC = Path(__file__).resolve().parents[2] / "docs" / "lm.md"


@pytest.mark.slow
def test_lm_guide_runs(capsys):
    assert run_python_blocks(DOC, "docs_lm") == 5
    capsys.readouterr()
