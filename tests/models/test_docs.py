"""The examples of docs/imdb.md run."""

from __future__ import annotations

import re
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "imdb.md"


def test_guide_examples_run(tmp_path, monkeypatch, capsys):
    """Every ```python block of docs/imdb.md, in order, in one namespace (in a
    temporary directory: the examples write runs/)."""
    monkeypatch.chdir(tmp_path)
    source = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", source, flags=re.S | re.M)
    assert len(blocks) >= 2
    namespace: dict = {"__name__": "docs_imdb"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{GUIDE.name}[block {i}]", "exec"), namespace)
        except Exception as err:  # pragma: no cover - shows which block failed
            raise AssertionError(f"docs/imdb.md block {i} failed:\n{block}") from err
    assert (tmp_path / "runs" / "doc-gru" / "model" / "params.npz").is_file()
    assert "'accuracy'" in capsys.readouterr().out
