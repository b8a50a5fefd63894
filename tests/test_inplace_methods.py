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


# ----- augmented assignment: x += y, as in PyTorch -------------------------------------------------
def test_augmented_assignment_updates_parameters_in_place_under_no_grad():
    params = [nt.tensor([1.0, 2.0], requires_grad=True), nt.tensor([3.0], requires_grad=True)]
    for p in params:
        p.grad = nt.ones_like(p)
    versions = [p._version for p in params]
    with nt.no_grad():
        for p in params:  # the loop variable is rebound only if += is out of place
            p -= 0.5 * p.grad
            p *= 2.0
            p /= 4.0
            p += 1.0
    np.testing.assert_allclose(params[0].numpy(), [1.25, 1.75])
    np.testing.assert_allclose(params[1].numpy(), [2.25])
    assert all(p.requires_grad and p.creator is None for p in params)
    assert [p._version for p in params] == [v + 4 for v in versions]


def test_augmented_assignment_on_a_leaf_that_requires_grad_is_refused():
    p = nt.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"x -= \.\.\. on a leaf tensor that requires a gradient.*no_grad"):
        p -= 1.0


def test_augmented_assignment_in_a_recorded_graph_is_out_of_place_with_gradients():
    x = nt.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    alias = y
    y += x  # nurinet's choice: a new node (gradient 3), the alias keeps the old values
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 3.0])
    np.testing.assert_allclose(alias.numpy(), [2.0, 4.0])
    total = nt.zeros(2)
    total += x  # an operand requires a gradient: recorded, out of place
    assert total.requires_grad and total.creator is not None


def test_augmented_assignment_outside_the_graph_changes_every_alias_and_keeps_dtype():
    t = nt.tensor([1, 2])
    alias = t
    t += 1
    assert alias is t and t.tolist() == [2, 3]
    with pytest.raises(TypeError, match="must keep the tensor's shape and dtype"):
        t += 1.5


def test_augmented_assignment_matches_pytorch_sgd_loop(torch):
    rng = np.random.default_rng(1)
    w0, x = rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    ours, theirs = nt.tensor(w0.copy(), requires_grad=True), torch.tensor(w0.copy(), requires_grad=True)
    for _ in range(3):
        for p, lib in ((ours, nt), (theirs, torch)):
            p.grad = None
            (lib.tensor(x) @ p).tanh().sum().backward()
            with lib.no_grad():
                p -= 0.1 * p.grad
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)
