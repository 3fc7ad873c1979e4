"""The examples of docs/text.md run (docstring examples run as doctests through
pytest's --doctest-modules)."""

from __future__ import annotations

from pathlib import Path

from .._markdown import run_python_blocks

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "text.md"


def test_guide_examples_run(capsys):
    """Every ```python block of docs/text.md, in order, in one namespace
    (```python skip blocks need the full data set or the internet)."""
    assert run_python_blocks(GUIDE, "docs_text") >= 8
    out = capsys.readouterr().out
    assert (
        "['i', 'didnt', 'like', 'it', 'the', 'so', 'called', 'hero', '2', '10']" in out
    )
    assert "('', '[UNK]', 'sat', 'the', 'cat')" in out
    assert "[[6, 7, 8], [0, 0, 3]] [3, 1]" in out
