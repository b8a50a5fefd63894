"""Transfer learning helpers: freeze and unfreeze layers, replace a head, per-layer learning rates.

A frozen parameter has ``requires_grad=False``: backward computes no gradient
for it and the optimizer skips it (its ``grad`` stays None). Layers are chosen
by module or by a glob over parameter names (``"0.*"``, ``"features.*"``),
the dotted names of ``named_parameters()``.

After ``replace_head`` call ``model.compile(...)`` again (or build a new
optimizer): the old optimizer does not hold the new head's parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from nurinet.nn.module import Module


def _matching(module: Module, pattern: str | Sequence[str] | None, where: str) -> list[tuple[str, Any]]:
    if not isinstance(module, Module):
        raise TypeError(f"{where} expects a Module (a layer or a Model), got {type(module).__name__}")
    named = list(module.named_parameters())
    if pattern is None:
        return named
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    chosen = [(n, p) for n, p in named if any(fnmatchcase(n, pat) for pat in patterns)]
    if not chosen:
        names = ", ".join(n for n, _ in named[:12]) + (", ..." if len(named) > 12 else "")
        raise ValueError(f"{where}: pattern {pattern!r} matches no parameter of {type(module).__name__}; "
                         f"its parameters are: {names}")
    return chosen


def _set(module: Module, pattern: str | Sequence[str] | None, flag: bool, where: str) -> list[str]:
    chosen = _matching(module, pattern, where)
    for _, param in chosen:
        param.requires_grad = flag
        if not flag:
            param.grad = None  # a stale gradient would still be applied by the optimizer
    return [name for name, _ in chosen]


def freeze(module: Module, pattern: str | Sequence[str] | None = None) -> list[str]:
    """Stop training ``module``'s parameters (all of them, or those whose name matches ``pattern``).

    Args:
        module: A layer, a submodule (``model.network[0]``) or a whole Model.
        pattern: A glob (or several) over the dotted parameter names, e.g.
            ``"0.*"`` or ``"features.*"``; None freezes everything.

    Returns:
        The names of the parameters frozen.

    Example:
        >>> freeze(model, "network.0.*")      # the first layer of a Sequential
        >>> freeze(model.network[:-1])        # everything but the head
    """
    return _set(module, pattern, False, "freeze")


def unfreeze(module: Module, pattern: str | Sequence[str] | None = None) -> list[str]:
    """Train ``module``'s parameters again (all, or those matching ``pattern``); returns their names."""
    return _set(module, pattern, True, "unfreeze")


def trainable_summary(module: Module) -> list[tuple[str, tuple[int, ...], bool]]:
    """``(name, shape, trainable)`` for every parameter, to check what is frozen."""
    return [(n, tuple(p.shape), bool(p.requires_grad)) for n, p in module.named_parameters()]


def _sequential(model: Module, where: str) -> Any:
    from nurinet.nn.container import Sequential

    network = model._modules.get("network", model) if not isinstance(model, Sequential) else model
    if not isinstance(network, Sequential):
        raise TypeError(f"{where} works on an nn.Sequential or a Model(nn.Sequential(...)), got "
                        f"{type(network).__name__}; assign the new head to the attribute yourself")
    if len(network) == 0:
        raise ValueError(f"{where}: the Sequential is empty")
    return network


def replace_head(model: Module, new_head: Module) -> Module:
    """Swap the last layer of a Sequential (or of ``Model(Sequential)``) for ``new_head``.

    The head keeps its key (``"2"`` stays ``"2"``), so the body's state_dict
    keys are unchanged. Recompile the model afterwards.

    Returns:
        The old head.
    """
    if not isinstance(new_head, Module):
        raise TypeError(f"replace_head: the new head must be a Module, got {type(new_head).__name__}")
    network = _sequential(model, "replace_head")
    old = network[-1]
    network[-1] = new_head
    return old


def _head_names(model: Module, head: str | Sequence[str] | None) -> set[str]:
    if head is not None:
        return {n for n, _ in _matching(model, head, "param_groups_with_lr")}
    # Default head: the last direct child (in registration order) that owns parameters.
    children = [(name, m) for name, m in _sequential_or_self(model).named_children()
                if any(True for _ in m.parameters())]
    if not children:
        raise ValueError("param_groups_with_lr: the model has no submodule with parameters")
    last = children[-1][1]
    ids = {id(p) for p in last.parameters()}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def _sequential_or_self(model: Module) -> Module:
    network = model._modules.get("network")
    return network if isinstance(network, Module) else model


def param_groups_with_lr(model: Module, base_lr: float, frozen_lr_factor: float = 0.1,
                         head: str | Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the head at ``base_lr``, the earlier layers at a smaller rate.

    Fine-tuning a pretrained body with a small learning rate keeps what it
    learned while the fresh head learns fast. Frozen parameters
    (``requires_grad=False``) are left out.

    Args:
        model: The network (a Model or Module).
        base_lr: Learning rate of the head.
        frozen_lr_factor: The body's rate is ``base_lr * frozen_lr_factor``.
        head: Glob pattern(s) naming the head's parameters; default: the last
            child module that has parameters.

    Returns:
        ``[{"params", "lr", "name": "body"}, {"params", "lr", "name": "head"}]``,
        ready for ``optim.Adam(groups)`` (a group with no parameter is dropped).
    """
    if not base_lr > 0 or not frozen_lr_factor >= 0:
        raise ValueError(f"param_groups_with_lr: need base_lr > 0 and frozen_lr_factor >= 0, got "
                         f"{base_lr} and {frozen_lr_factor}")
    heads = _head_names(model, head)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    body = [p for n, p in trainable if n not in heads]
    top = [p for n, p in trainable if n in heads]
    groups = [{"params": body, "lr": base_lr * frozen_lr_factor, "name": "body"},
              {"params": top, "lr": base_lr, "name": "head"}]
    return [g for g in groups if g["params"]]
