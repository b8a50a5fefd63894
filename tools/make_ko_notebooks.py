"""Generate the Jupyter notebooks of the Korean tutorial from its Markdown pages.

Each numbered page ``docs/ko/NN-name.md`` becomes ``docs/ko/notebooks/NN-name.ipynb``: the prose
between code blocks becomes Markdown cells and every ```` ```python ```` block a code cell, in
order (the same blocks ``tests/test_docs_ko.py`` runs). Relative links are rewritten so that they
still work from the ``notebooks/`` folder. The output is deterministic (fixed cell ids, no
outputs), so the notebooks can be committed and a test can check that they are up to date.

Only the standard library is used (no jupytext or nbformat needed); the files are nbformat 4.5.

Run from the repository root::

    python tools/make_ko_notebooks.py            # write docs/ko/notebooks/*.ipynb
    python tools/make_ko_notebooks.py --check    # exit 1 if a notebook is missing or stale
    python tools/make_ko_notebooks.py --figures  # also re-draw docs/ko/figures/*.png (needs matplotlib)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "docs" / "ko"
NOTEBOOKS = PAGES / "notebooks"
FIGURES = PAGES / "figures"

BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*\n?", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"(\]\()(?![a-z][a-z0-9+.-]*:|#|/)([^)\s]+)")
SKIP = "<!-- no-test -->"


def pages() -> list[Path]:
    """The numbered tutorial pages, in order."""
    return sorted(p for p in PAGES.glob("[0-9][0-9]-*.md"))


def _lines(text: str) -> list[str]:
    """Notebook ``source``: the text as a list of lines, each but the last ending in a newline."""
    return text.splitlines(keepends=True)


def _link(match: re.Match) -> str:
    """A relative link of a page, as seen from ``notebooks/``: another page's notebook, else ``../``."""
    link = match.group(2)
    if re.fullmatch(r"[0-9][0-9]-[^/#]+\.md", link):
        return match.group(1) + link[: -len(".md")] + ".ipynb"
    return match.group(1) + "../" + link


def _markdown(text: str) -> str:
    """Prose of a page with its relative links made relative to ``notebooks/``."""
    return LINK.sub(_link, text).strip("\n")


def notebook(page: Path) -> dict:
    """The notebook of one page, as a JSON-ready dict."""
    text = page.read_text(encoding="utf-8")
    cells: list[dict] = []

    def add(kind: str, source: str) -> None:
        if not source.strip():
            return
        cell = {
            "cell_type": kind,
            "id": f"{page.stem[:2]}-{len(cells):03d}",
            "metadata": {},
            "source": _lines(source),
        }
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)

    origin = page.relative_to(ROOT).as_posix()
    add(
        "markdown",
        f"*이 노트북은 `{origin}`에서 `tools/make_ko_notebooks.py`로 만들어졌습니다. "
        "고칠 때는 페이지를 고치고 노트북을 다시 만드세요.*",
    )
    position = 0
    for match in BLOCK.finditer(text):
        prose = text[position : match.start()]
        if prose.rstrip("\n").rsplit("\n", 1)[-1].strip() == SKIP:
            prose = prose.rstrip("\n").rsplit("\n", 1)[0]
            add("markdown", _markdown(prose))
            add("markdown", "```python\n" + match.group(1) + "```")
        else:
            add("markdown", _markdown(prose))
            add("code", match.group(1).rstrip("\n"))
        position = match.end()
    add("markdown", _markdown(text[position:]))
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {
                "display_name": "Python 3",
                "language": "python",
                "name": "python3",
            },
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(page: Path) -> str:
    """The notebook file's text for one page."""
    return json.dumps(notebook(page), ensure_ascii=False, indent=1) + "\n"


def target(page: Path, folder: Path = NOTEBOOKS) -> Path:
    return folder / (page.stem + ".ipynb")


def write_all(folder: Path = NOTEBOOKS) -> list[Path]:
    """Write every page's notebook into ``folder``; returns the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for page in pages():
        path = target(page, folder)
        path.write_text(render(page), encoding="utf-8", newline="\n")
        written.append(path)
    return written


def stale(folder: Path = NOTEBOOKS) -> list[str]:
    """Names of the notebooks that are missing or differ from their page."""
    problems = []
    for page in pages():
        path = target(page, folder)
        if not path.exists() or path.read_text(encoding="utf-8") != render(page):
            problems.append(path.name)
    return problems


def draw_figures() -> None:
    """Run every page's code with ``NURINET_KO_FIGURES`` set, so its figures land in ``figures/``."""
    sys.path.insert(0, str(ROOT))
    from tests.test_docs_snippets import python_blocks

    FIGURES.mkdir(parents=True, exist_ok=True)
    os.environ["NURINET_KO_FIGURES"] = str(FIGURES)
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.chdir(ROOT)
    for page in pages():
        namespace: dict = {"__name__": f"docs_ko_{page.stem}"}
        for line, code in python_blocks(page.read_text(encoding="utf-8")):
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)  # noqa: S102
        print(f"ran {page.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="only check that the notebooks are up to date",
    )
    parser.add_argument(
        "--figures", action="store_true", help="also re-draw docs/ko/figures/*.png"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        for name in problems:
            print(
                f"stale or missing: docs/ko/notebooks/{name} (run python tools/make_ko_notebooks.py)"
            )
        return 1 if problems else 0
    for path in write_all():
        print(f"wrote {path.relative_to(ROOT)}")
    if args.figures:
        draw_figures()
    return 0


if __name__ == "__main__":
    sys.exit(main())
