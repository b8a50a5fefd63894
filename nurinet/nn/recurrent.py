"""Recurrent layers: the cells RNNCell, LSTMCell, GRUCell and the sequence layers RNN, LSTM, GRU.

Parameter names, shapes and gate order are PyTorch's (``weight_ih_l0``,
``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``*_reverse`` for the backward
direction; LSTM gates i, f, g, o; GRU gates r, z, n), so a PyTorch ``state_dict``
converted to NumPy arrays loads as it is.

A sequence layer projects the inputs of all time steps at once (one GEMM per layer
and direction, with ``b_ih + b_hh`` folded into it where the cell allows) and then runs
the recurrence as one graph node that does one hidden GEMM and one fused gate
computation per step (:mod:`nurinet.functional.recurrent`).

Variable-length batches: ``lengths`` (or an equivalent right-padding ``mask``, Keras-style)
masks the state update per step, so padded steps leave a sequence's state as it was and output
zeros.

Unlike PyTorch, ``batch_first=True`` is the default: inputs are ``(N, T, features)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import nurinet.functional as F
from nurinet import backend
from nurinet.autograd.tensor import Parameter, Tensor, as_tensor
from nurinet.functional import recurrent as R
from nurinet.functional._util import check_input_dtype
from nurinet.functional.dropout import dropout as dropout_fn
from nurinet.nn import init
from nurinet.nn.linear import _check_size, _float_dtype
from nurinet.nn.module import Module
from nurinet.random import Generator

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _uniform_init(module: Module, hidden_size: int, generator: Generator | None) -> None:
    """PyTorch's init for every weight and bias of a recurrent module: U(-k, k), k = 1/sqrt(H)."""
    bound = 1.0 / math.sqrt(hidden_size)
    for p in module.parameters():
        init.uniform_(p, -bound, bound, generator)


def _forget_bias_to_one(module: Module, hidden_size: int) -> None:
    """Keras's ``unit_forget_bias``: every bias 0 but the forget gate's, 1, so that a fresh LSTM
    keeps its cell state (sigmoid(1) = 0.73) instead of halving it and gradients reach far back
    (Jozefowicz et al., 2015). The forget gate is rows H..2H (PyTorch's gate order i, f, g, o);
    b_ih and b_hh enter the gates only as their sum, so b_ih carries the 1 and b_hh stays 0."""
    for name, param in module._parameters.items():
        if param is not None and name.startswith("bias_"):
            init.zeros_(param)
            if name.startswith("bias_ih"):
                param.array[hidden_size:2 * hidden_size] = 1.0


def _check_forget_bias(unit_forget_bias: Any, bias: bool, name: str) -> bool:
    if unit_forget_bias and not bias:
        raise ValueError(f"{name}: unit_forget_bias=True sets the forget gate's bias, so it needs bias=True")
    return bool(unit_forget_bias)


# ----- cells ----------------------------------------------------------------------------------
class _CellBase(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = None,
                 generator: Generator | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = _check_size(input_size, "input_size", name)
        self.hidden_size = _check_size(hidden_size, "hidden_size", name)
        dtype = _float_dtype(dtype, name)
        rows = _GATES[self.mode] * self.hidden_size
        self.weight_ih = Parameter(np.empty((rows, self.input_size), dtype))
        self.weight_hh = Parameter(np.empty((rows, self.hidden_size), dtype))
        self.bias_ih = Parameter(np.empty(rows, dtype)) if bias else None
        self.bias_hh = Parameter(np.empty(rows, dtype)) if bias else None
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        _uniform_init(self, self.hidden_size, generator)

    def _prepare(self, x: Any, hx: Any) -> tuple[Tensor, Any, bool]:
        """Check shapes; make an unbatched input a batch of one; default state zeros."""
        name = type(self).__name__
        x = as_tensor(x)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (N, {self.input_size}) or "
                             f"({self.input_size},) (input_size={self.input_size}), got {x.shape}")
        check_input_dtype(x, self.weight_ih, name)
        batched = x.ndim == 2
        if not batched:
            x = x.reshape(1, -1)
        states = hx if isinstance(hx, tuple) else (hx,)
        want = (x.shape[0], self.hidden_size) if batched else (self.hidden_size,)
        fixed = []
        for s, what in zip(states, ("h_0", "c_0") if isinstance(hx, tuple) else ("hx",)):
            if s is None:
                zeros = backend.get_array_module(x.array).zeros((x.shape[0], self.hidden_size), x.array.dtype)
                fixed.append(Tensor._wrap(zeros, False))
                continue
            s = as_tensor(s)
            if s.shape != want:
                raise ValueError(f"{name}: the hidden state must have shape {want}, got {s.shape}")
            check_input_dtype(s, self.weight_ih, name, what)
            fixed.append(s if batched else s.reshape(1, -1))
        return x, tuple(fixed) if isinstance(hx, tuple) else fixed[0], batched

    def _weights(self) -> tuple[Any, ...]:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def extra_repr(self) -> str:
        relu = ", nonlinearity='relu'" if self.mode == "RNN_RELU" else ""
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}{relu}"


class RNNCell(_CellBase):
    """An Elman RNN cell: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``, act = tanh or relu.

    Args:
        input_size: Features of the input.
        hidden_size: Features of the hidden state.
        bias: Learn ``bias_ih`` and ``bias_hh``.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        dtype: Parameter dtype (float32 by default).
        generator: Random source of the initialization.

    Shape:
        - Input: ``(N, input_size)`` or ``(input_size,)``; hx: ``(N, hidden_size)`` (zeros if None).
        - Output: ``(N, hidden_size)`` (or ``(hidden_size,)`` unbatched).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype: Any = None, generator: Generator | None = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        # Set before Module.__init__ (which sizes the weights by mode): a plain instance attribute.
        object.__setattr__(self, "mode", "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU")
        super().__init__(input_size, hidden_size, bias, dtype, generator)
        self.nonlinearity = nonlinearity

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        x, h, batched = self._prepare(x, hx)
        w_ih, w_hh, b_ih, b_hh = self._weights()
        h = R.rnn_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh, self.nonlinearity)
        return h if batched else h.reshape(-1)


class LSTMCell(_CellBase):
    """An LSTM cell with PyTorch's gates i, f, g, o stacked in the weights' rows.

    ``c' = σ(f) c + σ(i) tanh(g)``, ``h' = σ(o) tanh(c')`` where each gate is
    ``x W_i·^T + b_i· + h W_h·^T + b_h·``. Parameters as :class:`RNNCell`, 4H rows.

    Args:
        input_size: Features of the input.
        hidden_size: Features of the hidden state.
        bias: Learn ``bias_ih`` and ``bias_hh``.
        unit_forget_bias: Start every bias at 0 but the forget gate's at 1 (Keras's
            ``unit_forget_bias``; its ``bias_ih`` rows ``hidden_size:2 * hidden_size``). False
            keeps PyTorch's uniform initialization.
        dtype: Parameter dtype (float32 by default).
        generator: Random source of the initialization.

    Shape:
        - Input: ``(N, input_size)``; hx: a pair ``(h, c)`` of ``(N, hidden_size)`` (zeros if None).
        - Output: the pair ``(h', c')``.
    """

    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, unit_forget_bias: bool = False,
                 dtype: Any = None, generator: Generator | None = None) -> None:
        # Set before Module.__init__, whose reset_parameters reads it: a plain instance attribute.
        object.__setattr__(self, "unit_forget_bias", _check_forget_bias(unit_forget_bias, bias, "LSTMCell"))
        super().__init__(input_size, hidden_size, bias, dtype, generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """PyTorch's U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)); with ``unit_forget_bias``,
        the biases then 0 but the forget gate's 1."""
        super().reset_parameters(generator)
        if self.unit_forget_bias:
            _forget_bias_to_one(self, self.hidden_size)

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        x, (h, c), batched = self._prepare(x, (None, None) if hx is None else tuple(hx))
        w_ih, w_hh, b_ih, b_hh = self._weights()
        h, c = R.lstm_step(F.linear(x, w_ih, b_ih), h, c, w_hh, b_hh)
        return (h, c) if batched else (h.reshape(-1), c.reshape(-1))


class GRUCell(_CellBase):
    """A GRU cell with PyTorch's gates r, z, n: ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``,
    ``h' = (1 - z) n + z h``. Parameters as :class:`RNNCell`, 3H rows.

    Shape:
        - Input: ``(N, input_size)``; hx: ``(N, hidden_size)`` (zeros if None).
        - Output: ``(N, hidden_size)``.
    """

    mode = "GRU"

    def forward(self, x: Tensor, hx: Tensor | None = None) -> Tensor:
        x, h, batched = self._prepare(x, hx)
        w_ih, w_hh, b_ih, b_hh = self._weights()
        h = R.gru_step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh)
        return h if batched else h.reshape(-1)


# ----- sequence layers ------------------------------------------------------------------------
def _lengths_from_mask(mask: Any, steps: int, batch: int, batch_first: bool, batched: bool,
                       name: str) -> np.ndarray:
    """The ``(N,)`` lengths of a prefix mask: ``(N, T)`` if ``batch_first`` else ``(T, N)``, or
    ``(T,)`` for an unbatched input; True (or 1) marks a real step.

    Raises:
        ValueError: the mask has the wrong shape, holds values other than 0/1, has a row with no
            real step, or is not a prefix (a real step after a padded one).
    """
    values = backend.to_numpy(mask.array if isinstance(mask, Tensor) else mask)
    if not batched:
        want, layout = (steps,), "(T,) for an unbatched input"
    elif batch_first:
        want, layout = (batch, steps), "(N, T) with batch_first=True"
    else:
        want, layout = (steps, batch), "(T, N) with batch_first=False"
    if values.shape != want:
        raise ValueError(f"{name}: mask must have shape {want} {layout} (True = real step), "
                         f"got shape {values.shape}")
    if values.dtype.kind not in "biuf" or (values.dtype.kind != "b" and not np.isin(values, (0, 1)).all()):
        what = "values other than 0 and 1" if values.dtype.kind in "iuf" else f"dtype {values.dtype}"
        raise ValueError(f"{name}: mask must be boolean or hold only 0 and 1 (True/1 = real step), got {what}")
    rows = values.astype(bool).reshape(1, steps) if not batched else values.astype(bool)
    if batched and not batch_first:
        rows = rows.T
    lengths = rows.sum(axis=1)
    if (lengths == 0).any():
        empty = int(np.flatnonzero(lengths == 0)[0])
        raise ValueError(f"{name}: mask has no real (True) step for sequence {empty}; every sequence needs "
                         f"at least one")
    wrong = (rows != (np.arange(steps)[None, :] < lengths[:, None])).any(axis=1)
    if wrong.any():
        bad = int(np.flatnonzero(wrong)[0])
        pad = int(np.flatnonzero(~rows[bad])[0])
        late = pad + int(np.flatnonzero(rows[bad, pad:])[0])
        raise ValueError(f"{name}: mask of sequence {bad} has a real step at t={late} after padding at "
                         f"t={pad}: only right-padded sequences are supported (each mask row is True steps "
                         f"then False steps); move each sequence's real steps to the start and pass "
                         f"lengths= (the number of real steps of each sequence) or that prefix mask")
    return lengths.astype(np.int64)


def _resolve_lengths(lengths: Any, mask: Any, steps: int, batch: int, batch_first: bool, batched: bool,
                     name: str) -> Any:
    """``lengths``, or the lengths of the prefix ``mask`` (see :func:`_lengths_from_mask`); not both."""
    if mask is None:
        return lengths
    if lengths is not None:
        raise ValueError(f"{name}: give lengths or mask, not both")
    return _lengths_from_mask(mask, steps, batch, batch_first, batched, name)


def _refuse_time_first_layout(x: Tensor, layer: Module, name: str) -> None:
    """Refuse ``(T, 1, F)`` with T > 1 under the default ``batch_first=True``.

    That is PyTorch's ``(T, N, F)`` layout of one sequence (PyTorch's default is
    ``batch_first=False``); read batch-first it would run as T sequences of one step and fail
    only at the loss, far from the cause. Passing ``batch_first`` explicitly accepts it.
    """
    if not getattr(layer, "_batch_first_by_default", False) or x.ndim != 3:
        return
    if x.shape[1] == 1 and x.shape[0] > 1:
        raise ValueError(
            f"{name}: got an input of shape {x.shape}, which under nurinet's default batch_first=True "
            f"is {x.shape[0]} sequences of one step each. If it is one sequence of {x.shape[0]} steps "
            "in PyTorch's (T, N, F) layout, construct the layer with batch_first=False (PyTorch's "
            f"default) or give the input as (1, {x.shape[0]}, {x.shape[2]}); if it really is a batch "
            "of one-step sequences, pass batch_first=True explicitly"
        )


class _RNNBase(Module):
    mode = "RNN_TANH"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool | None = None, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = None, generator: Generator | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = _check_size(input_size, "input_size", name)
        self.hidden_size = _check_size(hidden_size, "hidden_size", name)
        self.num_layers = _check_size(num_layers, "num_layers", name)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        self.bias, self.bidirectional = bool(bias), bool(bidirectional)
        # None means "not given": nurinet's default, True; remembered so that a PyTorch-layout input
        # (T, 1, F), read under this default as T one-step sequences, can be refused with the cause.
        self.batch_first = True if batch_first is None else bool(batch_first)
        object.__setattr__(self, "_batch_first_by_default", batch_first is None)
        self.dropout, self.generator = float(dropout), generator
        dtype = _float_dtype(dtype, name)
        rows, directions = _GATES[self.mode] * self.hidden_size, 2 if bidirectional else 1
        for layer in range(self.num_layers):
            width = self.input_size if layer == 0 else self.hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                setattr(self, f"weight_ih_l{layer}{suffix}", Parameter(np.empty((rows, width), dtype)))
                setattr(self, f"weight_hh_l{layer}{suffix}", Parameter(np.empty((rows, hidden_size), dtype)))
                if bias:
                    setattr(self, f"bias_ih_l{layer}{suffix}", Parameter(np.empty(rows, dtype)))
                    setattr(self, f"bias_hh_l{layer}{suffix}", Parameter(np.empty(rows, dtype)))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
        _uniform_init(self, self.hidden_size, generator)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _weights(self, layer: int, suffix: str) -> tuple[Any, ...]:
        get = self._parameters.get
        return (get(f"weight_ih_l{layer}{suffix}"), get(f"weight_hh_l{layer}{suffix}"),
                get(f"bias_ih_l{layer}{suffix}"), get(f"bias_hh_l{layer}{suffix}"))

    def forward(self, x: Tensor, hx: Any = None, lengths: Any = None, mask: Any = None) -> tuple[Tensor, Any]:
        """Run the layer over a sequence.

        Args:
            x: ``(N, T, input_size)`` when ``batch_first`` (the default), else ``(T, N, input_size)``;
                or ``(T, input_size)`` unbatched.
            hx: Initial state ``(num_layers * num_directions, N, hidden_size)`` (zeros if None);
                for an LSTM a pair ``(h_0, c_0)``.
            lengths: Optional length of each sequence, shape ``(N,)``, values in 1..T. Steps past a
                sequence's length leave its state unchanged and output zeros; the reverse
                direction starts at each sequence's last real step.
            mask: Optional alternative to ``lengths`` (as Keras' ``mask``): a boolean or 0/1
                array or Tensor, True (1) at real steps. Each sequence must be right-padded (its
                row is ones then zeros, with at least one one); it is the same as passing
                ``lengths = mask.sum(time axis)``. Give ``lengths`` or ``mask``, not both.

        Returns:
            ``(output, h_n)`` (``(output, (h_n, c_n))`` for an LSTM): output is
            ``(N, T, num_directions * hidden_size)`` (time first unless ``batch_first``), h_n
            and c_n are ``(num_layers * num_directions, N, hidden_size)``.

        Raises:
            ValueError: bad shapes, ``lengths`` out of 1..T, a mask that is not a right-padding
                (prefix) mask, or both ``lengths`` and ``mask`` given.

        Shape:
            - x: ``(N, T, input_size)`` if ``batch_first`` else ``(T, N, input_size)``; or ``(T, input_size)``.
            - hx (and c_0): ``(num_layers * D, N, hidden_size)``, D = 2 if bidirectional else 1.
            - lengths: ``(N,)`` integers in 1..T (``(1,)`` for an unbatched input).
            - mask: ``(N, T)`` if ``batch_first`` else ``(T, N)``; ``(T,)`` for an unbatched input.
            - output: ``(N, T, D * hidden_size)`` if ``batch_first`` else ``(T, N, D * hidden_size)``.
            - h_n (and c_n): ``(num_layers * D, N, hidden_size)``.
        """
        x = as_tensor(x)
        batched = x.ndim == 3
        seq = self._sequence(x)
        states = self._initial_states(hx, seq, batched)
        lengths = _resolve_lengths(lengths, mask, seq.shape[0], seq.shape[1], self.batch_first, batched,
                                   type(self).__name__)
        masks = self._masks(lengths, seq)
        finals: list[Any] = []
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:
                seq = dropout_fn(seq, self.dropout, True, self.generator)
            outs = []
            for d, suffix in enumerate(("", "_reverse")[: self.num_directions]):
                index = layer * self.num_directions + d
                out, final = self._direction(seq, states[index], self._weights(layer, suffix), masks, d == 1)
                outs.append(out)
                finals.append(final)
            seq = outs[0] if len(outs) == 1 else F.concatenate(outs, axis=-1)
        output = F.swapaxes(seq, 0, 1) if self.batch_first and batched else seq
        return self._pack(output, finals, batched)

    def _sequence(self, x: Tensor) -> Tensor:
        """The input as ``(T, N, input_size)``, after checking its shape."""
        name = type(self).__name__
        if x.ndim not in (2, 3):
            raise ValueError(f"{name}: expected a 3-D input ({'(N, T, F)' if self.batch_first else '(T, N, F)'}"
                             f") or a 2-D unbatched (T, F) input, got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected {self.input_size} input features (input_size) in the last "
                             f"dim, got {x.shape[-1]} (input shape {x.shape})")
        if x.shape[1 if x.ndim == 3 and self.batch_first else 0] == 0:
            raise ValueError(f"{name}: expected a sequence of at least one step, got length 0 (input shape "
                             f"{x.shape}); a recurrence needs a step to produce its final state")
        check_input_dtype(x, self.weight_ih_l0, name)
        _refuse_time_first_layout(x, self, name)
        if x.ndim == 2:
            return x.reshape(x.shape[0], 1, x.shape[1])
        return F.swapaxes(x, 0, 1) if self.batch_first else x

    def _initial_states(self, hx: Any, seq: Tensor, batched: bool) -> list[Any]:
        """One state per (layer, direction): h, or (h, c) for an LSTM."""
        count = self.num_layers * self.num_directions
        parts = []
        for k, state in enumerate(self._state_tuple(hx)):
            parts.append(self._unstack_state(state, seq, batched, count, ("h_0", "c_0")[k]))
        return list(zip(*parts)) if self.mode == "LSTM" else parts[0]

    def _state_tuple(self, hx: Any) -> tuple[Any, ...]:
        if self.mode != "LSTM":
            return (hx,)
        if hx is None:
            return (None, None)
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise ValueError("LSTM: hx must be a pair (h_0, c_0)")
        return tuple(hx)

    def _unstack_state(self, state: Any, seq: Tensor, batched: bool, count: int, what: str) -> list[Tensor]:
        shape = (count, seq.shape[1], self.hidden_size)
        if state is None:
            zeros = Tensor._wrap(backend.get_array_module(seq.array).zeros(shape[1:], seq.array.dtype), False)
            return [zeros] * count
        state = as_tensor(state)
        want = shape if batched else (count, self.hidden_size)
        if state.shape != want:
            raise ValueError(f"{type(self).__name__}: {what} must have shape {want} "
                             "(num_layers * num_directions, N, hidden_size), got " + str(state.shape))
        check_input_dtype(state, self.weight_ih_l0, type(self).__name__, what)
        return list(R.unstack(state.reshape(shape) if not batched else state))

    def _masks(self, lengths: Any, seq: Tensor) -> list[Any] | None:
        """Per-step ``(N, 1)`` masks (1 while a sequence runs), or None when all are full length."""
        if lengths is None:
            return None
        steps, batch = seq.shape[0], seq.shape[1]
        lengths = np.asarray(lengths.numpy() if isinstance(lengths, Tensor) else lengths)
        name = type(self).__name__
        if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
            raise ValueError(f"{name}: lengths must be an integer array of shape ({batch},) (one length per "
                             f"sequence), got shape {lengths.shape} and dtype {lengths.dtype}")
        if lengths.size and (lengths.min() < 1 or lengths.max() > steps):  # an empty batch has no lengths
            raise ValueError(f"{name}: lengths must be in 1..{steps} (the sequence length), got values "
                             f"from {lengths.min()} to {lengths.max()}")
        if (lengths == steps).all():
            return None
        full = (np.arange(steps)[:, None, None] < lengths[None, :, None]).astype(seq.array.dtype)
        if seq.device != "cpu":
            full = backend.to_device(full, seq.device)
        return [full[t] for t in range(steps)]

    def _direction(self, seq: Tensor, state: Any, weights: tuple[Any, ...], masks: list[Any] | None,
                   reverse: bool) -> tuple[Tensor, Any]:
        """Run one direction of one layer: one input GEMM for all steps, then the recurrence node."""
        w_ih, w_hh, b_ih, b_hh = weights
        bias = b_ih
        if b_ih is not None and self.mode == "LSTM" and masks is None:
            # b_ih and b_hh enter the gates only as their sum: the fused LSTM recurrence adds it once
            # per sequence (the native kernel in its gate pass) and sums its gradient as it writes
            # the gate gradients, so the input projection needs no bias pass of its own.
            bias, b_hh = None, b_ih + b_hh
        elif b_ih is not None and self.mode != "GRU":
            # Otherwise add the sum once to the input projection instead of once per step (GRU
            # cannot: its b_hn is multiplied by r).
            bias, b_hh = b_ih + b_hh, None
        state = tuple(state) if self.mode == "LSTM" else (state,)
        result = R.recurrent_sequence(self.mode, F.linear(seq, w_ih, bias), state, w_hh, b_hh, masks, reverse)
        return result[0], (tuple(result[1:]) if self.mode == "LSTM" else result[1])

    def _pack(self, output: Tensor, finals: list[Any], batched: bool) -> tuple[Tensor, Any]:
        if not batched:
            output = output.reshape(output.shape[0], -1)
        if self.mode == "LSTM":
            h_n, c_n = (R.stack_steps([f[k] for f in finals]) for k in range(2))
            if not batched:
                h_n, c_n = h_n.reshape(len(finals), -1), c_n.reshape(len(finals), -1)
            return output, (h_n, c_n)
        h_n = R.stack_steps(finals)
        return output, (h_n if batched else h_n.reshape(len(finals), -1))

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.mode == "RNN_RELU":
            text += ", nonlinearity='relu'"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if not self.bias:
            text += ", bias=False"
        text += f", batch_first={self.batch_first}"
        if self.dropout:
            text += f", dropout={self.dropout}"
        if self.bidirectional:
            text += ", bidirectional=True"
        return text


_LAYER_DOC = """

    Args:
        input_size: Features of each input step.
        hidden_size: Features of the hidden state.
        num_layers: Stacked layers; layer k > 0 reads the outputs of layer k - 1.
        bias: Learn ``bias_ih_l*`` and ``bias_hh_l*``.
        batch_first: Inputs and outputs are ``(N, T, F)``. **True by default in nurinet**
            (PyTorch's default is False, ``(T, N, F)``). Left at the default, a ``(T, 1, F)`` input
            with T > 1 (one sequence in PyTorch's layout) is refused with a message naming the
            cause; pass ``batch_first`` explicitly to run it as T one-step sequences.
        dropout: Dropout probability on the outputs of every layer but the last, in training mode
            (drawn from ``generator``).
        bidirectional: Also run each layer backward in time; outputs of both directions are
            concatenated (forward first).
        dtype: Parameter dtype (float32 by default).
        generator: Random source of the initialization and of the dropout masks.

    Initialization: every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)) (PyTorch's).

    Shape:
        - Input: ``(N, T, input_size)`` (``(T, N, input_size)`` if not batch_first), or ``(T, input_size)``.
        - lengths: ``(N,)`` integers in 1..T, or mask: ``(N, T)`` (``(T, N)`` if not batch_first)
          booleans, True at real steps, right-padded (optional; see ``forward``).
        - Output: ``(N, T, D * hidden_size)`` with D = 2 if bidirectional else 1.
        - h_n (and c_n): ``(num_layers * D, N, hidden_size)``.
    """


class RNN(_RNNBase):
    __doc__ = ("An Elman RNN: ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``; returns "
               "``(output, h_n)``. ``nonlinearity`` is 'tanh' (default) or 'relu'." + _LAYER_DOC)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool | None = None, dropout: float = 0.0,
                 bidirectional: bool = False, dtype: Any = None, generator: Generator | None = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        object.__setattr__(self, "mode", "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, generator)
        self.nonlinearity = nonlinearity


class LSTM(_RNNBase):
    __doc__ = ("A long short-term memory layer (gates i, f, g, o as PyTorch); returns "
               "``(output, (h_n, c_n))``. ``unit_forget_bias=True`` (Keras's) starts every bias at 0 "
               "but the forget gate's at 1 (rows ``hidden_size:2 * hidden_size`` of each ``bias_ih_l*``)."
               + _LAYER_DOC)
    mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool | None = None, dropout: float = 0.0, bidirectional: bool = False,
                 unit_forget_bias: bool = False, dtype: Any = None, generator: Generator | None = None) -> None:
        object.__setattr__(self, "unit_forget_bias", _check_forget_bias(unit_forget_bias, bias, "LSTM"))
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         dtype, generator)

    def reset_parameters(self, generator: Generator | None = None) -> None:
        """PyTorch's U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)); with ``unit_forget_bias``,
        the biases then 0 but the forget gates' 1."""
        super().reset_parameters(generator)
        if self.unit_forget_bias:
            _forget_bias_to_one(self, self.hidden_size)


class GRU(_RNNBase):
    __doc__ = ("A gated recurrent unit layer (gates r, z, n as PyTorch); returns ``(output, h_n)``."
               + _LAYER_DOC)
    mode = "GRU"
