"""The four ported tutorials of examples/tutorials (issue 21): PyTorch's quickstart,
pytorch/examples' MNIST CNN, the character-level RNN name classifier, and Keras's simple MNIST
convnet. Each runs its ``main`` on the bundled digits (never ../shared) with a tiny budget, trains
(the loss falls) and round-trips its save/load step. Also the parser of ``compare_mnist_cnn.py``, which
runs the MNIST CNN tutorial under both libraries."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

TUTORIALS = Path(__file__).resolve().parent.parent / "examples" / "tutorials"


def _tutorial(name):
    spec = importlib.util.spec_from_file_location(f"_tutorial_{name}", TUTORIALS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _mean(values):
    return sum(values) / len(values)


@pytest.fixture(autouse=True)
def _no_torch_flag(monkeypatch):
    # The scripts pick PyTorch when "--torch" is on the command line; make sure it is not.
    monkeypatch.setattr(sys, "argv", ["pytest"])


def test_quickstart_trains_saves_and_reloads(tmp_path, capsys):
    path = tmp_path / "model.pth"
    result = _tutorial("pytorch_quickstart").main(["--epochs", "3", "--model-path", str(path)])
    losses = result["losses"]
    assert len(losses) == 3 * 23  # 1,438 training images in batches of 64
    assert _mean(losses[-5:]) < _mean(losses[:5])
    assert path.exists()
    assert result["reloaded_accuracy"] == result["accuracies"][-1]
    assert result["predicted"] in {"zero", "one", "two", "three", "four", "five", "six", "seven",
                                   "eight", "nine"}
    out = capsys.readouterr().out
    assert "Shape of X [N, C, H, W]: (64, 1, 28, 28)" in out
    assert "Using cpu device" in out


def test_mnist_cnn_trains_saves_and_reloads(tmp_path, capsys):
    path = tmp_path / "mnist_cnn.pt"
    result = _tutorial("pytorch_mnist_cnn").main(
        ["--epochs", "1", "--max-batches", "8", "--log-interval", "4", "--save-model",
         "--model-path", str(path)])
    losses = result["losses"]
    assert len(losses) == 8
    assert _mean(losses[-2:]) < losses[0]
    assert result["accuracies"][0] > 0.3  # chance is 0.1
    assert result["reloaded_accuracy"] == result["accuracies"][0]
    assert "Test set: Average loss" in capsys.readouterr().out


@pytest.mark.parametrize("variant", [[], ["--nn-rnn"]], ids=["i2h_h2h", "nn_RNN"])
def test_char_rnn_trains_saves_and_reloads(tmp_path, variant, capsys):
    path = tmp_path / "char_rnn.pth"
    result = _tutorial("pytorch_char_rnn").main(
        ["--n-iters", "1500", "--print-every", "500", "--model-path", str(path), *variant])
    losses = result["losses"]  # means over 150 names each
    assert len(losses) == 10
    assert _mean(losses[-3:]) < losses[0]
    assert result["accuracy"] > 0.35  # four languages: chance is 0.25
    assert result["reloaded_accuracy"] == result["accuracy"]
    assert "Held-out accuracy" in capsys.readouterr().out


def test_keras_convnet_trains_saves_and_reloads(tmp_path, capsys):
    path = tmp_path / "convnet.nrn"
    result = _tutorial("keras_mnist_convnet").main(
        ["--epochs", "2", "--steps-per-epoch", "5", "--model-path", str(path)])
    loss = result["history"]["loss"]
    assert loss[1] < loss[0]
    assert "val_accuracy" in result["history"]
    assert result["reloaded_score"] == pytest.approx(result["score"])
    out = capsys.readouterr().out
    assert "Test accuracy:" in out and "Total params: 34,826" in out


def test_mnist_cnn_comparison_parses_the_tutorials_test_line():
    module = _tutorial("compare_mnist_cnn")
    line = "\nTest set: Average loss: 0.0299, Accuracy: 355/359 (99%)\n"
    assert module.TEST_LINE.findall(line) == [("0.0299", "355", "359")]
    assert module.TEST_LINE.findall("Test set: Average loss: nan, Accuracy: 1/2") == [("nan", "1", "2")]
