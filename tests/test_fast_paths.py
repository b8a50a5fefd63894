"""Every registered op (tests/op_db.py) with its fast paths forced against the NumPy reference.

In :func:`~nurinet._runtime.modes.forced` mode every size floor is at its minimum, the elementwise
threads are on and the native kernels and BLAS helpers run wherever their arrays qualify (float32,
C-contiguous NumPy), so the registry's small samples reach them; in
:func:`~nurinet._runtime.modes.reference_only` mode none of them runs. Both must agree, forward and
backward, for every op, as Chainer injects its backends into every function test.

A second check counts which fast paths ran (:mod:`nurinet._runtime.probe`): every native kernel,
every threaded split in the code and every BLAS helper must be reached by some registered op, or be
listed in :data:`UNREACHED` with the reason (a defect to fix: a fast path no generic check covers).
"""

from __future__ import annotations

import ast
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nurinet
from nurinet import Tensor
from nurinet._runtime import blas, compiled, gemm, native, probe
from nurinet._runtime.modes import forced, reference_only
from tests.op_db import OPS, OpSpec

IDS = [spec.name for spec in OPS]
# Three forced variants: the direct convolution for few input taps (the default); im2col with its
# native layout copies and col2im for every layer; no native kernels, so that the NumPy code that
# stands in for them (max pooling's threaded split) runs on threads too.
VARIANTS = {"forced": {}, "forced_im2col": {"CONV_DIRECT_MAX_TAPS": 0}, "forced_numpy": {"NATIVE": False}}
PROVIDERS = ["numpy"] + (["mkl"] if gemm.mkl_available() else []) + (["native"] if gemm.native_available() else [])

# Fast paths that no registered op reaches in forced mode, with why. Each is a defect to fix (an op
# entry or a generic optimizer check that reaches it); the coverage test fails when one is reached,
# so the list only shrinks.
UNREACHED = {
    "native.nn_exp": "exported for tests/test_native.py only; no op calls it",
    "native.nn_sigmoid": "exported for tests/test_native.py only; no op calls it",
    "native.nn_tanh": "exported for tests/test_native.py only; no op calls it",
    "native.small_sgemm": ("exported for tests/test_native_small_gemm.py only; the LSTM kernels call the packed "
                           "GEMM inside C"),
    # Optimizer updates are no ops of the registry: the optimizer checks below reach and compare them.
    "native.nn_adam_update": "an optimizer update",
    "split.nurinet._runtime.fast.optim:adam_update": "an optimizer update",
    "native.nn_sgd_momentum_update": "an optimizer update",
    "blas.axpby.float32": "optimizer updates (SGD momentum, lerp_)",
    "blas.axpby.float64": "optimizer updates (SGD momentum, lerp_)",
    "blas.axpy.float32": "optimizer updates (SGD, add_square_)",
    "blas.axpy.float64": "optimizer updates (SGD, add_square_)",
}


def _outputs(result: Any) -> list[Tensor]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _run(spec: OpSpec, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """The op's float32 outputs and the gradients of its inputs for a fixed random upstream gradient."""
    wanted = spec.grad_inputs if spec.grad_inputs is not None else range(len(arrays))
    inputs = [Tensor(a.astype(np.float32), requires_grad=i in wanted) for i, a in enumerate(arrays)]
    outputs = _outputs(spec.fn(*inputs))
    differentiable = [y for y in outputs if y.requires_grad]
    if differentiable:
        rng = np.random.default_rng(11)
        upstream = [Tensor(rng.standard_normal(y.shape).astype(y.dtype)) for y in differentiable]
        nurinet.autograd.backward(differentiable, upstream)
    grads = [x.grad.array.copy() for x in inputs if x.requires_grad and x.grad is not None]
    return [np.array(y.array, copy=True) for y in outputs] + grads


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("spec", OPS, ids=IDS)
def test_forced_fast_paths_match_the_reference(spec: OpSpec, variant: str, provider: str) -> None:
    arrays = spec.sample(np.random.default_rng(3))
    with np.errstate(all="ignore"), reference_only():
        want = _run(spec, arrays)
    with np.errstate(all="ignore"), forced(provider=provider, **VARIANTS[variant]):
        got = _run(spec, arrays)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=max(spec.atol, 2e-4), err_msg=spec.name)


def _split_call_sites() -> set[str]:
    """``split.<module>:<qualname>`` of every function in nurinet that hands work to the thread pool."""
    root = Path(nurinet.__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        if "_runtime" in path.parts and "fast" not in path.parts:  # the ops' routines live in _runtime/fast
            continue
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")
        found |= {f"split.{module}:{name}" for name in _callers_of_the_pool(ast.parse(path.read_text()))}
    return found


def _callers_of_the_pool(tree: ast.AST) -> set[str]:
    names: set[str] = set()

    def visit(node: ast.AST, scope: list[str], in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = [*scope, child.name]
                is_function = not isinstance(child, ast.ClassDef)
                visit(child, [*inner, "<locals>"] if is_function else inner, is_function)
                continue
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and isinstance(child.func.value, ast.Name) and child.func.value.id == "parallel"
                    and child.func.attr in ("split", "over_ranges", "run") and in_function):
                names.add(".".join(scope[:-1]))
            visit(child, scope, in_function)

    visit(tree, [], False)
    return names


def _every_fast_path() -> set[str]:
    # nurinet's own GEMM is counted as "native.gemm" and "native.gemm_gathered" by nurinet._runtime.gemm,
    # not by the library wrapper; its two settings calls are no fast paths.
    kernels = set(compiled._SIGNATURES) - {"nn_sgemm", "nn_sgemm_gathered", "nn_gemm_set_spin", "nn_gemm_park"}
    paths = {f"native.{name}" for name in kernels} | _split_call_sites()
    if gemm.native_available():
        paths |= {"native.gemm", "native.gemm_gathered"}
    if blas.available():
        paths |= {f"blas.{name}.{dtype}" for name in ("axpby", "axpy") for dtype in ("float32", "float64")}
    if gemm.mkl_available():
        paths |= {"mkl.gemm", "mkl.gemm_batch"}
    return paths


@pytest.mark.skipif(not native.available(), reason=f"no native kernels here: {native.reason()}")
def test_every_fast_path_is_reached_by_a_registered_op() -> None:
    reached: Counter[str] = Counter()
    for provider in PROVIDERS:
        for overrides in VARIANTS.values():
            with np.errstate(all="ignore"), forced(provider=provider, **overrides), probe.counting() as counts:
                for spec in OPS:
                    with contextlib.suppress(Exception):  # an op that fails is reported by the test above
                        _run(spec, spec.sample(np.random.default_rng(3)))
            reached.update(counts)
    every = _every_fast_path()
    missing = sorted(every - set(reached) - set(UNREACHED))
    assert not missing, f"fast paths no registered op reaches in forced mode (a defect): {missing}"
    now_reached = sorted(set(UNREACHED) & set(reached))
    assert not now_reached, f"reached now: take them out of UNREACHED: {now_reached}"
    unknown = sorted(set(reached) - every)
    assert not unknown, f"fast paths the inventory does not know: {unknown}"


def test_the_probe_costs_nothing_when_off() -> None:
    assert probe.counts is None
    lib = native.library()
    assert lib is None or not isinstance(lib, probe.Counted)


# ----- optimizer updates: not ops of the registry, but fast paths all the same -----
OPTIMIZERS = {
    "sgd": lambda ps: nurinet.optim.SGD(ps, lr=0.1),
    "sgd_momentum": lambda ps: nurinet.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1),
    "sgd_momentum_nesterov": lambda ps: nurinet.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, dampening=0.0),
    "adam": lambda ps: nurinet.optim.Adam(ps, lr=0.01),
    "adam_amsgrad": lambda ps: nurinet.optim.Adam(ps, lr=0.01, amsgrad=True, weight_decay=0.01),
    "adamw": lambda ps: nurinet.optim.AdamW(ps, lr=0.01),
    "rmsprop": lambda ps: nurinet.optim.RMSprop(ps, lr=0.01, momentum=0.5),
    "nadam": lambda ps: nurinet.optim.NAdam(ps, lr=0.01),
    "adadelta": lambda ps: nurinet.optim.Adadelta(ps),
}
OPTIMIZER_PATHS = {"native.nn_adam_update", "split.nurinet._runtime.fast.optim:adam_update", "native.nn_sgd_momentum_update",
                   "blas.axpby.float32",
                   "blas.axpby.float64", "blas.axpy.float32", "blas.axpy.float64"}


def _optimize(make: Any, dtype: type) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    params = [nurinet.nn.Parameter(rng.standard_normal(shape).astype(dtype)) for shape in ((16, 12), (7,))]
    optimizer = make(params)
    for step in range(3):
        for p in params:
            p.grad = Tensor(np.random.default_rng(step).standard_normal(p.shape).astype(dtype))
        optimizer.step()
    return [p.array.copy() for p in params]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_forced_optimizer_updates_match_the_reference(name: str, dtype: type) -> None:
    with reference_only():
        want = _optimize(OPTIMIZERS[name], dtype)
    with forced():
        got = _optimize(OPTIMIZERS[name], dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol)


@pytest.mark.skipif(not (native.available() and blas.available()), reason="no native kernels or BLAS helpers here")
def test_the_optimizer_checks_reach_the_optimizer_fast_paths() -> None:
    with forced(), probe.counting() as counts:
        for make in OPTIMIZERS.values():
            for dtype in (np.float32, np.float64):
                _optimize(make, dtype)
    assert OPTIMIZER_PATHS <= set(counts), sorted(OPTIMIZER_PATHS - set(counts))
