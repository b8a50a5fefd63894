"""Slow reference recurrent cells composed of existing ops (test oracles).

Each cell is written gate by gate from the published equations with ``F.linear``,
``F.sigmoid``, ``F.tanh`` and ``F.split``; autograd differentiates the composition.
The fused step ops of :mod:`nurinet.functional.recurrent` must agree with these,
values and gradients, to rounding.
"""

from __future__ import annotations

from nurinet.autograd.tensor import Tensor
from nurinet.functional.activation import relu, sigmoid
from nurinet.functional.elementwise import tanh
from nurinet.functional.linalg import linear
from nurinet.functional.shape import split


def rnn_cell_reference(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
                       b_hh: Tensor | None = None, nonlinearity: str = "tanh") -> Tensor:
    """``act(x W_ih^T + b_ih + h W_hh^T + b_hh)``."""
    pre = linear(x, w_ih, b_ih) + linear(h, w_hh, b_hh)
    return tanh(pre) if nonlinearity == "tanh" else relu(pre)


def lstm_cell_reference(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor,
                        b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``i, f, g, o`` gates; ``c' = f c + i g``; ``h' = o tanh(c')`` (Hochreiter and Schmidhuber)."""
    pi, pf, pg, po = split(linear(x, w_ih, b_ih) + linear(h, w_hh, b_hh), 4, axis=-1)
    c_new = sigmoid(pf) * c + sigmoid(pi) * tanh(pg)
    return sigmoid(po) * tanh(c_new), c_new


def gru_cell_reference(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
                       b_hh: Tensor | None = None) -> Tensor:
    """``r, z`` gates, ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``, ``h' = (1 - z) n + z h`` (Cho et al.)."""
    xr, xz, xn = split(linear(x, w_ih, b_ih), 3, axis=-1)
    hr, hz, hn = split(linear(h, w_hh, b_hh), 3, axis=-1)
    r, z = sigmoid(xr + hr), sigmoid(xz + hz)
    n = tanh(xn + r * hn)
    return (1.0 - z) * n + z * h
