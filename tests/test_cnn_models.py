"""LeNet5, MnistCNN and SmallVGG: output shapes, parameter counts, and a training step that
lowers the loss (the layer harness)."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor
from nurinet.models import LeNet5, MnistCNN, SmallVGG
from nurinet.optim import Adam
from nurinet.random import Generator
from tests.nn.harness import check_layer

pytest.importorskip("nurinet.nn.conv", reason="Conv2d is not available yet")


def _conv(cin: int, cout: int, k: int, bias: bool = True) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def _fc(i: int, o: int) -> int:
    return i * o + o


LENET = _conv(1, 6, 5) + _conv(6, 16, 5) + _fc(400, 120) + _fc(120, 84) + _fc(84, 10)
VGG = _conv(3, 32, 3) + _conv(32, 32, 3) + _conv(32, 64, 3) + _conv(64, 64, 3) + _fc(64 * 8 * 8, 256) + _fc(256, 10)


def test_parameter_counts() -> None:
    assert LENET == 61_706
    assert MnistCNN().num_parameters() == 1_199_882  # as the Keras mnist_cnn example
    assert LeNet5().num_parameters() == LENET
    assert LeNet5(input_size=32, padding=0, in_channels=3).num_parameters() == LENET + 2 * 6 * 25
    assert SmallVGG().num_parameters() == VGG
    # With batch norm the convolutions lose their biases and each gains a weight and a bias per channel.
    assert SmallVGG(batch_norm=True).num_parameters() == VGG - 192 + 2 * 192


@pytest.mark.parametrize("make, shape, count", [
    (lambda: LeNet5(), (2, 1, 28, 28), LENET),
    (lambda: LeNet5(activation="relu", num_classes=4), (2, 1, 28, 28), LENET - 6 * 85),
    (lambda: MnistCNN(generator=Generator(0)), (2, 1, 28, 28), 1_199_882),
    (lambda: SmallVGG(in_channels=1, input_size=16, widths=(8, 16), hidden=32, generator=Generator(0)),
     (3, 1, 16, 16), _conv(1, 8, 3) + _conv(8, 8, 3) + _conv(8, 16, 3) + _conv(16, 16, 3) + _fc(256, 32)
     + _fc(32, 10)),
    (lambda: SmallVGG(in_channels=1, input_size=16, widths=(8, 16), hidden=32, batch_norm=True,
                      generator=Generator(0)),
     (3, 1, 16, 16), _conv(1, 8, 3, False) + _conv(8, 8, 3, False) + _conv(8, 16, 3, False)
     + _conv(16, 16, 3, False) + 2 * 48 + _fc(256, 32) + _fc(32, 10)),
], ids=["lenet5", "lenet5_relu", "mnist_cnn", "small_vgg", "small_vgg_bn"])
def test_models_pass_the_harness(make, shape, count) -> None:
    nurinet.manual_seed(0)
    model = make()
    classes = model.classifier[-1].out_features
    # Models with dropout (or batch norm) compute something else while training.
    differ = any(isinstance(m, (nurinet.nn.Dropout, nurinet.nn.BatchNorm2d)) for m in model.modules())
    check_layer(model, shape, (shape[0], classes), count, train_eval_differ=differ)


def test_adam_steps_lower_the_cross_entropy() -> None:
    nurinet.manual_seed(1)
    model = MnistCNN(generator=Generator(1)).eval()  # eval: no dropout, so the loss is a fixed function
    rng = np.random.default_rng(0)
    x, y = Tensor(rng.random((8, 1, 28, 28)).astype(np.float32)), Tensor(rng.integers(0, 10, 8))
    opt = Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    assert losses[-1] < losses[0]


def test_wrong_input_shape_is_explained() -> None:
    with pytest.raises(ValueError, match=r"MnistCNN expects images of shape \(N, 1, 28, 28\)"):
        MnistCNN()(Tensor(np.zeros((2, 1, 32, 32), np.float32)))
    with pytest.raises(ValueError, match="activation must be"):
        LeNet5(activation="sigmoid")
    with pytest.raises(ValueError, match="too small"):
        LeNet5(input_size=8)


def test_mnist_example_quick_run_on_synthetic_idx_files(tmp_path, monkeypatch) -> None:
    """The example end to end on 60 fake 28x28 images written as IDX files (never the real data)."""
    import importlib.util
    import json
    from pathlib import Path

    from nurinet.data import write_idx

    rng = np.random.default_rng(0)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (60, 28, 28)).astype(np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 60).astype(np.uint8))
    path = Path(__file__).resolve().parent.parent / "examples" / "mnist_cnn.py"
    spec = importlib.util.spec_from_file_location("mnist_cnn_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "result.json"
    monkeypatch.setattr("sys.argv", ["mnist_cnn.py", str(tmp_path), "--quick", "--augment", "--out", str(out)])
    example.main()
    result = json.loads(out.read_text())
    assert result["config"]["train_images"] == 48 and result["config"]["test_images"] == 12
    (epoch,) = result["nurinet"]["epochs"]
    assert result["nurinet"]["complete"] and 0.0 <= epoch["test_accuracy"] <= 1.0
