"""The array backend: the only module that knows about CuPy.

Every op finds the array module of its inputs with :func:`get_array_module` and
writes one code path against it (``xp.exp``, ``xp.matmul``...), so the same code
runs on NumPy arrays (CPU) and CuPy arrays (GPU). CuPy is imported lazily, only
when a GPU array is asked for or seen.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

_cupy: ModuleType | None = None
_cupy_checked = False


class DeviceError(RuntimeError):
    """Raised when a device is asked for that this machine cannot provide."""


def _load_cupy() -> ModuleType | None:
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            _cupy = importlib.import_module("cupy")
        except ImportError:
            _cupy = None
    return _cupy


def cupy_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    cp = _load_cupy()
    if cp is None:
        return False
    try:
        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - CuPy raises driver-specific errors when no GPU is usable.
        return False


def is_cupy_array(x: Any) -> bool:
    """True for a CuPy ndarray, decided without importing CuPy."""
    return type(x).__module__.startswith("cupy")


def get_array_module(x: Any) -> ModuleType:
    """Return ``cupy`` for a CuPy array (or a Tensor holding one), else ``numpy``."""
    if type(x) is np.ndarray:  # The common case, decided without any attribute lookup.
        return np
    data = getattr(x, "array", x)
    if is_cupy_array(data):
        return _load_cupy()  # type: ignore[return-value]
    return np


def device_of(x: Any) -> str:
    """The device name of an array: ``"cpu"`` or ``"cuda:N"``."""
    if is_cupy_array(x):
        return f"cuda:{x.device.id}"
    return "cpu"


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a NumPy array, copying it off the GPU when needed."""
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def normalize_device(device: str | None) -> str:
    """Turn ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"gpu"`` into a canonical name."""
    if device is None:
        return "cpu"
    name = str(device).lower()
    if name == "cpu":
        return "cpu"
    if name in ("cuda", "gpu"):
        return "cuda:0"
    if name.startswith("cuda:") and name[5:].isdigit():
        return name
    raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'")


def to_device(x: Any, device: str) -> Any:
    """Move an array to ``device`` ("cpu", "cuda", "cuda:N"); a no-op when it is there.

    Raises:
        DeviceError: a GPU was asked for and CuPy or a CUDA device is missing.
    """
    device = normalize_device(device)
    if device == "cpu":
        return to_numpy(x)
    if not cupy_available():
        raise DeviceError(
            f"device {device!r} was asked for, but no CUDA GPU is usable here "
            "(CuPy is not installed or sees no device). Install the 'gpu' extra "
            "(pip install 'nurinet[gpu]') on a machine with a GPU, or use device='cpu'."
        )
    cp = _load_cupy()
    index = int(device.split(":")[1])
    with cp.cuda.Device(index):
        return cp.asarray(x)


def device_count() -> int:
    """The number of CUDA devices CuPy sees (0 without CuPy or a GPU)."""
    if not cupy_available():
        return 0
    return int(_load_cupy().cuda.runtime.getDeviceCount())  # type: ignore[union-attr]


_default_device = "cpu"


def set_default_device(device: Any) -> None:
    """Make constructors (``zeros``, ``tensor``, ``randn``...) put new tensors on ``device``.

    Raises:
        DeviceError: a GPU was asked for and none is usable here.
    """
    global _default_device
    name = normalize_device(None if device is None else str(device))
    if name != "cpu" and not cupy_available():
        raise DeviceError(f"set_default_device({device!r}): no CUDA GPU is usable here (CuPy is not "
                          "installed or sees no device); nurinet.cuda.is_available() says so beforehand")
    _default_device = name


def get_default_device() -> str:
    """The device constructors use when none is given ("cpu" unless ``set_default_device`` changed it)."""
    return _default_device
