"""PyTorch's in-place Tensor methods (nurinet/functional/_inplace.py): values, versions, the autograd rules."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt


def test_values_and_chaining_match_numpy() -> None:
    a = np.array([[1.0, -2.0], [3.0, 4.0]], np.float32)
    x = nt.tensor(a.copy())
    out = x.add_(nt.tensor([1.0, 1.0]), alpha=2).sub_(0.5).mul_(3.0).div_(2.0).clamp_(min=0.0, max=8.0)
    assert out is x
    expected = np.clip(((a + 2.0 * 1.0) - 0.5) * 3.0 / 2.0, 0.0, 8.0)
    np.testing.assert_allclose(x.array, expected, rtol=1e-6)
    assert x.dtype == nt.float32 and x._version == 5


def test_zero_fill_copy() -> None:
    x = nt.ones(2, 3)
    assert x.zero_() is x and not x.array.any()
    x.fill_(nt.tensor(2.5))
    assert (x.array == 2.5).all()
    x.copy_(np.arange(3))  # broadcast over the rows, cast to float32
    np.testing.assert_array_equal(x.array, [[0, 1, 2], [0, 1, 2]])
    assert x.dtype == nt.float32


def test_a_graph_that_used_the_old_values_refuses_to_back_propagate() -> None:
    w = nt.tensor([1.0, 2.0], requires_grad=True)
    x = nt.tensor([3.0, 4.0])
    loss = (w * x).sum()
    x.mul_(2.0)  # x was saved by the product
    with pytest.raises(RuntimeError, match="modified by an inplace operation|changed in place|version"):
        loss.backward()


def test_a_tensor_that_requires_grad_changes_only_under_no_grad() -> None:
    p = nt.nn.Linear(2, 2).weight
    with pytest.raises(RuntimeError, match="no_grad"):
        p.add_(1.0)
    before = p.array.copy()
    with nt.no_grad():
        p.sub_(nt.ones_like(p), alpha=0.1)  # a hand-written SGD step
    np.testing.assert_allclose(p.array, before - 0.1, rtol=1e-6)
    with pytest.raises(RuntimeError, match="operand requires a gradient"):
        nt.zeros(2, 2).add_(p)


def test_bad_operands_get_clear_errors() -> None:
    with pytest.raises(TypeError, match=r"add_ on a tensor of shape \(2,\) and dtype"):
        nt.tensor([1, 2]).add_(0.5)  # an int tensor cannot hold the float result
    with pytest.raises(ValueError, match=r"mul_ on a tensor of shape \(2,\)"):
        nt.ones(2).mul_(np.ones(3))
    with pytest.raises(ValueError, match="min, max or both"):
        nt.ones(2).clamp_()


@pytest.mark.torch
def test_the_same_as_pytorch_where_installed() -> None:
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal(4).astype(np.float32)
    ours, theirs = nt.tensor(a.copy()), torch.tensor(a.copy())
    ours.add_(nt.tensor(b), alpha=-0.3).mul_(1.5).clamp_(-0.5, 0.7)
    theirs.add_(torch.tensor(b), alpha=-0.3).mul_(1.5).clamp_(-0.5, 0.7)
    np.testing.assert_allclose(ours.array, theirs.numpy(), rtol=1e-6, atol=1e-7)
