"""The fused one-step ops of the recurrent cells: RNN, LSTM and GRU, each one ``Function``.

A step op takes that step's precomputed input gates ``xg`` (the input projection of every step is
one GEMM, done before), the previous state and the hidden weights, and does the hidden GEMM (all
gates in one product) and all the gate math in one node. Its ``backward_arrays`` is the closed-form
gradient from the saved activations; its ``backward`` writes the same gradient with differentiable
Tensor ops (recomputing the gates from the inputs), so that gradients of gradients work.

Gate layout and equations follow PyTorch (weights ``(G*H, ·)``, gates in this order):

* RNN: ``h' = act(xg + h W^T + b)``, act = tanh or relu.
* LSTM (gates i, f, g, o): ``c' = f * c + i * g``, ``h' = o * tanh(c')``; the array code is
  :mod:`nurinet.functional.recurrent_lstm`, shared with the whole-sequence op.
* GRU (gates r, z, n): ``r = σ(xg_r + hg_r)``, ``z = σ(xg_z + hg_z)``,
  ``n = tanh(xg_n + r * hg_n)``, ``h' = (1 - z) * n + z * h`` with ``hg = h W^T + b``.

``mask`` (optional, an ``(N, 1)`` array of 0/1 in the state's dtype) implements variable-length
batches: where it is 0 the state passes through unchanged, ``state_out = state + mask * (state' - state)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet._runtime import gemm
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor
from nurinet.functional import recurrent_lstm as lstm
from nurinet.functional._util import xp_of


def as_constant(array: Any) -> Tensor:
    """``array`` as a Tensor outside the graph (a mask: no gradient flows to it)."""
    return Tensor._wrap(array, False)


def _hidden_gates(xg: Any, h: Any, w: Any, b: Any) -> Any:
    """``xg + h @ w.T + b`` on arrays, in one fresh buffer."""
    gates = gemm.matmul(h, w.T)
    gates += xg
    if b is not None:
        gates += b
    return gates


def _hidden_gates_t(xg: Tensor, h: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
    from nurinet.functional.linalg import linear

    return xg + linear(h, w, b)


def _blend(new: Any, old: Any, mask: Any) -> Any:
    """``old + mask * (new - old)``: the state update only where the mask is 1."""
    return new if mask is None else old + mask * (new - old)


def _param_grads(d: Any, h: Any, needs: tuple[bool, ...], n_inputs: int, base: int) -> list[Any]:
    """Gradients of the hidden weight and bias from the gate gradient ``d``."""
    out = [gemm.matmul(d.T, h) if needs[base] else None]
    if n_inputs > base + 1:
        out.append(d.sum(axis=0) if needs[base + 1] else None)
    return out


def _tensor_backward_inputs(fn: Function, gy: Tensor) -> tuple[Any, ...]:
    """A step op's inputs for its Tensor backward: ``xg, h, w, b`` (None without a bias), the mask as a
    constant (or None) and the gradient that reaches the step's own output (``gy`` masked)."""
    xg, h, w = fn.inputs[:3]
    b = fn.inputs[3] if len(fn.inputs) > 3 else None
    m = None if fn.mask is None else as_constant(fn.mask)
    return xg, h, w, b, m, (gy if m is None else gy * m)


def _tensor_param_grads(d: Tensor, h: Tensor, b: Tensor | None) -> list[Tensor]:
    """The hidden weight's gradient ``d^T h`` and, with a bias, the bias's ``sum(d)``, as Tensors."""
    from nurinet.functional.linalg import matmul

    return [matmul(d.T, h)] if b is None else [matmul(d.T, h), d.sum(axis=0)]


# ----- RNN ----------------------------------------------------------------------------------
class RNNCellFunction(Function):
    """One Elman RNN step ``h' = act(xg + h W^T + b)`` (inputs xg, h, w_hh[, b_hh]).

    backward_arrays: part of a hot op's array backward: RecurrentSequence (the LSTM benchmark)
    calls it per step.
    """

    def __init__(self, nonlinearity: str = "tanh", mask: Any = None) -> None:
        self.nonlinearity, self.mask = nonlinearity, mask

    def forward(self, xg: Any, h: Any, w: Any, b: Any = None) -> Any:
        pre = _hidden_gates(xg, h, w, b)
        xp = xp_of(pre)
        self.y = xp.tanh(pre, out=pre) if self.nonlinearity == "tanh" else xp.maximum(pre, 0, out=pre)
        return _blend(self.y, h, self.mask)

    def backward_arrays(self, gy: Any) -> tuple[Any, ...]:
        m, y = self.mask, self.y
        g = gy if m is None else gy * m
        d = g * (1.0 - y * y) if self.nonlinearity == "tanh" else g * (y > 0)
        h, w = self.inputs[1].array, self.inputs[2].array
        needs = self.needs_input_grad
        gh = gemm.matmul(d, w) if needs[1] else None
        if gh is not None and m is not None:
            gh += gy - g
        return (d, gh, *_param_grads(d, h, needs, len(self.inputs), 2))

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        from nurinet.functional.linalg import matmul

        xg, h, w, b, m, g = _tensor_backward_inputs(self, gy)
        pre = _hidden_gates_t(xg, h, w, b)
        if self.nonlinearity == "tanh":
            y = pre.tanh()
            d = g * (1.0 - y * y)
        else:
            d = g * as_constant((pre.array > 0).astype(pre.dtype))
        gh = matmul(d, w) if m is None else matmul(d, w) + gy * (1.0 - m)
        return (d, gh, *_tensor_param_grads(d, h, b))


# ----- LSTM ---------------------------------------------------------------------------------
class LSTMCellFunction(Function):
    """One LSTM step (inputs xg, h, c, w_hh[, b_hh]; outputs h', c').

    The array forward and backward are :func:`~nurinet.functional.recurrent_lstm.step_forward` and
    :func:`~nurinet.functional.recurrent_lstm.step_backward` (the one array-level definition); the
    gate activations are saved for the backward.

    backward_arrays: part of a hot op's array backward: RecurrentSequence (the LSTM benchmark)
    calls it per step.
    """

    out_d: Any = None  # Where backward_arrays may write the gate gradient (RecurrentSequence's buffer).

    def __init__(self, mask: Any = None) -> None:
        self.mask = mask

    def forward(self, xg: Any, h: Any, c: Any, w: Any, b: Any = None) -> Any:
        xp = xp_of(xg)
        z = xp.ascontiguousarray(_hidden_gates(xg, h, w, b))  # step_forward views it by gate
        z *= lstm.gate_rates(xp, h.shape[-1], z.dtype, z.shape[0])
        c_new, self.tc, h_new = xp.empty_like(c), xp.empty_like(c), xp.empty_like(h)
        with np.errstate(over="ignore"):  # exp(-k x) = inf for very negative x gives σ = 0: right.
            lstm.step_forward(z, c, c_new, self.tc, h_new)
        self.acts = z
        return _blend(h_new, h, self.mask), _blend(c_new, c, self.mask)

    def backward_arrays(self, gh: Any, gc: Any) -> tuple[Any, ...]:
        xp, m = xp_of(gh), self.mask
        h, c, w = self.inputs[1].array, self.inputs[2].array, self.inputs[3].array
        gh_in, gc_in = (gh, gc.copy()) if m is None else (gh * m, gc * m)  # gc_in becomes the c gradient
        d = xp.empty_like(self.acts) if self.out_d is None else self.out_d
        needs = self.needs_input_grad
        lstm.step_backward(self.acts, c, self.tc, gh_in, gc_in, d, to_c_prev=needs[2])
        gh_prev = gemm.matmul(d, w) if needs[1] else None
        gc_prev = gc_in if needs[2] else None
        if m is not None:
            gh_prev = None if gh_prev is None else gh_prev + (gh - gh_in)
            gc_prev = None if gc_prev is None else gc_prev + (gc - gc * m)  # gc_in now holds dc
        return (d, gh_prev, gc_prev, *_param_grads(d, h, needs, len(self.inputs), 3))

    def backward(self, gh: Tensor, gc: Tensor) -> tuple[Tensor | None, ...]:
        from nurinet.functional.activation import sigmoid
        from nurinet.functional.linalg import matmul
        from nurinet.functional.shape import concatenate, split

        xg, h, c, w = self.inputs[:4]
        b = self.inputs[4] if len(self.inputs) > 4 else None
        m = None if self.mask is None else as_constant(self.mask)
        gh_in, gc_in = (gh, gc) if m is None else (gh * m, gc * m)
        pi, pf, pg, po = split(_hidden_gates_t(xg, h, w, b), 4, axis=1)
        i, f, g, o = sigmoid(pi), sigmoid(pf), pg.tanh(), sigmoid(po)
        tc = (f * c + i * g).tanh()
        dc = gh_in * o * (1.0 - tc * tc) + gc_in
        d = concatenate([dc * g * i * (1.0 - i), dc * c * f * (1.0 - f), dc * i * (1.0 - g * g),
                         gh_in * tc * o * (1.0 - o)], axis=1)
        gh_prev, gc_prev = matmul(d, w), dc * f
        if m is not None:
            gh_prev, gc_prev = gh_prev + gh * (1.0 - m), gc_prev + gc * (1.0 - m)
        return (d, gh_prev, gc_prev, *_tensor_param_grads(d, h, b))


# ----- GRU ----------------------------------------------------------------------------------
class GRUCellFunction(Function):
    """One GRU step (inputs xg, h, w_hh[, b_hh]; output h'); gates r, z, n as PyTorch.

    backward_arrays: part of a hot op's array backward: RecurrentSequence (the LSTM benchmark)
    calls it per step.
    """

    def __init__(self, mask: Any = None) -> None:
        self.mask = mask

    def forward(self, xg: Any, h: Any, w: Any, b: Any = None) -> Any:
        xp = xp_of(xg)
        hg = gemm.matmul(h, w.T)
        if b is not None:
            hg += b
        hidden = h.shape[-1]
        rz = xg[:, : 2 * hidden] + hg[:, : 2 * hidden]
        rz *= 0.5
        rz = xp.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        r, z = rz[:, :hidden], rz[:, hidden:]
        self.hn = hg[:, 2 * hidden :]
        n = xp.tanh(xg[:, 2 * hidden :] + r * self.hn)
        self.rz, self.n = rz, n
        h_new = n + z * (h - n)
        return _blend(h_new, h, self.mask)

    def backward_arrays(self, gy: Any) -> tuple[Any, ...]:
        xp, m = xp_of(gy), self.mask
        h, w = self.inputs[1].array, self.inputs[2].array
        hidden = h.shape[-1]
        r, z, n = self.rz[:, :hidden], self.rz[:, hidden:], self.n
        g = gy if m is None else gy * m
        dn = g * (1.0 - z)
        dn *= 1.0 - n * n
        dxg = xp.empty((h.shape[0], 3 * hidden), dtype=gy.dtype)
        xp.multiply(dn * self.hn, r * (1.0 - r), out=dxg[:, :hidden])
        xp.multiply(g * (h - n), z * (1.0 - z), out=dxg[:, hidden : 2 * hidden])
        dxg[:, 2 * hidden :] = dn
        self.dhidden = dhg = dxg.copy()  # the gradient of h W^T + b (RecurrentSequence reads it)
        dhg[:, 2 * hidden :] *= r
        needs = self.needs_input_grad
        gh = None
        if needs[1]:
            gh = gemm.matmul(dhg, w)
            gh += g * z
            if m is not None:
                gh += gy - g
        return (dxg, gh, *_param_grads(dhg, h, needs, len(self.inputs), 2))

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        from nurinet.functional.activation import sigmoid
        from nurinet.functional.linalg import linear, matmul
        from nurinet.functional.shape import concatenate, split

        xg, h, w, b, m, g = _tensor_backward_inputs(self, gy)
        xr, xz, xn = split(xg, 3, axis=1)
        hr, hz, hn = split(linear(h, w, b), 3, axis=1)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = (xn + r * hn).tanh()
        dn = g * (1.0 - z) * (1.0 - n * n)
        dr, dz = dn * hn * r * (1.0 - r), g * (h - n) * z * (1.0 - z)
        dxg = concatenate([dr, dz, dn], axis=1)
        dhg = concatenate([dr, dz, dn * r], axis=1)
        gh = matmul(dhg, w) + g * z
        if m is not None:
            gh = gh + gy * (1.0 - m)
        return (dxg, gh, *_tensor_param_grads(dhg, h, b))


def make_step(mode: str, mask: Any) -> Function:
    """A fresh step op for ``mode`` ("RNN_TANH", "RNN_RELU", "LSTM" or "GRU")."""
    if mode == "LSTM":
        return LSTMCellFunction(mask)
    if mode == "GRU":
        return GRUCellFunction(mask)
    return RNNCellFunction("tanh" if mode == "RNN_TANH" else "relu", mask)
