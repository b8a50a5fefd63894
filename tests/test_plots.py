"""Figures: each function returns a Figure and writes a PNG (skipped without matplotlib)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn, plots
from nurinet.training import Model
from nurinet.training.evaluation import classification_report, roc_curve
from nurinet.training.transfer import freeze


@pytest.fixture
def mpl() -> object:
    """matplotlib (the test is skipped without it); figures are drawn with the Agg backend."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    return matplotlib

PNG = b"\x89PNG\r\n\x1a\n"


def written(path: Path) -> bool:
    return path.exists() and path.read_bytes()[:8] == PNG and path.stat().st_size > 1000


def texts(fig) -> str:
    return " ".join(t.get_text() for ax in fig.axes for t in ax.texts)


def small_model() -> Model:
    nt.manual_seed(0)
    model = Model(nn.Sequential(nn.Linear(4, 8, activation="tanh"), nn.Dropout(0.1), nn.Linear(8, 3)))
    model.compile("adam", "cross_entropy", metrics=["accuracy"], lr=0.05)
    return model


def test_plot_history(tmp_path: Path, mpl: object) -> None:
    x, y = nt.data.load_iris()
    history = small_model().fit(x / 8, y, epochs=3, validation_split=0.2, verbose=0)
    fig = plots.plot_history(history, path=tmp_path / "history.png")
    assert written(tmp_path / "history.png")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]  # train and validation
    with pytest.raises(ValueError, match="not in the history"):
        plots.plot_history(history, metrics=["f1"])
    with pytest.raises(ValueError, match="history is empty"):
        plots.plot_history({})


def test_plot_confusion_matrix(tmp_path: Path, mpl: object) -> None:
    report = classification_report(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1]), labels=["a", "b", "c"])
    fig = plots.plot_confusion_matrix(report, path=tmp_path / "cm.png")
    assert written(tmp_path / "cm.png")
    assert texts(fig).split() == ["1", "0", "0", "0", "0", "1", "0", "1", "1"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["a", "b", "c"]
    fig = plots.plot_confusion_matrix(report.confusion, normalize=True)
    assert "0.50" in texts(fig)
    with pytest.raises(ValueError, match="square matrix"):
        plots.plot_confusion_matrix(np.zeros((2, 3)))


def test_plot_roc_curve(tmp_path: Path, mpl: object) -> None:
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    fig = plots.plot_roc_curve(y, scores, path=tmp_path / "roc.png")
    assert written(tmp_path / "roc.png")
    assert "AUC = 0.750" in fig.axes[0].get_legend().get_texts()[0].get_text()
    plots.plot_roc_curve(roc_curve(y, scores))


def test_plot_lr_finder(tmp_path: Path, mpl: object) -> None:
    lrs = np.logspace(-5, 0, 40)
    losses = 2.0 - np.tanh(np.log10(lrs) + 3) + np.exp(3 * np.log10(lrs))
    fig = plots.plot_lr_finder(lrs, losses, path=tmp_path / "lr.png")
    assert written(tmp_path / "lr.png")
    assert fig.axes[0].get_xscale() == "log"
    assert "steepest: 0.001" in fig.axes[0].get_legend().get_texts()[0].get_text()
    result = SimpleNamespace(lrs=lrs, losses=losses)
    assert len(plots.plot_lr_finder(result, skip_end=5).axes[0].lines[0].get_xdata()) == 35
    with pytest.raises(ValueError, match="equal length"):
        plots.plot_lr_finder(lrs, losses[:-1])
    with pytest.raises(ValueError, match="positive"):
        plots.plot_lr_finder(-lrs, losses)


def test_plot_network(tmp_path: Path, mpl: object) -> None:
    model = small_model()
    freeze(model, "network.0.*")
    fig = plots.plot_network(model, path=tmp_path / "net.png")
    assert written(tmp_path / "net.png")
    labels = texts(fig)
    for part in ("network.0: Linear", "network.1: Dropout", "network.2: Linear", "27 parameters",
                 "(frozen)"):
        assert part in labels
    assert len(fig.axes[0].patches) == 3 + 2  # three boxes, two arrows
    assert "67 parameters" in fig.axes[0].get_title()
    with pytest.raises(TypeError, match="expects a nurinet Module"):
        plots.plot_network(object())


def test_missing_matplotlib_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now fails
    with pytest.raises(ImportError, match=r"pip install 'nurinet\[plot\]'"):
        plots.plot_lr_finder([1e-3, 1e-2], [1.0, 0.5])


def test_a_fresh_ipython_kernel_shows_the_figure_as_a_png(monkeypatch: pytest.MonkeyPatch, mpl: object) -> None:
    """Without pyplot no PNG formatter is registered, so IPython would show only ``<Figure ...>``."""
    formatters = pytest.importorskip("IPython.core.formatters")
    from matplotlib.figure import Figure

    shell = SimpleNamespace(display_formatter=formatters.DisplayFormatter())
    monkeypatch.setitem(sys.modules, "IPython", SimpleNamespace(get_ipython=lambda: shell))
    fig = plots.plot_roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    data, _ = shell.display_formatter.format(fig)
    assert data["image/png"].startswith("iVBOR")  # base64 of a PNG
    # A format the user chose (SVG here) is kept, and no PNG is added beside it.
    shell = SimpleNamespace(display_formatter=formatters.DisplayFormatter())
    shell.display_formatter.formatters["image/svg+xml"].for_type(Figure, lambda f: "<svg/>")
    plots.plot_roc_curve(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    data, _ = shell.display_formatter.format(fig)
    assert data["image/svg+xml"] == "<svg/>" and "image/png" not in data
