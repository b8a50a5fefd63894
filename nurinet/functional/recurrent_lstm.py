"""The LSTM's step equations on arrays: the one definition of the fused level.

Gates ``i, f, g, o`` in PyTorch's order, ``c' = f c + i g``, ``h' = o tanh(c')``. The one-step op
(:class:`~nurinet.functional.recurrent_cells.LSTMCellFunction`) and the NumPy path of the
whole-sequence op (:mod:`nurinet.functional.recurrent_lstm_sequence`) both run a step through
:func:`step_forward` and :func:`step_backward`; the other levels are the composed reference
(:mod:`nurinet.functional.recurrent_reference`) and the C kernels ``lstm_forward`` and
``lstm_backward`` (``nurinet/_runtime/native/kernels.c``).

Every gate comes from one ``exp``: ``σ(x) = 1 / (1 + exp(-x))`` for i, f, o and
``tanh(x) = 2 σ(2x) - 1`` for g. The callers hand in the pre-activations already multiplied by
:func:`gate_rates` (``-1`` on the i, f, o columns, ``-2`` on g), so that
``1 / (1 + exp(z))`` over all ``4H`` columns is ``σ(x)`` on i, f, o and ``σ(2x)`` on g. NumPy's
``exp`` is markedly faster than its ``tanh`` (docs/performance.md). The saved activations ``a``
(σ for i, f, o; tanh for g) give every slope: ``a (1 - a)``, or ``1 - g²`` for g.

Every function writes into arrays its caller owns (``out=``), so the whole-sequence op runs a step
with no allocation. Arrays are ``(N, 4H)`` for the gates and ``(N, H)`` for the states.
"""

from __future__ import annotations

from typing import Any

from nurinet.functional._util import xp_of

_RATES: dict[tuple, Any] = {}
_MAX_RATE_SIZES = 16


def gate_rates(xp: Any, hidden: int, dtype: Any, batch: int) -> Any:
    """The gate rates, ``-1`` on the i, f, o columns and ``-2`` on g, tiled to ``(batch, 4H)``.

    Cached per size and dtype; tiled because NumPy runs a product of two arrays of one shape about
    twice as fast as one that broadcasts a row over a small matrix.

    Args:
        xp: The array module.
        hidden: The hidden size H.
        dtype: The gates' dtype.
        batch: The number of rows.

    Returns:
        The cached ``(batch, 4H)`` array, shared by every caller: never write to it.
    """
    key = (xp.__name__, hidden, xp.dtype(dtype), batch)
    found = _RATES.get(key)
    if found is None:
        found = xp.full((batch, 4 * hidden), -1.0, dtype=dtype)
        found[:, 2 * hidden : 3 * hidden] = -2.0
        while len(_RATES) >= _MAX_RATE_SIZES:  # forget the oldest sizes (a model whose batch size varies)
            del _RATES[next(iter(_RATES))]
        _RATES[key] = found
    return found


def gate_rate_row(xp: Any, hidden: int, dtype: Any) -> Any:
    """One row of :func:`gate_rates`, ``(4H,)``: to scale a weight or a bias."""
    return gate_rates(xp, hidden, dtype, 1)[0]


def _by_gate(gates: Any) -> Any:
    """``(N, 4H)`` as ``(N, 4, H)``: ``[:, k]`` is gate k (i, f, g, o) of every row."""
    return gates.reshape(gates.shape[0], 4, gates.shape[1] // 4)


def step_forward(z: Any, c_prev: Any, c_new: Any, tanh_c: Any, h_new: Any, scratch: Any = None) -> None:
    """One LSTM step from the rate-scaled pre-activations ``z`` (C-contiguous ``(N, 4H)``).

    ``z`` becomes the activations ``i, f, g, o`` (what :func:`step_backward` reads); ``c_new``,
    ``tanh_c`` and ``h_new`` receive ``c'``, ``tanh(c')`` and ``h'``. Call it under
    ``np.errstate(over="ignore")``: ``exp`` overflows to inf for very negative pre-activations, and
    ``1 / (1 + inf) = 0`` is right.

    Args:
        z: Rate-scaled pre-activations, overwritten with the activations.
        c_prev: The previous cell state.
        c_new: Where the new cell state goes.
        tanh_c: Where ``tanh(c')`` goes.
        h_new: Where the new hidden state goes.
        scratch: An ``(N, H)`` work array, or None to allocate one.
    """
    xp = xp_of(z)
    xp.exp(z, out=z)
    z += 1
    xp.reciprocal(z, out=z)  # σ on the i, f, o columns, σ(2x) on g
    acts = _by_gate(z)
    g = acts[:, 2]
    g *= 2
    g -= 1  # tanh(x) = 2 σ(2x) - 1
    ig = xp.empty_like(c_new) if scratch is None else scratch
    xp.multiply(acts[:, 1], c_prev, out=c_new)
    xp.multiply(acts[:, 0], g, out=ig)
    c_new += ig
    xp.tanh(c_new, out=tanh_c)
    xp.multiply(acts[:, 3], tanh_c, out=h_new)


def step_backward(acts: Any, c_prev: Any, tanh_c: Any, dh: Any, dc: Any, d: Any, to_c_prev: bool = True,
                  scratch: tuple[Any, Any] | None = None) -> None:
    """The gradients of one step's gate pre-activations, into ``d``; ``dc`` updated in place.

    ``dc`` first gains what ``dh`` adds through ``h' = o tanh(c')``; the gradient of each gate's
    pre-activation is then its slope times ``dc g | dc c_prev | dc i | dh tanh(c')`` (gates i, f, g,
    o). The gradient of ``h_prev`` is ``d @ W_hh``, which the caller forms (into its own array).

    Args:
        acts: The activations :func:`step_forward` left, ``(N, 4H)``.
        c_prev: The step's previous cell state.
        tanh_c: ``tanh(c')`` from :func:`step_forward`.
        dh: The gradient of ``h'`` (read only).
        dc: The gradient of ``c'`` from later steps; on return, that of ``c_prev`` when ``to_c_prev``
            (else the whole gradient of ``c'``).
        d: Where the ``(N, 4H)`` gate gradients go (C-contiguous).
        to_c_prev: Whether to carry ``dc`` on to ``c_prev`` (skipped where nobody needs it).
        scratch: ``(N, 4H)`` and ``(N, H)`` work arrays, or None to allocate them.
    """
    xp = xp_of(d)
    slope, tmp = (xp.empty_like(d), xp.empty_like(dh)) if scratch is None else scratch
    a, e = _by_gate(acts), _by_gate(d)
    xp.multiply(tanh_c, tanh_c, out=tmp)
    xp.subtract(1, tmp, out=tmp)
    tmp *= a[:, 3]
    tmp *= dh
    dc += tmp
    xp.multiply(dc, a[:, 2], out=e[:, 0])
    xp.multiply(dc, c_prev, out=e[:, 1])
    xp.multiply(dc, a[:, 0], out=e[:, 2])
    xp.multiply(dh, tanh_c, out=e[:, 3])
    xp.multiply(acts, acts, out=slope)
    xp.subtract(acts, slope, out=slope)  # σ' = σ (1 - σ); the g columns are overwritten next
    slope_g = _by_gate(slope)[:, 2]
    xp.multiply(a[:, 2], a[:, 2], out=slope_g)
    xp.subtract(1, slope_g, out=slope_g)  # tanh' = 1 - tanh²
    d *= slope
    if to_c_prev:
        dc *= a[:, 1]
