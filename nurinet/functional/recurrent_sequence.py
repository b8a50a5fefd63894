"""A whole recurrence, one layer and direction over all T steps, as one graph node.

The layers (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``) run a recurrence as one :class:`RecurrentSequence`:
it calls the step ops' array code (:mod:`nurinet.functional.recurrent_cells`) step by step, so the
backward engine handles one node instead of T, and the hidden weight's gradient is one GEMM over all
steps instead of T small ones plus T accumulations (docs/performance.md has the profile). Its
``backward`` replays the step ops, so second derivatives still work. An LSTM over full-length
sequences (no ``masks``) runs :class:`~nurinet.functional.recurrent_lstm_sequence.LSTMKernels`
instead: whole-sequence buffers and no per-step objects; its per-step GEMMs can be kept on one BLAS
thread (``settings.LSTM_SINGLE_THREAD_STEP_MACS``, off by default).
"""

from __future__ import annotations

from typing import Any

from nurinet._runtime import gemm, settings
from nurinet.autograd.function import Function
from nurinet.autograd.tensor import Tensor
from nurinet.functional._util import xp_of
from nurinet.functional.recurrent_cells import as_constant, make_step
from nurinet.functional.recurrent_lstm_sequence import LSTMKernels
from nurinet.functional.recurrent_steps import stack_steps, unstack


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
        # An LSTM over full-length sequences runs the whole-sequence kernels (LSTMKernels).
        fused = mode == "LSTM" and masks is None and settings.FUSED_PATHS
        self.fused = LSTMKernels(reverse) if fused else None

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
            mask = self._mask(t)
            fn = make_step(self.mode, mask)
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
                fn = make_step(self.mode, self._mask(t))
                new = fn(xs[t], *state, *params)
                state = list(new) if k == 2 else [new]
                replay.append((t, fn))
        grads, dxs, dparams = list(g_state), [None] * len(xs), [None] * len(params)
        for t, fn in reversed(replay):
            mask = self._mask(t)
            grads[0] = grads[0] + (g_out[t] if mask is None else g_out[t] * as_constant(mask))
            result = fn.backward(*grads)
            dxs[t], grads = result[0], list(result[1 : 1 + k])
            dparams = [g if d is None else d + g for d, g in zip(dparams, result[1 + k :])]
        return (stack_steps(dxs), *grads, *dparams)
