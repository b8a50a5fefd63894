"""Containers: Sequential (a chain of layers), ModuleList and ModuleDict (registered collections)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from nurinet.nn.linear import Linear
from nurinet.nn.module import Module

if TYPE_CHECKING:
    from typing_extensions import Self


def _index(index: Any, length: int, owner: str) -> int:
    """A non-negative position from an int index that may be negative."""
    if not isinstance(index, int) or isinstance(index, bool):
        raise TypeError(f"{owner} indices must be integers or slices, not {type(index).__name__}")
    if not -length <= index < length:
        raise IndexError(f"index {index} is out of range for a {owner} of {length} module(s)")
    return index % length


class _ListLike(Module):
    """Shared by Sequential and ModuleList: submodules keyed "0", "1", ... in order."""

    def _items(self) -> list[Module]:
        return list(self._modules.values())

    def _renumber(self, modules: list[Module]) -> None:
        self._modules.clear()
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items())

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            if isinstance(self, Sequential):  # keep the layers' names
                return Sequential(dict(list(self._modules.items())[index]))
            return type(self)(self._items()[index])
        return self._items()[_index(index, len(self), type(self).__name__)]

    def __setitem__(self, index: int, module: Module) -> None:
        position = _index(index, len(self), type(self).__name__)
        self.add_module(list(self._modules)[position], module)

    def __delitem__(self, index: int | slice) -> None:
        items = self._items()
        if isinstance(index, slice):
            del items[index]
        else:
            del items[_index(index, len(self), type(self).__name__)]
        # Keys stay 0..n-1 so a state_dict matches the one of a model built without the deleted layer.
        self._renumber(items)

    def append(self, module: Module) -> _ListLike:
        """Add ``module`` at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> _ListLike:
        """Append every module of ``modules``; returns self."""
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Insert ``module`` before position ``index``."""
        items = self._items()
        items.insert(index, module)
        self._renumber(items)


class Sequential(_ListLike):
    """A chain of modules: the output of each is the input of the next.

    Args:
        *modules: The layers in order, or a single mapping ``{name: module}``
            whose names become the attribute names (and state_dict keys).

    Example::

        model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        y = model(x)

    A ValueError raised inside a layer is re-raised with the layer's position,
    so a shape error says which layer of the chain it came from.
    """

    def __init__(self, *modules: Module | Mapping[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for module in modules:
                self.append(module)  # type: ignore[arg-type]

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end; returns self."""
        name = str(len(self))
        if name in self._modules:
            raise KeyError(f"cannot append to this Sequential: it already has a layer named {name!r}")
        self.add_module(name, module)
        return self

    def forward(self, x: Any) -> Any:
        """Each layer on the output of the one before; a ``Linear`` followed by a ``ReLU``, neither
        with hooks, runs as one op (:func:`nurinet.functional.linear_relu`: the same values and
        gradients, two passes fewer over the output)."""
        items = list(self._modules.items())
        position = 0
        while position < len(items):
            name, module = items[position]
            try:
                if position + 1 < len(items) and type(module) is Linear and module.runs_fused_with(items[position + 1][1]):
                    x = module.forward_with_relu(x)
                    position += 2
                    continue
                x = module(x)
            except ValueError as error:
                if type(error) is not ValueError:  # subclasses carry their own data: leave them alone
                    raise
                where = f"[{position}]" if name == str(position) else f"[{position}] '{name}'"
                raise ValueError(f"in Sequential layer {where} ({type(module).__name__}): "
                                 f"{error}") from error
            position += 1
        return x


class ModuleList(_ListLike):
    """A list of modules whose parameters are registered (a plain Python list hides them).

    Args:
        modules: Initial modules.

    Example::

        self.blocks = nn.ModuleList(nn.Linear(16, 16) for _ in range(4))
    """

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __iadd__(self, modules: Iterable[Module]) -> Self:
        self.extend(modules)
        return self

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "ModuleList is a container and has no forward(): iterate over it in your own forward"
        )


class ModuleDict(Module):
    """A dict of modules whose parameters are registered, keeping insertion order.

    Args:
        modules: Initial ``{name: module}`` mapping or iterable of pairs.
    """

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        if key not in self._modules:
            raise KeyError(f"ModuleDict has no module {key!r}; its keys are {list(self._modules)}")
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        self.pop(key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self) -> list[str]:
        return list(self._modules)

    def values(self) -> list[Module]:
        return list(self._modules.values())

    def items(self) -> list[tuple[str, Module]]:
        return list(self._modules.items())

    def pop(self, key: str) -> Module:
        """Remove ``key`` and return its module."""
        module = self[key]
        del self._modules[key]
        return module

    def clear(self) -> None:
        self._modules.clear()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Add or replace modules from a mapping or from ``(name, module)`` pairs."""
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for name, module in pairs:
            self[name] = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "ModuleDict is a container and has no forward(): look up its modules in your own forward"
        )
