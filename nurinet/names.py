"""One way to find things by name: activations, losses, optimizers, schedulers, callbacks,
constraints, regularizers, metrics and layers.

A :class:`NameTable` maps normalized names to objects. Names ignore case, ``_``, ``-``, spaces
and dots, so ``"EarlyStopping"``, ``"early_stopping"`` and ``"early-stopping"`` are one name;
a table may also drop a suffix that its kind adds to class names (``"loss"`` for losses,
``"lr"`` for schedulers). Every error lists the names the table knows.

Tables are filled from a package's public ``__all__`` (:meth:`NameTable.add_public`) or by
explicit registration (:meth:`NameTable.register`), never by walking subclasses, so an answer
never depends on what happens to be imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def name_key(name: str) -> str:
    """The normalized form of ``name``: lowercase letters and digits only."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


class NameTable:
    """Objects of one kind by normalized name.

    Args:
        kind: What the table holds, in the singular ("callback"); used in messages.
        suffixes: Endings that may be left off a name ("lr" lets ``"StepLR"`` be ``"step"``).
        hint: A sentence added to the "unknown name" error (how to add one's own).
    """

    def __init__(self, kind: str, suffixes: Iterable[str] = (), hint: str = "") -> None:
        self.kind = kind
        self.suffixes = tuple(name_key(s) for s in suffixes)
        self.hint = hint
        self._entries: dict[str, Any] = {}
        self._loaders: list[Callable[[NameTable], None]] = []

    def key(self, name: str) -> str:
        """The key of ``name``: normalized, with a known suffix dropped (never to nothing)."""
        key = name_key(name)
        for suffix in self.suffixes:
            if key.endswith(suffix) and len(key) > len(suffix):
                return key[: -len(suffix)]
        return key

    def register(self, name: str, obj: Any, *aliases: str, overwrite: bool = False) -> Any:
        """Make ``obj`` known as ``name`` and each alias; returns ``obj``.

        Raises:
            ValueError: a name is empty, or taken by another object and ``overwrite`` is False.
        """
        for label in (name, *aliases):
            key = self.key(label)
            if not key:
                raise ValueError(f"{label!r} is not a usable {self.kind} name")
            taken = self._entries.get(key)
            if taken is not None and taken is not obj and not overwrite:
                raise ValueError(f"{_a(self.kind)} named {label!r} exists already ({_label(taken)}); "
                                 "pass overwrite=True to replace it")
            self._entries[key] = obj
        return obj

    def pop(self, name: str, *default: Any) -> Any:
        """Forget ``name`` (one key; aliases stay) and return what it held, as ``dict.pop``.

        Raises:
            KeyError: the name is unknown and no default is given.
        """
        self._load()
        return self._entries.pop(self.key(name), *default)

    def add_public(self, module: Any, accept: Callable[[Any], bool]) -> None:
        """Register every name of ``module.__all__`` whose object passes ``accept``."""
        for attr in getattr(module, "__all__", ()):
            obj = getattr(module, attr)
            if accept(obj):
                self.register(attr, obj, overwrite=True)

    def add_loader(self, loader: Callable[[NameTable], None]) -> None:
        """Fill the table with ``loader(table)`` on first lookup (keeps imports lazy)."""
        self._loaders.append(loader)

    def _load(self) -> None:
        while self._loaders:
            self._loaders.pop(0)(self)

    def find(self, name: str) -> Any:
        """The object called ``name``, or None."""
        self._load()
        return self._entries.get(self.key(name))

    def get(self, name: Any) -> Any:
        """The object called ``name``.

        Raises:
            TypeError: ``name`` is not a string.
            ValueError: no object of that name (the message lists the known names).
        """
        if not isinstance(name, str):
            raise TypeError(f"{_a(self.kind)} name must be a string, got {name!r}")
        found = self.find(name)
        if found is None:
            raise unknown_name(self.kind, name, self.names(), self.hint)
        return found

    def names(self) -> list[str]:
        """The known keys, sorted."""
        self._load()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, Any]]:
        """``(key, object)`` pairs, sorted by key."""
        self._load()
        return sorted(self._entries.items())

    def __contains__(self, name: str) -> bool:
        return self.find(name) is not None


def unknown_name(kind: str, name: str, known: Iterable[str], hint: str = "") -> ValueError:
    """The error for a name that no table knows, listing the known names.

    For lookups that search more than one table (user layers before built-in ones), so
    that their message reads as :meth:`NameTable.get`'s.

    Args:
        kind: What was looked up, in the singular ("layer type").
        name: The name as given.
        known: The names that would have been found.
        hint: A sentence added at the end (how to add one's own).
    """
    tail = f" {hint}" if hint else ""
    return ValueError(f"unknown {kind} {name!r}; known {kind} names: {', '.join(known)}.{tail}")


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in ('a', 'e', 'i', 'o', 'u') else 'a'} {noun}"


def _label(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or repr(obj)
