"""Reverse-mode automatic differentiation: Tensor, Function, the backward engine."""

from nurinet.autograd.engine import GradientError, backward, grad
from nurinet.autograd.function import Function
# Imported as functions (the module of the same name is reached as nurinet.autograd.gradcheck
# only before this line runs), as in PyTorch.
from nurinet.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: I001
from nurinet.autograd.grad_mode import (
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from nurinet.autograd.tensor import Parameter, Tensor


__all__ = [
    "Function",
    "GradcheckError",
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
