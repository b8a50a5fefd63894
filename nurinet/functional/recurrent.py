"""The recurrent ops' public functions; the ops themselves live in one short file per level.

* :mod:`~nurinet.functional.recurrent_reference`: the reference level, each cell composed of plain
  ops from its published equations (the test oracle).
* :mod:`~nurinet.functional.recurrent_cells`: the fused one-step ops (:class:`RNNCellFunction`,
  :class:`LSTMCellFunction`, :class:`GRUCellFunction`), array forward and backward plus a
  differentiable Tensor backward; the LSTM's array equations are
  :mod:`~nurinet.functional.recurrent_lstm`, the one array-level definition.
* :mod:`~nurinet.functional.recurrent_sequence`: a whole recurrence as one node
  (:class:`RecurrentSequence`); an unmasked LSTM runs
  :mod:`~nurinet.functional.recurrent_lstm_sequence` (whole-sequence buffers), which calls the C
  kernels through :mod:`nurinet._runtime.fast.lstm` where they run.
* :mod:`~nurinet.functional.recurrent_steps`: :class:`StepSplit` and :class:`StepStack`, a
  ``(T, ...)`` tensor cut into its steps and put back together, one node each.

A recurrent layer computes the input projection of every step at once (one GEMM), then runs the
steps from those input gates ``xg``: :func:`rnn_step`, :func:`lstm_step`, :func:`gru_step` one step,
:func:`recurrent_sequence` all of them. :func:`rnn_cell`, :func:`lstm_cell` and :func:`gru_cell` are
the cells with their input projection, as PyTorch's.
"""

from __future__ import annotations

from typing import Any

from nurinet.autograd.tensor import Tensor, as_tensor
from nurinet.functional._util import check_operand_dtype, on_device_of
from nurinet.functional.recurrent_cells import (
    GRUCellFunction,
    LSTMCellFunction,
    RNNCellFunction,
)
from nurinet.functional.recurrent_sequence import RecurrentSequence
from nurinet.functional.recurrent_steps import (
    StepSplit,
    StepStack,
    stack_steps,
    unstack,
)

__all__ = [
    "GRUCellFunction", "LSTMCellFunction", "RNNCellFunction", "RecurrentSequence", "StepSplit",
    "StepStack", "gru_cell", "gru_step", "lstm_cell", "lstm_step", "recurrent_sequence", "rnn_cell", "rnn_step",
    "stack_steps", "unstack",
]


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
