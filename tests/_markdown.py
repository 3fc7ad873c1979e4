"""Running the Python examples of a Markdown page (used by the docs tests)."""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.S | re.M)


def run_python_blocks(path: Path, name: str) -> int:
    """Execute every ```python block of ``path``, in order, in one namespace
    (``__name__`` = ``name``); a failing block raises an AssertionError that
    names it. Returns the number of blocks run."""
    blocks = _BLOCK.findall(path.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": name}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{path.name}[block {i}]", "exec"), namespace)
        except Exception as err:  # pragma: no cover - names the failing block
            raise AssertionError(f"{path} block {i} failed:\n{block}") from err
    return len(blocks)
