"""The examples of docs/imdb.md run."""

from __future__ import annotations

from pathlib import Path

from .._markdown import run_python_blocks

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "imdb.md"


def test_guide_examples_run(tmp_path, monkeypatch, capsys):
    """Every ```python block of docs/imdb.md, in order, in one namespace (in a
    temporary directory: the examples write runs/)."""
    monkeypatch.chdir(tmp_path)
    assert run_python_blocks(GUIDE, "docs_imdb") >= 2
    assert (tmp_path / "runs" / "doc-gru" / "model" / "params.npz").is_file()
    assert "'accuracy'" in capsys.readouterr().out
