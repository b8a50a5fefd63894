"""Learning-rate schedulers: closed forms at every step, saving, errors, and the LR range test."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nurinet as nt
from nurinet import nn, optim
from nurinet.optim.lr_finder import lr_finder, suggest_lr
from nurinet.optim.lr_scheduler import (
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

STEPS = 30


def make_optimizer(lr: float = 0.1, groups: int = 1, **kwargs) -> optim.Optimizer:
    params = [{"params": [nt.Parameter(np.zeros(3, np.float32))], "lr": lr * (i + 1)} for i in range(groups)]
    return optim.SGD(params, lr=lr, **kwargs)


def run(scheduler, steps: int = STEPS) -> list[list[float]]:
    """The lr of every group before each optimizer step, as a training loop sees them."""
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in scheduler.optimizer.param_groups])
        assert seen[-1] == scheduler.get_last_lr()
        scheduler.optimizer.step()
        scheduler.step()
    return seen


def expect(fn, bases=(0.1, 0.2), steps: int = STEPS) -> list[list[float]]:
    return [[fn(base, t) for base in bases] for t in range(steps)]


CLOSED_FORMS = {
    "step": (lambda o: StepLR(o, step_size=7, gamma=0.5), lambda b, t: b * 0.5 ** (t // 7)),
    "multistep": (lambda o: MultiStepLR(o, [5, 12, 12, 20], gamma=0.3),
                  lambda b, t: b * 0.3 ** sum(t >= m for m in (5, 12, 12, 20))),
    "exponential": (lambda o: ExponentialLR(o, gamma=0.9), lambda b, t: b * 0.9**t),
    "cosine": (lambda o: CosineAnnealingLR(o, T_max=10, eta_min=0.01),
               lambda b, t: 0.01 + (b - 0.01) * (1 + math.cos(math.pi * t / 10)) / 2),
    "linear": (lambda o: LinearLR(o, start_factor=0.25, end_factor=1.0, total_iters=8),
               lambda b, t: b * (0.25 + 0.75 * min(t, 8) / 8)),
    "lambda": (lambda o: LambdaLR(o, lambda t: 1.0 / (1 + t)), lambda b, t: b / (1 + t)),
}


@pytest.mark.parametrize("name", sorted(CLOSED_FORMS))
def test_scheduler_matches_closed_form_at_every_step(name: str) -> None:
    build, formula = CLOSED_FORMS[name]
    sched = build(make_optimizer(groups=2))
    assert sched.base_lrs == [0.1, 0.2]
    assert all("initial_lr" in g for g in sched.optimizer.param_groups)
    np.testing.assert_allclose(run(sched), expect(formula), rtol=1e-12, atol=1e-15)
    assert sched.last_epoch == STEPS


def cawr_reference(base: float, t: int, t0: int, mult: int, eta_min: float) -> float:
    period, start = t0, 0
    while t >= start + period:
        start += period
        period *= mult
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * (t - start) / period)) / 2


@pytest.mark.parametrize("mult", [1, 2])
def test_warm_restarts_restart_and_grow(mult: int) -> None:
    sched = CosineAnnealingWarmRestarts(make_optimizer(groups=2), T_0=4, T_mult=mult, eta_min=0.001)
    got = run(sched)
    np.testing.assert_allclose(got, expect(lambda b, t: cawr_reference(b, t, 4, mult, 0.001)), rtol=1e-12)
    assert got[4][0] == pytest.approx(0.1)  # restart after T_0 epochs


def test_warm_restarts_jump_to_a_fractional_epoch() -> None:
    sched = CosineAnnealingWarmRestarts(make_optimizer(), T_0=4, T_mult=2)
    sched.step(5.5)  # second cycle (epochs 4..12), 1.5 into a period of 8
    assert sched.get_last_lr()[0] == pytest.approx(0.05 * (1 + math.cos(math.pi * 1.5 / 8)))
    assert sched.last_epoch == 5


def test_sequential_warmup_then_cosine() -> None:
    opt = make_optimizer(groups=2)
    warm = LinearLR(opt, start_factor=0.1, total_iters=5)
    decay = CosineAnnealingLR(opt, T_max=20)
    sched = SequentialLR(opt, [warm, decay], milestones=[5])

    def formula(b: float, t: int) -> float:
        if t < 5:
            return b * (0.1 + 0.9 * t / 5)
        return b * (1 + math.cos(math.pi * (t - 5) / 20)) / 2

    np.testing.assert_allclose(run(sched), expect(formula), rtol=1e-12, atol=1e-15)


def one_cycle_reference(t: int, total: int, peak: float, pct: float, three: bool) -> float:
    initial, low = peak / 25, peak / 25 / 1e4

    def cos(a: float, b: float, p: float) -> float:
        return b + (a - b) / 2 * (math.cos(math.pi * p) + 1)

    up = pct * total - 1
    if t <= up:
        return cos(initial, peak, t / up)
    if three:
        down = 2 * pct * total - 2
        if t <= down:
            return cos(peak, initial, (t - up) / (down - up))
        return cos(initial, low, (t - down) / (total - 1 - down))
    return cos(peak, low, (t - up) / (total - 1 - up))


@pytest.mark.parametrize("three_phase", [False, True])
def test_one_cycle_matches_closed_form_and_cycles_momentum(three_phase: bool) -> None:
    opt = make_optimizer(momentum=0.9)
    sched = OneCycleLR(opt, max_lr=1.0, total_steps=STEPS, three_phase=three_phase)
    got, momenta = [], []
    for _ in range(STEPS):
        got.append(opt.param_groups[0]["lr"])
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        if sched.last_epoch < STEPS - 1:
            sched.step()
    want = [one_cycle_reference(t, STEPS, 1.0, 0.3, three_phase) for t in range(STEPS)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert momenta[0] == pytest.approx(0.95) and min(momenta) == pytest.approx(0.85, abs=1e-3)
    assert got[-1] == pytest.approx(1.0 / 25 / 1e4)


def test_one_cycle_cycles_adam_beta1_and_refuses_to_overrun() -> None:
    opt = optim.Adam([nt.Parameter(np.zeros(2, np.float32))], lr=0.1)
    sched = OneCycleLR(opt, max_lr=0.5, epochs=2, steps_per_epoch=3)
    assert opt.param_groups[0]["betas"] == (0.95, 0.999)
    for _ in range(5):
        sched.step()
    with pytest.raises(ValueError, match="total_steps=6"):
        sched.step()
        sched.step()


def test_reduce_on_plateau_patience_cooldown_and_min_lr() -> None:
    opt = make_optimizer(lr=1.0)
    sched = ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    lrs = []
    for loss in losses:
        sched.step(loss)
        lrs.append(sched.get_last_lr()[0])
    # reduce after 3 bad epochs (> patience), then 1 cooldown epoch, then 3 more bad epochs
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25]
    for _ in range(10):
        sched.step(0.9)
    assert sched.get_last_lr()[0] == 0.2


def test_reduce_on_plateau_threshold_modes() -> None:
    rel = ReduceLROnPlateau(make_optimizer(), mode="max", threshold=0.1)
    assert rel.is_better(1.11, 1.0) and not rel.is_better(1.09, 1.0)
    absolute = ReduceLROnPlateau(make_optimizer(), threshold=0.1, threshold_mode="abs")
    assert absolute.is_better(0.89, 1.0) and not absolute.is_better(0.91, 1.0)


def test_state_dict_round_trip_resumes_exactly() -> None:
    opt = make_optimizer(groups=2)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    run(sched, 4)
    state, opt_state = sched.state_dict(), opt.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 4
    rest = run(sched, 6)
    opt2 = make_optimizer(groups=2)
    opt2.load_state_dict(opt_state)
    sched2 = StepLR(opt2, step_size=99, gamma=0.9, last_epoch=3)  # resuming needs initial_lr
    sched2.load_state_dict(state)
    opt2.load_state_dict(opt_state)
    assert run(sched2, 6) == rest


def test_sequential_and_lambda_state_dicts() -> None:
    opt = make_optimizer()
    seq = SequentialLR(opt, [LinearLR(opt, total_iters=2), ExponentialLR(opt, 0.5)], milestones=[2])
    run(seq, 5)
    state = seq.state_dict()
    assert len(state["_schedulers"]) == 2
    opt2 = make_optimizer()
    seq2 = SequentialLR(opt2, [LinearLR(opt2, total_iters=2), ExponentialLR(opt2, 0.5)], milestones=[2])
    seq2.load_state_dict(state)
    assert seq2.last_epoch == 5
    lam = LambdaLR(make_optimizer(), lambda t: 0.5)
    assert "lr_lambdas" not in lam.state_dict()


def test_resuming_without_initial_lr_is_an_error() -> None:
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(make_optimizer(), step_size=2, last_epoch=5)
    with pytest.raises(KeyError, match=r"OneCycleLR\(last_epoch=3\): param_groups\[0\]"):
        OneCycleLR(make_optimizer(momentum=0.9), max_lr=1.0, total_steps=10, last_epoch=3)


@pytest.mark.parametrize("build, match", [
    (lambda o: StepLR(o, step_size=0), "step_size"),
    (lambda o: CosineAnnealingLR(o, T_max=0), "T_max"),
    (lambda o: CosineAnnealingWarmRestarts(o, T_0=0), "T_0"),
    (lambda o: CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0), "T_mult"),
    (lambda o: LinearLR(o, start_factor=0.0), "start_factor"),
    (lambda o: LinearLR(o, end_factor=2.0), "end_factor"),
    (lambda o: LinearLR(o, total_iters=0), "total_iters"),
    (lambda o: LambdaLR(o, [lambda t: 1.0, lambda t: 2.0]), "one per group"),
    (lambda o: OneCycleLR(o, max_lr=1.0), "total_steps"),
    (lambda o: OneCycleLR(o, max_lr=1.0, total_steps=10, anneal_strategy="exp"), "anneal_strategy"),
    (lambda o: OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5), "pct_start"),
    (lambda o: ReduceLROnPlateau(o, factor=1.0), "factor"),
    (lambda o: ReduceLROnPlateau(o, mode="best"), "mode"),
    (lambda o: ReduceLROnPlateau(o, threshold_mode="pct"), "threshold_mode"),
    (lambda o: SequentialLR(o, [StepLR(o, 2)], milestones=[3]), "milestone"),
])
def test_bad_arguments_raise_clear_errors(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build(make_optimizer())


def test_type_errors() -> None:
    with pytest.raises(TypeError, match="Optimizer"):
        StepLR("sgd", step_size=2)
    with pytest.raises(TypeError, match="function of the epoch"):
        LambdaLR(make_optimizer(), 0.5)
    opt, other = make_optimizer(), make_optimizer()
    with pytest.raises(ValueError, match="another optimizer"):
        SequentialLR(opt, [StepLR(other, 2)], milestones=[])
    with pytest.raises(TypeError, match="ReduceLROnPlateau"):
        SequentialLR(opt, [ReduceLROnPlateau(opt)], milestones=[])
    adagrad = optim.Adagrad([nt.Parameter(np.zeros(2, np.float32))])
    with pytest.raises(ValueError, match="cycle_momentum"):
        OneCycleLR(adagrad, max_lr=1.0, total_steps=5)


def regression_data(n: int = 256) -> tuple[list, nn.Module]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0], np.float32))[:, None]
    batches = [(nt.tensor(x[i:i + 128]), nt.tensor(y[i:i + 128])) for i in range(0, n, 128)]
    nt.manual_seed(0)
    return batches, nn.Linear(4, 1)


def test_lr_finder_sweeps_suggests_and_restores_everything() -> None:
    batches, model = regression_data()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model(batches[0][0]).sum().backward()
    opt.step()  # give the optimizer momentum state to restore
    weights, opt_state = model.state_dict(), opt.state_dict()
    lrs, _, suggested = lr_finder(model, nn.MSELoss(), opt, batches, start_lr=1e-4, end_lr=10.0,
                                       num_steps=60)
    assert lrs[0] == pytest.approx(1e-4) and np.all(np.diff(np.log(lrs)) > 0)
    assert len(lrs) < 60  # the loss blew up at the high rates and the sweep stopped
    assert 1e-3 < suggested < 1.0
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, weights[key])
    restored = opt.state_dict()
    assert restored["param_groups"][0]["lr"] == 0.01
    for pos, state in opt_state["state"].items():
        np.testing.assert_array_equal(restored["state"][pos]["momentum_buffer"], state["momentum_buffer"])


def test_suggest_lr_is_the_steepest_descent() -> None:
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert suggest_lr(lrs, [1.0, 0.99, 0.5, 0.45, 0.44]) in (1e-3, 1e-2)
    assert suggest_lr(lrs, [1.0, 1.0, 1.0, 0.9, 0.2]) == 1.0
    many = list(np.logspace(-4, 0, 20))
    wobble = [3.0, 1.0] + [2.0] * 13 + [1.0, 0.5, 0.45, 0.45, 0.45]
    assert suggest_lr(many, wobble) == pytest.approx(many[15])  # the settling wobble is skipped


def test_lr_finder_errors() -> None:
    batches, model = regression_data()
    opt = optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        lr_finder(model, nn.MSELoss(), opt, batches, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ValueError, match="num_steps >= 3"):
        lr_finder(model, nn.MSELoss(), opt, batches, num_steps=2)
    with pytest.raises(ValueError, match="no batches"):
        lr_finder(model, nn.MSELoss(), opt, [], num_steps=5)
