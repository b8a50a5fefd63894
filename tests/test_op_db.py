"""Generic checks over every op in the registry (tests/op_db.py)."""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import nurinet
from nurinet import Function, Tensor
from nurinet.autograd.gradcheck import gradcheck, gradgradcheck
from tests.op_db import (
    _COMMON,
    _PART,
    BACKWARD_ARRAYS_PENDING,
    HOT_BACKWARD_ARRAYS,
    NAN_REFUSED,
    NAN_SPREADS,
    NOT_REGISTERED,
    OPS,
    OpSpec,
)

IDS = [spec.name for spec in OPS]


def _outputs(result):
    return list(result) if isinstance(result, (tuple, list)) else [result]


def _inputs(spec: OpSpec, arrays, dtype=np.float64, grad=True):
    wanted = spec.grad_inputs if spec.grad_inputs is not None else range(len(arrays))
    return [Tensor(a.astype(dtype), requires_grad=grad and i in wanted) for i, a in enumerate(arrays)]


def _noncontiguous(a: np.ndarray) -> np.ndarray:
    """The same values as a strided (non-contiguous) view."""
    holder = np.empty(a.shape + (2,), dtype=a.dtype)
    holder[..., 0] = a
    return holder[..., 0]


@pytest.mark.parametrize("spec", OPS, ids=IDS)
def test_forward_matches_reference(spec: OpSpec) -> None:
    arrays = spec.sample(np.random.default_rng(0))
    got = _outputs(spec.fn(*_inputs(spec, arrays, grad=False)))
    want = _outputs(spec.reference(*[a.copy() for a in arrays]))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == np.shape(w)
        np.testing.assert_allclose(g.array, w, atol=spec.atol, rtol=1e-7)


@pytest.mark.parametrize("spec", OPS, ids=IDS)
def test_gradcheck(spec: OpSpec) -> None:
    arrays = spec.sample(np.random.default_rng(1))
    assert gradcheck(spec.fn, _inputs(spec, arrays), eps=spec.eps, mode="full")
    assert gradcheck(spec.fn, _inputs(spec, arrays), eps=spec.eps, mode="fast")


@pytest.mark.parametrize("spec", [s for s in OPS if s.gradgrad], ids=[s.name for s in OPS if s.gradgrad])
def test_gradgradcheck(spec: OpSpec) -> None:
    arrays = spec.sample(np.random.default_rng(2))
    assert gradgradcheck(spec.fn, _inputs(spec, arrays), eps=spec.eps, mode="fast")


@pytest.mark.parametrize("spec", OPS, ids=IDS)
def test_float32_stays_float32(spec: OpSpec) -> None:
    if "changes_dtype" in spec.tags:
        pytest.skip("this op changes the dtype on purpose")
    arrays = spec.sample(np.random.default_rng(3))
    inputs = _inputs(spec, arrays, dtype=np.float32)
    outputs = _outputs(spec.fn(*inputs))
    for y in outputs:
        assert y.dtype == np.float32, f"{spec.name} turned float32 into {y.dtype}"
    differentiable = [y for y in outputs if y.requires_grad]
    if differentiable:
        nurinet.autograd.backward(differentiable, [nurinet.ones_like(y) for y in differentiable])
    for x in inputs:
        if x.requires_grad and x.grad is not None:
            assert x.grad.dtype == np.float32, f"{spec.name}: float32 input got a {x.grad.dtype} gradient"


@pytest.mark.parametrize("spec", OPS, ids=IDS)
def test_noncontiguous_inputs(spec: OpSpec) -> None:
    arrays = spec.sample(np.random.default_rng(4))
    strided = [_noncontiguous(a) for a in arrays]
    want = _outputs(spec.fn(*_inputs(spec, arrays, grad=False)))
    got = _outputs(spec.fn(*[Tensor(a) for a in strided]))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g.array, w.array, atol=1e-12)
    assert gradcheck(spec.fn, [Tensor(a, requires_grad=True) for a in strided], eps=spec.eps,
                     mode="fast")


def _all_function_classes() -> set[type]:
    for module in pkgutil.walk_packages(nurinet.__path__, "nurinet."):
        importlib.import_module(module.name)
    found, todo = set(), [Function]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if "forward" in sub.__dict__ and sub.__module__.startswith("nurinet."):
                found.add(sub)
    return found


def test_every_function_is_registered() -> None:
    registered = {cls for spec in OPS for cls in spec.functions} | set(NOT_REGISTERED)
    missing = sorted(c.__qualname__ for c in _all_function_classes() - registered)
    assert not missing, f"Function subclasses with no entry in tests/op_db.py: {missing}"


FAST = [s for s in OPS if any(getattr(c, "backward_arrays", None) is not None for c in s.functions)]


@pytest.mark.parametrize("spec", FAST, ids=[s.name for s in FAST])
def test_backward_arrays_matches_backward(spec: OpSpec) -> None:
    """The array fast path of backward gives exactly what the Tensor backward gives."""
    arrays = spec.sample(np.random.default_rng(5))
    inputs = _inputs(spec, arrays)
    outputs = [y for y in _outputs(spec.fn(*inputs)) if y.requires_grad]
    rng = np.random.default_rng(6)
    upstream = [Tensor(rng.standard_normal(y.shape)) for y in outputs]
    targets = [x for x in inputs if x.requires_grad]
    fast = nurinet.grad(outputs, targets, upstream, retain_graph=True, allow_unused=True)
    slow = nurinet.grad(outputs, targets, upstream, create_graph=True, allow_unused=True)
    for f, s in zip(fast, slow):
        assert (f is None) == (s is None)
        if f is not None:
            np.testing.assert_allclose(f.array, s.array, rtol=1e-12, atol=1e-12)


def _defines_backward_arrays() -> dict[str, type]:
    """The Function classes that define a ``backward_arrays`` of their own (not inherited), by name."""
    _all_function_classes()  # imports every module, so every subclass exists
    found, todo = {}, [Function]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__dict__.get("backward_arrays") is not None and cls.__module__.startswith("nurinet."):
            found[cls.__qualname__] = cls
    return found


def test_backward_arrays_only_on_hot_ops() -> None:
    """A second, array-level gradient only where a benchmark justifies it (tests/op_db.py's HOT list).

    Each one is a formula to keep in step with ``backward``; a new op adds one only with an entry in
    ``HOT_BACKWARD_ARRAYS`` naming its benchmark, and a docstring line "backward_arrays: <why>".
    """
    defined = _defines_backward_arrays()
    allowed = HOT_BACKWARD_ARRAYS.keys() | BACKWARD_ARRAYS_PENDING.keys()
    assert not sorted(defined.keys() - allowed), (
        f"ops with backward_arrays outside HOT_BACKWARD_ARRAYS (tests/op_db.py): {sorted(defined.keys() - allowed)}; "
        "delete it, or add the op with the benchmark that shows it matters")
    assert not sorted(allowed - defined.keys()), f"stale entries (no backward_arrays): {sorted(allowed - defined.keys())}"
    undocumented = [name for name in HOT_BACKWARD_ARRAYS if "backward_arrays:" not in (defined[name].__doc__ or "")]
    assert not undocumented, f"hot ops whose docstring does not say why (backward_arrays: ...): {undocumented}"


def test_hot_ops_run_in_their_benchmarks() -> None:
    """Each HOT entry that names a benchmark is an op whose backward runs in some benchmark's step."""
    from benchmarks.backward_census import census

    ran = {op for calls in census().values() for op, _ in calls}
    claimed = {name for name, why in HOT_BACKWARD_ARRAYS.items() if not why.startswith((_COMMON, _PART))}
    assert not sorted(claimed - ran), f"HOT entries whose op runs in no benchmark: {sorted(claimed - ran)}"


def _nan_positions(shape: tuple[int, ...], rng: np.random.Generator, count: int = 3) -> list[tuple[int, ...]]:
    """The first and last positions of an input and a few random ones (all of them when it is small)."""
    size = int(np.prod(shape))
    if size <= count + 2:
        flat = range(size)
    else:
        flat = sorted({0, size - 1, *rng.choice(size, count, replace=False).tolist()})
    return [np.unravel_index(i, shape) for i in flat]


@pytest.mark.parametrize("spec", OPS, ids=IDS)
def test_nan_reaches_only_what_the_reference_reaches(spec: OpSpec) -> None:
    """One NaN at one input position may only make non-finite the outputs that the reference makes so.

    A dense product with a constant matrix (as resizing and adaptive pooling once were) multiplies
    every input by the zeros of the other rows and spreads one NaN over a whole channel.
    """
    if spec.name in NAN_SPREADS:
        pytest.skip(NAN_SPREADS[spec.name])
    rng = np.random.default_rng(7)
    arrays = spec.sample(rng)
    for i, array in enumerate(arrays):
        for position in _nan_positions(array.shape, rng):
            poisoned = [a.copy() for a in arrays]
            poisoned[i][position] = np.nan
            with np.errstate(all="ignore"):
                try:
                    got = _outputs(spec.fn(*[Tensor(a) for a in poisoned]))
                except ValueError:
                    if spec.name in NAN_REFUSED:  # a clear refusal, as PyTorch's
                        continue
                    raise
                want = _outputs(spec.reference(*[a.copy() for a in poisoned]))
            for k, (g, w) in enumerate(zip(got, want)):
                extra = ~np.isfinite(g.array) & np.isfinite(np.asarray(w))
                assert not extra.any(), (
                    f"{spec.name}: a NaN at input {i}, position {position} reached {int(extra.sum())} "
                    f"output(s) of output {k} that the reference leaves finite")
