"""Every ```python block in README.md and docs/*.md runs.

The blocks of one file run in order in one namespace, from the repository
root, as a reader would paste them. A block preceded by a line
``<!-- no-test -->`` is skipped (for snippets that need a GPU, a download or
minutes of training).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
SKIP = "<!-- no-test -->"


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block not marked with <!-- no-test -->."""
    blocks = []
    for match in BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        if before != SKIP:
            blocks.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return blocks


def test_block_extraction_honours_no_test():
    text = "a\n```python\nx = 1\n```\n<!-- no-test -->\n```python\nraise SystemExit\n```\n```bash\nls\n```\n"
    assert python_blocks(text) == [(2, "x = 1\n")]


@pytest.mark.parametrize("path", [p for p in FILES if p.exists()], ids=lambda p: p.name)
def test_python_blocks_run(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    if not blocks:
        pytest.skip(f"{path.name} has no python blocks")
    namespace: dict = {"__name__": f"docs_{path.stem}"}
    for line, code in blocks:
        try:
            exec(compile(code, f"{path.name}:{line}", "exec"), namespace)  # noqa: S102 (running the docs is the test)
        except Exception as exc:  # name the file and line of the failing block
            raise AssertionError(f"the python block at {path.name} line {line} failed: {exc!r}") from exc
