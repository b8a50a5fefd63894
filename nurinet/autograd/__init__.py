"""Reverse-mode automatic differentiation: Tensor, Function, the backward engine."""

# As torch.autograd.functional: vjp, jvp, jacobian, hessian, hvp, vhp.
from nurinet.autograd import functional as functional
from nurinet.autograd.engine import GradientError, backward, grad
from nurinet.autograd.function import Function
from nurinet.autograd.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)

# Imported as functions, as in PyTorch: ``nurinet.autograd.gradcheck`` is the function, not its
# module (which stays reachable through ``import nurinet.autograd.gradcheck as module``).
from nurinet.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck
from nurinet.autograd.tensor import Parameter, Tensor
from nurinet.autograd.versions import increment_version

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
    "increment_version",
    "inference_mode",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
]
