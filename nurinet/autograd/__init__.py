"""Reverse-mode automatic differentiation: Tensor, Function, the backward engine."""

from nurinet.autograd.engine import GradientError, backward, grad
from nurinet.autograd.function import Function
from nurinet.autograd.grad_mode import (
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from nurinet.autograd.tensor import Parameter, Tensor


def gradcheck(*args, **kwargs):
    from nurinet.autograd.gradcheck import gradcheck as _gradcheck

    return _gradcheck(*args, **kwargs)


def gradgradcheck(*args, **kwargs):
    from nurinet.autograd.gradcheck import gradgradcheck as _gradgradcheck

    return _gradgradcheck(*args, **kwargs)


__all__ = [
    "Function",
    "GradientError",
    "Parameter",
    "Tensor",
    "backward",
    "enable_grad",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
]
