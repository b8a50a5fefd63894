"""Every scheduler's learning rate at every step equals PyTorch's (skipped without torch)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import nurinet as nt
from nurinet import optim
from nurinet.optim import lr_scheduler as ours

pytestmark = pytest.mark.torch
STEPS = 30


def pair(kind: str = "sgd"):
    torch = pytest.importorskip("torch")
    groups = [0.1, 0.25]
    if kind == "adam":
        mine = optim.Adam([{"params": [nt.Parameter(np.zeros(2, np.float32))], "lr": lr} for lr in groups])
        theirs = torch.optim.Adam([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in groups])
    else:
        mine = optim.SGD([{"params": [nt.Parameter(np.zeros(2, np.float32))], "lr": lr} for lr in groups],
                         momentum=0.9)
        theirs = torch.optim.SGD([{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in groups],
                                 momentum=0.9)
    return torch, mine, theirs


def trace(optimizer, scheduler, steps: int = STEPS, key: str = "lr"):
    out = []
    for _ in range(steps):
        out.append([g[key][0] if key == "betas" else g[key] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    return np.array(out, np.float64)


CASES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=4, gamma=0.7),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[3, 9, 9, 20], gamma=0.5),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.93),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=12, eta_min=0.005),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=1e-3),
    "CosineAnnealingWarmRestarts-1": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5),
    "LinearLR": lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=10),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda t: 0.95**t + 0.01 * (t % 3)),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=STEPS + 1),
    "OneCycleLR-3": lambda m, o: m.OneCycleLR(o, max_lr=1.0, total_steps=STEPS + 1, three_phase=True,
                                              anneal_strategy="linear", pct_start=0.25),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_scheduler_matches_pytorch(name: str) -> None:
    torch, mine, theirs = pair()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = trace(theirs, CASES[name](torch.optim.lr_scheduler, theirs))
    got = trace(mine, CASES[name](ours, mine))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)
    if name.startswith("OneCycle"):
        np.testing.assert_allclose([g["momentum"] for g in mine.param_groups],
                                   [g["momentum"] for g in theirs.param_groups], rtol=1e-10)


def test_one_cycle_beta1_matches_pytorch() -> None:
    torch, mine, theirs = pair("adam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = trace(theirs, torch.optim.lr_scheduler.OneCycleLR(theirs, 0.5, total_steps=STEPS + 1),
                         key="betas")
    got = trace(mine, ours.OneCycleLR(mine, 0.5, total_steps=STEPS + 1), key="betas")
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_sequential_matches_pytorch() -> None:
    torch, mine, theirs = pair()

    def build(m, o):
        return m.SequentialLR(o, [m.LinearLR(o, start_factor=0.1, total_iters=4),
                                  m.ExponentialLR(o, gamma=0.9),
                                  m.CosineAnnealingLR(o, T_max=8)], milestones=[4, 15])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = trace(theirs, build(torch.optim.lr_scheduler, theirs))
    np.testing.assert_allclose(trace(mine, build(ours, mine)), expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("kwargs", [
    {"factor": 0.5, "patience": 2},
    {"mode": "max", "factor": 0.3, "patience": 1, "cooldown": 2, "threshold": 0.05},
    {"factor": 0.5, "patience": 0, "threshold_mode": "abs", "threshold": 0.01, "min_lr": [0.01, 0.05]},
])
def test_reduce_on_plateau_matches_pytorch(kwargs: dict) -> None:
    torch, mine, theirs = pair()
    rng = np.random.default_rng(1)
    metrics = np.cumsum(rng.normal(0.0, 0.1, STEPS)) + 1.0
    sched_t = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **kwargs)
    sched_m = ours.ReduceLROnPlateau(mine, **kwargs)
    for value in metrics:
        sched_t.step(float(value))
        sched_m.step(float(value))
        assert sched_m.get_last_lr() == pytest.approx(sched_t.get_last_lr(), rel=1e-12)
