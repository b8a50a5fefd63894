"""The dtype policy, for every public layer: a layer with parameters refuses, at forward, an
input whose dtype is not its parameters' dtype (PyTorch's rule), with an error naming the
layer, both dtypes and the fix.

``DTYPE_CASES`` runs the harness's check (:func:`tests.nn.harness.check_refuses_other_dtypes`)
on a float32 and a float64 instance of every layer class with parameters; the walk over
``nurinet.nn.__all__`` fails when a class with parameters is in neither ``DTYPE_CASES`` nor
``EXPLICIT`` (the classes whose dtype behaviour a test of its own pins down), so a new layer
cannot skip the policy.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import pytest

import nurinet.functional as F
from nurinet import Tensor, nn
from tests.nn.harness import check_refuses_other_dtypes

Make = Callable[[np.dtype], tuple[nn.Module, list[Tensor]]]


def _x(*shape: int, dtype: np.dtype = np.float32, seed: int = 0) -> Tensor:
    return Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def _encoder_layer(dtype: np.dtype) -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0, dtype=dtype)


def _decoder_layer(dtype: np.dtype) -> nn.TransformerDecoderLayer:
    return nn.TransformerDecoderLayer(4, 2, 8, dropout=0.0, dtype=dtype)


# Every layer class with parameters: a builder of an instance in the given dtype and valid inputs.
DTYPE_CASES: dict[type, Make] = {
    nn.Linear: lambda d: (nn.Linear(4, 3, dtype=d), [_x(2, 4, dtype=d)]),
    nn.OutputLayer: lambda d: (nn.OutputLayer(4, 3, "softmax", "nll", dtype=d), [_x(2, 4, dtype=d)]),
    nn.Maxout: lambda d: (nn.Maxout(4, 3, pieces=2, dtype=d), [_x(2, 4, dtype=d)]),
    nn.Conv1d: lambda d: (nn.Conv1d(2, 3, 3, dtype=d), [_x(2, 2, 5, dtype=d)]),
    nn.Conv2d: lambda d: (nn.Conv2d(2, 3, 3, dtype=d), [_x(2, 2, 5, 5, dtype=d)]),
    nn.ConvTranspose2d: lambda d: (nn.ConvTranspose2d(2, 3, 3, dtype=d), [_x(2, 2, 4, 4, dtype=d)]),
    nn.BatchNorm1d: lambda d: (nn.BatchNorm1d(3, dtype=d), [_x(4, 3, dtype=d)]),
    nn.BatchNorm2d: lambda d: (nn.BatchNorm2d(3, dtype=d), [_x(2, 3, 2, 2, dtype=d)]),
    nn.LayerNorm: lambda d: (nn.LayerNorm(3, dtype=d), [_x(2, 3, dtype=d)]),
    nn.GroupNorm: lambda d: (nn.GroupNorm(2, 4, dtype=d), [_x(2, 4, 3, dtype=d)]),
    nn.PReLU: lambda d: (nn.PReLU(3, dtype=d), [_x(2, 3, dtype=d)]),
    nn.Activation: lambda d: (nn.Activation("prelu").double() if d == np.float64 else nn.Activation("prelu"),
                              [_x(2, 3, dtype=d)]),
    nn.RNN: lambda d: (nn.RNN(3, 4, dtype=d), [_x(2, 5, 3, dtype=d)]),
    nn.LSTM: lambda d: (nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=d), [_x(2, 5, 3, dtype=d)]),
    nn.GRU: lambda d: (nn.GRU(3, 4, dtype=d), [_x(2, 5, 3, dtype=d)]),
    nn.RNNCell: lambda d: (nn.RNNCell(3, 4, dtype=d), [_x(2, 3, dtype=d), _x(2, 4, dtype=d)]),
    nn.LSTMCell: lambda d: (nn.LSTMCell(3, 4, dtype=d), [_x(2, 3, dtype=d)]),
    nn.GRUCell: lambda d: (nn.GRUCell(3, 4, dtype=d), [_x(2, 3, dtype=d), _x(2, 4, dtype=d)]),
    nn.MultiheadAttention: lambda d: (nn.MultiheadAttention(4, 2, dtype=d),
                                      [_x(2, 3, 4, dtype=d), _x(2, 5, 4, dtype=d), _x(2, 5, 4, dtype=d)]),
    nn.TransformerEncoderLayer: lambda d: (_encoder_layer(d), [_x(2, 3, 4, dtype=d)]),
    nn.TransformerDecoderLayer: lambda d: (_decoder_layer(d), [_x(2, 3, 4, dtype=d), _x(2, 5, 4, dtype=d)]),
    nn.TransformerEncoder: lambda d: (nn.TransformerEncoder(_encoder_layer(d), 2), [_x(2, 3, 4, dtype=d)]),
    nn.TransformerDecoder: lambda d: (nn.TransformerDecoder(_decoder_layer(d), 2),
                                      [_x(2, 3, 4, dtype=d), _x(2, 5, 4, dtype=d)]),
    nn.LearnedPositionalEncoding: lambda d: (nn.LearnedPositionalEncoding(4, max_len=8, dtype=d),
                                             [_x(2, 3, 4, dtype=d)]),
}

# Classes with parameters whose dtype behaviour an explicit test below pins down instead.
EXPLICIT = {
    nn.Embedding: "takes integer indices: refuses float ones (test_embedding_refuses_float_indices)",
    nn.Perceptron: "a rule-trained 0/1 unit with no gradient: converts any real input "
                   "(test_perceptron_converts_its_inputs)",
}

# Constructors of the public classes that need arguments, for the walk (any valid arguments do).
BUILD: dict[type, Callable[[], nn.Module]] = {
    **{cls: (lambda make=make: make(np.float32)[0]) for cls, make in DTYPE_CASES.items()},
    nn.Embedding: lambda: nn.Embedding(5, 3),
    nn.Perceptron: lambda: nn.Perceptron(3),
    nn.SinusoidalPositionalEncoding: lambda: nn.SinusoidalPositionalEncoding(4),
    nn.AdaptiveAvgPool2d: lambda: nn.AdaptiveAvgPool2d(2),
    nn.AdaptiveMaxPool2d: lambda: nn.AdaptiveMaxPool2d(2),
    nn.AvgPool1d: lambda: nn.AvgPool1d(2),
    nn.AvgPool2d: lambda: nn.AvgPool2d(2),
    nn.MaxPool1d: lambda: nn.MaxPool1d(2),
    nn.MaxPool2d: lambda: nn.MaxPool2d(2),
}


def _public_module_classes() -> list[type]:
    return [obj for name in nn.__all__ if inspect.isclass(obj := getattr(nn, name)) and issubclass(obj, nn.Module)]


def test_every_public_layer_with_parameters_is_dtype_checked() -> None:
    missing = []
    for cls in _public_module_classes():
        try:
            layer = BUILD[cls]() if cls in BUILD else cls()
        except TypeError as error:
            raise AssertionError(f"nn.{cls.__name__} needs constructor arguments: add it to BUILD "
                                 f"(and to DTYPE_CASES if it has parameters) ({error})") from None
        if any(True for _ in layer.parameters()) and cls not in DTYPE_CASES and cls not in EXPLICIT:
            missing.append(cls.__name__)
    assert not missing, f"layers with parameters not checked for the dtype policy: {missing}; add them to DTYPE_CASES"


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("cls", list(DTYPE_CASES), ids=lambda cls: cls.__name__)
def test_layer_refuses_inputs_of_another_dtype(cls: type, dtype: np.dtype) -> None:
    layer, inputs = DTYPE_CASES[cls](np.dtype(dtype))
    assert type(layer) is cls
    out = layer(*inputs)  # its own dtype works and keeps the dtype
    while isinstance(out, tuple):
        out = out[0]
    assert out.dtype == dtype
    check_refuses_other_dtypes(layer, inputs)


def test_the_message_names_the_layer_both_dtypes_and_the_fix() -> None:
    message = r"LSTM has float32 parameters but got a float64 input: convert the input with " \
              r"x\.astype\('float32'\) or the layer with layer\.double\(\)"
    with pytest.raises(TypeError, match=message):
        nn.LSTM(3, 4)(_x(2, 5, 3, dtype=np.float64))
    with pytest.raises(TypeError, match=r"GRU has float64 parameters but got a float32 input: .*layer\.float\(\)"):
        nn.GRU(3, 4, dtype=np.float64)(_x(2, 5, 3))
    with pytest.raises(TypeError, match=r"RNN has float32 parameters but got an int64 input: convert the input "
                                        r"with x\.astype\('float32'\)"):
        nn.RNN(3, 4)(Tensor(np.ones((2, 5, 3), np.int64)))


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_recurrent_layers_refuse_float64_before_backward(cls: type) -> None:
    """They used to accept float64 into float32 weights and die in backward with a GradientError."""
    layer = cls(3, 4)
    x = Tensor(np.ones((2, 5, 3)), requires_grad=True)
    with pytest.raises(TypeError, match=f"{cls.__name__} has float32 parameters but got a float64 input"):
        layer(x)
    state = Tensor(np.zeros((1, 2, 4)))
    hx = (state, Tensor(np.zeros((1, 2, 4), np.float32))) if cls is nn.LSTM else state
    with pytest.raises(TypeError, match=f"{cls.__name__} has float32 parameters but got a float64 h_0"):
        layer(_x(2, 5, 3), hx)


@pytest.mark.parametrize("cell", [nn.RNNCell, nn.LSTMCell, nn.GRUCell])
def test_cells_refuse_a_state_of_another_dtype(cell: type) -> None:
    layer, h = cell(3, 4), Tensor(np.zeros((2, 4)))
    hx = (Tensor(np.zeros((2, 4), np.float32)), h) if cell is nn.LSTMCell else h
    what = "c_0" if cell is nn.LSTMCell else "hx"
    with pytest.raises(TypeError, match=f"{cell.__name__} has float32 parameters but got a float64 {what}"):
        layer(_x(2, 3), hx)


def test_functional_ops_with_parameters_refuse_mixed_dtypes() -> None:
    x64, w = _x(2, 3, dtype=np.float64), _x(4, 3)
    with pytest.raises(TypeError, match=r"linear: the input \(float64\) and weight \(float32\) must share one dtype"):
        F.linear(x64, w)
    with pytest.raises(TypeError, match=r"lstm_cell: the input \(float64\) and w_ih \(float32\)"):
        F.lstm_cell(x64, (_x(2, 2), _x(2, 2)), _x(8, 3), _x(8, 2))
    with pytest.raises(TypeError, match=r"gru_cell: the h \(float64\) and w_hh \(float32\)"):
        F.gru_cell(_x(2, 3), _x(2, 2, dtype=np.float64), _x(6, 3), _x(6, 2))
    with pytest.raises(TypeError, match=r"rnn_cell: the input \(int64\) and w_ih \(float32\)"):
        F.rnn_cell(Tensor(np.ones((2, 3), np.int64)), _x(2, 2), _x(2, 3), _x(2, 2))
    with pytest.raises(TypeError, match=r"conv2d: the input \(float64\) and weight \(float32\)"):
        F.conv2d(_x(1, 2, 3, 3, dtype=np.float64), _x(3, 2, 1, 1))
    with pytest.raises(TypeError, match=r"layer_norm: the input \(float64\) and weight \(float32\)"):
        F.layer_norm(_x(2, 3, dtype=np.float64), 3, _x(3))


def test_embedding_refuses_float_indices() -> None:
    layer = nn.Embedding(5, 3, dtype=np.float64)
    assert layer(Tensor(np.array([[0, 4]]))).dtype == np.float64  # the output has the weight's dtype
    with pytest.raises(TypeError, match="Embedding: indices must be integers, got dtype float32"):
        layer(_x(1, 2))


def test_perceptron_converts_its_inputs() -> None:
    """Perceptron is exempt: not trained by gradients, it converts any real input (0/1 truth tables)."""
    unit = nn.Perceptron(2)
    unit.fit(np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), [0, 0, 0, 1])  # integer inputs, as in the guide
    table = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    for dtype in (np.int64, np.float32, np.float64):
        out = unit(Tensor(table.astype(dtype)))
        assert out.dtype == np.float32 and out.numpy().tolist() == [0, 0, 0, 1]


def test_layers_without_parameters_follow_a_float_input_and_refuse_integers() -> None:
    encoding = nn.SinusoidalPositionalEncoding(4)
    assert encoding(_x(2, 3, 4, dtype=np.float64)).dtype == np.float64
    with pytest.raises(TypeError, match="SinusoidalPositionalEncoding needs a floating-point input, got an int64"):
        encoding(Tensor(np.ones((2, 3, 4), np.int64)))
    assert nn.LayerNorm(3, elementwise_affine=False)(_x(2, 3, dtype=np.float64)).dtype == np.float64


def test_the_harness_catches_a_layer_that_accepts_another_dtype() -> None:
    class Lenient(nn.Linear):
        def forward(self, x: Tensor) -> Tensor:
            return F.linear(x.astype(self.weight.dtype), self.weight, self.bias)

    with pytest.raises(AssertionError, match="float64 input .* was accepted by a layer with float32 parameters"):
        check_refuses_other_dtypes(Lenient(3, 2), [_x(2, 3)])

    class Vague(nn.Linear):
        def forward(self, x: Tensor) -> Tensor:
            if x.dtype != self.weight.dtype:
                raise TypeError("wrong dtype")
            return super().forward(x)

    with pytest.raises(AssertionError, match="does not name the layer"):
        check_refuses_other_dtypes(Vague(3, 2), [_x(2, 3)])
