"""examples/notebook_quickstart.ipynb runs in a Jupyter kernel and shows what a Keras user expects.

The notebook is executed with nbclient in a fresh ``python3`` kernel (so with ipykernel's
default ``%matplotlib inline`` backend and pyplot not imported). Its outputs must hold the
progress bar on stdout (or as tqdm's ipywidgets widget), nothing on stderr (which a notebook
shows on a red background), the summary table exactly once, and one PNG image per figure,
never a figure shown only as ``<Figure size ...>`` text. Skipped when nbclient, ipykernel,
matplotlib or a ``python3`` kernel is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebook_quickstart.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"


def _text(output: Any) -> str:
    """The text an output shows as text: a stream's, or a result's ``text/plain``."""
    if output["output_type"] == "stream":
        return output["text"]
    return output.get("data", {}).get("text/plain", "")


@pytest.fixture(scope="module")
def executed() -> Any:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no python3 Jupyter kernel installed")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "MPLBACKEND")}
    # The kernel inherits the environment: this checkout first, and ipykernel's own inline backend
    # (a MPLBACKEND=Agg left by another test would hide what a fresh kernel does).
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved["PYTHONPATH"]]))
    os.environ.pop("MPLBACKEND", None)
    try:
        client.execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _cell(cells: list[Any], start: str) -> Any:
    return next(cell for cell in cells if start in cell.source)


def test_nothing_goes_to_stderr(executed: list[Any]) -> None:
    errors = [o for cell in executed for o in cell.outputs
              if o["output_type"] == "error" or (o["output_type"] == "stream" and o["name"] == "stderr")]
    assert errors == []


def test_fit_shows_its_progress_on_stdout_or_as_a_widget(executed: list[Any]) -> None:
    outputs = _cell(executed, "model.fit(").outputs
    assert outputs
    assert all((o["output_type"] == "stream" and o["name"] == "stdout")
               or WIDGET in o.get("data", {}) for o in outputs)
    if any(o["output_type"] == "stream" for o in outputs):
        text = "".join(o["text"] for o in outputs if o["output_type"] == "stream")
        assert all(f"Epoch {e}/5" in text for e in range(1, 6)) and "val_accuracy" in text
        assert "%|" in text  # a tqdm bar, not only the one-line-per-epoch fallback


def test_summary_table_is_shown_once(executed: list[Any]) -> None:
    everything = [o for cell in executed for o in cell.outputs]
    assert sum(_text(o).count("Total params:") for o in everything) == 1
    outputs = _cell(executed, "model.summary(").outputs
    assert [o["output_type"] for o in outputs] == ["stream"]  # printed; no value shown after it
    assert outputs[0]["name"] == "stdout" and "network.0 (Linear)" in outputs[0]["text"]


def test_each_figure_is_one_image(executed: list[Any]) -> None:
    for start in ("plots.plot_history(", "plots.plot_confusion_matrix("):
        outputs = _cell(executed, start).outputs
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, f"{start}: {len(images)} images"
        # The text/plain beside the PNG is IPython's fallback, never shown when the image is;
        # a figure shown only as text, or printed, is the defect.
        assert not any("<Figure" in _text(o) for o in outputs if "image/png" not in o.get("data", {}))
    everything = [o for cell in executed for o in cell.outputs]
    assert sum("image/png" in o.get("data", {}) for o in everything) == 2
