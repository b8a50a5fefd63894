"""Transfer learning: freezing, head replacement, per-group learning rates."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn, optim
from nurinet.training import Model
from nurinet.training.transfer import (
    freeze,
    param_groups_with_lr,
    replace_head,
    trainable_summary,
    unfreeze,
)


def mlp(seed: int = 0) -> Model:
    nt.manual_seed(seed)
    return Model(nn.Sequential(nn.Linear(4, 8, activation="tanh"), nn.Linear(8, 8, activation="tanh"),
                               nn.Linear(8, 3)))


def test_freeze_by_pattern_and_module() -> None:
    model = mlp()
    names = freeze(model, "network.0.*")
    assert names == ["network.0.weight", "network.0.bias"]
    assert [t for _, _, t in trainable_summary(model)] == [False, False, True, True, True, True]
    freeze(model.network[1])
    assert model.num_parameters(trainable_only=True) == 8 * 3 + 3
    unfreeze(model, ["network.1.weight"])
    assert model.network[1].weight.requires_grad and not model.network[1].bias.requires_grad
    unfreeze(model)
    assert all(p.requires_grad for p in model.parameters())


def test_frozen_parameters_do_not_change_in_training() -> None:
    x, y = nt.data.load_iris()
    model = mlp()
    freeze(model, "network.0.*")
    model.compile("adam", "cross_entropy", lr=0.05)
    before = model.state_dict()
    model.fit(x / 8, y, epochs=2, verbose=0)
    after = model.state_dict()
    np.testing.assert_array_equal(before["network.0.weight"], after["network.0.weight"])
    assert not np.array_equal(before["network.2.weight"], after["network.2.weight"])
    assert model.network[0].weight.grad is None


def test_freeze_errors() -> None:
    model = mlp()
    with pytest.raises(ValueError, match="matches no parameter.*network.0.weight"):
        freeze(model, "features.*")
    with pytest.raises(TypeError, match="expects a Module"):
        freeze([1, 2])


def test_replace_head_keeps_body_keys() -> None:
    model = mlp()
    keys = list(model.state_dict())
    old = replace_head(model, nn.Linear(8, 5))
    assert isinstance(old, nn.Linear) and old.out_features == 3
    assert list(model.state_dict()) == keys
    assert model(nt.tensor(np.zeros((2, 4), np.float32))).shape == (2, 5)
    with pytest.raises(TypeError, match="nn.Sequential"):
        replace_head(Model(nn.Linear(2, 2)), nn.Linear(2, 3))
    with pytest.raises(TypeError, match="must be a Module"):
        replace_head(model, "head")


def test_param_groups_with_lr() -> None:
    model = mlp()
    freeze(model, "network.0.*")
    groups = param_groups_with_lr(model, 0.01, frozen_lr_factor=0.1)
    assert [g["name"] for g in groups] == ["body", "head"]
    assert groups[0]["lr"] == pytest.approx(0.001) and groups[1]["lr"] == 0.01
    assert groups[1]["params"] == [model.network[2].weight, model.network[2].bias]
    assert groups[0]["params"] == [model.network[1].weight, model.network[1].bias]  # frozen left out
    opt = optim.Adam(groups)
    assert [g["lr"] for g in opt.param_groups] == [pytest.approx(0.001), 0.01]
    by_name = param_groups_with_lr(model, 0.01, head="network.[12].*")
    assert [g["name"] for g in by_name] == ["head"]
    with pytest.raises(ValueError, match="base_lr > 0"):
        param_groups_with_lr(model, 0.0)


def test_fine_tuning_step_sizes_follow_groups() -> None:
    """With SGD the update of each parameter is lr * grad, so the group rates are visible."""
    model = mlp()
    x = nt.tensor(np.ones((4, 4), np.float32))
    y = nt.tensor(np.array([0, 1, 2, 0]))
    opt = optim.SGD(param_groups_with_lr(model, 0.1, frozen_lr_factor=0.01))
    loss = nt.functional.cross_entropy(model(x), y)
    loss.backward()
    grads = {n: p.grad.array.copy() for n, p in model.named_parameters()}
    before = model.state_dict()
    opt.step()
    after = model.state_dict()
    for name, rate in [("network.0.weight", 0.001), ("network.2.weight", 0.1)]:
        np.testing.assert_allclose(before[name] - after[name], rate * grads[name], rtol=1e-4, atol=1e-7)


def test_transfer_learning_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "transfer_learning.py"
    spec = importlib.util.spec_from_file_location("transfer_learning_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    results = example.main(["--seeds", "1", "--epochs", "2", "--pretrain-epochs", "1", "--shots", "3"])
    assert set(results) == {"frozen body, new head", "fine-tune (body lr x0.1)", "from scratch"}
    frozen = results["frozen body, new head"][0]
    assert frozen["trainable"] == 64 * 5 + 5 and 0.0 <= frozen["accuracy"] <= 1.0
    assert "from scratch" in capsys.readouterr().out
