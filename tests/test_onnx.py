"""ONNX export: onnxruntime's output equals nurinet's evaluation output, layer by layer and for the
reference CNNs, with a batch size other than the example's (the batch dim is dynamic)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import nurinet
import nurinet.onnx as nonnx
from nurinet import nn
from nurinet.models import LeNet5, MnistCNN, SmallVGG

ROOT = Path(__file__).resolve().parents[1]
ATOL = RTOL = 1e-5


@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx")
    return pytest.importorskip("onnxruntime")


def run_onnx(ort, path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


def nurinet_outputs(model, x: np.ndarray) -> list[np.ndarray]:
    model.eval()
    with nurinet.no_grad():
        out = model(nurinet.Tensor(x))
    flat = []

    def collect(value):
        if isinstance(value, tuple):
            for v in value:
                collect(v)
        else:
            flat.append(value.numpy())
    collect(out)
    return flat


def check_roundtrip(ort, tmp_path, model, shape, *, batch=5, integers=None, opset=17):
    """Export with a batch of 2, run both on a batch of ``batch`` and compare every output."""
    import onnx

    rng = np.random.default_rng(7)

    def draw(n):
        if integers is not None:
            return rng.integers(0, integers, (n, *shape)).astype(np.int64)
        return rng.standard_normal((n, *shape)).astype(np.float32)
    path = tmp_path / "model.onnx"
    nonnx.export(model, draw(2), path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x = draw(batch)
    got, expected = run_onnx(ort, path, x), nurinet_outputs(model, x)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert g.shape == e.shape
        assert g.dtype == e.dtype == np.float32
        np.testing.assert_allclose(g, e, atol=ATOL, rtol=RTOL)


def trained_batch_norm(layer, shape):
    """A batch-norm layer whose running statistics and affine parameters are not the defaults."""
    rng = np.random.default_rng(3)
    layer.train()
    with nurinet.no_grad():
        for _ in range(3):
            layer(nurinet.Tensor((rng.standard_normal((8, *shape)) * 2 + 1).astype(np.float32)))
    if layer.weight is not None:
        layer.weight.array[...] = rng.uniform(0.5, 1.5, layer.weight.shape).astype(np.float32)
        layer.bias.array[...] = rng.uniform(-0.5, 0.5, layer.bias.shape).astype(np.float32)
    return layer


def affine(layer):
    rng = np.random.default_rng(4)
    for p in layer.parameters():
        p.array[...] = rng.uniform(0.5, 1.5, p.shape).astype(np.float32)
    return layer


LAYERS = {
    "linear": (lambda: nn.Linear(6, 4), (6,)),
    "linear_3d": (lambda: nn.Linear(6, 4), (3, 6)),
    "linear_no_bias": (lambda: nn.Linear(6, 4, bias=False), (6,)),
    "linear_relu_by_name": (lambda: nn.Linear(6, 4, activation="relu"), (6,)),
    "linear_tanh_function": (lambda: nn.Linear(6, 4, activation=nurinet.F.tanh), (6,)),
    "linear_gelu_module": (lambda: nn.Linear(6, 4, activation=nn.GELU()), (6,)),
    "linear_softmax_by_name": (lambda: nn.Linear(6, 4, activation="softmax"), (6,)),
    "relu": (nn.ReLU, (7,)),
    "relu6": (lambda: nn.Sequential(nn.Linear(5, 7), nn.ReLU6()), (5,)),
    "leaky_relu": (lambda: nn.LeakyReLU(0.2), (7,)),
    "prelu_shared": (nn.PReLU, (3, 4)),
    "prelu_channels": (lambda: nn.PReLU(3, init=0.1), (3, 4, 4)),
    "rrelu": (nn.RReLU, (7,)),
    "elu": (lambda: nn.ELU(0.7), (7,)),
    "selu": (nn.SELU, (7,)),
    "celu": (lambda: nn.CELU(1.5), (7,)),
    "gelu": (nn.GELU, (7,)),
    "gelu_tanh": (lambda: nn.GELU("tanh"), (7,)),
    "silu": (nn.SiLU, (7,)),
    "mish": (nn.Mish, (7,)),
    "sigmoid": (nn.Sigmoid, (7,)),
    "tanh": (nn.Tanh, (7,)),
    "softmax": (nn.Softmax, (7,)),
    "softmax_dim1": (lambda: nn.Softmax(dim=1), (4, 3)),
    "log_softmax": (nn.LogSoftmax, (7,)),
    "softplus": (nn.Softplus, (7,)),
    "softplus_beta": (lambda: nn.Sequential(nn.Linear(4, 7), nn.Softplus(beta=2.0, threshold=1.0)), (4,)),
    "softsign": (nn.Softsign, (7,)),
    "hardsigmoid": (nn.Hardsigmoid, (7,)),
    "hardtanh": (lambda: nn.Hardtanh(-0.5, 0.8), (7,)),
    "rational_tanh": (nn.RationalTanh, (7,)),
    "cube": (nn.Cube, (7,)),
    "activation_by_name": (lambda: nn.Activation("leaky_relu"), (7,)),
    "activation_prelu": (lambda: nn.Activation("prelu"), (7,)),
    "activation_gelu_tanh": (lambda: nn.Activation("gelu_tanh"), (7,)),
    "identity": (nn.Identity, (7,)),
    "dropout": (lambda: nn.Sequential(nn.Linear(5, 7), nn.Dropout(0.5)), (5,)),
    "dropout2d": (lambda: nn.Dropout2d(0.5), (2, 3, 3)),
    "flatten": (nn.Flatten, (2, 3, 4)),
    "flatten_middle": (lambda: nn.Flatten(1, 2), (2, 3, 4)),
    "maxout": (lambda: nn.Maxout(6, 4, pieces=3), (6,)),
    "sequential_mlp": (lambda: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)), (8,)),
    "conv1d": (lambda: nn.Conv1d(3, 4, 3), (3, 10)),
    "conv1d_stride_pad_dilation": (lambda: nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
                                   (4, 11)),
    "conv1d_same": (lambda: nn.Conv1d(3, 4, 4, padding="same"), (3, 9)),
    "conv2d": (lambda: nn.Conv2d(3, 4, 3), (3, 8, 8)),
    "conv2d_stride_pad": (lambda: nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 2)), (3, 9, 8)),
    "conv2d_dilation_groups": (lambda: nn.Conv2d(4, 6, 3, dilation=2, groups=2, bias=False), (4, 9, 9)),
    "conv2d_depthwise": (lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4), (4, 6, 6)),
    "conv2d_same_even_kernel": (lambda: nn.Conv2d(2, 3, 4, padding="same"), (2, 7, 7)),
    "conv2d_valid": (lambda: nn.Conv2d(2, 3, 3, padding="valid"), (2, 7, 7)),
    "conv_transpose2d": (lambda: nn.ConvTranspose2d(3, 4, 3), (3, 5, 5)),
    "conv_transpose2d_stride": (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1,
                                                           groups=2, dilation=1), (4, 5, 4)),
    "conv_transpose2d_dilation": (lambda: nn.ConvTranspose2d(2, 3, (2, 3), stride=(1, 2), dilation=2,
                                                             bias=False), (2, 4, 5)),
    "max_pool2d": (lambda: nn.MaxPool2d(2), (3, 8, 8)),
    "max_pool2d_stride_pad_dilation": (lambda: nn.MaxPool2d(3, stride=2, padding=1, dilation=2), (2, 9, 9)),
    "max_pool2d_ceil": (lambda: nn.MaxPool2d(2, ceil_mode=True), (2, 7, 7)),
    "max_pool1d": (lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 9)),
    "avg_pool2d": (lambda: nn.AvgPool2d(2), (3, 8, 8)),
    "avg_pool2d_pad": (lambda: nn.AvgPool2d(3, stride=2, padding=1), (2, 9, 9)),
    "avg_pool2d_pad_exclude": (lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 9, 9)),
    "avg_pool2d_ceil": (lambda: nn.AvgPool2d(2, ceil_mode=True), (2, 7, 7)),
    "avg_pool1d": (lambda: nn.AvgPool1d(2), (2, 8)),
    "adaptive_avg_even": (lambda: nn.AdaptiveAvgPool2d(2), (3, 8, 6)),
    "adaptive_avg_uneven": (lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 7, 5)),
    "adaptive_avg_none": (lambda: nn.AdaptiveAvgPool2d((None, 2)), (2, 5, 5)),
    "adaptive_max_even": (lambda: nn.AdaptiveMaxPool2d(1), (3, 4, 4)),
    "adaptive_max_uneven": (lambda: nn.AdaptiveMaxPool2d(3), (2, 7, 5)),
    "global_avg": (nn.GlobalAvgPool2d, (3, 4, 5)),
    "global_avg_keepdims": (lambda: nn.GlobalAvgPool2d(keepdims=True), (3, 4, 5)),
    "global_max": (nn.GlobalMaxPool2d, (3, 4, 5)),
    "batch_norm1d": (lambda: trained_batch_norm(nn.BatchNorm1d(5), (5,)), (5,)),
    "batch_norm1d_sequence": (lambda: trained_batch_norm(nn.BatchNorm1d(3), (3, 6)), (3, 6)),
    "batch_norm1d_no_affine": (lambda: trained_batch_norm(nn.BatchNorm1d(5, affine=False), (5,)), (5,)),
    "batch_norm2d": (lambda: trained_batch_norm(nn.BatchNorm2d(3, eps=1e-3), (3, 4, 4)), (3, 4, 4)),
    "layer_norm": (lambda: affine(nn.LayerNorm(6)), (6,)),
    "layer_norm_2d_shape": (lambda: affine(nn.LayerNorm((3, 4))), (5, 3, 4)),
    "layer_norm_no_affine": (lambda: nn.LayerNorm(6, elementwise_affine=False), (2, 6)),
    "group_norm": (lambda: affine(nn.GroupNorm(2, 4)), (4, 3, 3)),
    "rnn": (lambda: nn.RNN(3, 5), (4, 3)),
    "rnn_relu_two_layers": (lambda: nn.RNN(3, 5, num_layers=2, nonlinearity="relu"), (4, 3)),
    "lstm": (lambda: nn.LSTM(3, 5), (4, 3)),
    "lstm_bidirectional_two_layers": (lambda: nn.LSTM(3, 5, num_layers=2, bidirectional=True), (4, 3)),
    "lstm_no_bias": (lambda: nn.LSTM(3, 4, bias=False), (4, 3)),
    "gru": (lambda: nn.GRU(3, 5), (4, 3)),
    "gru_bidirectional": (lambda: nn.GRU(3, 4, bidirectional=True), (6, 3)),
}


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_matches_onnxruntime(ort, tmp_path, name):
    factory, shape = LAYERS[name]
    check_roundtrip(ort, tmp_path, factory(), shape)


def dims_of(value_info) -> list:
    """A graph input's or output's dims: a name for a symbolic dim, the size for a fixed one."""
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def assert_same_outputs(ort, path, model, inputs: list[np.ndarray]) -> None:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x in inputs:
        got = session.run(None, {session.get_inputs()[0].name: x})
        expected = nurinet_outputs(model, x)
        assert [g.shape for g in got] == [e.shape for e in expected]
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, atol=ATOL, rtol=RTOL)


TIME_FIRST = {
    "lstm": lambda: nn.LSTM(3, 4, batch_first=False),
    "lstm_bidirectional_two_layers": lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=False),
    "gru_two_layers": lambda: nn.GRU(3, 4, num_layers=2, batch_first=False),
    "rnn_relu": lambda: nn.RNN(3, 5, nonlinearity="relu", batch_first=False),
}


@pytest.mark.parametrize("name", sorted(TIME_FIRST))
def test_time_first_recurrent_model_takes_any_batch_and_length(ort, tmp_path, name):
    import onnx

    # batch_first=False: inputs are (T, N, F), so the batch is dim 1. Exported with T=4, N=2.
    model, rng = TIME_FIRST[name](), np.random.default_rng(5)
    path = tmp_path / "time_first.onnx"
    nonnx.export(model, rng.standard_normal((4, 2, 3)).astype(np.float32), path)
    graph = onnx.load(str(path)).graph
    assert dims_of(graph.input[0]) == ["sequence", "batch", 3]
    assert dims_of(graph.output[0])[:2] == ["sequence", "batch"]
    for state in graph.output[1:]:  # h_n (and c_n): (layers * directions, N, H)
        assert dims_of(state)[1] == "batch" and isinstance(dims_of(state)[0], int)
    inputs = [rng.standard_normal((steps, batch, 3)).astype(np.float32) for steps in (3, 7) for batch in (1, 5)]
    assert_same_outputs(ort, path, model, inputs)


def test_batch_first_recurrent_model_takes_any_length(ort, tmp_path):
    model, rng = nn.GRU(3, 4, bidirectional=True), np.random.default_rng(6)
    path = tmp_path / "batch_first.onnx"
    nonnx.export(model, rng.standard_normal((2, 4, 3)).astype(np.float32), path)
    assert_same_outputs(ort, path, model, [rng.standard_normal((batch, steps, 3)).astype(np.float32)
                                           for batch, steps in ((1, 7), (5, 2))])


def test_fixed_length_and_fixed_batch_on_request(ort, tmp_path):
    import onnx

    model = nn.LSTM(3, 4, batch_first=False)
    x = np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)
    nonnx.export(model, x, tmp_path / "fixed_length.onnx", dynamic_sequence=False)
    assert dims_of(onnx.load(str(tmp_path / "fixed_length.onnx")).graph.input[0]) == [5, "batch", 3]
    nonnx.export(model, x, tmp_path / "fixed.onnx", dynamic_batch=False, dynamic_sequence=False)
    assert dims_of(onnx.load(str(tmp_path / "fixed.onnx")).graph.input[0]) == [5, 2, 3]
    assert_same_outputs(ort, tmp_path / "fixed.onnx", model, [x])
    session = ort.InferenceSession(str(tmp_path / "fixed.onnx"), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        session.run(None, {"input": np.ones((5, 3, 3), np.float32)})


class TimeFirstTagger(nn.Module):
    """Token ids (T, N) -> per-step scores (T, N, 3), through a batch_first=False LSTM."""

    def __init__(self):
        super().__init__()
        self.embed, self.lstm, self.head = nn.Embedding(9, 4), nn.LSTM(4, 6, batch_first=False), nn.Linear(6, 3)

    def forward(self, tokens):
        return self.head(self.lstm(self.embed(tokens))[0])


def _export_tagger(ctx, module, x):
    sequence = ctx.module(module.lstm, ctx.module(module.embed, x, "embed"), "lstm")[0]
    return ctx.module(module.head, sequence, "head").name


def test_model_with_its_own_exporter_gets_a_dynamic_length_on_request(ort, tmp_path):
    import onnx

    nonnx.register_exporter(TimeFirstTagger)(_export_tagger)
    try:
        model, rng = TimeFirstTagger(), np.random.default_rng(1)
        tokens = rng.integers(0, 9, (5, 2))
        # Its own exporter might build the length into the graph: by default only the batch (dim 1) is free.
        nonnx.export(model, tokens, tmp_path / "tagger.onnx")
        assert dims_of(onnx.load(str(tmp_path / "tagger.onnx")).graph.input[0]) == [5, "batch"]
        nonnx.export(model, tokens, tmp_path / "tagger_any_length.onnx", dynamic_sequence=True)
        graph = onnx.load(str(tmp_path / "tagger_any_length.onnx")).graph
        assert dims_of(graph.input[0]) == ["sequence", "batch"]
        assert dims_of(graph.output[0]) == ["sequence", "batch", 3]
        inputs = [rng.integers(0, 9, (steps, batch)) for steps in (3, 8) for batch in (1, 4)]
        assert_same_outputs(ort, tmp_path / "tagger_any_length.onnx", model, inputs)
    finally:
        del nonnx._EXPORTERS[TimeFirstTagger]


def test_layout_arguments_are_checked(ort, tmp_path):
    x = np.zeros((4, 2, 3), np.float32)
    for bad in (3, -4, 1.0, True):
        with pytest.raises(ValueError, match="batch_axis must be a dim of the example input"):
            nonnx.export(nn.LSTM(3, 2), x, tmp_path / "m.onnx", batch_axis=bad)
    with pytest.raises(ValueError, match="needs a model with a recurrent layer"):
        nonnx.export(nn.Linear(3, 2), x, tmp_path / "m.onnx", dynamic_sequence=True)

    class LastStep(nn.Module):  # its head takes exactly the example's length: it cannot be dynamic
        def __init__(self):
            super().__init__()
            self.lstm, self.flat, self.head = nn.LSTM(3, 2), nn.Flatten(), nn.Linear(2 * 2, 1)

        def forward(self, x):
            return self.head(self.flat(self.lstm(x)[0]))

    @nonnx.register_exporter(LastStep)
    def _(ctx, module, x):
        flat = ctx.module(module.flat, ctx.module(module.lstm, x, "lstm")[0], "flat")
        return ctx.module(module.head, flat, "head").name

    try:
        example = np.zeros((4, 2, 3), np.float32)  # (N, T, F): T = 2
        with pytest.raises(ValueError, match="does not run on a sequence one step longer"):
            nonnx.export(LastStep(), example, tmp_path / "m.onnx", dynamic_sequence=True)
        nonnx.export(LastStep(), example, tmp_path / "m.onnx")  # by default the length simply stays fixed
    finally:
        del nonnx._EXPORTERS[LastStep]


def test_embedding(ort, tmp_path):
    model = nn.Embedding(11, 4, padding_idx=0)
    check_roundtrip(ort, tmp_path, model, (6,), integers=11)


def test_embedding_then_lstm_then_linear(ort, tmp_path):
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.lstm, self.head = nn.Embedding(9, 4), nn.LSTM(4, 6), nn.Linear(6, 3)

        def forward(self, tokens):
            return self.head(self.lstm(self.embed(tokens))[0])

    @nonnx.register_exporter(Tagger)
    def _(ctx, module, x):
        sequence = ctx.module(module.lstm, ctx.module(module.embed, x, "embed"), "lstm")[0]
        return ctx.module(module.head, sequence, "head").name

    try:
        check_roundtrip(ort, tmp_path, Tagger(), (7,), integers=9)
    finally:
        del nonnx._EXPORTERS[Tagger]


@pytest.mark.parametrize("factory", [
    MnistCNN,
    lambda: MnistCNN(num_classes=3, in_channels=2, input_size=(12, 10)),
    LeNet5,
    lambda: LeNet5(activation="relu"),
    lambda: SmallVGG(input_size=16, widths=(4, 8), hidden=16, batch_norm=True),
], ids=["mnist_cnn", "mnist_cnn_small", "lenet5", "lenet5_relu", "small_vgg_bn"])
def test_reference_cnns(ort, tmp_path, factory):
    model = factory()
    shape = (model.in_channels, *model.input_size)
    check_roundtrip(ort, tmp_path, model, shape, batch=3)


def test_opset_18_and_newer_reductions(ort, tmp_path):
    # Reduce* take their axes as an input from opset 18 on.
    model = nn.Sequential(nn.AdaptiveMaxPool2d(3), nn.Flatten(), nn.Maxout(18, 2, pieces=2))
    check_roundtrip(ort, tmp_path, model, (2, 7, 5), opset=18)


def test_names_and_fixed_batch(ort, tmp_path):
    import onnx

    model = nn.Sequential(nn.Linear(4, 3), nn.Softmax())
    x = np.ones((2, 4), np.float32)
    path = tmp_path / "fixed.onnx"
    proto = nonnx.export(model, x, path, input_names=["features"], output_names=["probabilities"],
                         dynamic_batch=False)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["features"]
    assert [o.name for o in graph.output] == ["probabilities"]
    assert [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [2, 4]
    assert proto.graph == graph
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with pytest.raises(Exception, match="(?i)dimension|shape"):
        session.run(None, {"features": np.ones((3, 4), np.float32)})


def test_dynamic_batch_is_symbolic(ort, tmp_path):
    import onnx

    # An example batch of 1 equals the layer count of h and c: the batch dim is found by what varies.
    nonnx.export(nn.LSTM(2, 3), np.ones((1, 4, 2), np.float32), tmp_path / "lstm.onnx",
                 output_names=["y", "h", "c"])
    graph = onnx.load(str(tmp_path / "lstm.onnx")).graph
    assert dims_of(graph.input[0]) == ["batch", "sequence", 2]
    dims = {o.name: dims_of(o) for o in graph.output}
    assert dims == {"y": ["batch", "sequence", 3], "h": [1, "batch", 3], "c": [1, "batch", 3]}


def test_export_restores_training_flags(ort, tmp_path):
    model = MnistCNN(input_size=8)
    model.train()
    model.features[0].eval()
    nonnx.export(model, np.zeros((1, 1, 8, 8), np.float32), tmp_path / "m.onnx")
    assert model.training and model.classifier[3].training and not model.features[0].training


class Doubler(nn.Module):
    def forward(self, x):
        return x * 2


def test_unsupported_layer_names_it_and_lists_supported(ort, tmp_path):
    model = nn.Sequential(nn.Linear(3, 3), nn.Sequential(nn.ReLU(), Doubler()))
    with pytest.raises(nonnx.UnsupportedLayerError, match=r"1\.1 \(Doubler\)") as info:
        nonnx.export(model, np.zeros((1, 3), np.float32), tmp_path / "x.onnx")
    message = str(info.value)
    for layer in ("Linear", "Conv2d", "LSTM", "MnistCNN", "register_exporter"):
        assert layer in message
    assert not (tmp_path / "x.onnx").exists()


def test_unsupported_settings_are_refused(ort, tmp_path):
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(nonnx.UnsupportedLayerError, match="track_running_stats"):
        nonnx.export(nn.BatchNorm1d(3, track_running_stats=False), x, tmp_path / "bn.onnx")
    with pytest.raises(nonnx.UnsupportedLayerError, match="activation function '<lambda>'"):
        nonnx.export(nn.Linear(3, 2, activation=lambda t: t * 2), x, tmp_path / "f.onnx")
    with pytest.raises(ValueError, match="opset must be an int from 17"):
        nonnx.export(nn.ReLU(), x, tmp_path / "o.onnx", opset=11)
    with pytest.raises(ValueError, match="output_names has 1"):
        nonnx.export(nn.GRU(3, 2), x[None], tmp_path / "g.onnx", output_names=["y"])


def test_custom_exporter_for_a_subclass(ort, tmp_path):
    class Scale(nn.Module):
        def forward(self, x):
            return x * 3.0

    @nonnx.register_exporter(Scale)
    def _(ctx, module, x):
        return ctx.node("Mul", [x.name, ctx.constant(3.0, x.dtype)])

    try:
        assert "Scale" in nonnx.supported_layers()
        check_roundtrip(ort, tmp_path, nn.Sequential(nn.Linear(3, 4), Scale()), (3,))
    finally:
        del nonnx._EXPORTERS[Scale]


def test_file_is_written_atomically(ort, tmp_path, monkeypatch):
    from nurinet.io import atomic

    path = tmp_path / "model.onnx"
    path.write_bytes(b"previous model")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        nonnx.export(nn.Linear(3, 2), np.zeros((1, 3), np.float32), path)
    assert path.read_bytes() == b"previous model"
    assert os.listdir(tmp_path) == ["model.onnx"]  # no temporary file left behind
    monkeypatch.undo()
    nonnx.export(nn.Linear(3, 2), np.zeros((1, 3), np.float32), path)
    assert path.read_bytes() != b"previous model"


def test_importing_the_interop_modules_imports_neither_onnx_nor_sklearn(fresh_python):
    code = ("import sys, nurinet.onnx, nurinet.sklearn\n"
            "print(','.join(m for m in ('onnx', 'onnxruntime', 'sklearn') if m in sys.modules))\n")
    done = fresh_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_missing_onnx_gives_an_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes "import onnx" raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'nurinet\[onnx\]'"):
        nonnx.export(nn.ReLU(), np.zeros((1, 2), np.float32), tmp_path / "r.onnx")


def test_configured_output_layer_exports_its_softmax(ort, tmp_path):
    from nurinet import config

    model = config.build({"seed": 0, "model": {"input_size": 4, "layers": [
        {"type": "Dense", "units": 6, "activation": "relu"},
        {"type": "Output", "units": 3, "activation": "softmax", "loss": "NEGATIVELOGLIKELIHOOD"}]}}).model
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    path = tmp_path / "output_layer.onnx"
    nonnx.export(model, x, path)  # a training.Model exports the network it wraps
    got = run_onnx(ort, path, x)[0]
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv_padding_modes_export(ort, tmp_path, mode):
    layer = nn.Conv2d(2, 3, 3, padding=1, padding_mode=mode)
    x = np.random.default_rng(1).normal(size=(2, 2, 5, 6)).astype(np.float32)
    path = tmp_path / f"conv_{mode}.onnx"
    opset = 19 if mode == "circular" else None
    if opset is not None:
        with pytest.raises(nonnx.UnsupportedLayerError, match="opset 19"):
            nonnx.export(layer, x, tmp_path / "old.onnx", opset=17)
    nonnx.export(layer, x, path, **({"opset": opset} if opset else {}))
    np.testing.assert_allclose(run_onnx(ort, path, x)[0], nurinet_outputs(layer, x)[0], rtol=RTOL, atol=ATOL)
