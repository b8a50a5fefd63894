"""Moving tensors between devices, differentiably."""

from __future__ import annotations

from typing import Any

from nurinet import backend
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor


class ToDevice(Function):
    """Copy to another device; the gradient is copied back."""

    def __init__(self, device: str) -> None:
        self.device = device

    def forward(self, x: Any) -> Any:
        self.source = backend.device_of(x)
        return backend.to_device(x, self.device)

    def backward(self, gy: Tensor) -> Tensor:
        return to_device(gy, self.source)


def to_device(x: Tensor, device: str) -> Tensor:
    """``x`` on ``device`` ("cpu", "cuda", "cuda:N"); returns ``x`` itself when it is there."""
    device = backend.normalize_device(device)
    if x.device == device:
        return x
    return ToDevice(device)(x)
