"""The batch optimizers: line searches, LBFGS (against torch.optim.LBFGS), ConjugateGradient,
LineGradientDescent and HessianFree (against SciPy's optimum), and Model.fit with them.

The convex benchmark problem is multinomial logistic regression on the bundled digits in
float64: features standardized, mean cross-entropy plus ``ALPHA / 2 |W|^2`` (the bias is not
penalized), parameters started at zero. The issue's targets are checked as stated: each method
closes 99.9% of the gap to SciPy's optimum within 40 (CG), 150 (line GD) and 30 (HF) steps.
"""

from __future__ import annotations

import functools
import itertools
import math
import pickle

import numpy as np
import pytest

import nurinet as nt
import nurinet.autograd.functional as AF
import nurinet.functional as F
from nurinet import Parameter, nn, optim
from nurinet.optim import (
    LBFGS,
    ConjugateGradient,
    HessianFree,
    LineGradientDescent,
    get_optimizer,
)
from nurinet.optim.curvature import gauss_newton_product, gradient, hessian_product
from nurinet.optim.flat_params import FlatParams
from nurinet.optim.line_search import (
    backtracking_armijo,
    cubic_interpolate,
    strong_wolfe,
)
from nurinet.optim.truncated_cg import store_points, truncated_cg

ALPHA = 1e-3
BUDGETS = {"conjugate_gradient": 40, "line_gradient_descent": 150, "hessian_free": 30}
BATCH_OPTIMIZERS = (LBFGS, ConjugateGradient, LineGradientDescent, HessianFree)


# ----- problems ------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = nt.data.load_digits(normalize=True)
    x = x.astype(np.float64)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    return (x - x.mean(axis=0)) / scale, y


def digits_loss(w: nt.Tensor, b: nt.Tensor, x: nt.Tensor, y: nt.Tensor) -> tuple[nt.Tensor, nt.Tensor]:
    logits = x @ w + b
    return F.cross_entropy(logits, y) + (ALPHA / 2) * (w * w).sum(), logits


def digits_objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
    """The same objective and its gradient in NumPy, for SciPy."""
    x, y = digits()
    w, b = theta[:640].reshape(64, 10), theta[640:]
    z = x @ w + b
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    p = np.exp(z - log_norm[:, None])
    onehot = np.eye(10)[y]
    loss = (log_norm - (z * onehot).sum(axis=1)).mean() + ALPHA / 2 * (w**2).sum()
    gz = (p - onehot) / len(x)
    return loss, np.concatenate([(x.T @ gz + ALPHA * w).ravel(), gz.sum(axis=0)])


@pytest.fixture(scope="module")
def optimum() -> float:
    scipy_optimize = pytest.importorskip("scipy.optimize")
    result = scipy_optimize.minimize(digits_objective, np.zeros(650), jac=True, method="L-BFGS-B",
                                     options={"maxiter": 10_000, "ftol": 1e-15, "gtol": 1e-11})
    return float(result.fun)


def closure_for(opt: optim.Optimizer, w: Parameter, b: Parameter, x: nt.Tensor, y: nt.Tensor):
    """The closure each optimizer's contract asks for, on the digits problem."""
    def closure():
        loss, logits = digits_loss(w, b, x, y)
        if opt.closure_returns_graph:
            return loss, logits
        opt.zero_grad()
        loss.backward()
        return loss

    return closure


def steps_to_close_the_gap(name: str, optimum: float, budget: int, **kwargs) -> tuple[int, float]:
    """Steps until (f - f*) / (f0 - f*) <= 1e-3, and that final ratio."""
    x, y = digits()
    xt, yt = nt.tensor(x), nt.tensor(y)
    w, b = Parameter(np.zeros((64, 10))), Parameter(np.zeros(10))
    opt = get_optimizer(name, [w, b], **kwargs)
    closure = closure_for(opt, w, b, xt, yt)
    f0 = digits_objective(np.zeros(650))[0]
    for step in range(1, budget + 1):
        opt.step(closure)
        f = digits_objective(np.concatenate([w.array.ravel(), b.array]))[0]
        gap = (f - optimum) / (f0 - optimum)
        if gap <= 1e-3:
            return step, gap
    return budget + 1, gap


def rosenbrock(x: nt.Tensor) -> nt.Tensor:
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


# ----- line searches ---------------------------------------------------------------------------
def line(f, grad):
    """``obj_func(x, t, d)`` for a NumPy function, and a counter of its calls."""
    calls = []

    def obj_func(x, t, d):
        calls.append(t)
        point = x + t * d
        return float(f(point)), grad(point)

    return obj_func, calls


def test_cubic_interpolate_finds_the_minimizer_of_a_cubic() -> None:
    # f(t) = t^3 - 3t: f'(t) = 3t^2 - 3, minimum at t = 1.
    assert cubic_interpolate(0.0, 0.0, -3.0, 2.0, 2.0, 9.0) == pytest.approx(1.0)
    assert cubic_interpolate(2.0, 2.0, 9.0, 0.0, 0.0, -3.0) == pytest.approx(1.0)
    assert cubic_interpolate(0.0, 0.0, -3.0, 2.0, 2.0, 9.0, bounds=(1.5, 3.0)) == 1.5
    # No minimizer (d1^2 < g1 g2): the middle of the bounds.
    assert cubic_interpolate(0.0, 0.0, 6.0, 1.0, 4.0, 6.0, bounds=(0.0, 4.0)) == 2.0
    assert cubic_interpolate(1.0, 0.0, -1.0, 1.0, 0.0, -1.0) == 1.0  # a degenerate bracket


@pytest.mark.parametrize("t0", [1e-4, 1.0, 50.0])
@pytest.mark.parametrize("c2", [0.9, 0.1])
def test_strong_wolfe_returns_a_step_meeting_both_conditions(t0: float, c2: float) -> None:
    x = np.array([-1.2, 1.0])

    def f(p):
        return 100 * (p[1] - p[0] ** 2) ** 2 + (1 - p[0]) ** 2

    def grad(p):
        return np.array([-400 * p[0] * (p[1] - p[0] ** 2) - 2 * (1 - p[0]), 200 * (p[1] - p[0] ** 2)])

    g = grad(x)
    d = -g / np.abs(g).sum()
    gtd = float(g @ d)
    obj_func, calls = line(f, grad)
    loss, g_new, t, evals = strong_wolfe(obj_func, x, t0, d, f(x), g, gtd, c2=c2)
    assert evals == len(calls)
    assert loss <= f(x) + 1e-4 * t * gtd
    assert abs(float(g_new @ d)) <= c2 * abs(gtd)
    assert loss == pytest.approx(f(x + t * d)) and np.allclose(g_new, grad(x + t * d))


def test_strong_wolfe_stops_at_its_budget_with_the_best_point() -> None:
    def f(p):
        return float(np.sum(p**2))

    obj_func, calls = line(f, lambda p: 2 * p)
    x, d = np.array([1.0]), np.array([-1.0])
    result = strong_wolfe(obj_func, x, 1e-6, d, 1.0, np.array([2.0]), -2.0, max_ls=2)
    assert result.evals == 3 and len(calls) == 3
    assert result.loss < 1.0 and result.step > 0


def test_backtracking_armijo() -> None:
    def f(p):
        return float(np.sum(p**2))

    obj_func, calls = line(f, lambda p: 2 * p)
    x, g = np.array([3.0]), np.array([6.0])
    result = backtracking_armijo(obj_func, x, 10.0, -g, 9.0, g, -36.0)
    assert result.loss <= 9.0 - 1e-4 * result.step * 36.0
    assert 0 < result.step < 10.0 and result.evals == len(calls) >= 2
    # An ascent direction never decreases f: no step, the start returned.
    result = backtracking_armijo(obj_func, x, 1.0, g, 9.0, g, -1.0, max_ls=5)
    assert result.step == 0.0 and result.loss == 9.0 and result.evals == 5


def test_line_search_keeps_float32() -> None:
    x = np.array([2.0, -1.0], dtype=np.float32)
    obj_func, _ = line(lambda p: float(np.sum(p**2)), lambda p: 2 * p)
    g = 2 * x
    result = strong_wolfe(obj_func, x, 1.0, -g, 5.0, g, -float(g @ g))
    assert result.grad.dtype == np.float32 and result.loss < 5.0


# ----- LBFGS against PyTorch -----------------------------------------------------------------------
def _logistic_problem(seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((60, 5)), rng.integers(0, 3, 60)
    w0, b0 = rng.standard_normal((5, 3)) * 0.5, rng.standard_normal(3) * 0.1
    return x, y, [w0, b0]


def _mlp_inits(seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((5, 8)) * 0.5, np.zeros(8), rng.standard_normal((8, 3)) * 0.5, np.zeros(3)]


# Steps compared per problem (20 iterations each by default, 4 in "short-history"). The two
# libraries round differently in their dot products and gradients (1e-16); in the MLP and along
# Rosenbrock's valley such differences grow with the iterations, as they do between PyTorch and
# itself started 1e-15 away (test_lbfgs_differences_are_rounding_growth), so the 1e-6 comparison
# covers the first 40-160 iterations, before that growth can reach it.
PARITY_PROBLEMS = {"logistic": 8, "mlp": 2, "rosenbrock": 2}


def _parity_setup(problem, torch):
    """(inits, nurinet loss of params, torch loss of params) for one problem."""
    x, y, logistic_init = _logistic_problem()
    if problem == "rosenbrock":
        init = [np.array([-1.2, 1.0, -1.2, 1.0, 0.5, 0.0])]
        return init, lambda p: rosenbrock(p[0]), lambda p: rosenbrock(p[0])
    xt, yt, xs, ys = nt.tensor(x), nt.tensor(y), torch.tensor(x), torch.tensor(y)
    if problem == "logistic":
        return (logistic_init,
                lambda p: F.cross_entropy(xt @ p[0] + p[1], yt) + 0.01 * (p[0] * p[0]).sum(),
                lambda p: torch.nn.functional.cross_entropy(xs @ p[0] + p[1], ys) + 0.01 * (p[0] * p[0]).sum())
    return (_mlp_inits(),
            lambda p: F.cross_entropy(F.tanh(xt @ p[0] + p[1]) @ p[2] + p[3], yt),
            lambda p: torch.nn.functional.cross_entropy(torch.tanh(xs @ p[0] + p[1]) @ p[2] + p[3], ys))


@pytest.mark.torch
@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
@pytest.mark.parametrize("problem", PARITY_PROBLEMS)
@pytest.mark.parametrize("settings", [{}, {"history_size": 3, "max_iter": 4, "lr": 0.5}],
                         ids=["defaults", "short-history"])
def test_lbfgs_iterates_equal_pytorchs(torch, line_search_fn, problem, settings) -> None:
    init, nt_loss, torch_loss = _parity_setup(problem, torch)
    ours = [Parameter(a.copy()) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt = LBFGS(ours, line_search_fn=line_search_fn, **settings)
    topt = torch.optim.LBFGS(theirs, line_search_fn=line_search_fn, **settings)

    def closure():
        opt.zero_grad()
        loss = nt_loss(ours)
        loss.backward()
        return loss

    def torch_closure():
        topt.zero_grad()
        loss = torch_loss(theirs)
        loss.backward()
        return loss

    worst = 0.0
    for _ in range(PARITY_PROBLEMS[problem] * (5 if settings else 1)):
        ours_loss, theirs_loss = opt.step(closure), topt.step(torch_closure)
        assert ours_loss.item() == pytest.approx(theirs_loss.item(), rel=1e-6, abs=1e-9)
        for p, t in zip(ours, theirs):
            worst = max(worst, float(np.abs(p.array - t.detach().numpy()).max()))
    print(f"max |nurinet - PyTorch| = {worst:.1e}")
    assert worst <= 1e-6, worst
    assert opt.flat_state["func_evals"] == topt.state[theirs[0]]["func_evals"]
    assert opt.flat_state["n_iter"] == topt.state[theirs[0]]["n_iter"]
    assert not np.allclose(ours[0].array, init[0])


@pytest.mark.torch
def test_lbfgs_differences_are_rounding_growth(torch) -> None:
    """After 80 iterations on the MLP nurinet is as far from PyTorch as PyTorch is from itself
    started 1e-15 away: the algorithm is the same, the problem amplifies rounding."""
    init, nt_loss, torch_loss = _parity_setup("mlp", torch)

    def torch_run(shift):
        theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
        with torch.no_grad():
            theirs[0] += shift
        topt = torch.optim.LBFGS(theirs)

        def closure():
            topt.zero_grad()
            loss = torch_loss(theirs)
            loss.backward()
            return loss

        for _ in range(4):
            topt.step(closure)
        return [t.detach().numpy() for t in theirs]

    ours = [Parameter(a.copy()) for a in init]
    opt = LBFGS(ours)

    def closure():
        opt.zero_grad()
        loss = nt_loss(ours)
        loss.backward()
        return loss

    for _ in range(4):
        opt.step(closure)
    reference, shifted = torch_run(0.0), torch_run(1e-15)
    ours_gap = max(float(np.abs(p.array - r).max()) for p, r in zip(ours, reference))
    self_gap = max(float(np.abs(s - r).max()) for s, r in zip(shifted, reference))
    print(f"nurinet - PyTorch {ours_gap:.1e}; PyTorch - PyTorch(start + 1e-15) {self_gap:.1e}")
    assert ours_gap <= 10 * self_gap + 1e-12


# ----- behaviour shared by the batch optimizers --------------------------------------------------
def _quadratic_closure(opt, params, target):
    def closure():
        loss = sum(((p - t) ** 2).sum() * (i + 1.0) for i, (p, t) in enumerate(zip(params, target)))
        if opt.closure_returns_graph:
            return loss, None
        opt.zero_grad()
        loss.backward()
        return loss

    return closure


def _hf_hessian(params, **kwargs):
    return HessianFree(params, curvature="hessian", **kwargs)


FACTORIES = [LBFGS, functools.partial(LBFGS, line_search_fn="strong_wolfe"), ConjugateGradient,
             LineGradientDescent, _hf_hessian]
FACTORY_IDS = ["LBFGS", "LBFGS-wolfe", "ConjugateGradient", "LineGradientDescent", "HessianFree"]


@pytest.mark.parametrize("factory", FACTORIES, ids=FACTORY_IDS)
def test_minimizes_a_quadratic_in_float32_and_float64(factory) -> None:
    for dtype, tol in ((np.float64, 1e-4), (np.float32, 1e-3)):  # tolerance_change stops LBFGS near 1e-5
        rng = np.random.default_rng(0)
        target = [rng.standard_normal((3, 2)).astype(dtype), rng.standard_normal(4).astype(dtype)]
        params = [Parameter(np.zeros_like(t)) for t in target]
        opt = factory(params)
        closure = _quadratic_closure(opt, params, [nt.tensor(t) for t in target])
        first = opt.step(closure)
        assert isinstance(first, nt.Tensor)
        for _ in range(30):
            opt.step(closure)
        for p, t in zip(params, target):
            assert p.array.dtype == dtype
            np.testing.assert_allclose(p.array, t, atol=tol)


@pytest.mark.parametrize("factory", FACTORIES, ids=FACTORY_IDS)
def test_state_dict_round_trip_continues_bit_identically(factory) -> None:
    x, y, init = _logistic_problem()
    xt, yt = nt.tensor(x), nt.tensor(y)

    def make(values):
        params = [Parameter(v.copy()) for v in values]
        opt = factory(params)

        def closure():
            loss = F.cross_entropy(xt @ params[0] + params[1], yt) + 0.01 * (params[0] * params[0]).sum()
            if opt.closure_returns_graph:
                return loss
            opt.zero_grad()
            loss.backward()
            return loss

        return params, opt, closure

    straight, opt, closure = make(init)
    for _ in range(6):
        opt.step(closure)
    first, opt, closure = make(init)
    for _ in range(3):
        opt.step(closure)
    saved = pickle.loads(pickle.dumps(opt.state_dict()))
    assert all(isinstance(v, (np.ndarray, list, int, float, type(None)))
               for v in saved["state"][(0, 0)].values())
    resumed, fresh, fresh_closure = make([p.array for p in first])
    fresh.load_state_dict(saved)
    for _ in range(3):
        fresh.step(fresh_closure)
    for got, want in zip(resumed, straight):
        np.testing.assert_array_equal(got.array, want.array)


@pytest.mark.parametrize("cls", BATCH_OPTIMIZERS)
def test_step_needs_a_closure_and_one_group_of_one_dtype(cls) -> None:
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    with pytest.raises(TypeError, match="needs a closure"):
        cls([a]).step()
    with pytest.raises(ValueError, match="doesn't support per-parameter options"):
        cls([{"params": [a]}, {"params": [b]}])
    with pytest.raises(ValueError, match="one dtype on one device"):
        cls([a, Parameter(np.ones(2, dtype=np.float32))])
    assert cls.needs_closure is True
    with pytest.raises(TypeError, match="updates all parameters at once"):
        a.grad = nt.tensor(np.ones(2))
        optim.Optimizer.step(cls([a]))


@pytest.mark.parametrize(("cls", "kwargs", "match"), [
    (LBFGS, {"max_iter": 0}, "max_iter=0"),
    (LBFGS, {"line_search_fn": "wolfe"}, "line_search_fn='wolfe'"),
    (ConjugateGradient, {"beta": "newton"}, "beta='newton'"),
    (ConjugateGradient, {"c1": 0.5, "c2": 0.1}, "0 < c1 < c2 < 1"),
    (LineGradientDescent, {"line_search_fn": None}, "line_search_fn=None"),
    (HessianFree, {"curvature": "fisher"}, "curvature='fisher'"),
    (HessianFree, {"preconditioner": "ilu"}, "preconditioner='ilu'"),
])
def test_bad_hyperparameters(cls, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        cls([Parameter(np.ones(2))], **kwargs)


def _counted_rosenbrock(start, **kwargs):
    x = Parameter(np.array(start, dtype=np.float64))
    opt = LBFGS([x], **kwargs)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    return opt, closure, calls


def test_lbfgs_respects_max_eval_and_stops_at_an_optimum() -> None:
    opt, closure, calls = _counted_rosenbrock([-1.2, 1.0], max_iter=100, max_eval=7,
                                              line_search_fn="strong_wolfe")
    opt.step(closure)
    # max_eval bounds each line search and is checked between iterations, as in PyTorch.
    assert len(calls) <= 7 and opt.flat_state["func_evals"] == len(calls)
    opt, closure, calls = _counted_rosenbrock([1.0, 1.0])
    opt.step(closure)
    assert len(calls) == 1  # the gradient is zero: nothing to do


@pytest.mark.parametrize("beta", ["polak_ribiere", "fletcher_reeves", "hestenes_stiefel", "dai_yuan", "PR+", "FR"])
def test_conjugate_gradient_formulas_minimize_rosenbrock(beta) -> None:
    x = Parameter(np.array([-1.2, 1.0]))
    opt = ConjugateGradient([x], beta=beta, max_iter=400)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    opt.step(closure)
    np.testing.assert_allclose(x.array, [1.0, 1.0], atol=1e-3)


def test_conjugate_gradient_restarts_every_n_iterations() -> None:
    x = Parameter(np.array([-1.2, 1.0]))
    opt = ConjugateGradient([x], restart=1)  # every iteration: steepest descent

    def closure():
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    lgd_x = Parameter(np.array([-1.2, 1.0]))
    lgd = LineGradientDescent([lgd_x], c2=0.1)

    def lgd_closure():
        lgd.zero_grad()
        loss = rosenbrock(lgd_x)
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
        lgd.step(lgd_closure)
    np.testing.assert_array_equal(x.array, lgd_x.array)


# ----- the targets on digits logistic regression --------------------------------------------
@pytest.mark.parametrize("name", sorted(BUDGETS))
def test_closes_the_gap_to_scipys_optimum_within_budget(name, optimum) -> None:
    steps, gap = steps_to_close_the_gap(name, optimum, BUDGETS[name])
    assert steps <= BUDGETS[name], f"{name}: gap {gap:.2e} after {BUDGETS[name]} steps"


def test_lbfgs_reaches_scipys_optimum(optimum) -> None:
    x, y = digits()
    w, b = Parameter(np.zeros((64, 10))), Parameter(np.zeros(10))
    opt = LBFGS([w, b], line_search_fn="strong_wolfe", max_iter=500, tolerance_grad=1e-10,
                tolerance_change=1e-14)
    opt.step(closure_for(opt, w, b, nt.tensor(x), nt.tensor(y)))
    assert digits_objective(np.concatenate([w.array.ravel(), b.array]))[0] - optimum < 1e-9


# ----- Hessian-free ------------------------------------------------------------------------------------
def _small_net(seed=0):
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((7, 3)), rng.integers(0, 2, 7)
    params = [Parameter(rng.standard_normal((3, 4))), Parameter(rng.standard_normal(4) * 0.1),
              Parameter(rng.standard_normal((4, 2))), Parameter(np.zeros(2))]
    return nt.tensor(x), nt.tensor(y), params


def _net_output(params, x):
    return F.tanh(x @ params[0] + params[1]) @ params[2] + params[3]


def _flat_jacobian(params, x):
    jac = AF.jacobian(lambda *p: _net_output(p, x), tuple(nt.tensor(p.array) for p in params))
    return np.concatenate([j.numpy().reshape(14, -1) for j in jac], axis=1)  # (7*2 outputs, 26 params)


def test_gauss_newton_product_is_jt_hl_j() -> None:
    x, y, params = _small_net()
    flat = FlatParams(params, "test")
    out = _net_output(params, x)
    loss = F.cross_entropy(out, y)
    product = gauss_newton_product(flat, loss, out)
    jac = _flat_jacobian(params, x)
    logits = nt.tensor(out.numpy())
    h_l = AF.hessian(lambda z: F.cross_entropy(z, y), logits).numpy().reshape(14, 14)
    gauss_newton = jac.T @ h_l @ jac
    rng = np.random.default_rng(3)
    for _ in range(3):
        v = rng.standard_normal(flat.numel)
        np.testing.assert_allclose(product(v), gauss_newton @ v, rtol=1e-10, atol=1e-12)
    assert np.linalg.eigvalsh(gauss_newton).min() > -1e-12  # positive semi-definite


def test_hessian_product_is_the_hessian() -> None:
    x, y, params = _small_net(1)
    flat = FlatParams(params, "test")
    _, grads = gradient(flat, F.cross_entropy(_net_output(params, x), y), create_graph=True)
    product = hessian_product(flat, grads)
    blocks = AF.hessian(lambda *p: F.cross_entropy(_net_output(p, x), y), tuple(nt.tensor(p.array) for p in params))
    sizes = [p.array.size for p in params]
    full = np.block([[blocks[i][j].numpy().reshape(sizes[i], sizes[j]) for j in range(4)] for i in range(4)])
    v = np.random.default_rng(4).standard_normal(flat.numel)
    np.testing.assert_allclose(product(v), full @ v, rtol=1e-10, atol=1e-12)


def test_truncated_cg_solves_a_positive_definite_system() -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((20, 20))
    a = q @ q.T + 0.5 * np.eye(20)
    g = rng.standard_normal(20)
    result = truncated_cg(lambda v: a @ v, g, np.zeros(20), max_iter=200, tolerance=1e-12)
    np.testing.assert_allclose(result.iterates[-1][1], np.linalg.solve(a, -g), atol=1e-6)
    assert [i for i, _, _ in result.iterates][:4] == [2, 3, 4, 5]
    phis = [phi for _, _, phi in result.iterates]
    assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(phis))
    preconditioned = truncated_cg(lambda v: a @ v, g, np.zeros(20), 200, 1e-12, preconditioner=np.diag(a).copy())
    np.testing.assert_allclose(preconditioned.iterates[-1][1], np.linalg.solve(a, -g), atol=1e-6)
    assert store_points(10) == {2, 3, 4, 5, 7, 9}
    indefinite = truncated_cg(lambda v: -v, g, np.zeros(20), 50, 1e-6)
    assert indefinite.stopped_by == "negative_curvature" and indefinite.iterations == 0


def test_hessian_free_refuses_an_lbfgs_closure_and_states_its_contract() -> None:
    x, y, params = _small_net()
    opt = HessianFree(params)

    def lbfgs_closure():
        opt.zero_grad()
        loss = F.cross_entropy(_net_output(params, x), y)
        loss.backward()
        return loss

    with pytest.raises(TypeError, match="called backward.*returns the loss WITH its graph"):
        opt.step(lbfgs_closure)
    with pytest.raises(TypeError, match="needs the network output"):
        opt.step(lambda: F.cross_entropy(_net_output(params, x), y))
    with pytest.raises(TypeError, match="has no graph"):
        with nt.no_grad():
            loss = F.cross_entropy(_net_output(params, x), y)
        opt.step(lambda: (loss, loss))
    with pytest.raises(TypeError, match="not a scalar loss Tensor"):
        opt.step(lambda: 3.0)


@pytest.mark.parametrize("settings", [
    {}, {"curvature": "hessian"}, {"preconditioner": "jacobi"}, {"backtracking": False},
    {"warm_start_decay": 0.0}, {"adapt_damping": False, "damping": 0.1}, {"weight_decay": 1e-3},
    {"preconditioner": "callable"}, {"max_iter": 3},
], ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()) or "defaults")
def test_hessian_free_settings_train_a_small_network(settings) -> None:
    x, y, params = _small_net()
    if settings.get("preconditioner") == "callable":
        settings = {**settings, "preconditioner": lambda g, damping: g * g}
    opt = HessianFree(params, generator=nt.Generator(0), **settings)

    def closure():
        out = _net_output(params, x)
        return F.cross_entropy(out, y), out

    start = float(closure()[0].item())
    for _ in range(10):
        opt.step(closure)
    end = float(closure()[0].item())
    assert end < 0.5 * start
    state = opt.flat_state
    assert state["n_iter"] == 10 * settings.get("max_iter", 1)
    assert state["cg_iterations"] >= 1 and np.isfinite(state["rho"]) and state["damping"] > 0


def test_hessian_free_uses_the_curvature_closure() -> None:
    x, y, params = _small_net()
    opt = HessianFree(params)
    calls = []

    def closure():
        out = _net_output(params, x)
        return F.cross_entropy(out, y), out

    def curvature_closure():
        calls.append(1)
        out = _net_output(params, x[:3])
        return F.cross_entropy(out, y[:3]), out

    loss = opt.step(closure, curvature_closure)
    assert calls == [1] and loss.requires_grad
    assert float(closure()[0].item()) < loss.item()


def test_hessian_free_adapts_the_damping_by_the_reduction_ratio() -> None:
    from nurinet.optim.hessian_free import _adapted

    assert _adapted(1.0, 0.1) == 1.5 and _adapted(1.0, -math.inf) == 1.5
    assert _adapted(1.0, 0.9) == pytest.approx(2 / 3) and _adapted(1.0, 0.5) == 1.0


# ----- Model.fit -------------------------------------------------------------------------------------
def _model(name, **kwargs):
    from nurinet.training import Model

    nt.manual_seed(0)
    network = nn.Sequential(nn.Linear(64, 16, activation="tanh"), nn.Linear(16, 10))
    for p in network.parameters():
        p.array = p.array.astype(np.float64)
    model = Model(network)
    model.compile(name, "cross_entropy", metrics=["accuracy"], **kwargs)
    return model


def _digits_subset(n=300):
    x, y = digits()
    return x[:n], y[:n]


@pytest.mark.parametrize("name", ["lbfgs", "CONJUGATE_GRADIENT", "line_gradient_descent", "hessian_free"])
def test_fit_gives_batch_methods_the_whole_data_set(name) -> None:
    x, y = _digits_subset()
    kwargs = {"max_iter": 1} if name == "lbfgs" else {}
    model = _model(name, **kwargs)
    history = model.fit(x, y, epochs=6, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 6 and losses[-1] < 0.6 * losses[0]
    assert model.optimizer.flat_state["n_iter"] == 6  # one iteration per epoch
    assert history.history["accuracy"][-1] > 0.8


def test_fit_with_a_chosen_batch_and_a_curvature_batch() -> None:
    x, y = _digits_subset()
    model = _model("hessian_free", curvature_batch_size=50)
    model.fit(x, y, epochs=2, batch_size=100, verbose=0)
    assert model.optimizer.flat_state["n_iter"] == 6  # 3 batches of 100 per epoch


def test_fit_keeps_32_for_first_order_optimizers() -> None:
    from nurinet.data import DataLoader, TensorDataset
    from nurinet.training.batch_methods import fit_batch_size

    lbfgs = LBFGS([Parameter(np.ones(1))])
    assert fit_batch_size(optim.SGD([Parameter(np.ones(1))]), np.zeros((100, 2)), None) == 32
    assert fit_batch_size(lbfgs, np.zeros((100, 2)), None) == 100
    assert fit_batch_size(lbfgs, [[0.0, 1.0]] * 7, None) == 7
    assert fit_batch_size(lbfgs, nt.zeros(9, 2), None) == 9
    assert fit_batch_size(lbfgs, np.zeros((100, 2)), 10) == 10
    loader = DataLoader(TensorDataset(np.zeros((100, 2))), batch_size=25)
    assert fit_batch_size(lbfgs, loader, None) == 32  # a loader brings its own batches


@pytest.mark.parametrize("name", ["LBFGS", "CONJUGATE_GRADIENT", "LINE_GRADIENT_DESCENT", "HESSIAN_FREE"])
def test_configuration_names_build_train_and_round_trip(name) -> None:
    from nurinet.training import config as cfg

    config = {"seed": 0, "model": {"input_size": 4, "layers": [
        {"type": "Dense", "units": 6, "activation": "tanh"},
        {"type": "Output", "units": 3, "activation": "softmax", "loss": "cross_entropy"}]},
        "updater": {"name": name}, "training": {"epochs": 3, "batch_size": 60, "metrics": ["accuracy"]}}
    built = cfg.build(config)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    history = built.model.fit(x, y, **{**built.fit_args, "verbose": 0})
    assert history.history["loss"][-1] < history.history["loss"][0]
    again = cfg.build(built.model.training_config())
    assert type(again.model.optimizer) is type(built.model.optimizer)
    assert again.model.optimizer.param_groups[0].keys() == built.model.optimizer.param_groups[0].keys()


def test_fit_with_early_stopping_and_the_progress_bar(capsys) -> None:
    from nurinet.training import EarlyStopping

    x, y = _digits_subset()
    model = _model("lbfgs", line_search_fn="strong_wolfe")
    history = model.fit(x, y, epochs=50, verbose=2, validation_data=(x[:50], y[:50]),
                        callbacks=[EarlyStopping(monitor="loss", min_delta=1e-2, patience=1)])
    assert len(history.history["loss"]) < 50
    printed = capsys.readouterr()
    assert "Epoch 1/50 - loss:" in printed.out + printed.err


@pytest.mark.parametrize("name", ["lbfgs", "conjugate_gradient", "hessian_free"])
def test_fit_resumes_exactly_from_a_checkpoint(name, tmp_path) -> None:
    from nurinet.io import load_checkpoint
    from nurinet.training import CheckpointCallback

    x, y = _digits_subset(200)
    kwargs = {"max_iter": 2, "line_search_fn": "strong_wolfe"} if name == "lbfgs" else {}
    straight = _model(name, **kwargs)
    straight.fit(x, y, epochs=4, verbose=0)
    first = _model(name, **kwargs)
    path = tmp_path / "ck.safetensors"
    first.fit(x, y, epochs=2, verbose=0, callbacks=[CheckpointCallback(path)])
    resumed = _model(name, **kwargs)
    info = load_checkpoint(path, resumed, resumed.optimizer)
    resumed.fit(x, y, epochs=4, initial_epoch=info["epoch"], verbose=0)
    for (key, got), want in zip(resumed.state_dict().items(), straight.state_dict().values()):
        np.testing.assert_array_equal(got, want, err_msg=key)


# ----- names and the GPU path -------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "cls"), [
    ("lbfgs", LBFGS), ("LBFGS", LBFGS), ("L-BFGS", LBFGS), ("conjugate_gradient", ConjugateGradient),
    ("CONJUGATE_GRADIENT", ConjugateGradient), ("line_gradient_descent", LineGradientDescent),
    ("LINE_GRADIENT_DESCENT", LineGradientDescent), ("hessian_free", HessianFree),
    ("HESSIAN_FREE", HessianFree), ("none", optim.NoOp), ("nag", optim.SGD), ("nesterovs", optim.SGD),
])
def test_deeplearning4j_names_resolve(name, cls) -> None:
    assert type(get_optimizer(name, [Parameter(np.ones(2))])) is cls


@pytest.mark.parametrize("factory", FACTORIES, ids=FACTORY_IDS)
def test_gpu_double_matches_the_cpu(factory, fake_cupy) -> None:
    cpu, gpu = _three_steps_on("cpu", factory), _three_steps_on("cuda", factory)
    for on_cpu, on_gpu in zip(cpu, gpu):
        np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-9, atol=1e-12)


def _three_steps_on(device, factory):
    """The parameters (as NumPy) after three steps on the logistic problem on ``device``."""
    x, y, init = _logistic_problem()
    params = [Parameter(nt.backend.to_device(a.copy(), device)) for a in init]
    xt, yt = nt.tensor(x).to(device), nt.tensor(y).to(device)
    opt = factory(params)

    def closure():
        loss = F.cross_entropy(xt @ params[0] + params[1], yt)
        if opt.closure_returns_graph:
            return loss
        opt.zero_grad()
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    assert params[0].device.startswith(device)
    saved = opt.state_dict()["state"][(0, 0)]
    assert all(isinstance(v, (np.ndarray, list, int, float)) for v in saved.values() if v is not None)
    return [nt.backend.to_numpy(p.array) for p in params]
