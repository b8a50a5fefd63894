"""Forward values and input gradients of the core ops against PyTorch, in float64.

Every entry of tests/op_db.OPS built from the core op modules (arithmetic,
elementwise, reduction, shape, indexing, linalg and the broadcast primitives)
is either mapped to a PyTorch callable in :data:`TORCH_OPS` or listed in
:data:`NO_TORCH_COUNTERPART` with the reason; a test enforces this, so a new
core op cannot skip the comparison silently. Activation and loss entries have
their own parity file.

Each comparison feeds the same float64 inputs to both libraries, back-propagates
the same random upstream gradient through every output, and compares the
outputs and every input gradient.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import nurinet
from nurinet import Tensor
from tests.op_db import OPS, TAKE_IDX, OpSpec

torch = pytest.importorskip("torch")
TF = torch.nn.functional

pytestmark = pytest.mark.torch

# Modules whose ops this file must cover; entries made of ops from other modules
# (activations, losses, ...) are compared in their own parity files.
CORE_MODULES = (
    "nurinet.autograd.broadcast",
    "nurinet.functional.arithmetic",
    "nurinet.functional.elementwise",
    "nurinet.functional.indexing",
    "nurinet.functional.linalg",
    "nurinet.functional.reduction",
    "nurinet.functional.shape",
)

WHERE_MASK = [[True, False, True]]


def _where(a: Any, b: Any) -> Any:
    return torch.where(torch.tensor(WHERE_MASK), a, b)


def _take(x: Any) -> Any:
    return torch.take_along_dim(x, torch.from_numpy(TAKE_IDX), dim=1)


# Spec name -> the same computation in PyTorch (taking and returning torch tensors).
TORCH_OPS: dict[str, Callable[..., Any]] = {
    # arithmetic
    "add": torch.add,
    "add_broadcast_both": torch.add,
    "sub": torch.sub,
    "mul": torch.mul,
    "div": torch.div,
    "neg": torch.neg,
    "add_scalar": lambda x: 1.5 + x - 0.25,
    "mul_scalar": lambda x: x * 3.0 * 0.5,
    "pow_scalar": lambda x: torch.pow(x, 3.0),
    "pow_square": lambda x: torch.pow(x, 2),
    "pow_tensor": torch.pow,
    "rpow_scalar": lambda x: torch.pow(2.0, x),
    # elementwise
    "exp": torch.exp,
    "log": torch.log,
    "log1p": torch.log1p,
    "expm1": torch.expm1,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "sign": torch.sign,
    "clip": lambda x: torch.clamp(x, -1.0, 1.0),
    "maximum": torch.maximum,
    "minimum": torch.minimum,
    "where": _where,
    "sin": torch.sin,
    "cos": torch.cos,
    "tanh": torch.tanh,
    "astype_roundtrip": lambda x: x.to(torch.float32).to(torch.float64) * 1.0,
    # reductions
    "sum_all": torch.sum,
    "sum_axis": lambda x: torch.sum(x, dim=(0, 2)),
    "sum_keepdims": lambda x: torch.sum(x, dim=1, keepdim=True),
    "mean": lambda x: torch.mean(x, dim=-1),
    "var": lambda x: torch.var(x, dim=0, correction=0),
    "std_ddof1": lambda x: torch.std(x, dim=1, correction=1),
    "max_axis": lambda x: x.max(dim=1).values,
    "min_all": torch.min,
    "logsumexp": lambda x: torch.logsumexp(x, dim=1),
    "prod": lambda x: torch.prod(x, dim=0),
    "cumsum": lambda x: torch.cumsum(x, dim=1),
    # shape
    "reshape": lambda x: torch.reshape(x, (4, -1)),
    "permute": lambda x: torch.permute(x, (2, 0, 1)),
    "transpose": lambda x: torch.transpose(x, 0, 2),
    "clone": torch.clone,
    "swapaxes": lambda x: torch.swapaxes(x, 0, 2),
    "squeeze": lambda x: torch.squeeze(x, 1),
    "unsqueeze": lambda x: torch.unsqueeze(x, -1),
    "flatten": lambda x: torch.flatten(x, 1),
    "broadcast_to": lambda x: torch.broadcast_to(x, (2, 3, 4)),
    "concatenate": lambda a, b: torch.cat([a, b], dim=1),
    "stack": lambda a, b: torch.stack([a, b], dim=1),
    "split": lambda x: torch.tensor_split(x, [1, 3], dim=1),  # split *indices*, as NumPy's
    # torch's pad lists (before, after) from the last dim backwards.
    "pad": lambda x: TF.pad(x, (2, 1, 1, 0), value=0.5),
    "repeat": lambda x: torch.repeat_interleave(x, 3, dim=1),
    "tile": lambda x: torch.tile(x, (2, 1, 3)),
    "flip": lambda x: torch.flip(x, (0,)),
    # indexing
    "getitem_basic": lambda x: x[1:, ::2, None, 0],
    "getitem_repeated": lambda x: x[[0, 2, 0, 0]],
    "getitem_bool": lambda x: x[torch.tensor([True, False, True])],
    "getitem_pairs": lambda x: x[torch.tensor([0, 1, 1]), torch.tensor([2, 0, 2])],
    "take_along_axis": _take,
    # linear algebra
    "matmul": torch.matmul,
    "matmul_batched_broadcast": torch.matmul,
    "matmul_vector": torch.matmul,
    "matmul_vec_vec": torch.matmul,
    "linear": TF.linear,
    "linear_3d_nobias": TF.linear,
    "linear_relu": lambda x, w, b: torch.relu(TF.linear(x, w, b)),
    "linear_relu_3d_nobias": lambda x, w: torch.relu(TF.linear(x, w)),
    "einsum_bmm": lambda a, b: torch.einsum("bij,bjk->bik", a, b),
    "einsum_outer_sum": lambda a, b: torch.einsum("ij,k->ik", a, b),
    "einsum_implicit": lambda a, b: torch.einsum("ij,jk", a, b),
}

# Spec name -> why it has no PyTorch counterpart to compare with. Every core op in
# the registry today has one; an op that PyTorch lacks goes here with its reason.
NO_TORCH_COUNTERPART: dict[str, str] = {
    "conv2d_reference": "slow oracle built from core ops; the fast conv2d is compared with "
                        "torch in tests/test_conv_torch.py and with this oracle in tests/test_conv.py",
    "conv_transpose2d_reference": "slow oracle built from core ops; the fast conv_transpose2d is "
                                  "compared with torch in tests/test_conv_torch.py",
}


def _traced_functions(spec: OpSpec) -> set[type]:
    """The Function classes a composite entry (``functions=()``) actually records."""
    arrays = spec.sample(np.random.default_rng(0))
    outputs = _as_list(spec.fn(*[Tensor(a, requires_grad=True) for a in arrays]))
    found: set[type] = set()
    todo = [y.creator for y in outputs if y.creator is not None]
    while todo:
        fn = todo.pop()
        if type(fn) not in found:
            found.add(type(fn))
            todo.extend(x.creator for x in fn.inputs if x.creator is not None)
    return found


def _wrapper_modules(fn: Callable[..., Any]) -> set[str]:
    """Modules of the nurinet.functional wrappers an entry's ``fn`` calls.

    ``fn`` is a wrapper itself (``F.mse_loss``) or a lambda calling some
    (``lambda x: F.hardtanh(x, -0.5, 1.2)``): then its code names them.
    """
    module = getattr(fn, "__module__", None) or ""
    if module.startswith("nurinet."):
        return {module}
    found, todo = set(), [fn.__code__] if hasattr(fn, "__code__") else []
    while todo:
        code = todo.pop()
        for name in code.co_names:
            target = getattr(nurinet.functional, name, None)
            if callable(target) and (getattr(target, "__module__", None) or "").startswith("nurinet."):
                found.add(target.__module__)
        todo.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return found


def _is_core(spec: OpSpec) -> bool:
    """An entry of the core op modules: its ops and the wrappers it calls all come from them.

    Activations and losses built from core ops (``hardtanh`` records ``Clip``)
    belong to their own parity file: their wrappers live in other modules.
    """
    classes = set(spec.functions) or _traced_functions(spec)
    modules = {cls.__module__ for cls in classes} | _wrapper_modules(spec.fn)
    return bool(classes) and modules <= set(CORE_MODULES)


def _as_list(result: Any) -> list[Any]:
    return list(result) if isinstance(result, (tuple, list)) else [result]


COMPARED = [spec for spec in OPS if spec.name in TORCH_OPS]


def test_every_core_op_is_compared_or_excused() -> None:
    core = {spec.name for spec in OPS if _is_core(spec)}
    missing = sorted(core - set(TORCH_OPS) - set(NO_TORCH_COUNTERPART))
    assert not missing, (
        f"op_db entries with no PyTorch comparison: {missing}. Add each to TORCH_OPS in "
        "tests/test_torch_parity_ops.py, or to NO_TORCH_COUNTERPART with the reason"
    )


def test_table_names_exist_in_registry() -> None:
    names = {spec.name for spec in OPS}
    stale = sorted((set(TORCH_OPS) | set(NO_TORCH_COUNTERPART)) - names)
    assert not stale, f"names in the parity tables with no op_db entry (renamed or removed?): {stale}"
    both = sorted(set(TORCH_OPS) & set(NO_TORCH_COUNTERPART))
    assert not both, f"entries both compared and excused: {both}"


@pytest.mark.parametrize("spec", COMPARED, ids=[s.name for s in COMPARED])
def test_forward_and_gradients_match_torch(spec: OpSpec) -> None:
    rng = np.random.default_rng(7)
    arrays = spec.sample(rng)
    wanted = set(spec.grad_inputs if spec.grad_inputs is not None else range(len(arrays)))

    ours = [Tensor(a.copy(), requires_grad=i in wanted) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in wanted) for i, a in enumerate(arrays)]
    ys = _as_list(spec.fn(*ours))
    ts = _as_list(TORCH_OPS[spec.name](*theirs))
    assert len(ys) == len(ts), f"{spec.name}: {len(ys)} output(s) vs torch's {len(ts)}"
    for y, t in zip(ys, ts):
        assert y.dtype == np.float64
        np.testing.assert_allclose(y.array, t.detach().numpy(), rtol=1e-10, atol=1e-12)

    upstream = [rng.standard_normal(y.shape) for y in ys]
    nurinet.autograd.backward(ys, [Tensor(g) for g in upstream])
    torch.autograd.backward(ts, [torch.from_numpy(g) for g in upstream])
    for i, (x, t) in enumerate(zip(ours, theirs)):
        if i not in wanted:
            continue
        assert x.grad is not None, f"{spec.name}: input {i} got no gradient"
        assert x.grad.shape == x.shape
        np.testing.assert_allclose(x.grad.array, t.grad.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=f"{spec.name}: gradient of input {i}")
