"""summary(model, input_shape): layer table, output shapes, parameter counts and memory."""

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn
from nurinet.summary import summary
from nurinet.training import Model


def mlp():
    return nn.Sequential(nn.Linear(64, 32, activation="relu"), nn.Dropout(0.1), nn.Linear(32, 10))


def test_counts_and_shapes_of_a_small_mlp():
    model = mlp()
    result = summary(model, (64,), batch_size=4)
    assert [(r.name, r.type) for r in result.rows] == [
        ("0", "Linear"), ("0.activation", "Activation"), ("1", "Dropout"), ("2", "Linear")]
    assert [r.output_shape for r in result.rows] == [(4, 32), (4, 32), (4, 32), (4, 10)]
    assert [r.params for r in result.rows] == [64 * 32 + 32, 0, 0, 32 * 10 + 10]
    assert result.total_params == result.trainable_params == 2410 and result.frozen_params == 0
    assert result.param_bytes == 2410 * 4 and result.buffer_bytes == 0
    assert result.output_shape == (4, 10)
    text = str(result)
    assert "Total params: 2,410" in text and "0 (Linear)" in text and "(4, 32)" in text


def test_frozen_parameters_are_counted_apart():
    model = Model(mlp())
    model.network[0].requires_grad_(False)
    model.network[2].bias.requires_grad = False
    result = summary(model, (64,))
    assert result.frozen_params == 64 * 32 + 32 + 10
    assert result.trainable_params == 32 * 10
    rows = {r.name: r for r in result.rows}
    assert rows["network.0"].frozen == 2080 and rows["network.0"].trainable == 0
    assert rows["network.2"].frozen == 10 and rows["network.2"].trainable == 320
    assert "Frozen params: 2,090" in str(result)


def test_summary_leaves_the_model_as_it_was():
    model = mlp().train()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    nt.manual_seed(1)
    expected = nt.rand(2).array
    nt.manual_seed(1)
    summary(model, (64,))
    np.testing.assert_array_equal(nt.rand(2).array, expected)  # eval mode: dropout drew nothing
    assert model.training and all(m.training for m in model.modules())
    assert all("forward" not in m.__dict__ for m in model.modules())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_float64_model_memory_and_buffers():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double() if hasattr(nn, "BatchNorm1d") \
        else nn.Sequential(nn.Linear(3, 4)).double()
    result = summary(model, (3,), batch_size=2)
    n = sum(p.numel() for p in model.parameters())
    assert result.param_bytes == n * 8
    assert result.buffer_bytes == sum(b.array.nbytes for b in model.buffers())


def test_custom_model_with_several_outputs_and_int_inputs():
    class Tagger(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(20, 6)
            self.rnn = nn.GRU(6, 5, batch_first=True)
            self.head = nn.Linear(5, 3)

        def forward(self, tokens):
            out, _ = self.rnn(self.embed(tokens))
            return self.head(out)

    result = summary(Tagger(), (7,), batch_size=2, dtype="int64")
    rows = {r.name: r for r in result.rows}
    assert rows["embed"].output_shape == (2, 7, 6)
    assert rows["rnn"].output_shape[0] == (2, 7, 5)
    assert rows["head"].output_shape == (2, 7, 3) == result.output_shape


def test_model_summary_method_prints_once_and_returns_none(capsys):
    # None as in Keras: a notebook would show a returned table a second time
    assert Model(mlp()).summary((64,)) is None
    out = capsys.readouterr().out
    assert out.count("Trainable params: 2,410") == 1
    lines: list[str] = []
    assert Model(mlp()).summary((64,), print_fn=lines.append, batch_size=3) is None
    assert capsys.readouterr().out == ""
    assert "\n".join(lines) + "\n" == out.replace("(1, ", "(3, ")  # print_fn gets each line
    assert all("\n" not in line for line in lines)


def test_summary_function_prints_nothing_and_shows_the_table_in_ipython(capsys):
    result = summary(mlp(), (64,))
    assert capsys.readouterr().out == ""

    class Printer:
        def __init__(self):
            self.written = []

        def text(self, value):
            self.written.append(value)

    printer = Printer()
    result._repr_pretty_(printer, False)
    assert printer.written == [str(result)]


def test_summary_errors():
    with pytest.raises(ValueError, match=r"(?s)could not run Sequential on zeros of shape \(1, 5\).*in_features"):
        summary(mlp(), (5,))
    with pytest.raises(TypeError, match="shape of one sample"):
        summary(mlp(), 64)
    with pytest.raises(TypeError, match="expects a Module"):
        summary("model", (64,))
