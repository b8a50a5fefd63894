"""Fused recurrent cell ops: one ``Function`` per time step for RNN, LSTM and GRU cells.

A recurrent layer computes the input projection of every time step at once, with one
large GEMM ``(T*N, I) @ (I, G*H)`` (``F.linear`` on the whole sequence), and then
runs one *step* op per time step. A step op takes that step's precomputed input
gates ``xg``, the previous state and the hidden weights, and does the hidden GEMM
(all gates in one product) and all the gate math in one node, so a step costs one
graph node instead of some twenty. Its ``backward_arrays`` is the closed-form
gradient from the saved gate activations; its ``backward`` writes the same formulas
with differentiable Tensor ops (recomputing the gates from the inputs) so that
gradients of gradients work.

Gate layout and equations follow PyTorch (weights ``(G*H, ·)``, gates in this order):

* RNN: ``h' = act(xg + h W^T + b)``, act = tanh or relu.
* LSTM (gates i, f, g, o): ``c' = f * c + i * g``, ``h' = o * tanh(c')``.
* GRU (gates r, z, n): ``r = σ(xg_r + hg_r)``, ``z = σ(xg_z + hg_z)``,
  ``n = tanh(xg_n + r * hg_n)``, ``h' = (1 - z) * n + z * h`` with ``hg = h W^T + b``.

``mask`` (optional, an ``(N, 1)`` array of 0/1 in the state's dtype) implements
variable-length batches: where it is 0 the state passes through unchanged,
``state_out = state + mask * (state' - state)``.

The layers (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``) run a whole recurrence as one node,
:class:`RecurrentSequence`: it calls the step ops' array code step by step, so the
backward engine handles one node instead of T, and the hidden weight's gradient is
one GEMM over all steps instead of T small ones plus T accumulations (in a cProfile of
the LSTM benchmark with one node per step, that bookkeeping, the stacking and the
per-step weight gradients took about a quarter of the training step). Its ``backward``
replays the step ops, so second derivatives still work. An LSTM over full-length sequences
(no ``masks``) runs :class:`_LSTMKernels` instead of the step ops' array code: whole-sequence
buffers, recycled from one training step to the next, and no per-step objects; its per-step
GEMMs can be kept on one BLAS thread (``settings.LSTM_SINGLE_THREAD_STEP_MACS``, off by default).

:class:`StepSplit` and :class:`StepStack` cut a ``(T, ...)`` tensor into its T steps and
put T steps back together, each as a single node with an array backward.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from nurinet._runtime import gemm, libraries, native, parallel, settings
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import check_operand_dtype, on_device_of, xp_of


def _const(array: Any) -> Tensor:
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
        h, w = self.inputs[1].data, self.inputs[2].data
        needs = self.needs_input_grad
        gh = gemm.matmul(d, w) if needs[1] else None
        if gh is not None and m is not None:
            gh += gy - g
        return (d, gh, *_param_grads(d, h, needs, len(self.inputs), 2))

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        from nurinet.functional.linalg import matmul

        xg, h, w = self.inputs[:3]
        b = self.inputs[3] if len(self.inputs) > 3 else None
        m = None if self.mask is None else _const(self.mask)
        g = gy if m is None else gy * m
        pre = _hidden_gates_t(xg, h, w, b)
        if self.nonlinearity == "tanh":
            y = pre.tanh()
            d = g * (1.0 - y * y)
        else:
            d = g * _const((pre.data > 0).astype(pre.dtype))
        gh = matmul(d, w) if m is None else matmul(d, w) + gy * (1.0 - m)
        grads = [d, gh, matmul(d.T, h)]
        if b is not None:
            grads.append(d.sum(axis=0))
        return tuple(grads)


# ----- LSTM ---------------------------------------------------------------------------------
class LSTMCellFunction(Function):
    """One LSTM step (inputs xg, h, c, w_hh[, b_hh]; outputs h', c').

    The three sigmoids and the tanh of the gates are one ``exp`` over all ``4H``
    columns, using ``tanh(x) = 2 σ(2x) - 1`` (see :func:`_gate_constants`); the
    activations are saved for the backward.

    backward_arrays: part of a hot op's array backward: RecurrentSequence (the LSTM benchmark)
    calls it per step.
    """

    out_d: Any = None  # Where backward_arrays may write the gate gradient (RecurrentSequence's buffer).

    def __init__(self, mask: Any = None) -> None:
        self.mask = mask

    def forward(self, xg: Any, h: Any, c: Any, w: Any, b: Any = None) -> Any:
        xp = xp_of(xg)
        gates = _hidden_gates(xg, h, w, b)
        hidden = h.shape[-1]
        neg_k = _gate_constants(xp, hidden, gates.dtype)[0]
        gates *= neg_k
        with np.errstate(over="ignore"):  # exp(-k x) = inf for very negative x gives σ = 0: right.
            xp.exp(gates, out=gates)
        gates += 1.0
        self.u = u = xp.reciprocal(gates, out=gates)  # σ(k x): σ(x) for i, f, o; σ(2x) for g
        i, f, o = u[:, :hidden], u[:, hidden : 2 * hidden], u[:, 3 * hidden :]
        g = u[:, 2 * hidden : 3 * hidden] * 2.0
        g -= 1.0  # tanh(x) = 2 σ(2x) - 1
        self.g = g
        c_new = f * c
        c_new += i * g
        self.tc = xp.tanh(c_new)
        h_new = o * self.tc
        return _blend(h_new, h, self.mask), _blend(c_new, c, self.mask)

    def backward_arrays(self, gh: Any, gc: Any) -> tuple[Any, ...]:
        xp, m, u, g, tc = xp_of(gh), self.mask, self.u, self.g, self.tc
        hidden = tc.shape[-1]
        h, c, w = self.inputs[1].data, self.inputs[2].data, self.inputs[3].data
        gh_in, gc_in = (gh, gc) if m is None else (gh * m, gc * m)
        i, f, o = u[:, :hidden], u[:, hidden : 2 * hidden], u[:, 3 * hidden :]
        dc = 1.0 - tc * tc
        dc *= gh_in
        dc *= o
        dc += gc_in
        # d = (dL/d act) * act'(pre); act' = amp k σ(kx) (1 - σ(kx)) for all four gates at once.
        d = xp.empty_like(u) if self.out_d is None else self.out_d
        xp.multiply(dc, g, out=d[:, :hidden])
        xp.multiply(dc, c, out=d[:, hidden : 2 * hidden])
        xp.multiply(dc, i, out=d[:, 2 * hidden : 3 * hidden])
        xp.multiply(gh_in, tc, out=d[:, 3 * hidden :])
        slope = 1.0 - self.u
        slope *= self.u
        slope *= _gate_constants(xp, hidden, u.dtype)[1]
        d *= slope
        needs = self.needs_input_grad
        gh_prev = gemm.matmul(d, w) if needs[1] else None
        gc_prev = dc * f if needs[2] else None
        if m is not None:
            gh_prev = None if gh_prev is None else gh_prev + (gh - gh_in)
            gc_prev = None if gc_prev is None else gc_prev + (gc - gc_in)
        return (d, gh_prev, gc_prev, *_param_grads(d, h, needs, len(self.inputs), 3))

    def backward(self, gh: Tensor, gc: Tensor) -> tuple[Tensor | None, ...]:
        from nurinet.functional.activation import sigmoid
        from nurinet.functional.linalg import matmul
        from nurinet.functional.shape import concatenate, split

        xg, h, c, w = self.inputs[:4]
        b = self.inputs[4] if len(self.inputs) > 4 else None
        m = None if self.mask is None else _const(self.mask)
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
        grads = [d, gh_prev, gc_prev, matmul(d.T, h)]
        if b is not None:
            grads.append(d.sum(axis=0))
        return tuple(grads)


_CONSTANTS: dict[tuple, Any] = {}


def _gate_constants(xp: Any, hidden: int, dtype: Any) -> tuple[Any, Any]:
    """Per-column constants of the LSTM gates, cached per size and dtype.

    Every gate is computed from ``σ(k x)``: ``k = 1`` for the sigmoid gates i, f, o and
    ``k = 2`` for g, whose activation is ``tanh(x) = 2 σ(2x) - 1``; so one ``exp`` over all
    ``4H`` columns activates every gate (NumPy's ``exp`` is about twice as fast as its
    ``tanh``). Returns ``(-k, (amp k))`` with ``amp = 1, 1, 2, 1`` (the factor in front of σ):
    the derivative of each activation is ``amp k σ(kx) (1 - σ(kx))``.
    """
    key = (xp.__name__, hidden, dtype)
    found = _CONSTANTS.get(key)
    if found is None:
        k = xp.ones(4 * hidden, dtype=dtype)
        k[2 * hidden : 3 * hidden] = 2.0
        found = _CONSTANTS[key] = (-k, k * k)
    return found


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
        h, w = self.inputs[1].data, self.inputs[2].data
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

        xg, h, w = self.inputs[:3]
        b = self.inputs[3] if len(self.inputs) > 3 else None
        m = None if self.mask is None else _const(self.mask)
        g = gy if m is None else gy * m
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
        grads = [dxg, gh, matmul(dhg.T, h)]
        if b is not None:
            grads.append(dhg.sum(axis=0))
        return tuple(grads)


# ----- splitting a sequence into steps and stacking steps -----------------------------------
class StepSplit(Function):
    """Cut ``x`` of shape ``(T, ...)`` into T tensors ``x[t]`` (views), one node."""

    def forward(self, x: Any) -> Any:
        return tuple(x[t] for t in range(x.shape[0]))

    def backward(self, *gys: Tensor) -> Tensor:
        return StepStack()(*gys)


class StepStack(Function):
    """Stack T tensors of one shape into ``(T, ...)`` along a new axis 0, one node."""

    def forward(self, *xs: Any) -> Any:
        return xp_of(xs[0]).stack(xs)

    def backward(self, gy: Tensor) -> tuple[Tensor, ...]:
        return StepSplit()(gy)


def unstack(x: Tensor) -> tuple[Tensor, ...]:
    """The T slices ``x[0], ..., x[T-1]`` of a tensor of shape ``(T, ...)``, T >= 1."""
    x = as_tensor(x)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"unstack needs a tensor with a non-empty first dim, got shape {x.shape}")
    result = StepSplit()(x)
    return result if isinstance(result, tuple) else (result,)


def stack_steps(xs: list[Tensor]) -> Tensor:
    """Stack tensors of one shape along a new first axis (one graph node for all of them)."""
    xs = [as_tensor(x) for x in xs]
    if not xs or len({x.shape for x in xs}) != 1:
        raise ValueError(f"stack_steps needs at least one tensor, all of one shape; got "
                         f"{sorted({x.shape for x in xs})}")
    return StepStack()(*xs)


# ----- a whole recurrence as one node ---------------------------------------------------------
def _make_step(mode: str, mask: Any) -> Function:
    if mode == "LSTM":
        return LSTMCellFunction(mask)
    if mode == "GRU":
        return GRUCellFunction(mask)
    return RNNCellFunction("tanh" if mode == "RNN_TANH" else "relu", mask)


class _LSTMKernels:
    """The array code of an unmasked LSTM recurrence: whole-sequence buffers, no per-step objects.

    Every gate is computed from one ``exp``: ``σ(x) = 1 / (1 + exp(-x))`` for i, f, o and
    ``tanh(x) = 2 σ(2x) - 1`` for g. With ``rate = -1`` on the i, f, o columns and ``-2`` on g
    (see :func:`_lstm_rates`), ``u = 1 / (1 + exp(rate x))`` over all ``4H`` columns, then the g
    columns become ``2 u - 1``. NumPy's float32 ``exp`` is markedly faster than its ``tanh``
    (figures in docs/performance.md).

    Forward: the input gates of all steps times ``rate`` (and the hidden bias) go into a
    ``(T, N, 4H)`` buffer in two whole-sequence ufuncs; per step, one GEMM ``h @ W'`` (``W' = rate
    W_hh^T``, scaled once per sequence) added in place, the gate activations, and the cell update,
    every ufunc writing into preallocated memory (``out=``). The buffer ends up holding the
    activations ``i, f, g, o`` of every step.

    Backward, last step first: a dozen small ufuncs and one GEMM ``d @ W_hh`` per step, writing
    the gate gradients of all steps into one ``(T, N, 4H)`` array. That array is the input-gate
    gradient, the hidden weight's gradient is one GEMM over all steps, ``D^T @ H_prev``, and the
    gradient of ``h0`` (one GEMM) and ``c0`` are skipped when they are not needed. The saved
    buffers are only read, so a retained graph can run its backward again.
    """

    def __init__(self, reverse: bool) -> None:
        self.reverse = reverse

    def _indices(self, steps: int) -> tuple[range, int, int]:
        """Step order, then the offsets of the previous and new state in the ``(T+1, ...)`` buffers."""
        if self.reverse:  # Step t reads state t + 1 and writes state t; the initial state sits at T.
            return range(steps - 1, -1, -1), 1, 0
        return range(steps), 0, 1

    def forward(self, xg: Any, h0: Any, c0: Any, w: Any, b: Any = None) -> tuple[Any, Any, Any]:
        xp = xp_of(xg)
        steps, batch, hidden = xg.shape[0], xg.shape[1], h0.shape[-1]
        self.gates = _take_buffer(xp, xg.shape, xg.dtype)  # (T, N, 4H): pre-activations, then activations
        # Every hidden state, h0 included: lent, not given back on release, since the outputs are a view of it.
        self.hs = _lend_buffer(xp, (steps + 1, batch, hidden), xg.dtype)
        self.cs = _take_buffer(xp, self.hs.shape, xg.dtype)  # every cell state, c0 included
        self.tcs = _take_buffer(xp, (steps, batch, hidden), xg.dtype)  # tanh of every new cell state
        order, prev, new = self._indices(steps)
        self.hs[order[0] + prev], self.cs[order[0] + prev] = h0, c0
        self.native = _native_lstm(xg, h0, c0, w, b)
        if self.native is not None:
            self._native_forward(xg, w, b)
        else:
            self._numpy_forward(xp, xg, w, b, order, prev, new)
        outputs = self.hs[new : steps + new]  # a view: the states are kept once, for output and backward
        last = order[-1] + new
        return outputs, self.hs[last].copy(), self.cs[last].copy()

    def _numpy_forward(self, xp: Any, xg: Any, w: Any, b: Any, order: range, prev: int, new: int) -> None:
        """The recurrence in NumPy (or CuPy) ufuncs, into the buffers :meth:`forward` took."""
        batch, hidden = xg.shape[1], self.hs.shape[-1]
        rate = _lstm_rates(xp, hidden, xg.dtype, batch)
        row = rate[0] if batch else _lstm_rates(xp, hidden, xg.dtype, 1)[0]  # an empty batch's rates have no row
        xp.multiply(xg, rate, out=self.gates)
        if b is not None:
            self.gates += b * row
        w_scaled = xp.empty(w.shape[::-1], dtype=w.dtype)  # (H, 4H) in C order: a ufunc's own output
        xp.multiply(w.T, row, out=w_scaled)  # would keep w.T's Fortran order, slower in the GEMM
        # exp overflows to inf for pre-activations below about -88 (float32): 1 / (1 + inf) = 0 is right.
        with _step_blas_threads(batch, hidden), np.errstate(over="ignore"):
            self._forward_steps(xp, order, prev, new, w_scaled)

    def _native_forward(self, xg: Any, w: Any, b: Any) -> None:
        """The recurrence in the native kernel ``lstm_forward``, into the buffers :meth:`forward` took.

        Same contents as the NumPy code (``self.gates`` ends up holding the activations), from
        unscaled pre-activations: the kernel computes σ and tanh itself.
        """
        lib, (sgemm, int64) = self.native
        steps, batch, hidden = xg.shape[0], xg.shape[1], self.hs.shape[-1]
        xg = np.ascontiguousarray(xg)
        bias = np.zeros(4 * hidden, np.float32) if b is None else np.ascontiguousarray(b)
        wt = np.ascontiguousarray(w.T)  # (H, 4H): OpenBLAS's fastest operand layout for h @ W^T
        pointers = [a.ctypes.data for a in (xg, bias, self.gates, self.hs, self.cs, self.tcs, wt)]

        def rows(row0: int, row1: int) -> None:
            lib.lstm_forward(steps, batch, hidden, row0, row1, *pointers, int(self.reverse), sgemm, int64,
                             _packed_gemm(hidden))

        _over_rows(rows, batch, hidden)

    def _forward_steps(self, xp: Any, order: range, prev: int, new: int, w_scaled: Any) -> None:
        """The recurrence: per step one GEMM, the gate activations, the cell update (all ``out=``).

        ``w_scaled`` is ``rate W_hh^T``, ``(H, 4H)`` and contiguous: the fastest operand layout for
        the GEMM; ``self.gates`` holds ``rate`` times the input gates and hidden bias.
        """
        gates, hs, cs, tcs = self.gates, self.hs, self.cs, self.tcs
        gates4 = gates.reshape(gates.shape[:2] + (4, hs.shape[-1]))
        product, ig = xp.empty_like(gates[0]), xp.empty_like(hs[0])
        for t in order:
            z, a = gates[t], gates4[t]
            gemm.matmul(hs[t + prev], w_scaled, out=product)
            z += product
            xp.exp(z, out=z)
            z += 1
            xp.reciprocal(z, out=z)  # σ of the i, f, o pre-activations, σ(2x) on g
            g = a[:, 2]
            g *= 2
            g -= 1  # tanh(x) = 2 σ(2x) - 1
            c_new = cs[t + new]
            xp.multiply(a[:, 1], cs[t + prev], out=c_new)
            xp.multiply(a[:, 0], g, out=ig)
            c_new += ig
            xp.tanh(c_new, out=tcs[t])
            xp.multiply(a[:, 3], tcs[t], out=hs[t + new])

    def backward(self, g_out: Any, gh: Any, gc: Any, inputs: tuple, needs: tuple) -> tuple[Any, ...]:
        xp = xp_of(g_out)
        steps, batch, hidden = g_out.shape
        order, prev, _ = self._indices(steps)
        d = _lend_buffer(xp, self.gates.shape, g_out.dtype)  # the gate gradients of all steps
        dh = xp.zeros_like(g_out[0]) if gh is None else gh.copy()
        dc = xp.zeros_like(g_out[0]) if gc is None else gc.copy()
        bias_grad = None
        if self.native is not None:
            bias_grad = self._native_backward(g_out, d, dh, dc, inputs[3].data, needs, len(inputs) > 4 and needs[4])
        else:
            with _step_blas_threads(batch, hidden):
                self._backward_steps(xp, order, prev, g_out, d, dh, dc, inputs[3].data, needs)
        grads = [d, dh if needs[1] else None, dc if needs[2] else None]
        flat = d.reshape(-1, 4 * hidden)
        h_prev = self.hs[prev : steps + prev].reshape(-1, hidden)
        grads.append(gemm.matmul(flat.T, h_prev) if needs[3] else None)
        if len(inputs) > 4:
            if bias_grad is None and needs[4]:
                bias_grad = flat.sum(axis=0)
            grads.append(bias_grad)
        return tuple(grads)

    def _native_backward(self, g_out: Any, d: Any, dh: Any, dc: Any, w: Any, needs: tuple, bias: bool) -> Any:
        """:meth:`_backward_steps` in the native kernel ``lstm_backward`` (same arguments and results).

        Returns the hidden bias's gradient (summed by the kernel, per thread, as it writes ``d``) when
        ``bias``, else None.
        """
        lib, (sgemm, int64) = self.native
        steps, batch, hidden = g_out.shape
        g_out = np.ascontiguousarray(g_out, dtype=np.float32)
        w = np.ascontiguousarray(w)
        pointers = [a.ctypes.data for a in (self.gates, self.cs, self.tcs, g_out, d, dh, dc, w)]

        def rows(row0: int, row1: int) -> Any:
            part = np.zeros(4 * hidden, dtype=np.float32) if bias else None
            lib.lstm_backward(steps, batch, hidden, row0, row1, *pointers, None if part is None else part.ctypes.data,
                              int(self.reverse), int(needs[1]), int(needs[2]), sgemm, int64, _packed_gemm(hidden))
            return part

        parts = _over_rows(rows, batch, hidden)
        return sum(parts[1:], parts[0]) if bias else None

    def _backward_steps(self, xp: Any, order: range, prev: int, g_out: Any, d: Any, dh: Any, dc: Any,
                        w: Any, needs: tuple) -> None:
        """The recurrence backward, last step first; writes every step's gate gradients into ``d``.

        With the saved activations ``a`` (σ for i, f, o; tanh for g), the gradient of each gate's
        pre-activation is its slope, ``a (1 - a)`` or ``1 - g²``, times
        ``dc g | dc c_prev | dc i | dh tanh(c)`` (gates i, f, g, o), where ``dc`` already holds what
        ``dh`` adds to it through ``h = o tanh(c)``. ``dh`` and ``dc`` are updated in place to the
        gradients of the previous state.
        """
        hidden = dh.shape[-1]
        acts4, d4 = self.gates.reshape(d.shape[:2] + (4, hidden)), d.reshape(d.shape[:2] + (4, hidden))
        slope, tmp = xp.empty_like(d[0]), xp.empty_like(dh)
        slope_g = slope.reshape(-1, 4, hidden)[:, 2]
        first = order[0]  # the backward ends at the first step: its state gradients go to h0 and c0
        for t in order[::-1]:
            a, e, tc = acts4[t], d4[t], self.tcs[t]
            dh += g_out[t]
            xp.multiply(tc, tc, out=tmp)
            xp.subtract(1, tmp, out=tmp)
            tmp *= a[:, 3]
            tmp *= dh
            dc += tmp
            xp.multiply(dc, a[:, 2], out=e[:, 0])
            xp.multiply(dc, self.cs[t + prev], out=e[:, 1])
            xp.multiply(dc, a[:, 0], out=e[:, 2])
            xp.multiply(dh, tc, out=e[:, 3])
            s = self.gates[t]
            xp.multiply(s, s, out=slope)
            xp.subtract(s, slope, out=slope)  # σ' = σ (1 - σ); the g columns are overwritten next
            xp.multiply(a[:, 2], a[:, 2], out=slope_g)
            xp.subtract(1, slope_g, out=slope_g)  # tanh' = 1 - tanh²
            d[t] *= slope
            if t != first or needs[2]:
                dc *= a[:, 1]
            if t != first or needs[1]:
                gemm.matmul(d[t], w, out=dh)

    def release(self) -> None:
        """Hand the internal buffers back for the next sequence (the graph is freed: no backward follows)."""
        if getattr(self, "gates", None) is not None:
            _give_back(self.gates, self.cs, self.tcs)
        self.gates = self.cs = self.tcs = self.hs = None


def _native_lstm(xg: Any, h0: Any, c0: Any, w: Any, b: Any) -> tuple[Any, tuple[int, int]] | None:
    """The native kernel library and the ``sgemm`` it calls (see :func:`nurinet._runtime.native.sgemm`) when
    they can run this recurrence, else None.

    They run float32 NumPy arrays only (CuPy and float64 keep the NumPy code, which the float64
    gradient checks and PyTorch comparisons exercise); see :mod:`nurinet._runtime.native`.
    """
    lib = native.for_arrays(xg, h0, c0, w, b, contiguous=False)  # the kernel's caller makes contiguous copies
    sgemm = native.sgemm() if lib is not None else None
    return None if sgemm is None else (lib, sgemm)


# Below this hidden size the packed GEMM's padding to whole register tiles and its packing cost more
# than OpenBLAS's own re-packing of the weight saves.
_PACKED_MIN_HIDDEN = 64


def _packed_gemm(hidden: int) -> int:
    """1 when the native LSTM kernels should run their per-step products in their own packed GEMM, else 0.

    That GEMM packs the hidden weight once per sequence where OpenBLAS packs it again at every step,
    but it runs on one thread: it is used when OpenBLAS would run the product on one thread too (the
    rows split over nurinet's threads, or ``settings.LSTM_SINGLE_THREAD_STEP_MACS``), for hidden sizes
    from ``_PACKED_MIN_HIDDEN`` to ``settings.LSTM_PACKED_GEMM_MAX_HIDDEN``, and never with MKL, whose
    own product is as fast. Called inside :func:`_over_rows`, which sets OpenBLAS's threads. The
    kernels follow it on builds with AVX-512 only, where the packed GEMM was measured to win.
    """
    if not _PACKED_MIN_HIDDEN <= hidden <= settings.LSTM_PACKED_GEMM_MAX_HIDDEN or gemm.provider() == "mkl":
        return 0
    found = libraries.openblas_threads()
    return int(found is not None and int(found[1]()) == 1)


def _over_rows(run_rows: Any, batch: int, hidden: int) -> list[Any]:
    """``run_rows(row0, row1)`` over the batch, in one call or split over nurinet's threads; the results.

    The rows of a recurrence never mix (row r of every state depends only on row r of the inputs),
    so each thread runs the whole recurrence for its own rows, with no hand-off between steps, and
    its own one-thread matrix products (OpenBLAS is set to one thread meanwhile: two threads each
    splitting a small product again would only fight over the cores).
    """
    pieces = min(parallel.get_elementwise_threads(), batch // settings.LSTM_MIN_ROWS_PER_THREAD)
    if pieces > 1:
        with parallel.single_blas_thread() as single:
            if single:
                return parallel.run([lambda a=a, b=b: run_rows(a, b) for a, b in parallel.bounds(batch, pieces)])
    with _step_blas_threads(batch, hidden):
        return [run_rows(0, batch)]


@contextmanager
def _step_blas_threads(batch: int, hidden: int) -> Iterator[None]:
    """One BLAS thread for the steps of a small recurrence (``settings.LSTM_SINGLE_THREAD_STEP_MACS``)."""
    if batch * hidden * 4 * hidden > settings.LSTM_SINGLE_THREAD_STEP_MACS:  # also when the setting is 0: off
        yield
        return
    with parallel.single_blas_thread():
        yield


_LSTM_RATES: dict[tuple, Any] = {}


def _lstm_rates(xp: Any, hidden: int, dtype: Any, batch: int) -> Any:
    """The fused LSTM's gate rates, ``-1`` on the i, f, o columns and ``-2`` on g, tiled to ``(batch, 4H)``.

    ``1 / (1 + exp(rate x))`` is then ``σ(x)`` on i, f, o and ``σ(2x)`` on g (see :class:`_LSTMKernels`).
    Cached per size and dtype; tiled because NumPy runs a product of two arrays of one shape about
    twice as fast as one that broadcasts a row over a small matrix.
    """
    key = (xp.__name__, hidden, xp.dtype(dtype), batch)
    found = _LSTM_RATES.get(key)
    if found is None:
        found = xp.full((batch, 4 * hidden), -1.0, dtype=dtype)
        found[:, 2 * hidden : 3 * hidden] = -2.0
        while len(_LSTM_RATES) >= 16:  # forget the oldest sizes (a model whose batch size varies)
            del _LSTM_RATES[next(iter(_LSTM_RATES))]
        _LSTM_RATES[key] = found
    return found


# Spare whole-sequence buffers of the fused LSTM, at most two per (array type, shape, dtype). A fresh
# multi-megabyte array is fresh memory that the kernel must map and zero page by page on first
# touch; in the benchmark LSTM (T=28, N=64, H=128) that cost more than the gate arithmetic itself.
# A buffer comes back only from _LSTMKernels.release, when the graph that used it is freed.
_SPARE: dict[tuple, list[Any]] = {}


def _take_buffer(xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """An uninitialized array of ``shape``: a spare one when there is one."""
    spare = _SPARE.get((xp.ndarray, tuple(shape), xp.dtype(dtype)))
    return spare.pop() if spare else xp.empty(shape, dtype=dtype)


# Arrays the fused LSTM hands out of the op (the hidden states, whose view is the output, and the
# gate gradients, which flow to the input projection's backward), at most two per shape and dtype.
# One is reused as soon as nothing but this list holds it (CPython reference counts), which saves
# the kernel's page-zeroing of fresh memory every training step.
_LENT: dict[tuple, list[Any]] = {}


def _lend_buffer(xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """An uninitialized NumPy array of ``shape`` to hand out: a lent one that is free again, or a new one."""
    if xp is not np:  # CuPy has its own memory pool
        return xp.empty(shape, dtype=dtype)
    lent = _LENT.setdefault((tuple(shape), np.dtype(dtype)), [])
    for array in lent:
        if sys.getrefcount(array) == 3:  # referenced only by the list, this loop and getrefcount itself
            return array
    array = np.empty(shape, dtype=dtype)
    if len(lent) < 2:
        lent.append(array)
    while len(_LENT) > 16:  # forget the oldest shapes
        del _LENT[next(iter(_LENT))]
    return array


def _give_back(*arrays: Any) -> None:
    """Keep buffers for :func:`_take_buffer`; the caller must be done with them (no other reference)."""
    for array in arrays:
        spare = _SPARE.setdefault((type(array), array.shape, array.dtype), [])
        if len(spare) < 2:
            spare.append(array)
    while len(_SPARE) > 16:  # forget the oldest shapes
        del _SPARE[next(iter(_SPARE))]


class RecurrentSequence(Function):
    """One layer and direction of a recurrence over all T steps, as one graph node.

    Inputs: ``xg`` (T, N, G*H), the input projections of all steps (one GEMM, done
    before); ``h0`` (N, H); ``c0`` (N, H) for an LSTM; ``w_hh`` (G*H, H); optionally
    ``b_hh``. Outputs: the hidden states of all steps (T, N, H), zero where ``masks``
    is 0, then ``h_n`` (and ``c_n``).

    Forward runs the step ops' array code, one hidden GEMM per step. ``backward_arrays``
    runs their closed-form backward from the last step to the first without making graph
    nodes, and forms the gradient of ``w_hh`` (and ``b_hh``) with one GEMM over all steps
    instead of one per step. ``backward`` replays the steps as recorded step ops and
    chains their Tensor ``backward``, so it is differentiable again.

    backward_arrays: the LSTM benchmark.
    """

    def __init__(self, mode: str, masks: Any = None, reverse: bool = False) -> None:
        self.mode, self.masks, self.reverse = mode, masks, reverse
        self.n_state = 2 if mode == "LSTM" else 1
        # An LSTM over full-length sequences runs the fused whole-sequence kernels (_LSTMKernels).
        fused = mode == "LSTM" and masks is None and settings.FUSED_PATHS
        self.fused = _LSTMKernels(reverse) if fused else None

    def _order(self, steps: int) -> range:
        return range(steps - 1, -1, -1) if self.reverse else range(steps)

    def release(self) -> None:
        if self.fused is not None:
            self.fused.release()
        super().release()

    def _mask(self, t: int) -> Any:
        return None if self.masks is None else self.masks[t]

    def forward(self, xg: Any, *rest: Any) -> Any:
        if self.fused is not None:
            return self.fused.forward(xg, *rest)
        xp, k = xp_of(xg), self.n_state
        state, params = list(rest[:k]), rest[k:]
        steps, hidden = xg.shape[0], rest[0].shape[-1]
        outputs = xp.empty(xg.shape[:2] + (hidden,), dtype=xg.dtype)
        self.h_prev, self.fns = xp.empty_like(outputs), []
        wrapped = tuple(Tensor._wrap(p, False) for p in params)
        needs = (True,) * (1 + k) + (False,) * len(params)  # parameter gradients: one GEMM at the end
        for t in self._order(steps):
            fn, mask = _make_step(self.mode, self._mask(t)), self._mask(t)
            fn.inputs = (None, *[Tensor._wrap(s, False) for s in state], *wrapped)
            fn.needs_input_grad = needs
            self.h_prev[t] = state[0]
            new = fn.forward(xg[t], *state, *params)
            state = list(new) if k == 2 else [new]
            if mask is None:
                outputs[t] = state[0]
            else:
                xp.multiply(state[0], mask, out=outputs[t])  # padded steps output zeros
            self.fns.append(fn)
        return (outputs, *state)

    def backward_arrays(self, g_out: Any, *g_state: Any) -> tuple[Any, ...]:
        if self.fused is not None:
            return self.fused.backward(g_out, *g_state, inputs=self.inputs, needs=self.needs_input_grad)
        xp, k = xp_of(g_out), self.n_state
        grads = list(g_state)
        dxg = xp.empty(g_out.shape[:2] + (self.inputs[1 + k].shape[0],), dtype=g_out.dtype)
        hid = xp.empty_like(dxg) if self.mode == "GRU" else dxg
        for t, fn in zip(reversed(self._order(len(self.fns))), reversed(self.fns)):
            mask = self._mask(t)
            grads[0] = grads[0] + (g_out[t] if mask is None else g_out[t] * mask)
            fn.out_d = dxg[t]
            result = fn.backward_arrays(*grads)
            if result[0] is not fn.out_d:
                dxg[t] = result[0]
            if hid is not dxg:
                hid[t] = fn.dhidden
            grads = list(result[1 : 1 + k])
        needs = self.needs_input_grad
        flat = hid.reshape(-1, hid.shape[-1])
        params = [gemm.matmul(flat.T, self.h_prev.reshape(-1, self.h_prev.shape[-1])) if needs[1 + k] else None]
        if len(self.inputs) > 2 + k:
            params.append(flat.sum(axis=0) if needs[2 + k] else None)
        return (dxg, *grads, *params)

    def backward(self, g_out: Tensor, *g_state: Tensor) -> tuple[Tensor | None, ...]:
        from nurinet.autograd.grad_mode import enable_grad

        k = self.n_state
        xg, state, params = self.inputs[0], list(self.inputs[1 : 1 + k]), self.inputs[1 + k :]
        replay = []
        with enable_grad():  # record the replayed steps: their Tensor backward needs their inputs
            xs = unstack(xg)
            for t in self._order(len(xs)):
                fn = _make_step(self.mode, self._mask(t))
                new = fn(xs[t], *state, *params)
                state = list(new) if k == 2 else [new]
                replay.append((t, fn))
        grads, dxs, dparams = list(g_state), [None] * len(xs), [None] * len(params)
        for t, fn in reversed(replay):
            mask = self._mask(t)
            grads[0] = grads[0] + (g_out[t] if mask is None else g_out[t] * _const(mask))
            result = fn.backward(*grads)
            dxs[t], grads = result[0], list(result[1 : 1 + k])
            dparams = [g if d is None else d + g for d, g in zip(dparams, result[1 + k :])]
        return (stack_steps(dxs), *grads, *dparams)


def recurrent_sequence(mode: str, xg: Tensor, state: tuple[Tensor, ...], w_hh: Tensor,
                       b_hh: Tensor | None = None, masks: Any = None,
                       reverse: bool = False) -> tuple[Tensor, ...]:
    """Run a recurrence over precomputed input gates ``xg`` (T, N, G*H) from ``state`` ((h,) or (h, c)).

    ``mode`` is "RNN_TANH", "RNN_RELU", "LSTM" or "GRU"; ``masks`` a list of T (N, 1) arrays
    (1 while a sequence runs) or None. Returns ``(outputs (T, N, H), h_n[, c_n])``.
    """
    if mode not in ("RNN_TANH", "RNN_RELU", "LSTM", "GRU"):
        raise ValueError(f"recurrent_sequence: mode must be 'RNN_TANH', 'RNN_RELU', 'LSTM' or 'GRU', got {mode!r}")
    if len(state) != (2 if mode == "LSTM" else 1):
        raise ValueError(f"recurrent_sequence: {mode} needs {'(h, c)' if mode == 'LSTM' else '(h,)'} as state, "
                         f"got {len(state)} tensor(s)")
    if xg.shape[0] == 0:
        raise ValueError(f"recurrent_sequence: expected a sequence of at least one step, got input gates of "
                         f"shape {xg.shape}")
    _check_dtypes("recurrent_sequence", xg, w_hh, w_hh, *state, x_name="xg")
    masks = None if masks is None else [_mask_on(m, xg) for m in masks]
    return RecurrentSequence(mode, masks, reverse)(xg, *state, *_step_args(w_hh, b_hh))


# ----- wrappers -----------------------------------------------------------------------------
def _check_dtypes(op: str, x: Tensor, w_x: Tensor, w_hh: Tensor, *state: Tensor, x_name: str = "input") -> None:
    """Refuse an input or state whose dtype is not its weight's (see ``check_operand_dtype``).

    ``x`` meets ``w_x``: a cell's input meets ``w_ih``, a step's input gates meet ``w_hh``.
    """
    check_operand_dtype(x, w_x, op, "w_hh" if w_x is w_hh else "w_ih", x_name)
    for s, what in zip(state, ("h", "c")):
        check_operand_dtype(s, w_hh, op, "w_hh", what)


def _mask_on(mask: Any, xg: Tensor) -> Any:
    """A step mask on the device of the input gates: masks are usually made with NumPy."""
    return on_device_of(mask, as_tensor(xg))


def _step_args(w_hh: Tensor, b_hh: Tensor | None) -> tuple[Tensor, ...]:
    return (w_hh,) if b_hh is None else (w_hh, b_hh)


def rnn_step(xg: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None = None,
             nonlinearity: str = "tanh", mask: Any = None) -> Tensor:
    """One RNN step from precomputed input gates ``xg = x W_ih^T + b_ih`` of shape (N, H)."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    _check_dtypes("rnn_step", xg, w_hh, w_hh, h, x_name="xg")
    return RNNCellFunction(nonlinearity, _mask_on(mask, xg))(xg, h, *_step_args(w_hh, b_hh))


def lstm_step(xg: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor | None = None,
              mask: Any = None) -> tuple[Tensor, Tensor]:
    """One LSTM step from precomputed input gates ``xg`` of shape (N, 4H); returns (h', c')."""
    _check_dtypes("lstm_step", xg, w_hh, w_hh, h, c, x_name="xg")
    return LSTMCellFunction(_mask_on(mask, xg))(xg, h, c, *_step_args(w_hh, b_hh))


def gru_step(xg: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None = None,
             mask: Any = None) -> Tensor:
    """One GRU step from precomputed input gates ``xg`` of shape (N, 3H); returns h'."""
    _check_dtypes("gru_step", xg, w_hh, w_hh, h, x_name="xg")
    return GRUCellFunction(_mask_on(mask, xg))(xg, h, *_step_args(w_hh, b_hh))


def rnn_cell(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
             b_hh: Tensor | None = None, nonlinearity: str = "tanh") -> Tensor:
    """An Elman RNN cell ``act(x W_ih^T + b_ih + h W_hh^T + b_hh)``; x (N, I), h (N, H)."""
    from nurinet.functional.linalg import linear

    _check_dtypes("rnn_cell", x, w_ih, w_hh, h)
    return rnn_step(linear(x, w_ih, b_ih), h, w_hh, b_hh, nonlinearity)


def lstm_cell(x: Tensor, hx: tuple[Tensor, Tensor], w_ih: Tensor, w_hh: Tensor,
              b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """An LSTM cell (PyTorch's gates i, f, g, o); ``hx = (h, c)``; returns ``(h', c')``."""
    from nurinet.functional.linalg import linear

    _check_dtypes("lstm_cell", x, w_ih, w_hh, hx[0], hx[1])
    return lstm_step(linear(x, w_ih, b_ih), hx[0], hx[1], w_hh, b_hh)


def gru_cell(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,
             b_hh: Tensor | None = None) -> Tensor:
    """A GRU cell (PyTorch's gates r, z, n); returns h'."""
    from nurinet.functional.linalg import linear

    _check_dtypes("gru_cell", x, w_ih, w_hh, h)
    return gru_step(linear(x, w_ih, b_ih), h, w_hh, b_hh)
