"""The documentation runs: every ```python block of README.md and of every page
in docs/ (found by listing the folder, so a new page is run without editing this
file), and the site builds in strict mode (broken links fail).

Conventions (tests/_markdown.py): a block that cannot run here is marked
``<!-- not run: REASON -->`` on the line before its fence; a ``text`` block
after ``<!-- output -->`` is output the block before it must print. Each page
runs in one namespace, in a fresh temporary working directory. A page importing
an optional peer (torch, keras, ...) is skipped, naming it, when the peer is not
installed (CI installs them). The build needs the docs requirements
(``pip install -r docs/requirements.txt``); without mkdocs it is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ._markdown import PYTHON, parse, run_python_blocks

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]

# Importable only with an extra installed (pyproject's peers, data, forecast,
# bayes and test extras): a page that imports one is skipped without it.
OPTIONAL = (
    "torch",
    "keras",
    "equinox",
    "tensorflow_datasets",
    "statsforecast",
    "statsmodels",
    "arviz",
    "sklearn",
)
_IMPORT = re.compile(r"^\s*(?:import|from)\s+(\w+)", flags=re.M)


def _id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _missing(modules):
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _runnable(page: Path):
    return [b for b in parse(page) if b.lang in PYTHON and b.not_run is None]


def _readme_checks(tmp_path: Path, out: str) -> None:
    """The README's training block really trained and its saves are on disk."""
    best, acc = out.split()[-2:]
    assert int(best) >= 1 and float(acc) > 0.7, (best, acc)
    assert (tmp_path / "runs" / "x" / "curves.png").is_file()
    assert (tmp_path / "runs" / "encoder").exists()


AFTER = {"README.md": _readme_checks}


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=_id)
# Keras' Variable.__array__ predates NumPy 2's ``copy`` keyword: get_weights warns.
@pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
# The docs' samplers run short chains (seconds, not minutes); the pages print
# Fit.warnings where it matters instead of letting the warning fail the test.
@pytest.mark.filterwarnings("ignore::jaxseq.bayes.ConvergenceWarning")
def test_page_examples_run(page, tmp_path, monkeypatch, capsys):
    blocks = _runnable(page)
    if not blocks:
        pytest.skip(f"{_id(page)} has no Python block to run")
    imported = {m for b in blocks for m in _IMPORT.findall(b.code)}
    missing = _missing(sorted(imported & set(OPTIONAL)))
    if missing:
        pytest.skip(f"{_id(page)} needs the optional packages {missing}")
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.chdir(tmp_path)
    assert run_python_blocks(page, f"docs_{page.stem}") == len(blocks)
    out = capsys.readouterr().out
    if page.name in AFTER:
        AFTER[page.name](tmp_path, out)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_page_blocks_are_run_or_marked(page):
    """Parsing refuses python-like tags other than ``python`` (``py``), a ``not
    run`` marker without a reason, and a marker not followed by a fence; every
    block it marks not run says why."""
    for block in parse(page):
        if block.lang in PYTHON and block.not_run is not None:
            assert block.not_run.strip(), f"{page}:{block.line}: empty reason"


# -- the conventions themselves --------------------------------------------------

_PAGE = """\
Intro.

```python
x = 6 * 7
print("x is", x)
```

<!-- output -->
```text
x is 42
```

<!-- not run: needs a GPU -->
```python
raise RuntimeError("must not run")
```

```text
not checked
```

```python
print(f"ratio {x / 9:.4f}")
```

<!-- output -->
```text
ratio 4.6...
```
"""


def _write(tmp_path, text):
    path = tmp_path / "page.md"
    path.write_text(text, encoding="utf-8")
    return path


def test_runner_runs_checks_output_and_skips_marked(tmp_path, capsys):
    assert run_python_blocks(_write(tmp_path, _PAGE), "page") == 2
    assert capsys.readouterr().out == "x is 42\nratio 4.6667\n"


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("x is 42\n```", "x is 43\n```", "page.md:9: expected output line 'x is 43'"),
        ("ratio 4.6...", "ratio 5...", "page.md:27: expected output line"),
        ("<!-- not run: needs a GPU -->", "<!-- not run: -->", "needs a reason"),
        ("<!-- not run: needs a GPU -->\n", "", "failed (RuntimeError"),
        ("x = 6 * 7", "x = y", "page.md:3 failed (NameError"),
        ("```python\nx", "```py\nx", None),  # ``py`` is python too
        ("x is 42\n```", "x   is 42\n```", None),  # any run of blanks
        ("```python\nx", "```python skip\nx", "fence tag 'python skip'"),
        ("```python\nx", "```pycon\nx", "fence tag 'pycon'"),
        (
            "<!-- output -->\n```text\nx",
            "<!-- output -->\n\n```text\nx",
            "marker must sit right before a fence",
        ),
    ],
)
def test_runner_refuses(tmp_path, capsys, old, new, message):
    assert _PAGE.count(old) == 1, old
    path = _write(tmp_path, _PAGE.replace(old, new))
    if message is None:
        assert run_python_blocks(path, "page") == 2
        return
    with pytest.raises(AssertionError, match=re.escape(message)):
        run_python_blocks(path, "page")


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
