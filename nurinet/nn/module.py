"""Module: the base class of every layer and model.

A module owns Parameters, buffers and submodules, registered by plain
attribute assignment (``self.weight = Parameter(...)``, ``self.fc = Linear(...)``)
into insertion-ordered dicts, so ``parameters()`` always yields them in the order
they were assigned, run after run. State is saved by dotted name
(``"encoder.0.weight"``), never by object identity.

Train/eval mode is a flag on each module (``module.training``), set for a whole
tree by ``train()`` / ``eval()``; there is no global mode, so two networks (a GAN's
generator and discriminator, a DQN's online and target nets) can be in different
modes at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from nurinet import backend
from nurinet.autograd.tensor import Parameter, RemovableHandle, Tensor
from nurinet.autograd.versions import increment_version


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict`` could not match (returned when ``strict=False``)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


class _BackwardHookCall:
    """One call of a module with backward hooks: gathers ``grad_output`` from gradient hooks on
    the outputs and ``grad_input`` from hooks on copies of the inputs, then calls the module's
    hooks once every input gradient has arrived (the engine runs the copies' hooks after all the
    outputs' gradients, since the copies come first in the graph)."""

    def __init__(self, module: Module, hooks: list[Callable]) -> None:
        self.module, self.hooks = module, hooks
        self.grad_input: list[Any] = []
        self.grad_output: list[Any] = []
        self.pending = 0

    def watch_inputs(self, args: tuple) -> tuple:
        from nurinet.functional.tensor_ops import clone

        watched = []
        for position, arg in enumerate(args):
            self.grad_input.append(None)
            if isinstance(arg, Tensor) and arg.requires_grad:
                arg = clone(arg)  # a node of this call alone, so the hook sees only this call's gradient
                arg.register_hook(self._input_hook(position))
                self.pending += 1
            watched.append(arg)
        return tuple(watched)

    def watch_outputs(self, output: Any) -> None:
        tensors = [t for t in _flat_tensors(output) if t.requires_grad]
        self.grad_output = [None] * len(tensors)
        for position, tensor in enumerate(tensors):
            tensor.register_hook(self._output_hook(position))

    def _output_hook(self, position: int) -> Callable:
        def hook(grad: Tensor) -> None:
            self.grad_output[position] = grad
            if not self.pending:  # no input needs a gradient: the outputs' gradients are all there is
                self._run()

        return hook

    def _input_hook(self, position: int) -> Callable:
        def hook(grad: Tensor) -> Tensor | None:
            self.grad_input[position] = grad
            self.pending -= 1
            if self.pending == 0:
                self._run()
            return self.grad_input[position]

        return hook

    def _run(self) -> None:
        for hook in self.hooks:
            changed = hook(self.module, tuple(self.grad_input), tuple(self.grad_output))
            if changed is not None:
                self.grad_input = list(changed)


def _flat_tensors(value: Any) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _flat_tensors(item)]
    return []


class Module:
    """Base class of layers and models.

    A subclass calls ``super().__init__()`` first, assigns its Parameters and
    submodules as attributes, and defines ``forward``; calling the module calls
    ``forward``.

    Example::

        class TwoLayer(nn.Module):
            def __init__(self):
                super().__init__()
                self.hidden = nn.Linear(2, 8)
                self.out = nn.Linear(8, 1)

            def forward(self, x):
                return self.out(F.tanh(self.hidden(x)))
    """

    training: bool

    def __init__(self) -> None:
        # object.__setattr__: our own __setattr__ needs these dicts to exist already.
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", [])
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # ----- the call ------------------------------------------------------------------
    def _hooks_in_use(self) -> dict[str, list] | None:
        """The module's call hooks when any is registered, else None."""
        hooks = self.__dict__.get("_call_hooks")
        return hooks if hooks and any(hooks.values()) else None

    def is_watched(self) -> bool:
        """Whether something must see this module's own output: a hook, or a ``forward`` replaced on the
        instance (a callback that records a layer's output does that). Such a module is never fused with
        its neighbour into one op."""
        return "forward" in self.__dict__ or self._hooks_in_use() is not None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation of the module; every subclass defines it."""
        raise NotImplementedError(
            f"{type(self).__name__} does not define forward(): a Module subclass must implement "
            "forward(self, ...) with its computation"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        hooks = self._hooks_in_use()
        if hooks is None:  # the common case: no hook
            return self.forward(*args, **kwargs)
        for pre_hook in list(hooks["forward_pre"]):
            changed = pre_hook(self, args)
            if changed is not None:
                args = changed if isinstance(changed, tuple) else (changed,)
        call = _BackwardHookCall(self, list(hooks["backward"])) if hooks["backward"] else None
        if call is not None:
            args = call.watch_inputs(args)
        output = self.forward(*args, **kwargs)
        for hook in list(hooks["forward"]):
            changed = hook(self, args, output)
            if changed is not None:
                output = changed
        if call is not None:
            call.watch_outputs(output)
        return output

    # ----- hooks -----------------------------------------------------------------------
    def register_forward_pre_hook(self, hook: Callable[[Module, tuple], Any]) -> RemovableHandle:
        """Call ``hook(module, args)`` before each ``forward``, as PyTorch's.

        The hook may return new positional arguments (a tuple, or a single value). Returns a
        handle whose ``remove()`` unregisters it.
        """
        return self._add_hook("forward_pre", hook)

    def register_forward_hook(self, hook: Callable[[Module, tuple, Any], Any]) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each ``forward``, as PyTorch's.

        The hook may return a replacement output. Returns a handle whose ``remove()`` unregisters it.
        """
        return self._add_hook("forward", hook)

    def register_full_backward_hook(
        self, hook: Callable[[Module, tuple, tuple], tuple | None]
    ) -> RemovableHandle:
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to the
        module's tensor inputs have been computed, as PyTorch's.

        ``grad_input`` holds one gradient per positional Tensor input (None for one that needs no
        gradient), ``grad_output`` one per Tensor output (None for one the loss does not reach).
        The hook may return a replacement ``grad_input`` tuple (it replaces the gradient of the
        input whose gradient arrived last, which with one Tensor input, the usual case, is all of
        it). When no input needs a gradient,
        the hook is called once the output gradients are known, with ``grad_input`` all None.
        Each call of a hooked module copies its inputs once, so the gradients can be observed.
        """
        return self._add_hook("backward", hook)

    def _add_hook(self, kind: str, hook: Callable) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"a {kind} hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.get("_call_hooks")
        if hooks is None:
            # Kept in __dict__ (not a registry) so modules built before hooks existed still work.
            hooks = {"forward_pre": [], "forward": [], "backward": []}
            object.__setattr__(self, "_call_hooks", hooks)
        hooks[kind].append(hook)
        return RemovableHandle(hooks[kind], hook)

    # ----- registration ----------------------------------------------------------------
    def _registry(self, name: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign '{name}' to {type(self).__name__} before Module.__init__() ran: "
                "call super().__init__() at the start of __init__"
            )

    def _check_name(self, name: Any, kind: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name must be a string, got {type(name).__name__}")
        if not name or "." in name:
            raise KeyError(
                f"{kind} name {name!r} is not valid: it must be non-empty and contain no '.' "
                "('.' separates the parts of state_dict keys)"
            )
        if name in self.__dict__ or (hasattr(type(self), name) and not self._owns(name)):
            raise KeyError(f"cannot register {kind} {name!r}: {type(self).__name__} already has an "
                           "attribute of that name")

    def _owns(self, name: str) -> bool:
        return name in self._parameters or name in self._buffers or name in self._modules

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a Parameter (or ``None``, a declared but absent parameter such as a disabled bias)."""
        self._registry(name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot register {type(param).__name__} as parameter {name!r} of "
                f"{type(self).__name__}: wrap it as nurinet.Parameter(...), or use register_buffer "
                "for state that is not learned"
            )
        if not self._owns(name):
            self._check_name(name, "parameter")
        self._forget(name, self._parameters)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a Tensor that is state but not a learned parameter (e.g. a running mean).

        Args:
            name: Attribute name of the buffer.
            tensor: The buffer, or ``None``.
            persistent: Whether ``state_dict`` saves it.
        """
        self._registry(name)
        if tensor is not None and (not isinstance(tensor, Tensor) or isinstance(tensor, Parameter)):
            raise TypeError(
                f"buffer {name!r} of {type(self).__name__} must be a Tensor (not a Parameter), got "
                f"{type(tensor).__name__}; wrap arrays with nurinet.tensor(...)"
            )
        if not self._owns(name):
            self._check_name(name, "buffer")
        self._forget(name, self._buffers)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers.append(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a submodule; it is then reachable as an attribute of that name."""
        self._registry(name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module, so it cannot be submodule "
                            f"{name!r} of {type(self).__name__}")
        if not self._owns(name):
            self._check_name(name, "module")
        self._forget(name, self._modules)
        self._modules[name] = module

    register_module = add_module

    def _forget(self, name: str, keep: dict | None = None) -> None:
        """Remove ``name`` from every registry but ``keep`` (where it is about to be set:
        replacing an entry in place keeps its position, hence the order of parameters)."""
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._modules, self._buffers):
            if registry is not keep:
                registry.pop(name, None)
        if name in self._non_persistent_buffers:
            self._non_persistent_buffers.remove(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter):
            self._registry(name)
            self._forget(name, self._parameters)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._registry(name)
            self._forget(name, self._modules)
            self._modules[name] = value
        elif "_parameters" in self.__dict__ and name in self._parameters:
            self.register_parameter(name, value)
        elif "_modules" in self.__dict__ and name in self._modules:
            self.add_module(name, value)
        elif "_buffers" in self.__dict__ and name in self._buffers:
            self.register_buffer(name, value, name not in self._non_persistent_buffers)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Called only when normal lookup fails: look in the registries.
        for key in ("_parameters", "_buffers", "_modules"):
            registry = self.__dict__.get(key)
            if registry is not None and name in registry:
                return registry[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        if self._owns(name):
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        names = set(super().__dir__())
        names.update(self._parameters, self._buffers, self._modules)
        return sorted(names)

    # ----- traversal -----------------------------------------------------------------------
    def named_modules(
        self, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """Yield ``(dotted_name, module)`` for this module and all below it, depth first.

        A module reachable by two paths is yielded once (the first path) unless
        ``remove_duplicate=False``. Iterative, so arbitrarily deep trees are fine.
        """
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m)
                        for k, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        """Every module in the tree, this one first."""
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Yield ``(name, module)`` for the direct submodules."""
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        """The direct submodules."""
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        modules = self.named_modules(prefix, remove_duplicate) if recurse else [(prefix, self)]
        seen: set[int] = set()
        for module_name, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """Yield ``(dotted_name, parameter)`` in registration order; a shared Parameter once."""
        yield from self._named_members("_parameters", prefix, recurse)  # type: ignore[misc]

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """The Parameters of this module (and, with ``recurse``, of all submodules), in a fixed order."""
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """Yield ``(dotted_name, buffer)`` in registration order."""
        yield from self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """The buffers of this module (and, with ``recurse``, of all submodules)."""
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def num_parameters(self, trainable_only: bool = False) -> int:
        """The number of scalar parameters (only those requiring a gradient with ``trainable_only``)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ----- modes and bulk operations ------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Put this module and every submodule in training mode (or eval mode with ``mode=False``)."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Put this module and every submodule in evaluation mode (dropout off, running statistics used)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (``False``) or unfreeze every parameter of the tree; returns self."""
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def zero_grad(self) -> None:
        """Reset the gradient of every parameter to ``None``."""
        for param in self.parameters():
            param.grad = None

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every submodule (children first) and then on self, e.g. to initialize weights."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def _map_tensors(self, convert: Callable[[Any], Any], floating_only: bool = False) -> Module:
        """Replace the array of every parameter, gradient and buffer by ``convert(array)``, in place."""
        for module in self.modules():
            for tensor in [*module._parameters.values(), *module._buffers.values()]:
                if tensor is None or (floating_only and tensor.array.dtype.kind != "f"):
                    continue
                tensor.array = convert(tensor.array)
                increment_version(tensor)  # a graph built on the old array must not back-propagate
                if tensor.grad is not None:
                    tensor.grad.array = convert(tensor.grad.array)
        return self

    def to(self, device: str) -> Module:
        """Move every parameter, gradient and buffer to ``device`` ("cpu", "cuda", "cuda:N"), in place.

        The Parameter objects stay the same (an optimizer holding them keeps working).

        Raises:
            ValueError: ``device`` is not a device name.
            nurinet.backend.DeviceError: a GPU was asked for and none is usable.
        """
        device = backend.normalize_device(device)
        if device != "cpu" and not backend.cupy_available():
            # Fail before any tensor moves, and also for a module that holds no tensors.
            backend.to_device(np.zeros(0), device)
        return self._map_tensors(lambda array: backend.to_device(array, device))

    def cpu(self) -> Module:
        """Move everything to the CPU."""
        return self.to("cpu")

    def cuda(self) -> Module:
        """Move everything to the first GPU."""
        return self.to("cuda")

    def double(self) -> Module:
        """Convert floating-point parameters and buffers to float64, in place."""
        return self._map_tensors(lambda array: array.astype(np.float64), floating_only=True)

    def float(self) -> Module:
        """Convert floating-point parameters and buffers to float32, in place."""
        return self._map_tensors(lambda array: array.astype(np.float32), floating_only=True)

    # ----- saving and loading ------------------------------------------------------------------
    def _state_tensors(self) -> dict[str, Tensor]:
        """Every saved tensor by dotted key: parameters, then persistent buffers, module by module."""
        state: dict[str, Tensor] = {}
        for module_name, module in self.named_modules(remove_duplicate=False):
            dot = f"{module_name}." if module_name else ""
            for name, param in module._parameters.items():
                if param is not None:
                    state[dot + name] = param
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    state[dot + name] = buffer
        return state

    def state_dict(self) -> dict[str, np.ndarray]:
        """The module's state as ``{dotted_name: numpy array}`` (copies, on the CPU).

        Keys follow attribute paths (``"0.weight"``, ``"encoder.fc.bias"``);
        non-persistent buffers are left out.
        """
        return {key: np.array(backend.to_numpy(t.array), copy=True)
                for key, t in self._state_tensors().items()}

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into the parameters and buffers, in place.

        Values are converted to each tensor's dtype and device. Parameter objects
        are kept (only their data changes).

        Args:
            state_dict: ``{dotted_name: array}`` as returned by :meth:`state_dict`.
            strict: Require the keys to match exactly.

        Returns:
            The missing and unexpected keys (both empty when ``strict=True``).

        Raises:
            RuntimeError: keys are missing or unexpected (with ``strict=True``), or a
                value's shape differs from its tensor's (strict or not). The message
                lists every problem at once.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        values = {k: _as_numpy(state_dict[k]) for k in own if k in state_dict}
        mismatched = [f"{k}: saved {values[k].shape}, model {own[k].shape}"
                      for k in values if values[k].shape != own[k].shape]
        if mismatched or (strict and (missing or unexpected)):
            raise RuntimeError(_load_error(type(self).__name__, missing if strict else [],
                                           unexpected if strict else [], mismatched))
        for key, value in values.items():
            tensor = own[key]
            array = value.astype(tensor.array.dtype, copy=True)
            tensor.array = backend.to_device(array, tensor.device) if tensor.device != "cpu" else array
            increment_version(tensor)  # A graph built on the old values must not back-propagate.
        return IncompatibleKeys(missing, unexpected)

    # ----- printing ----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (its settings); '' by default."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        head = type(self).__name__ + "("
        if not lines:
            return head + ")"
        if not self._modules and len(lines) == 1:
            return head + lines[0] + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def module_device(module: Module) -> str:
    """Where ``module``'s parameters are (``"cpu"`` for a module without any)."""
    return next((p.device for p in module.parameters()), "cpu")


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.array
    return backend.to_numpy(value) if backend.is_cupy_array(value) else np.asarray(value)


def _load_error(owner: str, missing: list[str], unexpected: list[str], mismatched: list[str]) -> str:
    parts = [f"Error(s) loading a state_dict into {owner}:"]
    if missing:
        parts.append("  missing keys (in the model, not in the state_dict): " + ", ".join(missing))
    if unexpected:
        parts.append("  unexpected keys (in the state_dict, not in the model): " + ", ".join(unexpected))
    if mismatched:
        parts.append("  shape mismatches: " + "; ".join(mismatched))
    parts.append("  Check that the model is built with the same architecture and sizes as the one "
                 "saved; pass strict=False to skip missing and unexpected keys.")
    return "\n".join(parts)
