"""The bad inputs users give layers: wrong rank, wrong feature size, an empty batch, NaN, a batch
of one in a training BatchNorm, a zero-length sequence, wrong indices.

Each must end in a clear error that names the layer and the shape, or in PyTorch's behaviour
(an empty batch gives an empty output; NaN propagates as NaN); never an internal error (an
IndexError, a bare NumPy broadcasting error, an AttributeError...) nor a silent wrong number.
The empty-batch and NaN checks run with the native kernels on and off: the NumPy reference
path must accept every shape the fast path accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest

from nurinet import Tensor, _native, nn

Make = Callable[[], nn.Module]


def _x(*shape: int, fill: float | None = None) -> Tensor:
    if fill is not None:
        return Tensor(np.full(shape, fill, np.float32), requires_grad=True)
    return Tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32), requires_grad=True)


def _first(output: object) -> Tensor:
    while isinstance(output, tuple):
        output = output[0]
    return output


def _encoder_layer() -> nn.TransformerEncoderLayer:
    return nn.TransformerEncoderLayer(4, 2, 8, dropout=0.0)


@pytest.fixture(params=[True, False], ids=["native", "numpy"])
def native(request: pytest.FixtureRequest) -> Iterator[bool]:
    """Runs a test with the native kernels on (where they are built) and off (NURINET_NATIVE=0)."""
    old = _native.set_enabled(request.param)
    try:
        yield request.param
    finally:
        _native.set_enabled(old)


# ----- wrong rank and wrong feature size: a clear error naming the layer and the shape ------------
WRONG_RANK: list[tuple[str, Make, tuple[int, ...]]] = [
    ("Linear", lambda: nn.Linear(4, 3), ()),
    ("Maxout", lambda: nn.Maxout(4, 3, pieces=2), ()),
    ("Conv1d", lambda: nn.Conv1d(2, 3, 3), (2, 5)),
    ("Conv2d", lambda: nn.Conv2d(2, 3, 3), (2, 5, 5)),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(2, 3, 3), (2, 4, 4)),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(3), (3,)),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(3), (2, 3, 4, 4)),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3), (2, 3)),
    ("LayerNorm", lambda: nn.LayerNorm((3, 4)), (4,)),
    ("GroupNorm", lambda: nn.GroupNorm(2, 4), (4,)),
    ("PReLU", lambda: nn.PReLU(3), (3,)),
    ("RNN", lambda: nn.RNN(3, 4), (3,)),
    ("LSTM", lambda: nn.LSTM(3, 4), (2, 5, 3, 1)),
    ("GRU", lambda: nn.GRU(3, 4), (3,)),
    ("RNNCell", lambda: nn.RNNCell(3, 4), (2, 1, 3)),
    ("LSTMCell", lambda: nn.LSTMCell(3, 4), (2, 1, 3)),
    ("GRUCell", lambda: nn.GRUCell(3, 4), (2, 1, 3)),
    ("TransformerEncoderLayer", _encoder_layer, (4,)),
    ("TransformerEncoderLayer", _encoder_layer, (1, 2, 3, 4)),
    ("LearnedPositionalEncoding", lambda: nn.LearnedPositionalEncoding(4), (4,)),
    ("SinusoidalPositionalEncoding", lambda: nn.SinusoidalPositionalEncoding(4), (4,)),
    ("MaxPool2d", lambda: nn.MaxPool2d(2), (3, 4, 4)),
    ("MaxPool1d", lambda: nn.MaxPool1d(2), (4,)),
    ("AvgPool2d", lambda: nn.AvgPool2d(2), (3, 4, 4)),
    ("AvgPool1d", lambda: nn.AvgPool1d(2), (4,)),
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d(2), (3, 4)),
    ("AdaptiveMaxPool2d", lambda: nn.AdaptiveMaxPool2d(2), (3, 4)),
    ("GlobalAvgPool2d", lambda: nn.GlobalAvgPool2d(), (3, 4)),
    ("GlobalMaxPool2d", lambda: nn.GlobalMaxPool2d(), (3, 4)),
    ("Upsample", lambda: nn.Upsample(scale_factor=2), (4,)),
]

WRONG_FEATURES: list[tuple[str, Make, tuple[int, ...]]] = [
    ("Linear", lambda: nn.Linear(4, 3), (2, 5)),
    ("Maxout", lambda: nn.Maxout(4, 3, pieces=2), (2, 5)),
    ("Conv1d", lambda: nn.Conv1d(2, 3, 3), (2, 3, 5)),
    ("Conv2d", lambda: nn.Conv2d(2, 3, 3), (2, 3, 5, 5)),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(2, 3, 3), (2, 3, 4, 4)),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(3), (2, 4)),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3), (2, 4, 3, 3)),
    ("LayerNorm", lambda: nn.LayerNorm(3), (2, 4)),
    ("GroupNorm", lambda: nn.GroupNorm(2, 4), (2, 3, 5)),
    ("PReLU", lambda: nn.PReLU(3), (2, 4)),
    ("RNN", lambda: nn.RNN(3, 4), (2, 5, 4)),
    ("LSTM", lambda: nn.LSTM(3, 4), (5, 4)),  # a 2-D input is one unbatched (T, F) sequence
    ("GRU", lambda: nn.GRU(3, 4, batch_first=False), (5, 2, 4)),
    ("RNNCell", lambda: nn.RNNCell(3, 4), (2, 4)),
    ("LSTMCell", lambda: nn.LSTMCell(3, 4), (2, 4)),
    ("GRUCell", lambda: nn.GRUCell(3, 4), (4,)),
    ("TransformerEncoderLayer", _encoder_layer, (2, 3, 5)),
    ("LearnedPositionalEncoding", lambda: nn.LearnedPositionalEncoding(4), (2, 3, 5)),
    ("SinusoidalPositionalEncoding", lambda: nn.SinusoidalPositionalEncoding(4), (2, 3, 5)),
]

# Inputs too small (or too long) for the layer: the message names the layer and the size at fault.
WRONG_SIZE: list[tuple[str, Make, tuple[int, ...], str]] = [
    ("Conv2d", lambda: nn.Conv2d(2, 3, 5), (1, 2, 3, 3), r"Conv2d.*kernel \(5, 5\).*input is only \(3, 3\)"),
    ("Conv1d", lambda: nn.Conv1d(2, 3, 5, dilation=2), (1, 2, 6), r"Conv1d.*input is only \(6,\)"),
    ("MaxPool2d", lambda: nn.MaxPool2d(4), (1, 2, 3, 3),
     r"MaxPool2d.*spatial size \(3, 3\) is smaller than the kernel"),
    ("LearnedPositionalEncoding", lambda: nn.LearnedPositionalEncoding(4, max_len=2), (2, 3, 4),
     "LearnedPositionalEncoding: sequence length 3 exceeds max_len=2"),
    ("SinusoidalPositionalEncoding", lambda: nn.SinusoidalPositionalEncoding(4, max_len=2), (3, 4),
     "SinusoidalPositionalEncoding: sequence length 3 exceeds max_len=2"),
]


def _expect_clear_error(name: str, layer: nn.Module, *inputs: Tensor) -> None:
    """The call raises a ValueError or TypeError whose message names the layer and the input's shape."""
    with pytest.raises((ValueError, TypeError)) as caught:
        layer(*inputs)
    message = str(caught.value)
    assert name in message, f"the error does not name {name}: {message}"
    assert str(inputs[0].shape) in message, f"the error does not give the shape {inputs[0].shape}: {message}"


@pytest.mark.parametrize(("name", "make", "shape"), WRONG_RANK,
                         ids=[f"{case[0]}-{len(case[2])}d" for case in WRONG_RANK])
def test_wrong_rank_names_the_layer_and_the_shape(name: str, make: Make, shape: tuple[int, ...]) -> None:
    _expect_clear_error(name, make(), _x(*shape))


@pytest.mark.parametrize(("name", "make", "shape"), WRONG_FEATURES,
                         ids=[f"{case[0]}-{'x'.join(map(str, case[2]))}" for case in WRONG_FEATURES])
def test_wrong_feature_size_names_the_layer_and_the_shape(name: str, make: Make, shape: tuple[int, ...]) -> None:
    _expect_clear_error(name, make(), _x(*shape))


@pytest.mark.parametrize(("name", "make", "shape", "match"), WRONG_SIZE, ids=[case[0] for case in WRONG_SIZE])
def test_an_input_too_small_or_too_long_names_the_layer_and_the_size(name: str, make: Make, shape: tuple[int, ...],
                                                                   match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()(_x(*shape))


def test_attention_inputs_of_the_wrong_rank_or_size_name_the_layer() -> None:
    layer = nn.MultiheadAttention(4, 2)
    for query in (_x(1, 1, 2, 4), _x(4), _x(1, 2, 5)):
        _expect_clear_error("MultiheadAttention", layer, query, _x(1, 3, 4), _x(1, 3, 4))
    with pytest.raises(ValueError, match=r"TransformerDecoderLayer.*memory.*\(2, 3, 5\)"):
        nn.TransformerDecoderLayer(4, 2, 8)(_x(2, 3, 4), _x(2, 3, 5))


def test_a_two_dim_recurrent_input_is_one_unbatched_sequence_as_in_pytorch() -> None:
    layer = nn.LSTM(3, 4)
    out, (h_n, c_n) = layer(_x(5, 3))
    assert out.shape == (5, 4) and h_n.shape == c_n.shape == (1, 4)


# ----- an empty batch: an empty output (and empty gradients), as in PyTorch -------------------------
EMPTY_BATCH: list[tuple[str, Make, tuple[int, ...], tuple[int, ...]]] = [
    ("Linear", lambda: nn.Linear(4, 3), (0, 4), (0, 3)),
    ("Maxout", lambda: nn.Maxout(4, 3, pieces=2), (0, 4), (0, 3)),
    ("Conv1d", lambda: nn.Conv1d(2, 3, 3), (0, 2, 5), (0, 3, 3)),
    ("Conv2d", lambda: nn.Conv2d(2, 3, 3, padding=1), (0, 2, 5, 5), (0, 3, 5, 5)),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(2, 3, 3, stride=2), (0, 2, 4, 4), (0, 3, 9, 9)),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(3), (0, 3), (0, 3)),
    ("BatchNorm1d-eval", lambda: nn.BatchNorm1d(3).eval(), (0, 3, 4), (0, 3, 4)),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3), (0, 3, 2, 2), (0, 3, 2, 2)),
    ("LayerNorm", lambda: nn.LayerNorm(3), (0, 3), (0, 3)),
    ("GroupNorm", lambda: nn.GroupNorm(2, 4), (0, 4, 3), (0, 4, 3)),
    ("PReLU", lambda: nn.PReLU(3), (0, 3), (0, 3)),
    ("RNN", lambda: nn.RNN(3, 4), (0, 5, 3), (0, 5, 4)),
    ("LSTM", lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True), (0, 5, 3), (0, 5, 8)),
    ("GRU", lambda: nn.GRU(3, 4, batch_first=False), (5, 0, 3), (5, 0, 4)),
    ("RNNCell", lambda: nn.RNNCell(3, 4), (0, 3), (0, 4)),
    ("LSTMCell", lambda: nn.LSTMCell(3, 4), (0, 3), (0, 4)),
    ("GRUCell", lambda: nn.GRUCell(3, 4), (0, 3), (0, 4)),
    ("TransformerEncoderLayer", _encoder_layer, (0, 3, 4), (0, 3, 4)),
    ("TransformerEncoder", lambda: nn.TransformerEncoder(_encoder_layer(), 2), (0, 3, 4), (0, 3, 4)),
    ("LearnedPositionalEncoding", lambda: nn.LearnedPositionalEncoding(4), (0, 3, 4), (0, 3, 4)),
    ("SinusoidalPositionalEncoding", lambda: nn.SinusoidalPositionalEncoding(4), (0, 3, 4), (0, 3, 4)),
    ("MaxPool2d", lambda: nn.MaxPool2d(2), (0, 3, 4, 4), (0, 3, 2, 2)),
    ("MaxPool1d", lambda: nn.MaxPool1d(2), (0, 3, 4), (0, 3, 2)),
    ("AvgPool2d", lambda: nn.AvgPool2d(2), (0, 3, 4, 4), (0, 3, 2, 2)),
    ("AdaptiveAvgPool2d", lambda: nn.AdaptiveAvgPool2d(2), (0, 3, 4, 4), (0, 3, 2, 2)),
    ("AdaptiveMaxPool2d", lambda: nn.AdaptiveMaxPool2d(2), (0, 3, 4, 4), (0, 3, 2, 2)),
    ("GlobalAvgPool2d", lambda: nn.GlobalAvgPool2d(), (0, 3, 4, 4), (0, 3)),
    ("GlobalMaxPool2d", lambda: nn.GlobalMaxPool2d(), (0, 3, 4, 4), (0, 3)),
    ("Upsample", lambda: nn.Upsample(scale_factor=2), (0, 3, 2, 2), (0, 3, 4, 4)),
    ("Dropout", lambda: nn.Dropout(0.5), (0, 3), (0, 3)),
    ("Dropout2d", lambda: nn.Dropout2d(0.5), (0, 3, 2, 2), (0, 3, 2, 2)),
    ("Flatten", lambda: nn.Flatten(), (0, 3, 2), (0, 6)),
]


@pytest.mark.parametrize(("name", "make", "shape", "expected"), EMPTY_BATCH, ids=[case[0] for case in EMPTY_BATCH])
def test_an_empty_batch_gives_an_empty_output(name: str, make: Make, shape: tuple[int, ...],
                                              expected: tuple[int, ...], native: bool) -> None:
    layer = make()
    x = _x(*shape)
    y = _first(layer(x))
    assert y.shape == expected and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.shape == x.shape
    for pname, p in layer.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, f"{name}: no gradient of its shape for {pname}"
        assert not p.grad.numpy().any(), f"{name}: an empty batch gave {pname} a nonzero gradient"


@pytest.mark.parametrize("kind", [nn.RNN, nn.LSTM, nn.GRU])
def test_recurrent_empty_batch_has_empty_final_states_and_takes_lengths(kind: type, native: bool) -> None:
    layer = kind(3, 4, num_layers=2)
    out, state = layer(_x(0, 5, 3), lengths=np.zeros(0, np.int64))
    for s in state if kind is nn.LSTM else (state,):
        assert s.shape == (2, 0, 4)
    assert out.shape == (0, 5, 4)
    out, _ = layer(_x(0, 5, 3), mask=np.zeros((0, 5), bool))
    assert out.shape == (0, 5, 4)


def test_batch_norm_leaves_its_running_statistics_alone_on_an_empty_batch() -> None:
    layer = nn.BatchNorm1d(3)
    before = {k: v.copy() for k, v in layer.state_dict().items()}
    layer(_x(0, 3))
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_embedding_of_no_indices_is_empty() -> None:
    layer = nn.Embedding(5, 3)
    y = layer(Tensor(np.zeros((0, 4), np.int64)))
    assert y.shape == (0, 4, 3)
    y.sum().backward()
    assert not layer.weight.grad.numpy().any()


def test_attention_over_no_keys_outputs_zeros_as_pytorch() -> None:
    """A query with no key to attend to gets zero weights and a zero output before out_proj, as in
    PyTorch (and as a query whose keys are all masked)."""
    layer = nn.MultiheadAttention(4, 2)
    query = _x(2, 3, 4)
    out, weights = layer(query, _x(2, 0, 4), _x(2, 0, 4))
    assert out.shape == (2, 3, 4) and weights.shape == (2, 3, 0)
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(layer.out_proj.bias.numpy(), (2, 3, 4)))
    out.sum().backward()
    assert not query.grad.numpy().any()


# ----- NaN: propagates as NaN, in the output and in backward ----------------------------------------
NAN_INPUT: list[tuple[str, Make, tuple[int, ...]]] = [
    ("Linear", lambda: nn.Linear(4, 3), (2, 4)),
    ("Maxout", lambda: nn.Maxout(4, 3, pieces=2), (2, 4)),
    ("Conv1d", lambda: nn.Conv1d(2, 3, 3), (2, 2, 5)),
    ("Conv2d", lambda: nn.Conv2d(2, 3, 3, padding=1), (2, 2, 5, 5)),
    ("ConvTranspose2d", lambda: nn.ConvTranspose2d(2, 3, 3, stride=2), (2, 2, 4, 4)),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(3), (4, 3)),
    ("BatchNorm2d-eval", lambda: nn.BatchNorm2d(3).eval(), (2, 3, 2, 2)),
    ("LayerNorm", lambda: nn.LayerNorm(3), (2, 3)),
    ("GroupNorm", lambda: nn.GroupNorm(2, 4), (2, 4, 3)),
    ("PReLU", lambda: nn.PReLU(3), (2, 3)),
    ("RNN", lambda: nn.RNN(3, 4, nonlinearity="relu"), (2, 5, 3)),
    ("LSTM", lambda: nn.LSTM(3, 4, bidirectional=True), (2, 5, 3)),
    ("GRU", lambda: nn.GRU(3, 4), (2, 5, 3)),
    ("LSTMCell", lambda: nn.LSTMCell(3, 4), (2, 3)),
    ("GRUCell", lambda: nn.GRUCell(3, 4), (2, 3)),
    ("MultiheadAttention", lambda: nn.MultiheadAttention(4, 2), (2, 3, 4)),
    ("TransformerEncoderLayer", _encoder_layer, (2, 3, 4)),
    ("LearnedPositionalEncoding", lambda: nn.LearnedPositionalEncoding(4), (2, 3, 4)),
    ("MaxPool2d", lambda: nn.MaxPool2d(2), (2, 3, 4, 4)),
    ("AvgPool2d", lambda: nn.AvgPool2d(2), (2, 3, 4, 4)),
    ("GlobalMaxPool2d", lambda: nn.GlobalMaxPool2d(), (2, 3, 4, 4)),
    ("AdaptiveMaxPool2d", lambda: nn.AdaptiveMaxPool2d(2), (2, 3, 4, 4)),
    ("Upsample", lambda: nn.Upsample(scale_factor=2, mode="bilinear"), (2, 3, 2, 2)),
]


@pytest.mark.parametrize(("name", "make", "shape"), NAN_INPUT, ids=[case[0] for case in NAN_INPUT])
def test_nan_input_propagates_as_nan(name: str, make: Make, shape: tuple[int, ...], native: bool) -> None:
    layer = make()
    x = _x(*shape, fill=np.nan)
    inputs = (x, x, x) if isinstance(layer, nn.MultiheadAttention) else (x,)
    with np.errstate(invalid="ignore"):
        y = _first(layer(*inputs))
        assert np.isnan(y.numpy()).all(), f"{name}: a NaN input gave non-NaN outputs"
        y.sum().backward()  # no internal error in backward either
    assert x.grad.shape == x.shape


def test_one_nan_step_reaches_only_the_later_steps(native: bool) -> None:
    layer = nn.GRU(3, 4)
    x = np.zeros((2, 5, 3), np.float32)
    x[1, 2, 0] = np.nan
    out = layer(Tensor(x))[0].numpy()
    assert np.isfinite(out[0]).all() and np.isfinite(out[1, :2]).all() and np.isnan(out[1, 2:]).all()


# ----- a batch of one in a training BatchNorm -----------------------------------------------------
@pytest.mark.parametrize(("make", "shape"), [
    (lambda: nn.BatchNorm1d(3), (1, 3)),
    (lambda: nn.BatchNorm2d(3), (1, 3, 1, 1)),
], ids=["BatchNorm1d", "BatchNorm2d"])
def test_batch_norm_refuses_one_value_per_channel_while_training(make: Make, shape: tuple[int, ...]) -> None:
    layer = make()
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"{name}: expected more than 1 value per channel when training, got an "
                                         rf"input of shape \({shape[0]}, 3"):
        layer(_x(*shape))
    assert layer.eval()(_x(*shape)).shape == shape  # evaluation uses the running statistics: fine
    assert int(layer.num_batches_tracked.item()) == 0


def test_batch_norm_takes_one_sample_with_several_values_per_channel() -> None:
    assert nn.BatchNorm1d(3)(_x(1, 3, 2)).shape == (1, 3, 2)  # PyTorch too: two values per channel


# ----- zero-length sequences and bad indices -----------------------------------------------------------
@pytest.mark.parametrize(("make", "shape"), [
    (lambda: nn.LSTM(3, 4), (2, 0, 3)),
    (lambda: nn.GRU(3, 4), (0, 3)),
    (lambda: nn.RNN(3, 4, batch_first=False), (0, 2, 3)),
], ids=["LSTM", "GRU-unbatched", "RNN-time-first"])
def test_a_zero_length_sequence_is_refused_as_in_pytorch(make: Make, shape: tuple[int, ...], native: bool) -> None:
    layer = make()
    with pytest.raises(ValueError, match=rf"{type(layer).__name__}: expected a sequence of at least one step, got "
                                         rf"length 0 \(input shape \({shape[0]}, "):
        layer(_x(*shape))


def test_embedding_bad_indices_name_the_layer() -> None:
    layer = nn.Embedding(5, 3)
    with pytest.raises(TypeError, match="Embedding: indices must be integers, got dtype float32"):
        layer(_x(2, 3))
    for bad in (5, -1):  # PyTorch raises an IndexError too
        with pytest.raises(IndexError, match=rf"Embedding: index {bad} is out of range for num_embeddings=5"):
            layer(Tensor(np.full((2, 3), bad)))


def test_integer_input_to_a_layer_without_parameters_that_needs_floats() -> None:
    with pytest.raises(TypeError, match="SinusoidalPositionalEncoding needs a floating-point input"):
        nn.SinusoidalPositionalEncoding(4)(Tensor(np.ones((2, 3, 4), np.int64)))
    with pytest.raises(TypeError, match="RReLU needs a floating-point input, got an int64 input"):
        nn.RReLU()(Tensor(np.array([[-3, 2]])))  # it used to truncate the random slopes to 0
    with pytest.raises(TypeError, match="LayerNorm needs a floating-point input, got an int64 input"):
        nn.LayerNorm(3, elementwise_affine=False)(Tensor(np.ones((2, 3), np.int64)))
