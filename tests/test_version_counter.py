"""Version counters: a tensor changed in place between an op's forward and its backward is refused.

One test per in-place route of nurinet's API (``__setitem__``, every optimizer's ``step``, the
``nn.init`` functions, ``load_state_dict``, ``increment_version``), with PyTorch's behaviour on the
same scenario where torch is installed, and the cases that must keep working.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet import nn, optim
from nurinet.autograd import increment_version

# Each test runs with the backward's node loop in C and in Python (conftest.engine_loop).
pytestmark = pytest.mark.usefixtures("engine_loop")

MODIFIED = "modified by an inplace operation"


def _versions(message: str) -> tuple[int, int]:
    """(found, expected) from PyTorch's or nurinet's message."""
    match = re.search(r"is at version (\d+); expected version (\d+) instead", message)
    assert match, message
    return int(match.group(1)), int(match.group(2))


def _torch():
    return pytest.importorskip("torch")


# ----- __setitem__ -----------------------------------------------------------------------------
def test_setitem_on_a_saved_constant_raises_instead_of_a_wrong_gradient() -> None:
    """The issue's case: w.grad was [100, 2, 3] instead of [1, 2, 3]."""
    w = nt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = nt.tensor([1.0, 2.0, 3.0])
    y = (w * x).sum()
    x[0] = 100.0
    with pytest.raises(RuntimeError, match=MODIFIED) as error:
        y.backward()
    message = str(error.value)
    assert "input 1 of Mul" in message
    assert "[float32 tensor of shape (3,)]" in message
    assert _versions(message) == (1, 0)
    assert w.grad is None  # nothing was accumulated


@pytest.mark.torch
def test_setitem_matches_torch() -> None:
    torch = _torch()
    w = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = torch.tensor([1.0, 2.0, 3.0])
    y = (w * x).sum()
    x[0] = 100.0
    with pytest.raises(RuntimeError, match=MODIFIED) as error:
        y.backward()
    assert _versions(str(error.value)) == (1, 0)


def test_setitem_under_no_grad_on_a_parameter_raises() -> None:
    w = nt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = nt.tensor([4.0, 5.0, 6.0], requires_grad=True)
    y = (w * x).sum()
    with nt.no_grad():
        w[1] = 0.0
        w[2] = 0.0
    with pytest.raises(RuntimeError, match=MODIFIED) as error:
        y.backward()
    assert "input 0 of Mul" in str(error.value)
    assert _versions(str(error.value)) == (2, 0)


def test_setitem_on_an_op_output_names_the_output() -> None:
    x = nt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = F.exp(x)
    with nt.no_grad():
        y[0] = 0.0
    with pytest.raises(RuntimeError, match=MODIFIED) as error:
        y.sum().backward()
    assert "output 0 of Exp" in str(error.value)
    assert _versions(str(error.value)) == (1, 0)


@pytest.mark.torch
def test_setitem_on_an_op_output_matches_torch() -> None:
    torch = _torch()
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.exp()
    with torch.no_grad():
        y[0] = 0.0
    with pytest.raises(RuntimeError, match=MODIFIED) as error:
        y.sum().backward()
    assert "output 0 of Exp" in str(error.value)
    assert _versions(str(error.value)) == (1, 0)


def test_setitem_counts_every_write() -> None:
    x = nt.zeros(4)
    for i in range(3):
        x[i] = 1.0
    assert x._version == 3


# ----- optimizers --------------------------------------------------------------------------------
OPTIMIZERS = [
    (optim.SGD, {"lr": 0.5}),
    (optim.SGD, {"lr": 0.5, "momentum": 0.9, "nesterov": True}),
    (optim.Adam, {"lr": 0.1}),
    (optim.Adam, {"lr": 0.1, "amsgrad": True}),
    (optim.AdamW, {"lr": 0.1}),
    (optim.NAdam, {"lr": 0.1}),
    (optim.Adagrad, {"lr": 0.1}),
    (optim.Adadelta, {"lr": 0.1}),
    (optim.RMSprop, {"lr": 0.1, "centered": True, "momentum": 0.5}),
]


@pytest.mark.parametrize(("cls", "kwargs"), OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_step_between_forward_and_backward_raises(cls: type, kwargs: dict) -> None:
    """The classic GAN mistake: the step changes a weight a pending graph has used."""
    w = nt.tensor([1.0, 1.0, 1.0], requires_grad=True)
    x = nt.tensor([1.0, 2.0, 3.0], requires_grad=True)
    opt = cls([w], **kwargs)
    first = (w * x).sum()
    second = (w * x).sum()
    first.backward()
    opt.step()
    assert w._version == 1
    with pytest.raises(RuntimeError, match=MODIFIED) as error:
        second.backward()
    assert "input 0 of Mul" in str(error.value)
    assert _versions(str(error.value)) == (1, 0)
    assert x.grad.tolist() == [1.0, 1.0, 1.0]  # from the first backward only


@pytest.mark.torch
def test_step_between_forward_and_backward_matches_torch() -> None:
    torch = _torch()
    w = torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5)
    first = (w * x).sum()
    second = (w * x).sum()
    first.backward()
    opt.step()
    with pytest.raises(RuntimeError, match=MODIFIED) as error:
        second.backward()
    assert _versions(str(error.value)) == (1, 0)


def test_step_bumps_once_per_parameter_with_a_gradient() -> None:
    a = nt.tensor([1.0, 2.0], requires_grad=True)
    b = nt.tensor([3.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.1}], lr=0.5, momentum=0.9)
    for _ in range(3):
        opt.zero_grad()
        (a * a).sum().backward()  # b gets no gradient: step skips it
        opt.step()
    assert (a._version, b._version) == (3, 0)


def test_native_adam_update_bumps_the_version() -> None:
    """Large float32 parameters go through the threaded or native kernel: the step still counts."""
    w = nt.tensor(np.ones(8192, np.float32), requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    y = (w * w).sum()
    w.grad = nt.tensor(np.ones(8192, np.float32))
    opt.step()
    assert w._version == 1
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


def test_training_loop_with_optimizer_keeps_working() -> None:
    """Forward, backward, step, repeated: every graph is back-propagated before the next step."""
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    opt = optim.Adam(model.parameters(), lr=0.05)
    x = nt.randn(8, 2)
    target = nt.randn(8, 1)
    losses = []
    start = [p._version for p in model.parameters()]
    for _ in range(20):
        opt.zero_grad()
        loss = F.mse_loss(model(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert [p._version - v for p, v in zip(model.parameters(), start)] == [20] * 4


# ----- nn.init -----------------------------------------------------------------------------------
INITIALIZERS = {
    "zeros_": nn.init.zeros_,
    "ones_": nn.init.ones_,
    "constant_": lambda t: nn.init.constant_(t, 0.5),
    "uniform_": nn.init.uniform_,
    "normal_": nn.init.normal_,
    "trunc_normal_": nn.init.trunc_normal_,
    "xavier_uniform_": nn.init.xavier_uniform_,
    "xavier_normal_": nn.init.xavier_normal_,
    "kaiming_uniform_": nn.init.kaiming_uniform_,
    "kaiming_normal_": nn.init.kaiming_normal_,
    "lecun_uniform_": nn.init.lecun_uniform_,
    "lecun_normal_": nn.init.lecun_normal_,
    "orthogonal_": nn.init.orthogonal_,
}


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_init_function_raises_the_version(name: str) -> None:
    w = nn.Parameter(np.ones((3, 2), np.float32))
    x = nt.ones(4, 3, requires_grad=True)
    y = (x @ w).sum()
    INITIALIZERS[name](w)
    assert w._version == 1
    with pytest.raises(RuntimeError, match=MODIFIED) as error:
        y.backward()
    assert re.search(r"which is input 1 of \w+, is at version 1; expected version 0", str(error.value))


@pytest.mark.torch
def test_init_matches_torch() -> None:
    torch = _torch()
    w = torch.nn.Parameter(torch.ones(3, 2))
    x = torch.ones(4, 3, requires_grad=True)
    y = (x @ w).sum()
    torch.nn.init.xavier_uniform_(w)
    with pytest.raises(RuntimeError, match=MODIFIED) as error:
        y.backward()
    assert _versions(str(error.value)) == (1, 0)


# ----- load_state_dict ---------------------------------------------------------------------------
def test_load_state_dict_between_forward_and_backward_raises() -> None:
    layer = nn.Linear(3, 2)
    saved = layer.state_dict()
    before = layer.weight._version, layer.bias._version  # the initialization counted too
    y = layer(nt.ones(4, 3, requires_grad=True)).sum()
    layer.load_state_dict(saved)
    assert (layer.weight._version, layer.bias._version) == (before[0] + 1, before[1] + 1)
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


def test_dtype_conversion_between_forward_and_backward_raises() -> None:
    layer = nn.Linear(3, 2)
    y = layer(nt.ones(4, 3, requires_grad=True)).sum()
    layer.double()  # replaces every parameter's array in place
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


def test_constraint_projection_between_forward_and_backward_raises() -> None:
    from nurinet.nn import regularizers

    layer = nn.Linear(3, 2)
    regularizers.add_constraint(layer, "weight", regularizers.MaxNorm(0.01))
    y = layer(nt.ones(4, 3, requires_grad=True)).sum()
    before = layer.weight._version
    regularizers.apply_constraints(layer)
    assert layer.weight._version == before + 1
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


@pytest.mark.torch
def test_load_state_dict_matches_torch() -> None:
    torch = _torch()
    layer = torch.nn.Linear(3, 2)
    y = layer(torch.ones(4, 3, requires_grad=True)).sum()
    layer.load_state_dict(layer.state_dict())
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


# ----- increment_version, nurinet.grad, retain_graph ---------------------------------------------
def test_increment_version_marks_a_raw_write() -> None:
    w = nt.tensor([1.0, 2.0], requires_grad=True)
    x = nt.tensor([3.0, 4.0])
    y = (w * x).sum()
    x.array[0] = -1.0  # the raw array: not tracked, as PyTorch's .array
    increment_version([x])
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


def test_raw_data_writes_are_not_tracked() -> None:
    """``.array`` is the escape hatch, as in PyTorch: the XOR benchmark's update goes through it."""
    w = nt.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    w.array -= 1.0
    y.backward()
    assert w._version == 0
    assert w.grad.tolist() == [0.0, 2.0]  # computed from the new values: the user's choice


def test_nurinet_grad_checks_versions() -> None:
    w = nt.tensor([1.0, 2.0], requires_grad=True)
    x = nt.tensor([3.0, 4.0])
    y = F.tanh(w * x).sum()
    x[1] = 0.0
    with pytest.raises(RuntimeError, match=MODIFIED):
        nt.grad(y, w)


def test_retained_graph_back_propagates_again_when_nothing_changed() -> None:
    w = nt.tensor([1.0, 2.0], requires_grad=True)
    unrelated = nt.zeros(2)
    y = (w * w).sum()
    y.backward(retain_graph=True)
    unrelated[0] = 5.0  # moves the clock, but no tensor of this graph
    y.backward(retain_graph=True)
    assert w.grad.tolist() == [4.0, 8.0]
    w_opt = optim.SGD([w], lr=0.1)
    w_opt.step()
    with pytest.raises(RuntimeError, match=MODIFIED):
        y.backward()


def test_second_order_gradients_still_work() -> None:
    x = nt.tensor(2.0, dtype="float64", requires_grad=True)
    (g,) = nt.grad(x**3, x, create_graph=True)
    (h,) = nt.grad(g, x)
    assert h.item() == pytest.approx(12.0)


def test_the_check_is_conservative_for_ops_that_save_nothing() -> None:
    """Every input counts, even where the backward does not read it (PyTorch lets ``add`` through).

    See docs/autograd.md, section 13, for why.
    """
    w = nt.tensor([1.0, 2.0], requires_grad=True)
    b = nt.tensor([3.0, 4.0])
    y = (w + b).sum()
    b[0] = 0.0
    with pytest.raises(RuntimeError, match="input 1 of Add"):
        y.backward()


@pytest.mark.torch
def test_torch_lets_add_through() -> None:
    """The one difference the conservative rule makes, pinned so that a change is noticed."""
    torch = _torch()
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([3.0, 4.0])
    y = (w + b).sum()
    b[0] = 0.0
    y.backward()
    assert w.grad.tolist() == [1.0, 1.0]
