"""The examples of docs/text.md run (docstring examples run as doctests through
pytest's --doctest-modules)."""

from __future__ import annotations

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "text.md"


def test_guide_examples_run(capsys):
    """Every ```python block of docs/text.md, in order, in one namespace
    (```python skip blocks need the full data set or the internet)."""
    source = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", source, flags=re.S | re.M)
    assert len(blocks) >= 8
    namespace: dict = {"__name__": "docs_text"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{GUIDE.name}[block {i}]", "exec"), namespace)
        except Exception as err:  # pragma: no cover - shows which block failed
            raise AssertionError(f"docs/text.md block {i} failed:\n{block}") from err
    out = capsys.readouterr().out
    assert (
        "['i', 'didnt', 'like', 'it', 'the', 'so', 'called', 'hero', '2', '10']" in out
    )
    assert "('', '[UNK]', 'sat', 'the', 'cat')" in out
    assert "[[6, 7, 8], [0, 0, 3]] [3, 1]" in out
