"""The optimizer base class: parameter groups, per-parameter state, saving and loading.

An optimizer holds ``param_groups`` (a list of dicts: ``"params"`` and that
group's hyperparameters) and ``state``, the per-parameter buffers (moments,
momentum, step counts). State is created lazily on a parameter's first step and
is keyed by the parameter's *position* ``(group_index, index_in_group)``, never
by ``id(param)``, so ``state_dict()`` is plain data that loads into a fresh
optimizer built over the same parameters in the same order.

A subclass supplies ``_validate(group)`` (check its hyperparameters) and
``_update(p, g, state, group)`` (update one parameter array ``p`` in place from
its gradient array ``g``). Updates work on the raw ``.array`` arrays, so nothing
is recorded in the graph, and use in-place array ops (``out=``, ``*=``) with
scratch buffers reused from step to step, so a step allocates almost nothing
and float32 parameters stay float32. ``step`` raises each updated parameter's
version counter once (see :mod:`nurinet.autograd.versions`), so a backward
through a graph built before the step raises instead of using the new values.
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nurinet import backend
from nurinet._runtime import blas
from nurinet.autograd.grad_mode import enable_grad
from nurinet.autograd.tensor import Tensor
from nurinet.autograd.versions import increment_version

Position = tuple[int, int]
ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Base class of all optimizers.

    The contract has two levels. A per-parameter method (SGD, Adam, ...) writes ``_validate``
    and ``_update(p, g, state, group)``, and the base class's ``step`` walks the parameters.
    A method that needs the whole parameter vector and several evaluations of the loss per
    step (line search, L-BFGS, conjugate gradient, Hessian-free: see ``batch_optimizer.py``)
    overrides ``step(closure)`` itself and sets ``needs_closure = True``; ``Model.fit`` then
    gives it a closure over the batch (the whole training set by default).

    Args:
        params: An iterable of Tensors (usually ``model.parameters()``), or of
            dicts that each hold ``"params"`` (Tensors) and hyperparameters that
            override the defaults for that group.
        defaults: The hyperparameters (``lr``, ...) a group gets when it does
            not set them itself.
    """

    needs_closure = False  # True for methods that evaluate the loss several times per step

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__} expects an iterable of Tensors or of param-group dicts, "
                "got a single Tensor; pass a list: [param]"
            )
        self.defaults = dict(defaults)
        self._validate(self.defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Position, dict[str, Any]] = {}
        self._scratch_buffers: dict[tuple, Any] = {}
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----- what a subclass provides --------------------------------------------------
    def _validate(self, group: dict[str, Any]) -> None:
        """Raise a ValueError naming the argument and its value if a hyperparameter is bad."""
        raise NotImplementedError

    def _update(self, p: Any, g: Any, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Update the parameter array ``p`` in place from its gradient array ``g``."""
        raise NotImplementedError

    # ----- parameter groups ------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (fine-tuning, new layers).

        Hyperparameters the group leaves out are taken from the optimizer's defaults.
        """
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(
                "a parameter group must be a dict with a 'params' entry, "
                f"got {type(param_group).__name__}"
            )
        index = len(self.param_groups)
        unknown = sorted(set(param_group) - set(self.defaults) - {"params", "name"})
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: parameter group {index} has unknown hyperparameter(s) "
                f"{unknown}; known ones are {sorted(self.defaults)}"
            )
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        self._check_params(params, index)
        group = {**self.defaults, **param_group, "params": params}
        try:
            self._validate(group)
        except ValueError as error:
            raise ValueError(f"{error} (in parameter group {index})") from None
        self.param_groups.append(group)

    def _check_params(self, params: list[Any], index: int) -> None:
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        for i, p in enumerate(params):
            where = f"parameter {i} of group {index}"
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__} can only optimize Tensors, but {where} is a "
                    f"{type(p).__name__}"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"{type(self).__name__} cannot optimize {where}: it is not a leaf tensor "
                    f"(it was computed by op '{p.creator.name}'); optimize the tensor it came from"
                )
            if p.array.dtype.kind != "f":
                raise TypeError(
                    f"{type(self).__name__} can only optimize floating-point tensors, but {where} "
                    f"has dtype {p.array.dtype}"
                )
            if id(p) in seen:
                raise ValueError(
                    f"{type(self).__name__}: {where} appears more than once in the optimizer; "
                    "each parameter may belong to one group only"
                )
            seen.add(id(p))

    # ----- the step ----------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of all parameters.

        Args:
            set_to_none: Drop the gradients (``p.grad = None``, the default:
                frees memory, and a parameter with no gradient is skipped by
                ``step``) instead of filling them with zeros.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                elif p.grad.creator is not None:  # a graph gradient (create_graph=True): detach it
                    p.grad = Tensor._wrap(backend.get_array_module(p.array).zeros_like(p.array), False)
                else:
                    p.grad.array.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; parameters whose ``grad`` is None are skipped.

        Args:
            closure: Optional function that clears the gradients, recomputes the
                loss, calls ``backward`` and returns the loss; it is called
                (with graph recording on) before the update.

        Returns:
            The closure's loss, or None without a closure.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        updated = []
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                g = p.grad.array
                if g.shape != p.array.shape:
                    raise ValueError(
                        f"{type(self).__name__}: parameter {pi} of group {gi} has shape "
                        f"{p.array.shape} but its gradient has shape {g.shape}"
                    )
                state = self.state.get((gi, pi))
                if state is None:
                    state = self.state[(gi, pi)] = {}
                self._update(p.array, g, state, group)
                updated.append(p)
        if updated:  # a graph that used the old values can no longer back-propagate (the GAN mistake)
            increment_version(updated)
        return loss

    # ----- helpers for the updates ---------------------------------------------------------
    def _scratch(self, like: Any, slot: str) -> Any:
        """A work array shaped like ``like``, reused from step to step (never kept in state)."""
        key = (slot, like.shape, like.dtype, backend.device_of(like))
        buffer = self._scratch_buffers.get(key)
        if buffer is None:
            buffer = backend.get_array_module(like).empty(like.shape, like.dtype)
            self._scratch_buffers[key] = buffer
        return buffer

    @staticmethod
    def _buffer(state: dict[str, Any], name: str, like: Any, fill: float = 0.0) -> Any:
        """The state array ``name``, created (filled with ``fill``) on first use."""
        buffer = state.get(name)
        if buffer is None:
            buffer = backend.get_array_module(like).full(like.shape, fill, like.dtype)
            state[name] = buffer
        return buffer

    def _grad(self, p: Any, g: Any, weight_decay: float, maximize: bool = False) -> Any:
        """The gradient the update uses: ``-g`` when maximizing, plus ``weight_decay * p`` (L2).

        Never edits ``g`` (the parameter's ``.grad``): a changed gradient goes to a
        scratch array.
        """
        xp = backend.get_array_module(p)
        if not weight_decay:
            return xp.negative(g, out=self._scratch(p, "grad")) if maximize else g
        out = xp.multiply(p, weight_decay, out=self._scratch(p, "grad"))
        if maximize:
            out -= g
        else:
            out += g
        return out

    # ----- checks used by the subclasses' _validate -----------------------------------------
    def _number(self, group: dict[str, Any], name: str) -> float:
        value = group[name]
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(
                f"{type(self).__name__}: {name} must be a number, got {name}={value!r}"
            )
        return float(value)

    def _check_non_negative(self, group: dict[str, Any], *names: str) -> None:
        for name in names:
            if not self._number(group, name) >= 0.0:  # `not >=` also rejects NaN
                raise ValueError(
                    f"{type(self).__name__}: invalid {name}={group[name]!r}: it must be >= 0"
                )

    def _check_fraction(self, group: dict[str, Any], name: str, closed: bool = True) -> None:
        """Check ``0 <= value <= 1`` (``closed``) or ``0 <= value < 1``."""
        value = self._number(group, name)
        if not (0.0 <= value <= 1.0 if closed else 0.0 <= value < 1.0):
            interval = "[0, 1]" if closed else "[0, 1)"
            raise ValueError(
                f"{type(self).__name__}: invalid {name}={group[name]!r}: it must lie in {interval}"
            )

    def _check_betas(self, group: dict[str, Any]) -> None:
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(
                f"{type(self).__name__}: betas must be a pair (beta1, beta2), got betas={betas!r}"
            )
        for i, beta in enumerate(betas):
            self._check_fraction({f"betas[{i}]": beta}, f"betas[{i}]", closed=False)

    # ----- saving and loading ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as plain data (a copy).

        Returns:
            ``{"state": {(group_index, index_in_group): {name: ndarray | number}},
            "param_groups": [{hyperparameter: value, ..., "params": [0, 1, ...]}]}``:
            arrays are NumPy copies (taken off the GPU if needed); each group's
            ``"params"`` lists the positions of its parameters.
        """
        groups = []
        for group in self.param_groups:
            saved = copy.deepcopy({k: v for k, v in group.items() if k != "params"})
            saved["params"] = list(range(len(group["params"])))
            groups.append(saved)
        state = {
            position: {name: _export(value) for name, value in values.items()}
            for position, values in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` (hyperparameters and buffers).

        The optimizer must hold the same number of groups, each with as many
        parameters of the same shapes, in the same order as when it was saved.
        Arrays are copied onto each parameter's device and, when floating
        point, into its dtype.
        """
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError(
                "load_state_dict expects the dict returned by state_dict(), with 'state' and "
                f"'param_groups' entries; got {type(state_dict).__name__}"
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"the loaded state dict has {len(saved_groups)} parameter group(s), but this "
                f"{type(self).__name__} has {len(self.param_groups)}"
            )
        new_groups = []
        for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"parameter group {gi} of the loaded state dict has {len(saved['params'])} "
                    f"parameter(s), but this {type(self).__name__}'s group {gi} has "
                    f"{len(group['params'])}"
                )
            hyper = copy.deepcopy({k: v for k, v in saved.items() if k != "params"})
            new_group = {**self.defaults, **hyper, "params": group["params"]}
            self._validate(new_group)
            new_groups.append(new_group)
        new_state = {}
        for position, values in state_dict["state"].items():
            gi, pi = self._position(position)
            p = self.param_groups[gi]["params"][pi].array
            new_state[(gi, pi)] = {
                name: self._import(value, p, f"state {name!r} of parameter {pi} of group {gi}")
                for name, value in values.items()
            }
        self.param_groups = new_groups
        self.state = new_state

    def _position(self, position: Any) -> Position:
        ok = isinstance(position, (tuple, list)) and len(position) == 2
        if ok:
            gi, pi = (int(i) for i in position)
            ok = 0 <= gi < len(self.param_groups) and 0 <= pi < len(self.param_groups[gi]["params"])
        if not ok:
            raise ValueError(
                f"the loaded state dict has state for position {position!r}, which is not a "
                f"(group_index, index_in_group) pair of this {type(self).__name__}"
            )
        return gi, pi

    @staticmethod
    def _import(value: Any, p: Any, where: str) -> Any:
        if isinstance(value, np.generic):
            return value.item()  # a NumPy float64 scalar would promote float32 updates
        if not (isinstance(value, np.ndarray) or backend.is_cupy_array(value)):
            return copy.deepcopy(value)
        if value.shape != p.shape:
            raise ValueError(
                f"the loaded {where} has shape {value.shape}, but the parameter has shape {p.shape}"
            )
        value = backend.to_device(value, backend.device_of(p))
        dtype = p.dtype if value.dtype.kind == "f" else value.dtype
        return value.astype(dtype, copy=True)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join([*lines, ")"])


def _export(value: Any) -> Any:
    """A state value as plain data: a NumPy copy of an array, numbers as they are."""
    if isinstance(value, np.ndarray) or backend.is_cupy_array(value):
        return np.array(backend.to_numpy(value), copy=True)
    return copy.deepcopy(value)


# ----- in-place moment updates shared by the algorithms ---------------------------------------
def add_square_(acc: Any, x: Any, scale: float, tmp: Any) -> Any:
    """``acc += scale * x * x`` in place, with ``tmp`` (shaped like ``acc``) as work space."""
    backend.get_array_module(acc).multiply(x, x, out=tmp)
    if not blas.axpy(scale, tmp, acc):  # one pass instead of two where the BLAS can
        tmp *= scale
        acc += tmp
    return acc


def lerp_(acc: Any, x: Any, weight: float, tmp: Any) -> Any:
    """``acc += weight * (x - acc)`` in place: a running mean moved toward ``x``."""
    if blas.axpby(weight, x, 1.0 - weight, acc):  # acc = weight x + (1 - weight) acc, one pass
        return acc
    backend.get_array_module(acc).subtract(x, acc, out=tmp)
    tmp *= weight
    acc += tmp
    return acc
