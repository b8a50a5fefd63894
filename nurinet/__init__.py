"""nurinet: a NumPy-native define-by-run deep-learning framework.

Importing nurinet imports NumPy and nothing heavy; optional extras (CuPy,
matplotlib, onnx, ...) load lazily inside the functions that need them. It loads
the core, ``nn``, ``optim``, ``data`` and ``io``, and no application package
(``nurinet.training``, ``nurinet.models``, ``nurinet.rl``, ...): import those by name.
"""

from nurinet import data, functional, io, nn, optim
from nurinet import functional as F
from nurinet.autograd import (
    Function,
    Parameter,
    Tensor,
    enable_grad,
    grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from nurinet.creation import (
    arange,
    eye,
    full,
    full_like,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from nurinet.io import load, save
from nurinet.random import Generator, manual_seed

__version__ = "0.1.0"

__all__ = [
    "F",
    "Function",
    "Generator",
    "Parameter",
    "Tensor",
    "arange",
    "data",
    "enable_grad",
    "eye",
    "full",
    "full_like",
    "functional",
    "grad",
    "io",
    "is_grad_enabled",
    "load",
    "manual_seed",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "save",
    "set_grad_enabled",
    "tensor",
    "zeros",
    "zeros_like",
]
