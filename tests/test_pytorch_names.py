"""PyTorch's names mean what they mean in PyTorch (issue 21): the Tensor methods, the top-level
functions, ``dim=``/``keepdim=``, the dtype and device names, ``nn.functional``, ``utils.data``,
``nn.utils``, the module hooks, and a port of PyTorch's quickstart that runs and learns.

Comparisons with PyTorch carry the ``torch`` marker and are skipped without torch; the rest are
plain tests.
"""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import nn

try:
    import torch
except ImportError:  # pragma: no cover - the comparisons are skipped
    torch = None



def compares_with_torch(test):
    """Mark a test as a comparison with PyTorch, skipped where torch is not installed."""
    return pytest.mark.torch(pytest.mark.skipif(torch is None, reason="torch is not installed")(test))


def _pair(shape=(3, 4, 5), seed=0):
    data = np.random.default_rng(seed).standard_normal(shape)
    return nurinet.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)


def _close(ours, theirs, **kwargs):
    options = {"rtol": 1e-6, "atol": 1e-9, **kwargs}
    np.testing.assert_allclose(np.asarray(ours.array), theirs.detach().numpy(), **options)


# ----- compared with PyTorch --------------------------------------------------------------------
METHOD_CASES = {
    "transpose(0, 1)": lambda x: x.transpose(0, 1),
    "transpose(-1, 0)": lambda x: x.transpose(-1, 0),
    "permute(2, 0, 1)": lambda x: x.permute(2, 0, 1),
    "T of a matrix": lambda x: x[0].T,
    "t()": lambda x: x[0].t(),
    "mT": lambda x: x.mT,
    "max(1).values": lambda x: x.max(1).values,
    "max(dim=2, keepdim=True)[0]": lambda x: x.max(dim=2, keepdim=True)[0],
    "min(0).values": lambda x: x.min(0).values,
    "max()": lambda x: x.max(),
    "sort(1).values": lambda x: x.sort(1).values,
    "sort(descending).values": lambda x: x.sort(dim=-1, descending=True).values,
    "topk(2).values": lambda x: x.topk(2).values,
    "topk(2, largest=False, dim=1).values": lambda x: x.topk(2, dim=1, largest=False).values,
    "sum(dim=1, keepdim=True)": lambda x: x.sum(dim=1, keepdim=True),
    "mean((0, 2))": lambda x: x.mean((0, 2)),
    "var(1)": lambda x: x.var(1),
    "var(unbiased=False)": lambda x: x.var(unbiased=False),
    "std(dim=0, correction=0)": lambda x: x.std(dim=0, correction=0),
    "std()": lambda x: x.std(),
    "logsumexp(1)": lambda x: x.logsumexp(1),
    "softmax(dim=1)": lambda x: x.softmax(dim=1),
    "log_softmax(-1)": lambda x: x.log_softmax(-1),
    "cumsum(dim=2)": lambda x: x.cumsum(dim=2),
    "flatten(1)": lambda x: x.flatten(1),
    "flatten(start_dim=0, end_dim=1)": lambda x: x.flatten(start_dim=0, end_dim=1),
    "unsqueeze(1)": lambda x: x.unsqueeze(1),
    "squeeze(dim=1)": lambda x: x[:, :1].squeeze(dim=1),
    "view(-1, 5)": lambda x: x.view(-1, 5),
    "expand(2, 3, 4, 5)": lambda x: x.expand(2, 3, 4, 5),
    "expand(-1, 4, 5) of (3, 1, 5)": lambda x: x[:, :1].expand(-1, 4, 5),
    "repeat(1, 2, 1)": lambda x: x.repeat(1, 2, 1),
    "repeat_interleave(2, dim=1)": lambda x: x.repeat_interleave(2, dim=1),
    "split(2, dim=1)[1]": lambda x: x.split(2, dim=1)[1],
    "split([1, 3], 1)[1]": lambda x: x.split([1, 3], 1)[1],
    "chunk(3, dim=2)[2]": lambda x: x.chunk(3, dim=2)[2],
    "clone()": lambda x: x.clone(),
    "contiguous()": lambda x: x.transpose(0, 2).contiguous(),
    "masked_fill(x > 0, 0.0)": lambda x: x.masked_fill(x > 0, 0.0),
    "diag() of a matrix": lambda x: x[0].diag(),
    "diag(1) of a vector": lambda x: x[0, 0].diag(1),
    "bmm": lambda x: x.bmm(x.transpose(1, 2)),
    "mm": lambda x: x[0].mm(x[0].t()),
    "clamp(min=-0.5, max=0.5)": lambda x: x.clamp(min=-0.5, max=0.5),
}


@compares_with_torch
@pytest.mark.parametrize("name", list(METHOD_CASES))
def test_tensor_method_matches_torch_with_its_gradient(name):
    ours, theirs = _pair()
    fn = METHOD_CASES[name]
    y, y_torch = fn(ours), fn(theirs)
    _close(y, y_torch)
    weights = np.random.default_rng(1).standard_normal(y.shape)
    (y * nurinet.tensor(weights)).sum().backward()
    (y_torch * torch.tensor(weights)).sum().backward()
    _close(ours.grad, theirs.grad)


INDEX_CASES = {
    "max(1)": lambda x: x.max(1),
    "min(dim=2, keepdim=True)": lambda x: x.min(dim=2, keepdim=True),
    "sort(0)": lambda x: x.sort(0),
    "sort(descending)": lambda x: x.sort(descending=True),
    "topk(3, dim=1)": lambda x: x.topk(3, dim=1),
}


@compares_with_torch
@pytest.mark.parametrize("name", list(INDEX_CASES))
def test_values_and_indices_match_torch(name):
    ours, theirs = _pair()
    values, indices = INDEX_CASES[name](ours)
    result = INDEX_CASES[name](theirs)
    _close(values, result.values)
    np.testing.assert_array_equal(indices.numpy(), result.indices.numpy())
    assert INDEX_CASES[name](ours).indices is not None and type(INDEX_CASES[name](ours)).__name__ == \
        type(result).__name__.split(".")[-1]



@compares_with_torch
def test_sizes_argsort_argmax_comparisons_and_conversions_match_torch():
    ours, theirs = _pair((2, 3, 4))
    assert tuple(ours.size()) == tuple(theirs.size()) and ours.size(1) == theirs.size(1)
    assert ours.size(-1) == theirs.size(-1) and ours.numel() == theirs.numel() and ours.dim() == theirs.dim()
    np.testing.assert_array_equal(ours.argsort(dim=1).numpy(), theirs.argsort(dim=1).numpy())
    np.testing.assert_array_equal(ours.argmax(dim=2, keepdim=True).numpy(),
                                  theirs.argmax(dim=2, keepdim=True).numpy())
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        np.testing.assert_array_equal(getattr(ours, name)(0.1).numpy(), getattr(theirs, name)(0.1).numpy())
    for name, dtype in [("long", "int64"), ("int", "int32"), ("bool", "bool"), ("float", "float32"),
                        ("double", "float64"), ("half", "float16")]:
        assert getattr(ours, name)().dtype == np.dtype(dtype)
        assert str(getattr(theirs, name)().dtype) == f"torch.{dtype}"
    assert ours.type(nurinet.float32).dtype == nurinet.float32
    assert ours.to(nurinet.long).dtype == np.int64 and ours.to("cpu", nurinet.float32).dtype == np.float32


@compares_with_torch
def test_top_level_functions_match_torch():
    a = np.random.default_rng(2).standard_normal((3, 4))
    b = np.random.default_rng(3).standard_normal((3, 4))
    x, y, tx, ty = nurinet.tensor(a), nurinet.tensor(b), torch.tensor(a), torch.tensor(b)
    pairs = [
        (nurinet.cat([x, y], dim=1), torch.cat([tx, ty], dim=1)),
        (nurinet.concat([x, y]), torch.concat([tx, ty])),
        (nurinet.stack([x, y], dim=2), torch.stack([tx, ty], dim=2)),
        (nurinet.flatten(nurinet.stack([x, y])), torch.flatten(torch.stack([tx, ty]))),
        (nurinet.where(x > 0, x, y), torch.where(tx > 0, tx, ty)),
        (nurinet.exp(x), torch.exp(tx)),
        (nurinet.transpose(x, 0, 1), torch.transpose(tx, 0, 1)),
        (nurinet.max(x, 1).values, torch.max(tx, 1).values),
        (nurinet.max(x, y), torch.max(tx, ty)),
        (nurinet.min(x), torch.min(tx)),
        (nurinet.var(x, 0), torch.var(tx, 0)),
        (nurinet.std(x), torch.std(tx)),
        (nurinet.sum(x, dim=1), torch.sum(tx, dim=1)),
        (nurinet.mean(x, dim=0, keepdim=True), torch.mean(tx, dim=0, keepdim=True)),
        (nurinet.softmax(x, dim=1), torch.softmax(tx, dim=1)),
        (nurinet.diag(x), torch.diag(tx)),
        (nurinet.split(x, 3, dim=1)[1], torch.split(tx, 3, dim=1)[1]),
        (nurinet.chunk(x, 2)[1], torch.chunk(tx, 2)[1]),
        (nurinet.masked_fill(x, x < 0, 1.0), tx.masked_fill(tx < 0, 1.0)),
        (nurinet.bmm(x[None], y.T[None]), torch.bmm(tx[None], ty.T[None])),
        (nurinet.topk(x, 2).values, torch.topk(tx, 2).values),
        (nurinet.sort(x, 0).values, torch.sort(tx, 0).values),
    ]
    for ours, theirs in pairs:
        _close(ours, theirs)
    np.testing.assert_array_equal(nurinet.eq(x, x).numpy(), torch.eq(tx, tx).numpy())
    np.testing.assert_array_equal(nurinet.argmax(x, dim=1).numpy(), torch.argmax(tx, dim=1).numpy())



@compares_with_torch
def test_nn_functional_and_recurrent_batch_first_match_torch():
    import nurinet.nn.functional as NF

    a = np.random.default_rng(4).standard_normal((4, 5)).astype(np.float32)
    _close(NF.softmax(nurinet.tensor(a), dim=1), torch.nn.functional.softmax(torch.tensor(a), dim=1))
    _close(NF.log_softmax(nurinet.tensor(a), dim=0), torch.nn.functional.log_softmax(torch.tensor(a), dim=0))
    # The layer with PyTorch's layout given explicitly computes what PyTorch's default layer does.
    ours = nn.GRU(5, 3, batch_first=False)
    theirs = torch.nn.GRU(5, 3)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    seq = np.random.default_rng(5).standard_normal((7, 1, 5)).astype(np.float32)
    _close(ours(nurinet.tensor(seq))[0], theirs(torch.tensor(seq))[0], rtol=1e-5, atol=1e-6)



@compares_with_torch
def test_gather_flip_linspace_and_friends_match_torch():
    ours, theirs = _pair((3, 4))
    index = np.array([[0, 3], [1, 1], [2, 0]])
    y, y_torch = ours.gather(1, nurinet.tensor(index)), theirs.gather(1, torch.tensor(index))
    _close(y, y_torch)
    y.sum().backward()
    y_torch.sum().backward()
    _close(ours.grad, theirs.grad)
    _close(nurinet.flip(ours, dims=(0,)), torch.flip(theirs, dims=(0,)))
    _close(nurinet.repeat_interleave(ours, 2, dim=1), torch.repeat_interleave(theirs, 2, dim=1))
    _close(nurinet.take_along_dim(ours, nurinet.tensor(index), 1), torch.take_along_dim(theirs, torch.tensor(index), 1))
    np.testing.assert_allclose(nurinet.linspace(-1, 2, 7).numpy(), torch.linspace(-1, 2, 7).numpy())
    assert nurinet.empty(2, 3).shape == tuple(torch.empty(2, 3).shape)


@compares_with_torch
def test_full_backward_hook_sees_what_torchs_sees():
    def record(into):
        return lambda module, grad_input, grad_output: into.append((grad_input, grad_output))

    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    seen, seen_torch = [], []
    ours.register_full_backward_hook(record(seen))
    theirs.register_full_backward_hook(record(seen_torch))
    data = np.random.default_rng(6).standard_normal((4, 3)).astype(np.float32)
    x, tx = nurinet.tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    (ours(x) ** 2).sum().backward()
    (theirs(tx) ** 2).sum().backward()
    (grad_input,), (grad_output,) = seen[0]
    _close(grad_input, seen_torch[0][0][0], rtol=1e-5)
    _close(grad_output, seen_torch[0][1][0], rtol=1e-5)
    seen.clear()
    ours.register_full_backward_hook(lambda module, grad_input, grad_output: (grad_input[0] * 0,))
    x.grad = None
    ours(x).sum().backward()
    assert len(seen) == 1 and not x.grad.numpy().any()


# ----- plain tests ------------------------------------------------------------------------------
def test_transpose_of_a_matrix_is_no_longer_a_no_op():
    x = nurinet.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    np.testing.assert_array_equal(x.transpose(0, 1).numpy(), [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(F.transpose(x, 1, 0).numpy(), x.numpy().T)
    with pytest.raises(TypeError, match="permute"):
        F.transpose(x, (1, 0))
    with pytest.raises(ValueError, match="at most 2"):
        nurinet.zeros(2, 3, 4).t()
    assert F.permute(nurinet.zeros(2, 3, 4), (2, 0, 1)).shape == (4, 2, 3)


def test_max_unpacks_as_values_and_indices():
    x = nurinet.tensor([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.numpy(), [5, 7])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])
    assert x.max(axis=1).values.shape == (2,)  # NumPy's spelling, PyTorch's result
    assert x.max().item() == 7.0 and F.max(x, axis=1).shape == (2,)  # F.max stays NumPy's amax
    assert nurinet.amax(x, dim=0).shape == (3,)


def test_size_is_the_shape_and_numel_the_count():
    x = nurinet.zeros(2, 3)
    assert x.size() == (2, 3) and isinstance(x.size(), nurinet.Size) and x.size(0) == 2
    assert x.size().numel() == 6 == x.numel() == nurinet.numel(x)
    assert repr(x.size()) == "nurinet.Size([2, 3])"


def test_both_axis_spellings_at_once_are_refused():
    x = nurinet.zeros(2, 3)
    for call in (lambda: x.sum(axis=0, dim=0), lambda: F.mean(x, axis=0, dim=1),
                 lambda: F.softmax(x, axis=0, dim=0), lambda: F.concatenate([x, x], axis=0, dim=0),
                 lambda: x.argmax(axis=1, dim=1), lambda: F.sum(x, 0, keepdims=True, keepdim=True)):
        with pytest.raises(TypeError, match="give one of them"):
            call()


def test_dim_and_keepdim_reach_every_axis_function():
    x = nurinet.randn(2, 3, 4)
    assert F.sum(x, dim=1, keepdim=True).shape == (2, 1, 4)
    assert F.var(x, dim=2).shape == (2, 3) and F.std(x, dim=0, keepdim=True).shape == (1, 3, 4)
    assert F.prod(x, dim=0).shape == (3, 4) and F.logsumexp(x, dim=-1).shape == (2, 3)
    assert F.cumsum(x, dim=2).shape == (2, 3, 4) and F.argmin(x, dim=1).shape == (2, 4)
    assert F.concatenate([x, x], dim=2).shape == (2, 3, 8) and F.stack([x, x], dim=1).shape == (2, 2, 3, 4)
    assert len(F.split(x, 3, dim=1)) == 3 and F.unsqueeze(x, dim=0).shape == (1, 2, 3, 4)
    assert F.squeeze(F.unsqueeze(x, 1), dim=1).shape == (2, 3, 4)
    assert F.flatten(x, start_dim=1).shape == (2, 12) and F.log_softmax(x, dim=1).shape == (2, 3, 4)
    assert x.any(dim=1).shape == (2, 4) and x.all(dim=0, keepdim=True).shape == (1, 3, 4)


def test_var_follows_pytorch_on_the_tensor_and_numpy_in_the_function():
    x = nurinet.tensor([1.0, 2.0, 3.0, 4.0])
    assert x.var().item() == pytest.approx(np.var([1, 2, 3, 4], ddof=1))
    assert F.var(x).item() == pytest.approx(np.var([1, 2, 3, 4]))
    assert F.var(x, ddof=1).item() == pytest.approx(x.var().item())
    with pytest.raises(TypeError, match="not both"):
        x.var(unbiased=True, correction=1)


def test_dtype_constants_and_tensor_constructors():
    assert nurinet.float32 == np.float32 and nurinet.long == np.int64 and nurinet.int == np.int32
    assert nurinet.float16 == np.float16 and nurinet.bool == np.bool_ and nurinet.uint8 == np.uint8
    assert nurinet.tensor([1, 2], dtype=nurinet.long).dtype == nurinet.int64
    array = np.arange(3.0)
    shared = nurinet.from_numpy(array)
    array[0] = 9.0
    assert shared[0].item() == 9.0
    assert nurinet.as_tensor(array).array is array and nurinet.as_tensor([1.0]).dtype == nurinet.float32
    assert nurinet.is_tensor(shared) and not nurinet.is_tensor(array)


def test_random_draws():
    perm = nurinet.randperm(10, generator=nurinet.Generator(0))
    assert sorted(perm.tolist()) == list(range(10)) and perm.dtype == np.int64
    draws = nurinet.multinomial(nurinet.tensor([0.0, 1.0, 3.0]), 2, generator=nurinet.Generator(0))
    assert set(draws.tolist()) == {1, 2}
    rows = nurinet.multinomial(nurinet.tensor([[1.0, 0.0], [0.0, 1.0]]), 4, replacement=True)
    np.testing.assert_array_equal(rows.numpy(), [[0] * 4, [1] * 4])
    with pytest.raises(ValueError, match="without replacement"):
        nurinet.multinomial(nurinet.tensor([0.0, 1.0]), 2)


def test_devices_answer_truthfully_without_a_gpu(monkeypatch):
    from nurinet import backend

    monkeypatch.setattr(backend, "cupy_available", lambda: False)
    assert nurinet.cuda.is_available() is False and nurinet.cuda.device_count() == 0
    assert nurinet.accelerator.is_available() is False
    assert nurinet.accelerator.current_accelerator() is None
    device = nurinet.device("cuda" if nurinet.cuda.is_available() else "cpu")
    assert str(device) == "cpu" and nurinet.zeros(2).to(device).device == "cpu"
    assert nurinet.device("cuda", 1) == "cuda:1" and repr(nurinet.device("cpu")) == "device(type='cpu')"
    with pytest.raises(backend.DeviceError):
        nurinet.set_default_device("cuda")
    nurinet.set_default_device("cpu")
    assert nurinet.get_default_device() == "cpu"


def test_inference_mode_records_nothing():
    w = nurinet.ones(2, requires_grad=True)
    with nurinet.inference_mode():
        assert not (w * 2).requires_grad
    with nurinet.inference_mode(False):
        assert (w * 2).requires_grad

    @nurinet.inference_mode()
    def predict(x):
        return x * 2

    assert not predict(w).requires_grad and nurinet.is_grad_enabled()


def test_pytorch_module_places():
    import nurinet.nn.functional as NF
    import nurinet.nn.utils
    from nurinet.utils.data import DataLoader, Dataset, TensorDataset, random_split

    assert NF.relu is F.relu and NF.cross_entropy is F.cross_entropy and nn.functional is NF
    assert nurinet.nn.utils.clip_grad_norm_ is nn.clip_grad_norm_
    assert nurinet.nn.utils.clip_grad_value_ is nn.clip.clip_grad_value_
    assert DataLoader is nurinet.data.DataLoader and Dataset is nurinet.data.Dataset
    parts = random_split(TensorDataset(np.zeros((10, 2))), [7, 3])
    assert [len(p) for p in parts] == [7, 3]


def test_clone_view_as_and_contiguous():
    x = nurinet.randn(2, 3, requires_grad=True)
    y = x.clone()
    assert y.array is not x.array and y.creator is not None
    assert x.view_as(nurinet.zeros(3, 2)).shape == (3, 2)
    assert x.detach().contiguous() is not None
    assert nurinet.zeros(1, 3).expand_as(nurinet.zeros(4, 3)).shape == (4, 3)


def test_new_constructors_take_the_tensors_dtype():
    x = nurinet.zeros(2, dtype=nurinet.float64)
    assert x.new_zeros(2, 3).shape == (2, 3) and x.new_zeros(2).dtype == nurinet.float64
    assert x.new_ones((3,), dtype=nurinet.long).dtype == nurinet.int64
    assert x.new_full((2,), 5.0).tolist() == [5.0, 5.0] and x.new_tensor([1, 2]).dtype == nurinet.float64
    generator = nurinet.Generator(device="cpu").manual_seed(3)
    assert nurinet.randperm(4, generator=generator).shape == (4,)


def test_forward_hooks_see_and_replace():
    layer = nn.Linear(3, 2)
    seen = []
    handle = layer.register_forward_hook(lambda module, args, output: seen.append((module, output.shape)))
    pre = layer.register_forward_pre_hook(lambda module, args: (args[0] * 0,))
    out = layer(nurinet.randn(4, 3))
    np.testing.assert_allclose(out.numpy(), np.broadcast_to(layer.bias.numpy(), (4, 2)))
    assert seen == [(layer, (4, 2))]
    handle.remove()
    pre.remove()
    layer(nurinet.randn(1, 3))
    assert len(seen) == 1
    doubled = layer.register_forward_hook(lambda module, args, output: output * 2)
    x = nurinet.randn(2, 3)
    twice = layer(x)
    doubled.remove()
    np.testing.assert_allclose(twice.numpy(), 2 * layer(x).numpy(), rtol=1e-6)


def test_a_time_first_sequence_under_the_default_layout_fails_early_naming_the_cause():
    rnn = nn.RNN(4, 8)
    with pytest.raises(ValueError, match="batch_first=False"):
        rnn(nurinet.randn(6, 1, 4))
    assert nn.RNN(4, 8, batch_first=True)(nurinet.randn(6, 1, 4))[0].shape == (6, 1, 8)
    assert nn.LSTM(4, 8, batch_first=False)(nurinet.randn(6, 1, 4))[0].shape == (6, 1, 8)
    assert nn.GRU(4, 8)(nurinet.randn(1, 6, 4))[0].shape == (1, 6, 8)


# ----- PyTorch's quickstart, ported ---------------------------------------------------------------
def test_pytorch_quickstart_runs_and_learns(capsys):
    """PyTorch's quickstart (pytorch.org/tutorials/beginner/basics/quickstart_tutorial) with
    ``torch`` replaced by ``nurinet``. FashionMNIST is replaced by the bundled 8x8 digits (so the
    first layer takes 8*8 inputs), the learning rate is raised to 1e-1 for the small dataset, and
    saving is left out; the model, loss, optimizer and the train/test loops are verbatim."""
    from nurinet.data import load_digits

    images, labels = load_digits(flatten=False, normalize=True)
    order = np.random.default_rng(0).permutation(len(images))
    images, labels = images[order], labels[order]
    from nurinet.utils.data import DataLoader, TensorDataset
    training_data = TensorDataset(images[:1400], labels[:1400])
    test_data = TensorDataset(images[1400:], labels[1400:])
    nurinet.manual_seed(0)

    # --- verbatim from here, torch -> nurinet -----------------------------------------------------
    batch_size = 64

    # Create data loaders.
    train_dataloader = DataLoader(training_data, batch_size=batch_size)
    test_dataloader = DataLoader(test_data, batch_size=batch_size)

    for X, y in test_dataloader:
        print(f"Shape of X [N, C, H, W]: {X.shape}")
        print(f"Shape of y: {y.shape} {y.dtype}")
        break

    device = nurinet.accelerator.current_accelerator().type if nurinet.accelerator.is_available() else "cpu"
    print(f"Using {device} device")

    # Define model
    class NeuralNetwork(nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = nn.Flatten()
            self.linear_relu_stack = nn.Sequential(
                nn.Linear(8*8, 512),
                nn.ReLU(),
                nn.Linear(512, 512),
                nn.ReLU(),
                nn.Linear(512, 10)
            )

        def forward(self, x):
            x = self.flatten(x)
            logits = self.linear_relu_stack(x)
            return logits

    model = NeuralNetwork().to(device)
    print(model)

    loss_fn = nn.CrossEntropyLoss()
    optimizer = nurinet.optim.SGD(model.parameters(), lr=1e-1)

    def train(dataloader, model, loss_fn, optimizer):
        size = len(dataloader.dataset)
        model.train()
        for batch, (X, y) in enumerate(dataloader):
            X, y = X.to(device), y.to(device)

            # Compute prediction error
            pred = model(X)
            loss = loss_fn(pred, y)

            # Backpropagation
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

            if batch % 100 == 0:
                loss, current = loss.item(), (batch + 1) * len(X)
                print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")

    def test(dataloader, model, loss_fn):
        size = len(dataloader.dataset)
        num_batches = len(dataloader)
        model.eval()
        test_loss, correct = 0, 0
        with nurinet.no_grad():
            for X, y in dataloader:
                X, y = X.to(device), y.to(device)
                pred = model(X)
                test_loss += loss_fn(pred, y).item()
                correct += (pred.argmax(1) == y).type(nurinet.float).sum().item()
        test_loss /= num_batches
        correct /= size
        print(f"Test Error: \n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
        return correct

    epochs = 5
    for t in range(epochs):
        print(f"Epoch {t+1}\n-------------------------------")
        train(train_dataloader, model, loss_fn, optimizer)
        accuracy = test(test_dataloader, model, loss_fn)
    print("Done!")

    classes = [str(digit) for digit in range(10)]
    model.eval()
    x, y = test_data[0][0], test_data[0][1]
    with nurinet.no_grad():
        x = nurinet.tensor(x[None]).to(device)
        pred = model(x)
        predicted, actual = classes[pred[0].argmax(0)], classes[y]
        print(f'Predicted: "{predicted}", Actual: "{actual}"')
    # --- end of the verbatim part ----------------------------------------------------------------

    assert accuracy > 0.9, capsys.readouterr().out
    assert "Shape of X [N, C, H, W]: (64, 1, 8, 8)" in capsys.readouterr().out
