"""``Tensor.data`` means what it means in PyTorch; ``Tensor.array`` is the raw array."""

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn


def test_data_is_a_tensor_sharing_the_array_outside_the_graph():
    p = nn.Parameter(np.arange(6, dtype=np.float32).reshape(2, 3))
    d = p.data
    assert isinstance(d, nt.Tensor) and not isinstance(d, nn.Parameter)
    assert not d.requires_grad and d.creator is None
    assert d.array is p.array and np.shares_memory(d.numpy(), p.numpy())
    assert (p * 2).data.creator is None


def test_writes_through_data_change_the_tensor_without_a_version_bump():
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    p.grad = nt.tensor(np.full(3, 2.0, dtype=np.float32))
    version = p._version
    p.data.add_(p.grad.data, alpha=-0.5)
    np.testing.assert_array_equal(p.numpy(), [0.0, 0.0, 0.0])
    p.data[1] = 5.0
    p.data -= 1.0
    np.testing.assert_array_equal(p.numpy(), [-1.0, 4.0, -1.0])
    assert p.dtype == np.float32 and p.requires_grad
    assert p._version == version  # as in PyTorch, changes through .data are not tracked


def test_assigning_data_replaces_the_array():
    t = nt.tensor([1.0, 2.0])
    t.data = nt.tensor([[3.0, 4.0, 5.0]])
    assert t.shape == (1, 3)
    t.data = np.zeros(2, dtype=np.float64)
    assert t.dtype == np.float64 and t.shape == (2,)


def test_data_methods_have_pytorch_meanings():
    x = nt.tensor([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(x.data.transpose(0, 1).numpy(), [[1.0, 3.0], [2.0, 4.0]])
    values, indices = x.data.max(1)
    np.testing.assert_array_equal(values.numpy(), [2.0, 4.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 1])
    assert x.data.size(0) == 2


def test_a_zero_dim_tensor_formats_as_its_number():
    loss = nt.tensor(1.23456)
    assert f"{loss:.3f}" == "1.235"
    assert f"{loss.data:.2f}" == "1.23"
    assert "tensor" in f"{nt.tensor([1.0, 2.0])}"
    with pytest.raises(TypeError):
        f"{nt.tensor([1.0, 2.0]):.2f}"


def test_manual_sgd_through_data_matches_pytorch(torch):
    rng = np.random.default_rng(0)
    w0, x, y = (rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (5, 4), (5, 3)))
    ours = nn.Parameter(w0.copy())
    theirs = torch.nn.Parameter(torch.tensor(w0.copy()))
    for _ in range(3):
        for w, lib in ((ours, nt), (theirs, torch)):
            w.grad = None
            loss = ((lib.tensor(x) @ w.t() - lib.tensor(y)) ** 2).mean()
            loss.backward()
            w.data.add_(w.grad.data, alpha=-0.1)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
