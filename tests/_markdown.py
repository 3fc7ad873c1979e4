"""Running the Python examples of a Markdown page (used by the docs tests).

Conventions for README.md and docs/*.md:

- Every fenced block tagged ``python`` (or ``py``) runs, in page order, in one
  namespace per page.
- A block that cannot run here (it needs a GPU, a cluster, the internet or the
  full data set) carries, on the line right before its fence, an HTML comment
  that says why: ``<!-- not run: needs a GPU -->``. The reason must not be empty.
- Output that a reader is shown is checked: a ``text`` block preceded by the line
  ``<!-- output -->`` holds lines that must appear, in order, in what the last
  Python block run before it printed (each line a substring of one output line;
  ``...`` stands for any text, as in doctest, for values that vary: timings,
  the digits of a stochastic result; a run of blanks matches any run of blanks).

Anything else tagged python-like (``python skip``, ``pycon``, ``python3``) is an
error: the block would be neither run nor marked.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

PYTHON = ("python", "py")
_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)(.*)$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:(.*?)-->\s*$")
_OUTPUT = re.compile(r"^\s*<!--\s*output\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block: its tag (``python``, ``text``, ...), code, the 1-based
    line of its opening fence, the reason it is not run (None: it runs) and
    whether it is an expected-output block."""

    lang: str
    code: str
    line: int
    not_run: str | None = None
    output: bool = False


def parse(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown page, with their markers.

    Raises AssertionError naming ``file:line`` for a python-like block with an
    unknown tag, a ``not run`` marker without a reason, or a marker that is not
    followed by a fence."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        where = f"{path}:{i + 1}"
        m = _FENCE.match(lines[i])
        if m is None:
            marker = _NOT_RUN.match(lines[i]) or _OUTPUT.match(lines[i])
            if marker and (i + 1 >= len(lines) or not _FENCE.match(lines[i + 1])):
                raise AssertionError(f"{where}: a marker must sit right before a fence")
            i += 1
            continue
        indent, fence, lang, rest = m.groups()
        lang = lang.lower()
        if (lang.startswith("py") or "python" in rest.lower()) and (
            lang not in PYTHON or rest.strip()
        ):
            raise AssertionError(
                f"{where}: fence tag {(lang + rest).strip()!r}: tag runnable code "
                "'python' (mark it with <!-- not run: REASON --> if it cannot run) "
                "and anything else 'text'"
            )
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        body = [
            line[len(indent) :] if line.startswith(indent) else line.lstrip()
            for line in lines[i + 1 : end]
        ]
        before = lines[i - 1] if i else ""
        not_run = _NOT_RUN.match(before)
        reason = not_run.group(1).strip() if not_run else None
        if reason == "":
            raise AssertionError(f"{path}:{i}: 'not run' needs a reason after ':'")
        output = bool(_OUTPUT.match(before))
        if output and lang != "text":
            raise AssertionError(f"{where}: <!-- output --> must precede a text block")
        blocks.append(Block(lang, "\n".join(body) + "\n", i + 1, reason, output))
        i = end + 1
    return blocks


class _Tee(io.TextIOBase):
    """Writes to a buffer and to the stream it replaces (pytest's capture)."""

    def __init__(self, stream):
        self.buffer_ = io.StringIO()
        self.stream = stream

    def write(self, s):
        self.buffer_.write(s)
        return self.stream.write(s)

    def flush(self):
        self.stream.flush()


def _pattern(expected: str) -> re.Pattern:
    """``...`` matches any text within a line, a run of blanks any run of blanks."""
    parts = []
    for part in expected.split("..."):
        text = r"[ \t]+".join(re.escape(word) for word in part.split())
        edge = r"[ \t]*"
        parts.append(edge * part[:1].isspace() + text + edge * part[-1:].isspace())
    return re.compile(".*?".join(parts))


def _check_output(path: Path, block: Block, printed: str) -> None:
    at = 0
    for expected in filter(None, (s.strip() for s in block.code.splitlines())):
        found = _pattern(expected).search(printed, at)
        if found is None:
            raise AssertionError(
                f"{path}:{block.line}: expected output line {expected!r} not printed "
                f"(in order) by the block before it; it printed:\n{printed}"
            )
        at = found.end()


def run_python_blocks(path: Path, name: str) -> int:
    """Execute every runnable ```python block of ``path``, in order, in one
    namespace (``__name__`` = ``name``), and check each ``<!-- output -->``
    block against what the last block run printed. A failing block raises an
    AssertionError that names ``file:line``. Returns the number of blocks run."""
    namespace: dict = {"__name__": name}
    printed: str | None = None
    ran = 0
    for block in parse(path):
        if block.output and printed is not None:
            _check_output(path, block, printed)
        if block.lang not in PYTHON:
            continue
        if block.not_run is not None:
            printed = None
            continue
        tee = _Tee(sys.stdout)
        code = compile(block.code, f"{path.name}:{block.line}", "exec")
        try:
            with contextlib.redirect_stdout(tee):
                exec(code, namespace)
        except Exception as err:
            raise AssertionError(
                f"{path}:{block.line} failed ({type(err).__name__}: {err}):\n"
                f"{block.code}"
            ) from err
        printed = tee.buffer_.getvalue()
        ran += 1
    return ran
