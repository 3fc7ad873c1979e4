"""MkDocs hook: publish ``benchmarks/results`` in the documentation site.

- The results' files other than Markdown (figures, JSON) are served under
  ``benchmarks/results/`` in the site.
- ``docs/benchmarks.md`` shows every ``benchmarks/results/*.md`` table where it
  holds the marker ``<!-- benchmark-results -->`` (headings demoted by two levels,
  figure links pointed at the served copies).
- Any page may link a figure as ``../benchmarks/results/NAME`` (the path that works
  when the Markdown is read in the repository); the link is rewritten to the
  served copy.

A figure or table that has not been generated yet becomes a short note instead
of a broken link, so ``mkdocs build --strict`` passes before and after the
benchmarks have run.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PREFIX = "benchmarks/results"
MARKER = "<!-- benchmark-results -->"

_REPO_LINK = re.compile(r"(!?)\[([^\]]*)\]\((?:\.\./)+benchmarks/results/([^)\s]+)\)")
_LOCAL_LINK = re.compile(r"(!?)\[([^\]]*)\]\((?![a-z]+:|/|#)([^)\s]+)\)")


def on_files(files: Files, config) -> Files:
    if RESULTS.is_dir():
        for path in sorted(RESULTS.rglob("*")):
            if path.suffix.lower() != ".md" and path.is_file():
                files.append(
                    File(
                        f"{PREFIX}/{path.relative_to(RESULTS).as_posix()}",
                        src_dir=str(ROOT),
                        dest_dir=config["site_dir"],
                        use_directory_urls=config["use_directory_urls"],
                    )
                )
    return files


def _link(bang: str, text: str, name: str, depth: int) -> str:
    """A link to the served copy of ``benchmarks/results/NAME``, or a note."""
    if name.endswith(".md"):  # the tables are shown on one page, not served
        return f"{text} (`{PREFIX}/{name}`)"
    if not (RESULTS / name).is_file():
        return f"*[{text or name}: `{PREFIX}/{name}` not generated yet]*"
    return f"{bang}[{text}]({'../' * depth}{PREFIX}/{name})"


def _results_markdown() -> str:
    tables = sorted(RESULTS.rglob("*.md")) if RESULTS.is_dir() else []
    if not tables:
        return (
            "!!! note\n    No results yet: run the scripts in `benchmarks/` "
            "(each writes its table to `benchmarks/results/`)."
        )
    parts = []
    for table in tables:
        text = table.read_text(encoding="utf-8")
        text = re.sub(r"^(#{1,4}) ", r"\1## ", text, flags=re.M)
        folder = table.parent.relative_to(RESULTS).as_posix()
        where = "" if folder == "." else f"{folder}/"
        text = _LOCAL_LINK.sub(lambda m, w=where: _link(m[1], m[2], w + m[3], 0), text)
        name = table.relative_to(RESULTS).as_posix()
        parts.append(f"<!-- from {PREFIX}/{name} -->\n\n{text.strip()}\n")
    return "\n\n".join(parts)


def on_page_markdown(markdown: str, page, config, files) -> str:
    depth = page.file.src_uri.count("/")
    markdown = _REPO_LINK.sub(lambda m: _link(m[1], m[2], m[3], depth), markdown)
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, _results_markdown())
    return markdown
