"""The backward pass: reverse-mode differentiation over the recorded graph.

Nodes are visited from a heap ordered by generation (largest first), so every
node runs after all the nodes that consume its outputs, without recursion: a
chain of any length or a graph of any width back-propagates. Gradients arriving
at the same output are summed before its node runs; a gradient in a broadcast
shape is summed back to its input's shape here, once, for every op.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import Any

from nurinet.autograd import grad_mode
from nurinet.autograd.tensor import Tensor


class GradientError(RuntimeError):
    """A backward returned a gradient that does not fit its input."""


def run_backward(
    roots: Sequence[Tensor],
    grad_roots: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    capture: Sequence[Tensor] | None = None,
) -> list[Tensor | None] | None:
    """Back-propagate ``grad_roots`` from ``roots``.

    With ``capture=None`` the gradients of leaves are accumulated into their
    ``.grad``. With ``capture`` given, nothing is accumulated: the gradients of
    the captured tensors are returned, in order (``None`` for unreached ones).
    """
    with grad_mode.set_grad_enabled(create_graph):
        return _Pass(retain_graph, create_graph, capture).run(roots, grad_roots)


class _Pass:
    """One backward pass: its heap, its pending gradients, its visited nodes."""

    def __init__(self, retain_graph: bool, create_graph: bool, capture: Any) -> None:
        self.retain_graph = retain_graph
        self.create_graph = create_graph
        self.capture = capture
        self.captured: dict[int, Any] = {}
        if capture is not None:
            self.captured = {id(t): None for t in capture}
        self.heap: list[tuple[int, int, Any]] = []
        self.pending: dict[Any, list[Any]] = {}
        self.leaf_grads: dict[int, tuple[Tensor, Any]] = {}
        self.visited: list[Any] = []
        self.counter = 0

    def run(self, roots: Sequence[Tensor], grad_roots: Sequence[Tensor]) -> Any:
        for root, grad in zip(roots, grad_roots):
            self.send(root, grad)
        while self.heap:
            fn = heapq.heappop(self.heap)[2]
            self.step(fn)
        self.finish_leaves()
        if not self.retain_graph:
            for fn in self.visited:
                fn.release()
        if self.capture is not None:
            return [self.captured[id(t)] for t in self.capture]
        return None

    def send(self, tensor: Tensor, grad: Any) -> None:
        """Deliver one gradient contribution to ``tensor``."""
        fn = tensor.creator
        if fn is None:
            self.add_leaf_grad(tensor, grad)
            return
        slots = self.pending.get(fn)
        if slots is None:
            if fn.inputs is None:
                raise RuntimeError(
                    f"trying to back-propagate through op '{fn.name}' a second time, but its "
                    "graph was freed by the first backward. Pass retain_graph=True to the first "
                    "backward() (or to nurinet.grad) if you need to back-propagate twice."
                )
            slots = self.pending[fn] = [None] * len(fn.outputs)
            self.counter += 1
            heapq.heappush(self.heap, (-fn.generation, self.counter, fn))
        index = tensor.output_index
        slots[index] = grad if slots[index] is None else slots[index] + grad

    def add_leaf_grad(self, tensor: Tensor, grad: Any) -> None:
        key = id(tensor)
        entry = self.leaf_grads.get(key)
        self.leaf_grads[key] = (tensor, grad if entry is None else entry[1] + grad)

    def step(self, fn: Any) -> None:
        grads = self.pending.pop(fn)
        grads = [self.complete_output_grad(fn, i, g) for i, g in enumerate(grads)]
        self.visited.append(fn)
        result = fn.backward(*grads)
        if not isinstance(result, tuple):
            result = (result,)
        inputs = fn.inputs
        if len(result) != len(inputs):
            raise GradientError(
                f"op '{fn.name}' returned {len(result)} gradient(s) from backward, but it has "
                f"{len(inputs)} input(s): return one gradient (or None) per input"
            )
        for index, (x, gx) in enumerate(zip(inputs, result)):
            if gx is None or not x.requires_grad:
                continue
            self.send(x, check_gradient(fn, index, x, gx))

    def complete_output_grad(self, fn: Any, index: int, grad: Any) -> Any:
        """Fill a missing output gradient with zeros; run the output's hooks; capture it."""
        out = fn.outputs[index]()
        if grad is None:
            shape, dtype = fn.output_meta[index]
            xp = _xp_of(fn)
            grad = Tensor._wrap(xp.zeros(shape, dtype), False)
        if out is not None:
            grad = self.apply_hooks(out, grad)
            if out.retains_grad:
                out.grad = grad if self.create_graph else grad.detach()
            if id(out) in self.captured:
                self.captured[id(out)] = grad
        return grad

    def apply_hooks(self, tensor: Tensor, grad: Tensor) -> Tensor:
        for hook in tensor._hooks or ():
            changed = hook(grad)
            if changed is not None:
                grad = check_gradient_like(tensor, changed, "a hook registered on it")
        return grad

    def finish_leaves(self) -> None:
        owned: set[int] = set()
        for tensor, grad in self.leaf_grads.values():
            grad = self.apply_hooks(tensor, grad)
            if self.capture is not None:
                if id(tensor) in self.captured:
                    self.captured[id(tensor)] = grad
                continue
            if not self.create_graph:
                grad = Tensor._wrap(_unshared(grad.data, owned), False)
            tensor.grad = grad if tensor.grad is None else tensor.grad + grad


def _unshared(array: Any, owned: set[int]) -> Any:
    """Copy ``array`` if another leaf of this pass already holds its memory.

    Ops like ``add`` hand the same gradient array to both inputs; two leaves
    sharing one ``.grad`` buffer would corrupt each other under in-place edits
    (gradient clipping, say).
    """
    base = array if array.base is None else array.base
    if id(base) in owned:
        return array.copy()
    owned.add(id(base))
    return array


def _xp_of(fn: Any) -> Any:
    from nurinet.backend import get_array_module

    return get_array_module(fn.inputs[0].data) if fn.inputs else __import__("numpy")


def check_gradient(fn: Any, index: int, x: Tensor, gx: Any) -> Tensor:
    """Check the gradient an op returned for its input ``index``; undo broadcasting."""
    if not isinstance(gx, Tensor):
        gx = Tensor._wrap(gx, False) if hasattr(gx, "shape") else _bad_type(fn, index, gx)
    if gx.data.shape != x.data.shape:
        gx = _sum_back(fn, index, x, gx)
    if gx.data.dtype != x.data.dtype:
        raise GradientError(
            f"op '{fn.name}' returned a gradient of dtype {gx.data.dtype} for its input {index} "
            f"of dtype {x.data.dtype}: a gradient must have its input's dtype "
            "(cast it with .astype in backward)"
        )
    return gx


def check_gradient_like(tensor: Tensor, grad: Any, where: str) -> Tensor:
    if not isinstance(grad, Tensor):
        grad = Tensor._wrap(grad, False)
    if grad.data.shape != tensor.data.shape or grad.data.dtype != tensor.data.dtype:
        raise GradientError(
            f"{where} returned a gradient of shape {grad.data.shape} and dtype {grad.data.dtype} "
            f"for a tensor of shape {tensor.data.shape} and dtype {tensor.data.dtype}"
        )
    return grad


def _bad_type(fn: Any, index: int, gx: Any) -> Tensor:
    raise GradientError(
        f"op '{fn.name}' returned {type(gx).__name__} as the gradient of its input {index}: "
        "backward must return Tensors (or None)"
    )


def _sum_back(fn: Any, index: int, x: Tensor, gx: Tensor) -> Tensor:
    """Sum a gradient in a broadcast shape back to its input's shape."""
    from nurinet.autograd.broadcast import broadcasts_to, sum_to

    if not broadcasts_to(x.data.shape, gx.data.shape):
        raise GradientError(
            f"op '{fn.name}' returned a gradient of shape {gx.data.shape} for its input {index} "
            f"of shape {x.data.shape}: the shapes must match (or the gradient's shape must be "
            "one the input broadcasts to)"
        )
    return sum_to(gx, x.data.shape)


def backward(
    tensors: Tensor | Iterable[Tensor],
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
) -> None:
    """Accumulate into ``.grad`` of the leaves the gradient of ``tensors``."""
    roots = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    grads = _root_grads(roots, grad_tensors)
    run_backward(roots, grads, _retain(retain_graph, create_graph), create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    create_graph: bool = False,
    retain_graph: bool | None = None,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    Args:
        outputs: Tensor(s) to differentiate.
        inputs: Tensor(s) to differentiate with respect to (leaves or not).
        grad_outputs: The vector(s) of the vector-Jacobian product; ``None`` means
            ones for scalar outputs.
        create_graph: Record the backward pass too, for higher-order gradients.
        retain_graph: Keep the graph for another backward; defaults to ``create_graph``.
        allow_unused: Return ``None`` for an input the outputs do not depend on
            instead of raising.

    Returns:
        One gradient per input.
    """
    roots = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    targets = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for t in targets:
        if not t.requires_grad:
            raise RuntimeError(
                "nurinet.grad: one of the inputs does not require a gradient "
                f"(shape {t.shape}); create it with requires_grad=True"
            )
    grads = _root_grads(roots, grad_outputs)
    found = run_backward(roots, grads, _retain(retain_graph, create_graph), create_graph, targets)
    if not allow_unused and any(g is None for g in found):
        missing = [i for i, g in enumerate(found) if g is None]
        raise RuntimeError(
            f"nurinet.grad: input(s) {missing} were not used to compute the outputs; "
            "pass allow_unused=True to get None for them"
        )
    return tuple(found)


def _retain(retain_graph: bool | None, create_graph: bool) -> bool:
    return create_graph if retain_graph is None else bool(retain_graph)


def _root_grads(roots: list[Tensor], grad_tensors: Any) -> list[Tensor]:
    if grad_tensors is None:
        grad_tensors = [None] * len(roots)
    elif not isinstance(grad_tensors, (list, tuple)):
        grad_tensors = [grad_tensors]
    if len(grad_tensors) != len(roots):
        raise ValueError(
            f"got {len(grad_tensors)} gradient(s) for {len(roots)} output tensor(s): give one per output"
        )
    return [_root_grad(root, g) for root, g in zip(roots, grad_tensors)]


def _root_grad(root: Tensor, grad: Any) -> Tensor:
    if not root.requires_grad:
        raise RuntimeError(
            f"backward on a tensor (shape {root.shape}) that does not require a gradient and has "
            "no graph: create the inputs with requires_grad=True, and do not compute it under no_grad"
        )
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward on a non-scalar tensor of shape {root.shape} needs a gradient: a "
                "gradient can be implied only for a one-element output. Pass gradient= "
                "(a tensor of the output's shape), or reduce the output first, e.g. y.sum().backward()"
            )
        xp = root.xp
        return Tensor._wrap(xp.ones(root.data.shape, root.data.dtype), False)
    grad = grad if isinstance(grad, Tensor) else Tensor(grad, dtype=root.dtype)
    if grad.shape != root.shape:
        raise RuntimeError(
            f"the gradient given to backward has shape {grad.shape} but the output has shape "
            f"{root.shape}: they must match"
        )
    return grad
