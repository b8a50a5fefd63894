"""``torch.backends.mps``: nurinet has no Apple-GPU (Metal) backend, so both answers are False."""

from __future__ import annotations


def is_available() -> bool:
    """False: nurinet cannot run on Apple's Metal GPUs (its GPU backend is CUDA through CuPy)."""
    return False


def is_built() -> bool:
    """False: nurinet is not built with MPS support."""
    return False


__all__ = ["is_available", "is_built"]
