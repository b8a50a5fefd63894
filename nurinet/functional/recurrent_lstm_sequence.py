"""The array code of an unmasked LSTM recurrence: whole-sequence buffers, no per-step objects.

:class:`LSTMKernels` runs one layer and direction of an LSTM over full-length sequences for
:class:`~nurinet.functional.recurrent_sequence.RecurrentSequence`: the native kernels where they run
(:mod:`nurinet._runtime.fast.lstm`), else per step the array equations of
:mod:`nurinet.functional.recurrent_lstm` (NumPy or CuPy) into slices of its buffers.

Buffers and their owners (:mod:`nurinet._runtime.buffers`): the gate activations, the cell states and
their tanh are the graph node's own; they come from ``buffers.take`` and go back with
``buffers.give_back`` in :meth:`LSTMKernels.release`, when the graph is freed. The hidden states (the
outputs are a view of them) and the gate gradients (handed to the input projection's backward) leave
the op: they are plain fresh arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nurinet._runtime import buffers, gemm
from nurinet._runtime.fast import lstm as fast_lstm
from nurinet.functional import recurrent_lstm as lstm
from nurinet.functional._util import xp_of


class LSTMKernels:
    """One unmasked LSTM recurrence, forward and backward, on whole-sequence buffers.

    Forward: the input gates of all steps times the gate rates (and the hidden bias) go into a
    ``(T, N, 4H)`` buffer in two whole-sequence ufuncs; per step, one GEMM ``h @ W'`` (``W' = rate
    W_hh^T``, scaled once per sequence) added in place, then :func:`~.recurrent_lstm.step_forward`
    into slices of the state buffers. The buffer ends up holding the activations of every step.

    Backward, last step first: :func:`~.recurrent_lstm.step_backward` and one GEMM ``d @ W_hh`` per
    step, writing the gate gradients of all steps into one ``(T, N, 4H)`` array. That array is the
    input-gate gradient, the hidden weight's gradient is one GEMM over all steps, ``D^T @ H_prev``,
    and the gradients of ``h0`` (one GEMM) and ``c0`` are skipped when they are not needed. The saved
    buffers are only read, so a retained graph can run its backward again.
    """

    gates = hs = cs = tcs = None

    def __init__(self, reverse: bool) -> None:
        self.reverse = reverse
        self.native = None

    def _indices(self, steps: int) -> tuple[range, int, int]:
        """Step order, then the offsets of the previous and new state in the ``(T+1, ...)`` buffers."""
        if self.reverse:  # Step t reads state t + 1 and writes state t; the initial state sits at T.
            return range(steps - 1, -1, -1), 1, 0
        return range(steps), 0, 1

    def forward(self, xg: Any, h0: Any, c0: Any, w: Any, b: Any = None) -> tuple[Any, Any, Any]:
        xp = xp_of(xg)
        steps, batch, hidden = xg.shape[0], xg.shape[1], h0.shape[-1]
        self.gates = buffers.take(xp, xg.shape, xg.dtype)  # (T, N, 4H): pre-activations, then activations
        self.hs = xp.empty((steps + 1, batch, hidden), dtype=xg.dtype)  # every h, h0 included: outputs view it
        self.cs = buffers.take(xp, self.hs.shape, xg.dtype)  # every cell state, c0 included
        self.tcs = buffers.take(xp, (steps, batch, hidden), xg.dtype)  # tanh of every new cell state
        order, prev, new = self._indices(steps)
        self.hs[order[0] + prev], self.cs[order[0] + prev] = h0, c0
        self.native = fast_lstm.recurrence(xg, h0, c0, w, b, (self.gates, self.hs, self.cs, self.tcs), self.reverse)
        if self.native is None:
            self._numpy_forward(xp, xg, w, b)
        outputs = self.hs[new : steps + new]  # a view: the states are kept once, for output and backward
        last = order[-1] + new
        return outputs, self.hs[last].copy(), self.cs[last].copy()

    def _numpy_forward(self, xp: Any, xg: Any, w: Any, b: Any) -> None:
        """The recurrence in NumPy (or CuPy) ufuncs, into the buffers :meth:`forward` took."""
        batch, hidden = xg.shape[1], self.hs.shape[-1]
        row = lstm.gate_rate_row(xp, hidden, xg.dtype)
        xp.multiply(xg, lstm.gate_rates(xp, hidden, xg.dtype, batch), out=self.gates)
        if b is not None:
            self.gates += b * row
        w_scaled = xp.empty(w.shape[::-1], dtype=w.dtype)  # (H, 4H) in C order: a ufunc's own output
        xp.multiply(w.T, row, out=w_scaled)  # would keep w.T's Fortran order, slower in the GEMM
        with fast_lstm.step_blas_threads(batch, hidden), np.errstate(over="ignore"):
            self._forward_steps(xp, w_scaled)

    def _forward_steps(self, xp: Any, w_scaled: Any) -> None:
        """Per step one GEMM into the rate-scaled gates, then the step equations (all ``out=``)."""
        gates, hs, cs, tcs = self.gates, self.hs, self.cs, self.tcs
        order, prev, new = self._indices(gates.shape[0])
        product, scratch = xp.empty_like(gates[0]), xp.empty_like(hs[0])
        for t in order:
            gemm.matmul(hs[t + prev], w_scaled, out=product)
            gates[t] += product
            lstm.step_forward(gates[t], cs[t + prev], cs[t + new], tcs[t], hs[t + new], scratch)

    def backward(self, g_out: Any, gh: Any, gc: Any, inputs: tuple, needs: tuple) -> tuple[Any, ...]:
        xp = xp_of(g_out)
        steps, batch, hidden = g_out.shape
        _, prev, _ = self._indices(steps)
        d = xp.empty(self.gates.shape, dtype=g_out.dtype)  # the gate gradients of all steps: they leave the op
        dh = xp.zeros_like(g_out[0]) if gh is None else gh.copy()
        dc = xp.zeros_like(g_out[0]) if gc is None else gc.copy()
        w, has_bias = inputs[3].array, len(inputs) > 4
        bias_grad = None
        if self.native is not None:
            bias_grad = fast_lstm.recurrence_backward(self.native, (self.gates, self.cs, self.tcs), g_out, (d, dh, dc),
                                                      w, (needs[1], needs[2]), has_bias and needs[4], self.reverse)
        else:
            with fast_lstm.step_blas_threads(batch, hidden):
                self._backward_steps(xp, g_out, d, dh, dc, w, needs)
        grads = [d, dh if needs[1] else None, dc if needs[2] else None]
        flat = d.reshape(-1, 4 * hidden)
        h_prev = self.hs[prev : steps + prev].reshape(-1, hidden)
        grads.append(gemm.matmul(flat.T, h_prev) if needs[3] else None)
        if has_bias:
            if bias_grad is None and needs[4]:
                bias_grad = flat.sum(axis=0)
            grads.append(bias_grad)
        return tuple(grads)

    def _backward_steps(self, xp: Any, g_out: Any, d: Any, dh: Any, dc: Any, w: Any, needs: tuple) -> None:
        """The recurrence backward, last step first; writes every step's gate gradients into ``d``.

        ``dh`` and ``dc`` are updated in place to the gradients of the previous state.
        """
        order, prev, _ = self._indices(g_out.shape[0])
        scratch = (xp.empty_like(d[0]), xp.empty_like(dh))
        first = order[0]  # the backward ends at the first step: its state gradients go to h0 and c0
        for t in order[::-1]:
            dh += g_out[t]
            lstm.step_backward(self.gates[t], self.cs[t + prev], self.tcs[t], dh, dc, d[t],
                               to_c_prev=t != first or needs[2], scratch=scratch)
            if t != first or needs[1]:
                gemm.matmul(d[t], w, out=dh)

    def release(self) -> None:
        """Give the node's own buffers back for the next sequence (the graph is freed: no backward follows)."""
        if self.gates is not None:
            for array in (self.gates, self.cs, self.tcs):
                buffers.give_back(array)
        self.gates = self.cs = self.tcs = self.hs = None
