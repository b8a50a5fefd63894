"""The Korean tutorial (docs/ko/): its code runs, its links resolve, its notebooks are up to date.

Every ```python block of ``docs/ko/*.md`` runs, in order, in one namespace per page, as in
``tests/test_docs_snippets.py``; figures go to a temporary folder (``NURINET_KO_FIGURES``). The
notebooks ``docs/ko/notebooks/*.ipynb`` are generated from the pages by
``tools/make_ko_notebooks.py``; one test regenerates them and compares, another executes two of
them with nbclient when nbclient and a Python kernel are installed (``NURINET_KO_ALL_NOTEBOOKS=1``
executes all of them).
"""

from __future__ import annotations

import builtins
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest

from tests.test_docs_snippets import python_blocks

ROOT = Path(__file__).resolve().parents[1]
KO = ROOT / "docs" / "ko"
PAGES = sorted(KO.glob("[0-9][0-9]-*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _tool():
    spec = importlib.util.spec_from_file_location(
        "make_ko_notebooks", ROOT / "tools" / "make_ko_notebooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_page(path: Path) -> None:
    namespace: dict = {"__name__": f"docs_ko_{path.stem}"}
    for line, code in python_blocks(path.read_text(encoding="utf-8")):
        try:
            exec(compile(code, f"{path.name}:{line}", "exec"), namespace)  # noqa: S102 (running the docs is the test)
        except Exception as exc:  # name the file and line of the failing block
            raise AssertionError(
                f"the python block at docs/ko/{path.name} line {line} failed: {exc!r}"
            ) from exc


def test_at_least_ten_pages_in_the_notes_order():
    assert len(PAGES) >= 10
    assert [p.name[:2] for p in PAGES] == [f"{i:02d}" for i in range(1, len(PAGES) + 1)]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_page_code_runs(path, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("NURINET_KO_FIGURES", str(tmp_path))
    assert python_blocks(path.read_text(encoding="utf-8")), (
        f"{path.name} has no python block"
    )
    _run_page(path)


def test_pages_skip_figures_without_matplotlib(monkeypatch, tmp_path):
    """A page that draws still runs when matplotlib cannot be imported, and draws nothing."""
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r} (hidden by the test)")
        return real_import(name, *args, **kwargs)

    for name in [
        m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("NURINET_KO_FIGURES", str(tmp_path))
    _run_page(KO / "01-perceptron.md")  # draws with matplotlib.figure
    _run_page(KO / "06-evaluation.md")  # draws with nurinet.plots
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", [*PAGES, KO / "README.md"], ids=lambda p: p.stem)
def test_links_resolve_and_pages_link_glossary_and_claims(path):
    text = path.read_text(encoding="utf-8")
    for link in LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:|#", link):
            continue
        assert (path.parent / link.split("#")[0]).exists(), (
            f"{path.name}: broken link {link}"
        )
    assert "](../glossary.md" in text and "](../claims.md" in text, (
        f"{path.name} must link the glossary and claims"
    )


def test_every_figure_a_page_saves_is_shown_and_committed():
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        for name in re.findall(r'os\.path\.join\(FIGURES, "([^"]+)"\)', text):
            assert f"](figures/{name})" in text, (
                f"{path.name} saves {name} but does not show it"
            )
            assert (KO / "figures" / name).exists(), (
                f"run python tools/make_ko_notebooks.py --figures ({name})"
            )


def test_notebooks_are_up_to_date(tmp_path):
    tool = _tool()
    written = tool.write_all(tmp_path)
    assert [p.name for p in written] == [p.stem + ".ipynb" for p in PAGES]
    for path in written:
        committed = KO / "notebooks" / path.name
        assert committed.exists(), (
            f"missing {committed.name}: run python tools/make_ko_notebooks.py"
        )
        assert committed.read_text(encoding="utf-8") == path.read_text(
            encoding="utf-8"
        ), f"{committed.name} is stale: run python tools/make_ko_notebooks.py"
    for path in written:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "".join(
            "".join(c["source"]) for c in cells if c["cell_type"] == "markdown"
        )
        for link in LINK.findall(text):
            if not re.match(r"[a-z][a-z0-9+.-]*:|#", link):
                target = KO / "notebooks" / link.split("#")[0]
                assert target.exists(), f"{path.name}: broken link {link}"
    assert sorted(p.name for p in (KO / "notebooks").glob("*.ipynb")) == [
        p.name for p in written
    ]


def test_notebook_cells_are_the_page_blocks():
    tool = _tool()
    for path in PAGES:
        code = [c for c in tool.notebook(path)["cells"] if c["cell_type"] == "code"]
        blocks = python_blocks(path.read_text(encoding="utf-8"))
        assert ["".join(c["source"]) for c in code] == [
            b.rstrip("\n") for _, b in blocks
        ]


def _execute(name: str, tmp_path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no python3 Jupyter kernel installed")
    notebook = nbformat.read(KO / "notebooks" / name, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(KO / "notebooks")}},
    )
    old = os.environ.get("NURINET_KO_FIGURES")
    os.environ["NURINET_KO_FIGURES"] = str(tmp_path)  # the kernel inherits it
    try:
        client.execute()
    finally:
        if old is None:
            os.environ.pop("NURINET_KO_FIGURES", None)
        else:
            os.environ["NURINET_KO_FIGURES"] = old


@pytest.mark.parametrize("name", ["01-perceptron.ipynb", "12-config-save.ipynb"])
def test_notebook_executes(name, tmp_path):
    _execute(name, tmp_path)


@pytest.mark.parametrize("path", PAGES[1:-1], ids=lambda p: p.stem)
def test_every_notebook_executes(path, tmp_path):
    if not os.environ.get("NURINET_KO_ALL_NOTEBOOKS"):
        pytest.skip(
            "set NURINET_KO_ALL_NOTEBOOKS=1 to execute every notebook (the pages' code runs anyway)"
        )
    _execute(path.stem + ".ipynb", tmp_path)
