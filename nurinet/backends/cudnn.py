"""``torch.backends.cudnn``: the queries answer for CuPy's cuDNN; the switches are stored, no effect.

nurinet's convolutions, recurrent layers and products do not call cuDNN (they are NumPy/CuPy array
code), so ``benchmark``, ``deterministic``, ``enabled`` and ``allow_tf32`` change nothing; setting
them is accepted so that PyTorch code runs. nurinet's results are deterministic for a seed on the
CPU whatever ``deterministic`` says.
"""

from __future__ import annotations

from nurinet import backend

enabled: bool = True
"""Accepted, no effect (nurinet does not call cuDNN)."""
benchmark: bool = False
"""Accepted, no effect (there is no cuDNN algorithm search to turn on)."""
deterministic: bool = False
"""Accepted, no effect."""
allow_tf32: bool = True
"""Accepted, no effect."""


def _cudnn_module():
    if not backend.cupy_available():
        return None
    try:
        from cupy.cuda import cudnn as cupy_cudnn  # type: ignore[import-not-found]
    except Exception:  # noqa: BLE001 - missing libcudnn surfaces as ImportError, OSError or a CuPy error.
        return None
    return cupy_cudnn


def version() -> int | None:
    """cuDNN's version as CuPy loads it, or None when there is no usable cuDNN."""
    cupy_cudnn = _cudnn_module()
    if cupy_cudnn is None:
        return None
    try:
        return int(cupy_cudnn.getVersion())
    except Exception:  # noqa: BLE001 - a broken cuDNN install raises at the first call.
        return None


def is_available() -> bool:
    """True when CuPy sees a GPU and its cuDNN bindings load (False on a CPU-only machine)."""
    return version() is not None


def is_acceptable(tensor: object) -> bool:
    """False: nurinet hands no tensor to cuDNN."""
    return False


__all__ = ["allow_tf32", "benchmark", "deterministic", "enabled", "is_acceptable", "is_available", "version"]
