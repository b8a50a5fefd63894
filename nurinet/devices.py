"""PyTorch's device queries, answered truthfully: ``nurinet.device``, ``nurinet.cuda``,
``nurinet.accelerator``, ``set_default_device``.

A GPU is one that CuPy sees (see :mod:`nurinet.backend`); on a CPU-only machine, or one without
CuPy, ``nurinet.cuda.is_available()`` is False and ``accelerator.current_accelerator()`` None, so
the usual ``device = "cuda" if nurinet.cuda.is_available() else "cpu"`` picks the CPU.
"""

from __future__ import annotations

from types import SimpleNamespace

from nurinet import backend
from nurinet.backend import get_default_device, set_default_device


class device:
    """A device name, as ``torch.device``: ``device("cuda")``, ``device("cuda", 1)``, ``device("cpu")``.

    ``str(d)`` is what ``Tensor.to``, ``Module.to`` and every ``device=`` argument take.
    """

    def __init__(self, type: str | device, index: int | None = None) -> None:
        name = str(type).lower()
        if index is not None:
            name = f"{name}:{int(index)}"
        if name == "gpu":
            name = "cuda"
        kind, _, number = name.partition(":")
        if kind not in ("cpu", "cuda") or (number and not number.isdigit()):
            raise ValueError(f"unknown device {type!r}: use 'cpu', 'cuda' or 'cuda:N'")
        self.type = kind
        self.index = int(number) if number else None

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, (device, str)) and str(self) == str(device(other))

    def __hash__(self) -> int:
        return hash(str(self))


def _cuda_is_available() -> bool:
    """True when CuPy is installed and sees a CUDA device."""
    return backend.cupy_available()


cuda = SimpleNamespace(
    is_available=_cuda_is_available,
    device_count=backend.device_count,
    manual_seed=lambda seed: None,  # GPU draws come from nurinet's own generators
    manual_seed_all=lambda seed: None,
)


def _current_accelerator() -> device | None:
    """``device("cuda")`` when a GPU is usable, else None (PyTorch's answer on a CPU-only machine)."""
    return device("cuda") if backend.cupy_available() else None


accelerator = SimpleNamespace(
    is_available=_cuda_is_available,
    current_accelerator=_current_accelerator,
    device_count=backend.device_count,
)

__all__ = ["accelerator", "cuda", "device", "get_default_device", "set_default_device"]
