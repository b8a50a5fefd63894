"""Tests for nurinet.optim against plain NumPy transcriptions of the published updates.

Each reference below is written from the algorithm's paper / textbook form in
float64 (bias corrections as m_hat, v_hat, etc.), independently of the
in-place code in nurinet/optim.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import nurinet
from nurinet import Parameter, Tensor, backend
from nurinet.optim import (
    LBFGS,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    AdamW,
    ConjugateGradient,
    HessianFree,
    LineGradientDescent,
    NAdam,
    Optimizer,
    RMSprop,
    get_optimizer,
)

STEPS = 20
SHAPES = [(4, 3), (5,)]


# ----- reference updates: one parameter, float64, state in a dict ---------------------------
def _sign_and_l2(p, g, weight_decay, maximize):
    g = -g if maximize else g
    return g + weight_decay * p


def ref_sgd(p, g, s, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
            maximize=False):
    g = _sign_and_l2(p, g, weight_decay, maximize)
    if momentum:
        s["b"] = g.copy() if "b" not in s else momentum * s["b"] + (1 - dampening) * g
        g = g + momentum * s["b"] if nesterov else s["b"]
    return p - lr * g


def ref_adagrad(p, g, s, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                eps=1e-10, maximize=False):
    s["t"] = s.get("t", 0) + 1
    g = _sign_and_l2(p, g, weight_decay, maximize)
    s["G"] = s.get("G", np.full_like(p, initial_accumulator_value)) + g**2
    eta = lr / (1 + (s["t"] - 1) * lr_decay)
    return p - eta * g / (np.sqrt(s["G"]) + eps)


def ref_adadelta(p, g, s, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    g = _sign_and_l2(p, g, weight_decay, maximize)
    s["Eg2"] = rho * s.get("Eg2", 0.0) + (1 - rho) * g**2
    rms_dx = np.sqrt(s.get("Edx2", 0.0) + eps)
    dx = rms_dx / np.sqrt(s["Eg2"] + eps) * g
    s["Edx2"] = rho * s.get("Edx2", 0.0) + (1 - rho) * dx**2
    return p - lr * dx


def ref_rmsprop(p, g, s, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                centered=False, maximize=False):
    g = _sign_and_l2(p, g, weight_decay, maximize)
    s["v"] = alpha * s.get("v", 0.0) + (1 - alpha) * g**2
    var = s["v"]
    if centered:
        s["m"] = alpha * s.get("m", 0.0) + (1 - alpha) * g
        var = var - s["m"] ** 2
    update = g / (np.sqrt(var) + eps)
    if momentum > 0:
        s["b"] = momentum * s.get("b", 0.0) + update
        update = s["b"]
    return p - lr * update


def _adam_moments(s, g, b1, b2):
    s["t"] = s.get("t", 0) + 1
    s["m"] = b1 * s.get("m", 0.0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0.0) + (1 - b2) * g**2
    return s["m"] / (1 - b1 ** s["t"])


def _adam_vhat(s, b2, amsgrad):
    v = s["v"]
    if amsgrad:
        s["vmax"] = np.maximum(s.get("vmax", 0.0), v)
        v = s["vmax"]
    return v / (1 - b2 ** s["t"])


def ref_adam(p, g, s, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
             maximize=False):
    g = _sign_and_l2(p, g, weight_decay, maximize)
    m_hat = _adam_moments(s, g, *betas)
    return p - lr * m_hat / (np.sqrt(_adam_vhat(s, betas[1], amsgrad)) + eps)


def ref_adamw(p, g, s, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False,
              maximize=False):
    g = -g if maximize else g
    p = p - lr * weight_decay * p
    m_hat = _adam_moments(s, g, *betas)
    return p - lr * m_hat / (np.sqrt(_adam_vhat(s, betas[1], amsgrad)) + eps)


def ref_nadam(p, g, s, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              momentum_decay=4e-3, maximize=False):
    b1, b2 = betas
    g = _sign_and_l2(p, g, weight_decay, maximize)
    t = s.get("t", 0) + 1
    mu = [b1 * (1 - 0.5 * 0.96 ** (k * momentum_decay)) for k in range(1, t + 2)]
    prod_t = np.prod(mu[:t])
    m_hat_part = _adam_moments(s, g, b1, b2) * (1 - b1**t)  # the raw m
    v_hat = s["v"] / (1 - b2**t)
    denom = np.sqrt(v_hat) + eps
    update = (1 - mu[t - 1]) / (1 - prod_t) * g + mu[t] / (1 - prod_t * mu[t]) * m_hat_part
    return p - lr * update / denom


CASES = [
    (SGD, ref_sgd, {}),
    (SGD, ref_sgd, {"lr": 0.1}),
    (SGD, ref_sgd, {"lr": 0.05, "momentum": 0.9}),
    (SGD, ref_sgd, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    (SGD, ref_sgd, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    (SGD, ref_sgd, {"lr": 0.05, "weight_decay": 0.1}),
    (SGD, ref_sgd, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (SGD, ref_sgd, {"lr": 0.05, "momentum": 0.8, "dampening": 0.1, "weight_decay": 0.05,
                    "maximize": True}),
    (Adagrad, ref_adagrad, {}),
    (Adagrad, ref_adagrad, {"lr": 0.1, "lr_decay": 0.05}),
    (Adagrad, ref_adagrad, {"weight_decay": 0.1, "initial_accumulator_value": 0.5, "eps": 0.1}),
    (Adagrad, ref_adagrad, {"lr": 0.05, "maximize": True}),
    (Adadelta, ref_adadelta, {}),
    (Adadelta, ref_adadelta, {"lr": 0.5, "rho": 0.8, "weight_decay": 0.1}),
    (Adadelta, ref_adadelta, {"eps": 1e-3, "maximize": True}),
    (RMSprop, ref_rmsprop, {}),
    (RMSprop, ref_rmsprop, {"centered": True}),
    (RMSprop, ref_rmsprop, {"momentum": 0.9}),
    (RMSprop, ref_rmsprop, {"centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    (RMSprop, ref_rmsprop, {"alpha": 0.9, "eps": 1e-4, "maximize": True}),
    (Adam, ref_adam, {}),
    (Adam, ref_adam, {"lr": 0.01, "amsgrad": True}),
    (Adam, ref_adam, {"lr": 0.01, "weight_decay": 0.1}),
    (Adam, ref_adam, {"lr": 0.01, "eps": 0.1}),
    (Adam, ref_adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "amsgrad": True,
                      "weight_decay": 0.05, "maximize": True}),
    (AdamW, ref_adamw, {}),
    (AdamW, ref_adamw, {"lr": 0.01, "weight_decay": 0.1}),
    (AdamW, ref_adamw, {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True, "eps": 0.1}),
    (AdamW, ref_adamw, {"lr": 0.01, "weight_decay": 0.0, "maximize": True}),
    (NAdam, ref_nadam, {}),
    (NAdam, ref_nadam, {"lr": 0.01, "weight_decay": 0.1, "eps": 0.1}),
    (NAdam, ref_nadam, {"lr": 0.01, "momentum_decay": 1e-2, "betas": (0.85, 0.99),
                        "maximize": True}),
]
CASE_IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
            for cls, _, kw in CASES]


class Problem:
    """A small quadratic with noisy gradients: g = curvature * p + noise_k at step k."""

    def __init__(self, seed: int = 0, dtype=np.float64) -> None:
        rng = np.random.default_rng(seed)
        self.init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        self.curvature = [rng.uniform(0.5, 2.0, s).astype(dtype) for s in SHAPES]
        self.noise = [[rng.standard_normal(s).astype(dtype) * 0.5 for s in SHAPES]
                      for _ in range(STEPS)]

    def grad(self, k: int, i: int, p: np.ndarray) -> np.ndarray:
        return self.curvature[i] * p + self.noise[k][i]

    def params(self) -> list[Parameter]:
        return [Parameter(a.copy()) for a in self.init]


def run(opt: Optimizer, params: list[Parameter], problem: Problem, steps: range) -> None:
    for k in steps:
        for i, p in enumerate(params):
            p.grad = Tensor(problem.grad(k, i, p.array))
        opt.step()


def run_reference(ref, kwargs: dict, problem: Problem) -> list[np.ndarray]:
    params = [a.copy() for a in problem.init]
    states: list[dict] = [{} for _ in params]
    for k in range(STEPS):
        params = [ref(p, problem.grad(k, i, p), states[i], **kwargs)
                  for i, p in enumerate(params)]
    return params


@pytest.mark.parametrize(("cls", "ref", "kwargs"), CASES, ids=CASE_IDS)
def test_matches_reference(cls, ref, kwargs) -> None:
    problem = Problem()
    params = problem.params()
    run(cls(params, **kwargs), params, problem, range(STEPS))
    for got, want, start in zip(params, run_reference(ref, kwargs, problem), problem.init):
        assert not np.allclose(got.array, start)  # the optimizer moved the parameters
        np.testing.assert_allclose(got.array, want, rtol=1e-6, atol=1e-12)


def test_param_groups_with_their_own_hyperparameters() -> None:
    problem = Problem(1)
    a, b = problem.params()
    opt = SGD([{"params": [a], "lr": 0.1}, {"params": [b], "momentum": 0.5}], lr=0.01)
    assert opt.param_groups[0]["momentum"] == 0.0 and opt.param_groups[1]["lr"] == 0.01
    run(opt, [a, b], problem, range(STEPS))
    want_a = run_reference(ref_sgd, {"lr": 0.1}, problem)[0]
    want_b = run_reference(ref_sgd, {"lr": 0.01, "momentum": 0.5}, problem)[1]
    np.testing.assert_allclose(a.array, want_a, rtol=1e-6)
    np.testing.assert_allclose(b.array, want_b, rtol=1e-6)


def test_add_param_group_fills_defaults_and_steps_the_new_group() -> None:
    problem = Problem(2)
    a, b = problem.params()
    opt = Adam([a], lr=0.01)
    opt.add_param_group({"params": b, "lr": 0.05})
    assert opt.param_groups[1]["betas"] == (0.9, 0.999) and opt.param_groups[1]["lr"] == 0.05
    run(opt, [a, b], problem, range(STEPS))
    np.testing.assert_allclose(b.array, run_reference(ref_adam, {"lr": 0.05}, problem)[1], rtol=1e-6)
    assert set(opt.state) == {(0, 0), (1, 0)}


# ----- state: lazy, keyed by position, saved and restored exactly ------------------------------
STATEFUL = [
    (SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (Adagrad, {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    (Adadelta, {"rho": 0.8}),
    (RMSprop, {"centered": True, "momentum": 0.5}),
    (Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}),
    (AdamW, {"lr": 0.01, "amsgrad": True}),
    (NAdam, {"lr": 0.01}),
]


@pytest.mark.parametrize(("cls", "kwargs"), STATEFUL, ids=[c.__name__ for c, _ in STATEFUL])
def test_state_dict_round_trip_continues_bit_identically(cls, kwargs) -> None:
    problem = Problem(3)
    straight = problem.params()
    run(cls(straight, **kwargs), straight, problem, range(STEPS))

    first = problem.params()
    opt = cls(first, **kwargs)
    run(opt, first, problem, range(STEPS // 2))
    saved = pickle.loads(pickle.dumps(opt.state_dict()))  # plain data survives pickling
    for values in opt.state.values():  # the saved copy must not alias the live state
        for v in values.values():
            if isinstance(v, np.ndarray):
                v += 1.0

    resumed = [Parameter(p.array.copy()) for p in first]
    fresh = cls(resumed, lr=123.0)  # the saved hyperparameters replace these
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["lr"] == kwargs.get("lr", cls([Parameter(np.ones(1))]).defaults["lr"])
    run(fresh, resumed, problem, range(STEPS // 2, STEPS))
    for got, want in zip(resumed, straight):
        np.testing.assert_array_equal(got.array, want.array)


def test_state_dict_is_plain_data_keyed_by_position() -> None:
    problem = Problem(4)
    params = problem.params()
    opt = Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.1}], amsgrad=True)
    assert opt.state == {}  # created lazily on the first step
    run(opt, params, problem, range(3))
    sd = opt.state_dict()
    assert set(sd["state"]) == {(0, 0), (1, 0)}
    assert [g["params"] for g in sd["param_groups"]] == [[0], [0]]
    assert sd["param_groups"][1]["lr"] == 0.1
    entry = sd["state"][(1, 0)]
    assert entry["step"] == 3 and isinstance(entry["step"], int)
    assert set(entry) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert all(type(v) is np.ndarray for k, v in entry.items() if k != "step")


def test_load_state_dict_casts_to_the_parameter_dtype() -> None:
    problem = Problem(5)
    params = problem.params()
    opt = RMSprop(params, momentum=0.9)
    run(opt, params, problem, range(2))
    params32 = [Parameter(p.array.astype(np.float32)) for p in params]
    opt32 = RMSprop(params32)
    opt32.load_state_dict(opt.state_dict())
    assert all(v.dtype == np.float32 for s in opt32.state.values() for k, v in s.items()
               if k != "step")
    assert opt32.param_groups[0]["momentum"] == 0.9


def test_load_state_dict_turns_numpy_scalars_into_python_numbers() -> None:
    problem = Problem(5)
    params = problem.params()
    opt = NAdam(params)
    run(opt, params, problem, range(2))
    sd = opt.state_dict()
    for values in sd["state"].values():  # as a file format might hand them back
        values["step"] = np.int64(values["step"])
        values["mu_product"] = np.float64(values["mu_product"])
    fresh = NAdam([Parameter(p.array.astype(np.float32)) for p in params])
    fresh.load_state_dict(sd)
    state = fresh.state[(0, 1)]
    assert type(state["step"]) is int and type(state["mu_product"]) is float
    assert state["mu_product"] == opt.state[(0, 1)]["mu_product"]


def test_load_state_dict_errors() -> None:
    problem = Problem(6)
    params = problem.params()
    opt = Adam(params)
    run(opt, params, problem, range(1))
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="has 1 parameter group.*has 2"):
        Adam([{"params": params[:1]}, {"params": params[1:]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 of the loaded state dict has 2 parameter"):
        Adam(params[:1]).load_state_dict(sd)
    swapped = [Parameter(params[1].array.copy()), Parameter(params[0].array.copy())]
    with pytest.raises(ValueError, match=r"has shape \(4, 3\), but the parameter has shape \(5,\)"):
        Adam(swapped).load_state_dict(sd)
    with pytest.raises(ValueError, match="position"):
        Adam(params).load_state_dict({"state": {(0, 7): {}}, "param_groups": sd["param_groups"]})
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        Adam(params).load_state_dict({"lr": 0.1})
    bad = opt.state_dict()
    bad["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"invalid lr=-1.0"):
        Adam(params).load_state_dict(bad)


# ----- dtype, gradients and the step mechanics ------------------------------------------------
@pytest.mark.parametrize(("cls", "kwargs"), STATEFUL, ids=[c.__name__ for c, _ in STATEFUL])
def test_float32_stays_float32(cls, kwargs) -> None:
    problem = Problem(7)
    params64 = problem.params()
    run(cls(params64, **kwargs), params64, problem, range(5))
    problem32 = Problem(7, dtype=np.float32)
    params = problem32.params()
    # Hyperparameters given as NumPy float64 scalars must not promote the update either.
    opt = cls(params, **{k: np.float64(v) if isinstance(v, float) else v for k, v in kwargs.items()})
    run(opt, params, problem32, range(5))
    for p, p64 in zip(params, params64):
        assert p.array.dtype == np.float32
        np.testing.assert_allclose(p.array, p64.array, rtol=1e-4, atol=1e-5)
    for values in opt.state.values():
        for v in values.values():
            assert not isinstance(v, np.ndarray) or v.dtype == np.float32


@pytest.mark.parametrize("cls", [SGD, Adagrad, Adadelta, RMSprop, Adam, AdamW, NAdam])
def test_gradient_is_not_modified_and_none_grads_are_skipped(cls) -> None:
    problem = Problem(8)
    a, b = problem.params()
    opt = cls([a, b], weight_decay=0.1, maximize=True)
    grad = problem.grad(0, 0, a.array)
    a.grad = Tensor(grad.copy())
    opt.step()
    np.testing.assert_array_equal(a.grad.array, grad)
    np.testing.assert_array_equal(b.array, problem.init[1])
    assert list(opt.state) == [(0, 0)]


def test_zero_grad() -> None:
    a, b = Problem(9).params()
    opt = SGD([a, b])
    a.grad = Tensor(np.ones(a.shape))
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    a.grad = Tensor(np.ones(a.shape))
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad.array, np.zeros(a.shape))
    assert b.grad is None


def test_step_with_closure_trains_a_linear_model() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((32, 3)))
    y = x @ Tensor(np.array([[1.0], [-2.0], [0.5]]))
    w = Parameter(np.zeros((3, 1)))
    opt = Adam([w], lr=0.1)
    calls = []

    def closure():
        calls.append(nurinet.is_grad_enabled())
        opt.zero_grad()
        loss = ((x @ w - y) ** 2).mean()
        loss.backward()
        return loss

    with nurinet.no_grad():  # the closure still records the graph
        first = opt.step(closure).item()
    for _ in range(200):
        last = opt.step(closure).item()
    assert calls[0] is True and len(calls) == 201
    assert last < 1e-3 * first
    assert opt.step() is None


# ----- validation ------------------------------------------------------------------------------
BAD = [
    (SGD, {"lr": -0.1}, r"SGD: invalid lr=-0.1: it must be >= 0"),
    (SGD, {"lr": float("nan")}, r"invalid lr=nan"),
    (SGD, {"momentum": -0.5}, r"invalid momentum=-0.5"),
    (SGD, {"weight_decay": -1e-4}, r"invalid weight_decay=-0.0001"),
    (SGD, {"dampening": 1.5}, r"invalid dampening=1.5: it must lie in \[0, 1\]"),
    (SGD, {"nesterov": True}, r"nesterov=True needs momentum > 0 .*momentum=0.0"),
    (SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, r"dampening=0.1"),
    (Adagrad, {"lr_decay": -1.0}, r"Adagrad: invalid lr_decay=-1.0"),
    (Adagrad, {"initial_accumulator_value": -0.1}, r"invalid initial_accumulator_value=-0.1"),
    (Adagrad, {"eps": -1e-10}, r"invalid eps=-1e-10"),
    (Adadelta, {"rho": 1.1}, r"Adadelta: invalid rho=1.1"),
    (RMSprop, {"alpha": -0.1}, r"RMSprop: invalid alpha=-0.1"),
    (RMSprop, {"momentum": -0.1}, r"invalid momentum=-0.1"),
    (Adam, {"betas": (1.0, 0.999)}, r"Adam: invalid betas\[0\]=1.0: it must lie in \[0, 1\)"),
    (Adam, {"betas": (0.9, -0.1)}, r"invalid betas\[1\]=-0.1"),
    (Adam, {"betas": 0.9}, r"betas must be a pair .*betas=0.9"),
    (Adam, {"eps": -1e-8}, r"Adam: invalid eps=-1e-08"),
    (AdamW, {"weight_decay": -0.01}, r"AdamW: invalid weight_decay=-0.01"),
    (NAdam, {"momentum_decay": -4e-3}, r"NAdam: invalid momentum_decay=-0.004"),
    (LBFGS, {"lr": -1.0}, r"LBFGS: invalid lr=-1.0"),
    (LBFGS, {"history_size": 0}, r"LBFGS: invalid history_size=0: it must be a whole number >= 1"),
    (ConjugateGradient, {"beta": "steepest"}, r"ConjugateGradient: invalid beta='steepest'"),
    (LineGradientDescent, {"c1": 0.95}, r"LineGradientDescent: the line search needs 0 < c1 < c2 < 1"),
    (HessianFree, {"damping": -1.0}, r"HessianFree: invalid damping=-1.0"),
    (HessianFree, {"warm_start_decay": 1.5}, r"HessianFree: invalid warm_start_decay=1.5"),
]


@pytest.mark.parametrize(("cls", "kwargs", "match"), BAD,
                         ids=[f"{c.__name__}-{k}" for c, k, _ in BAD])
def test_bad_hyperparameters_are_rejected(cls, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        cls([Parameter(np.ones(2))], **kwargs)


def test_bad_hyperparameter_in_a_group_names_the_group() -> None:
    a, b = Problem().params()
    with pytest.raises(ValueError, match=r"invalid lr=-1: .*parameter group 1"):
        Adam([{"params": [a]}, {"params": [b], "lr": -1}])
    with pytest.raises(ValueError, match=r"unknown hyperparameter\(s\) \['learning_rate'\]"):
        Adam([{"params": [a], "learning_rate": 0.1}])
    with pytest.raises(TypeError, match=r"lr must be a number, got lr='0.1'"):
        Adam([a], lr="0.1")


def test_bad_parameters_are_rejected() -> None:
    a, b = Problem().params()
    with pytest.raises(TypeError, match="got a single Tensor; pass a list"):
        SGD(a)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([])
    with pytest.raises(TypeError, match="parameter 1 of group 0 is a ndarray"):
        SGD([a, np.ones(3)])
    with pytest.raises(ValueError, match="not a leaf tensor"):
        SGD([a * 2.0])
    with pytest.raises(TypeError, match="dtype int64"):
        SGD([Tensor(np.arange(3))])
    with pytest.raises(ValueError, match="appears more than once"):
        SGD([{"params": [a, b]}, {"params": [b]}])
    with pytest.raises(TypeError, match="a dict with a 'params' entry"):
        SGD([a]).add_param_group([b])
    opt = SGD([a])
    a.grad = Tensor(np.ones(5))
    with pytest.raises(ValueError, match=r"shape \(4, 3\) but its gradient has shape \(5,\)"):
        opt.step()


# ----- the registry ------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "cls", "expected"), [
    ("sgd", SGD, {"momentum": 0.0, "nesterov": False}),
    ("SGD", SGD, {}),
    ("Momentum", SGD, {"momentum": 0.9, "nesterov": False}),
    ("nesterov", SGD, {"momentum": 0.9, "nesterov": True}),
    ("adagrad", Adagrad, {}),
    ("AdaDelta", Adadelta, {}),
    ("RMSprop", RMSprop, {}),
    ("adam", Adam, {"amsgrad": False}),
    ("AdamW", AdamW, {"weight_decay": 1e-2}),
    ("NADAM", NAdam, {"momentum_decay": 4e-3}),
])
def test_registry_resolves_names(name, cls, expected) -> None:
    opt = get_optimizer(name, [Parameter(np.ones(2))], lr=0.5)
    assert type(opt) is cls
    group = opt.param_groups[0]
    assert group["lr"] == 0.5
    assert all(group[k] == v for k, v in expected.items())


def test_registry_keyword_arguments_override_presets_and_unknown_names_fail() -> None:
    opt = get_optimizer("momentum", [Parameter(np.ones(2))], momentum=0.5)
    assert opt.param_groups[0]["momentum"] == 0.5
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'.*adadelta, adagrad, adam"):
        get_optimizer("adamax", [Parameter(np.ones(2))])
    with pytest.raises(TypeError, match="optimizer name"):
        get_optimizer(Adam, [Parameter(np.ones(2))])


# ----- CuPy: the same code path on the GPU ------------------------------------------------------
@pytest.mark.skipif(not backend.cupy_available(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize(("cls", "kwargs"), STATEFUL, ids=[c.__name__ for c, _ in STATEFUL])
def test_gpu_matches_cpu(cls, kwargs) -> None:
    problem = Problem(10, dtype=np.float32)
    cpu = problem.params()
    gpu = [Parameter(backend.to_device(a.copy(), "cuda")) for a in problem.init]
    opt_cpu, opt_gpu = cls(cpu, **kwargs), cls(gpu, **kwargs)
    for k in range(5):
        for i, (c, g) in enumerate(zip(cpu, gpu)):
            c.grad = Tensor(problem.grad(k, i, c.array))
            g.grad = Tensor(backend.to_device(problem.grad(k, i, backend.to_numpy(g.array)), "cuda"))
        opt_cpu.step()
        opt_gpu.step()
    for c, g in zip(cpu, gpu):
        assert g.device.startswith("cuda") and g.array.dtype == np.float32
        np.testing.assert_allclose(backend.to_numpy(g.array), c.array, rtol=1e-5, atol=1e-6)
    restored = cls([Parameter(backend.to_device(p.numpy(), "cuda")) for p in gpu])
    restored.load_state_dict(opt_gpu.state_dict())
    assert all(backend.is_cupy_array(v) for s in restored.state.values() for v in s.values()
               if not isinstance(v, (int, float)))


# ----- every optimizer is in every table ---------------------------------------------------------
# Optimizers that a table cannot hold, with the reason. Everything else must appear in each table.
# The batch optimizers step through a closure, not from given gradients: their references and
# state round trips live in tests/test_optim_second_order.py.
BATCH_METHODS = ("LBFGS", "ConjugateGradient", "LineGradientDescent", "HessianFree")
NOT_IN_TABLE = {
    "CASES": {"NoOp": "DL4J's NoOp never moves a parameter: test_noop_never_changes_anything",
              **{name: "closure-driven: compared with torch.optim.LBFGS or SciPy's optimum in "
                       "test_optim_second_order.py" for name in BATCH_METHODS}},
    "STATEFUL": {"NoOp": "keeps no state: test_noop_never_changes_anything",
                 **{name: "closure-driven: test_optim_second_order.py::"
                          "test_state_dict_round_trip_continues_bit_identically" for name in BATCH_METHODS}},
    "BAD": {"NoOp": "takes no hyperparameter that could be invalid (its lr does nothing)"},
}


def _public_optimizers() -> set[str]:
    from nurinet import optim

    return {name for name in optim.__all__ if isinstance(getattr(optim, name), type)
            and issubclass(getattr(optim, name), Optimizer) and getattr(optim, name) is not Optimizer}


@pytest.mark.parametrize("table", ["CASES", "STATEFUL", "BAD"])
def test_every_optimizer_is_in_every_table(table: str) -> None:
    """A new optimizer must get a reference case, a state round trip and validation cases."""
    listed = {entry[0].__name__ for entry in globals()[table]}
    missing = _public_optimizers() - listed - set(NOT_IN_TABLE[table])
    assert not missing, f"{sorted(missing)} missing from {table} in tests/test_optim.py"


def test_noop_never_changes_anything() -> None:
    from nurinet.optim import NoOp

    problem = Problem()
    params = problem.params()
    opt = NoOp(params)
    run(opt, params, problem, range(3))
    for got, start in zip(params, problem.init):
        np.testing.assert_array_equal(got.array, start)
    assert opt.state_dict()["state"] == {}
    assert isinstance(get_optimizer("none", params), NoOp)
