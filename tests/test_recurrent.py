"""Recurrent layers and cells: fused fast path against the reference composite cells, errors,
long sequences, the layer harness."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
from nurinet import Tensor, nn
from nurinet.functional.recurrent_reference import (
    gru_cell_reference,
    lstm_cell_reference,
    rnn_cell_reference,
)
from tests.nn.harness import check_layer

N, T, I, H = 3, 5, 4, 6
LAYERS = {
    "rnn_tanh": lambda **kw: nn.RNN(I, H, **kw),
    "rnn_relu": lambda **kw: nn.RNN(I, H, nonlinearity="relu", **kw),
    "lstm": lambda **kw: nn.LSTM(I, H, **kw),
    "gru": lambda **kw: nn.GRU(I, H, **kw),
}


def _reference_step(layer, x, state, layer_index, suffix):
    p = dict(layer.named_parameters())
    w = [p.get(f"{name}_l{layer_index}{suffix}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    if isinstance(layer, nn.LSTM):
        return lstm_cell_reference(x, state[0], state[1], *w)
    if isinstance(layer, nn.GRU):
        return gru_cell_reference(x, state, *w)
    return rnn_cell_reference(x, state, *w, nonlinearity=layer.nonlinearity)


def _reference_layer(layer, x, states):
    """The layer run with the reference cells, one sequence (T, 1, I) at a time, time first."""
    lstm = isinstance(layer, nn.LSTM)
    seq, finals = [x[t] for t in range(x.shape[0])], []
    for k in range(layer.num_layers):
        outs = []
        for d, suffix in enumerate(("", "_reverse")[: layer.num_directions]):
            index = k * layer.num_directions + d
            state = (states[0][index], states[1][index]) if lstm else states[0][index]
            ys = [None] * len(seq)
            for t in (reversed(range(len(seq))) if d else range(len(seq))):
                state = _reference_step(layer, seq[t], state, k, suffix)
                ys[t] = state[0] if lstm else state
            outs.append(ys)
            finals.append(state)
        seq = [nurinet.functional.concatenate([o[t] for o in outs], axis=-1) for t in range(len(seq))]
    return seq, finals


def _random_states(rng, layer, batch):
    count = layer.num_layers * layer.num_directions
    n = 2 if isinstance(layer, nn.LSTM) else 1
    return [Tensor(rng.standard_normal((count, batch, H)), requires_grad=True) for _ in range(n)]


@pytest.mark.parametrize("kind", list(LAYERS))
def test_fast_layer_equals_reference_cells(kind):
    """Full-length batch: outputs, final states and every gradient equal the reference loop."""
    layer = LAYERS[kind](num_layers=2, bidirectional=True, dtype=np.float64, generator=nurinet.Generator(0))
    rng = np.random.default_rng(1)
    x = Tensor(rng.standard_normal((N, T, I)), requires_grad=True)
    states = _random_states(rng, layer, N)
    hx = tuple(states) if kind == "lstm" else states[0]
    out, hn = layer(x, hx)
    hn = list(hn) if kind == "lstm" else [hn]
    weights = Tensor(rng.standard_normal(out.shape))
    loss = (out * weights).sum() + sum((h * 1.5).sum() for h in hn)
    fast = nurinet.grad(loss, [x, *states, *layer.parameters()])

    xt = nurinet.functional.swapaxes(x, 0, 1)
    ys, finals = _reference_layer(layer, xt, states)
    ref_out = nurinet.functional.swapaxes(nurinet.functional.stack(ys), 0, 1)
    np.testing.assert_allclose(out.numpy(), ref_out.numpy(), atol=1e-12)
    ref_hn = [nurinet.functional.stack([f[k] if kind == "lstm" else f for f in finals]) for k in range(len(hn))]
    for a, b in zip(hn, ref_hn):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-12)
    ref_loss = (ref_out * weights).sum() + sum((h * 1.5).sum() for h in ref_hn)
    slow = nurinet.grad(ref_loss, [x, *states, *layer.parameters()])
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_variable_lengths_equal_each_sequence_alone(kind):
    """With lengths, each sequence's outputs and final state equal running it alone, truncated."""
    layer = LAYERS[kind](num_layers=2, bidirectional=True, dtype=np.float64, generator=nurinet.Generator(2))
    rng = np.random.default_rng(3)
    lengths = np.array([5, 2, 4])
    x = Tensor(rng.standard_normal((N, T, I)), requires_grad=True)
    states = _random_states(rng, layer, N)
    hx = tuple(states) if kind == "lstm" else states[0]
    out, hn = layer(x, hx, lengths=lengths)
    hn = hn[0] if kind == "lstm" else hn
    (out.sum() + hn.sum()).backward()
    for n, length in enumerate(lengths):
        xs = Tensor(x.numpy()[n : n + 1, :length])
        hs = tuple(Tensor(s.numpy()[:, n : n + 1]) for s in states)
        alone, hn_alone = layer(xs, hs if kind == "lstm" else hs[0])
        hn_alone = hn_alone[0] if kind == "lstm" else hn_alone
        np.testing.assert_allclose(out.numpy()[n, :length], alone.numpy()[0], atol=1e-12)
        np.testing.assert_allclose(hn.numpy()[:, n], hn_alone.numpy()[:, 0], atol=1e-12)
        assert not out.numpy()[n, length:].any(), "outputs past a sequence's length must be zero"
        assert not x.grad.numpy()[n, length:].any(), "padded steps must get no gradient"


def test_batch_first_false_is_the_transpose():
    layer = nn.GRU(I, H, batch_first=False, generator=nurinet.Generator(0))
    x = np.random.default_rng(0).standard_normal((T, N, I)).astype(np.float32)
    out, hn = layer(Tensor(x))
    layer.batch_first = True
    out2, hn2 = layer(Tensor(x.transpose(1, 0, 2).copy()))
    np.testing.assert_allclose(out.numpy(), out2.numpy().transpose(1, 0, 2), atol=1e-6)
    np.testing.assert_array_equal(hn.numpy(), hn2.numpy())
    assert out.dtype == np.float32 and hn.shape == (1, N, H)


def test_unbatched_input_matches_a_batch_of_one():
    layer = nn.LSTM(I, H, num_layers=2, bidirectional=True, generator=nurinet.Generator(0))
    x = np.random.default_rng(0).standard_normal((T, I)).astype(np.float32)
    out, (hn, cn) = layer(Tensor(x))
    out1, (_, cn1) = layer(Tensor(x[None]))
    assert out.shape == (T, 2 * H) and hn.shape == (4, H) and cn.shape == (4, H)
    np.testing.assert_allclose(out.numpy(), out1.numpy()[0], atol=1e-6)
    np.testing.assert_allclose(cn.numpy(), cn1.numpy()[:, 0], atol=1e-6)


def test_thousand_step_lstm_backpropagates():
    layer = nn.LSTM(3, 4, generator=nurinet.Generator(0))
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1000, 3)).astype(np.float32), requires_grad=True)
    out, (_, cn) = layer(x)
    (out[:, -1].sum() + cn.sum()).backward()
    assert np.isfinite(x.grad.numpy()).all() and x.grad.numpy()[:, -1].any()
    for name, p in layer.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.numpy()).all(), name


def test_thousand_cell_steps_unrolled_by_hand_backpropagate():
    """1,000 chained step nodes (a Python loop over LSTMCell): no recursion limit in backward."""
    cell = nn.LSTMCell(3, 4, generator=nurinet.Generator(0))
    xs = Tensor(np.random.default_rng(0).standard_normal((1000, 2, 3)).astype(np.float32), requires_grad=True)
    state = None
    for t in range(1000):
        state = cell(xs[t], state)
    state[0].sum().backward()
    assert np.isfinite(xs.grad.numpy()).all() and xs.grad.numpy()[-1].any()
    assert all(np.isfinite(p.grad.numpy()).all() for p in cell.parameters())


def test_parameter_names_and_shapes_follow_pytorch():
    layer = nn.LSTM(I, H, num_layers=2, bidirectional=True)
    shapes = {k: v.shape for k, v in layer.state_dict().items()}
    assert list(shapes)[:4] == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    assert shapes["weight_ih_l0_reverse"] == (4 * H, I)
    assert shapes["weight_ih_l1"] == (4 * H, 2 * H) and shapes["bias_hh_l1_reverse"] == (4 * H,)
    assert len(shapes) == 16
    assert "weight_ih_l0" in dict(nn.GRU(I, H, bias=False).state_dict())
    assert "bias_ih_l0" not in dict(nn.GRU(I, H, bias=False).state_dict())


def test_init_is_uniform_within_one_over_sqrt_hidden():
    layer = nn.GRU(I, 25, generator=nurinet.Generator(0))
    values = np.concatenate([p.numpy().ravel() for p in layer.parameters()])
    assert np.abs(values).max() <= 0.2 and values.std() > 0.2 / np.sqrt(3) * 0.9


def test_dropout_between_layers_is_seedable_and_train_only():
    def make():
        return nn.LSTM(I, H, num_layers=2, dropout=0.5, generator=nurinet.Generator(5))

    x = Tensor(np.random.default_rng(0).standard_normal((N, T, I)).astype(np.float32))
    a, b = make()(x)[0].numpy(), make()(x)[0].numpy()
    np.testing.assert_array_equal(a, b)
    layer = make()
    assert not np.allclose(layer(x)[0].numpy(), layer.eval()(x)[0].numpy())
    np.testing.assert_array_equal(layer(x)[0].numpy(), layer(x)[0].numpy())


@pytest.mark.parametrize("kind", list(LAYERS))
def test_layer_harness(kind):
    gates = {"lstm": 4, "gru": 3}.get(kind, 1)
    per_layer = lambda width: gates * H * (width + H + 2)
    check_layer(LAYERS[kind](bidirectional=True), (N, T, I), (N, T, 2 * H), 2 * per_layer(I))
    check_layer(LAYERS[kind](num_layers=2, dropout=0.3), (N, T, I), (N, T, H),
                per_layer(I) + per_layer(H), train_eval_differ=True)


@pytest.mark.parametrize("cell,state", [(nn.RNNCell, 1), (nn.LSTMCell, 2), (nn.GRUCell, 1)])
def test_cell_harness_and_reference(cell, state):
    layer = cell(I, H, dtype=np.float64, generator=nurinet.Generator(0))
    gates = {nn.LSTMCell: 4, nn.GRUCell: 3}.get(cell, 1)
    check_layer(layer, (N, I), (N, H), gates * H * (I + H + 2))
    rng = np.random.default_rng(0)
    x, h, c = (Tensor(rng.standard_normal(s)) for s in ((N, I), (N, H), (N, H)))
    w = list(layer.parameters())
    if cell is nn.LSTMCell:
        got, want = layer(x, (h, c)), lstm_cell_reference(x, h, c, *w)
    elif cell is nn.GRUCell:
        got, want = (layer(x, h),), (gru_cell_reference(x, h, *w),)
    else:
        got, want = (layer(x, h),), (rnn_cell_reference(x, h, *w),)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-12)
    unbatched = layer(x[0], (h[0], c[0])) if cell is nn.LSTMCell else layer(x[0], h[0])
    first = unbatched[0] if cell is nn.LSTMCell else unbatched
    np.testing.assert_allclose(first.numpy(), got[0].numpy()[0], atol=1e-12)


# ----- errors -----------------------------------------------------------------------------------
def test_wrong_input_size_names_layer_and_sizes():
    with pytest.raises(ValueError, match=r"LSTM: expected 4 input features .*got 7"):
        nn.LSTM(I, H)(Tensor(np.zeros((N, T, 7), np.float32)))
    with pytest.raises(ValueError, match=r"GRU: expected a 3-D input"):
        nn.GRU(I, H)(Tensor(np.zeros((N, T, I, 1), np.float32)))
    with pytest.raises(ValueError, match=r"LSTMCell: expected input of shape \(N, 4\)"):
        nn.LSTMCell(I, H)(Tensor(np.zeros((N, 5), np.float32)))


def test_wrong_hidden_state_shape():
    x = Tensor(np.zeros((N, T, I), np.float32))
    with pytest.raises(ValueError, match=r"RNN: h_0 must have shape \(2, 3, 6\)"):
        nn.RNN(I, H, num_layers=2)(x, Tensor(np.zeros((1, N, H), np.float32)))
    with pytest.raises(ValueError, match=r"LSTM: c_0 must have shape \(1, 3, 6\)"):
        nn.LSTM(I, H)(x, (Tensor(np.zeros((1, N, H), np.float32)), Tensor(np.zeros((1, N, 5), np.float32))))
    with pytest.raises(ValueError, match="LSTM: hx must be a pair"):
        nn.LSTM(I, H)(x, Tensor(np.zeros((1, N, H), np.float32)))
    with pytest.raises(ValueError, match=r"GRUCell: the hidden state must have shape \(3, 6\)"):
        nn.GRUCell(I, H)(Tensor(np.zeros((N, I), np.float32)), Tensor(np.zeros((N, 2), np.float32)))


def test_bad_lengths():
    layer, x = nn.GRU(I, H), Tensor(np.zeros((N, T, I), np.float32))
    with pytest.raises(ValueError, match=r"GRU: lengths must be an integer array of shape \(3,\)"):
        layer(x, lengths=np.array([1, 2]))
    with pytest.raises(ValueError, match=r"lengths must be in 1..5 .*from 0 to 3"):
        layer(x, lengths=np.array([0, 2, 3]))
    with pytest.raises(ValueError, match=r"lengths must be in 1..5 .*from 2 to 6"):
        layer(x, lengths=np.array([6, 2, 3]))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="RNN: nonlinearity must be 'tanh' or 'relu'"):
        nn.RNN(I, H, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match=r"LSTM: dropout must be in \[0, 1\)"):
        nn.LSTM(I, H, dropout=1.0)
    with pytest.raises(ValueError, match="GRU: hidden_size must be a positive integer"):
        nn.GRU(I, 0)


# ----- gradient clipping ------------------------------------------------------------------------
def _params_with_grads(rng, dtype=np.float32):
    params = [nn.Parameter(np.zeros(s, dtype)) for s in ((3, 4), (5,), (2, 2))]
    for p in params:
        p.grad = Tensor(rng.standard_normal(p.shape).astype(dtype) * 3)
    params.append(nn.Parameter(np.zeros(2, dtype)))  # no gradient: skipped
    return params


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf")])
def test_clip_grad_norm_formula(norm_type):
    params = _params_with_grads(np.random.default_rng(0))
    flat = np.concatenate([p.grad.numpy().ravel() for p in params[:3]]).astype(np.float64)
    total = np.abs(flat).max() if np.isinf(norm_type) else (np.abs(flat) ** norm_type).sum() ** (1 / norm_type)
    before = [p.grad.numpy().copy() for p in params[:3]]
    returned = nn.clip_grad_norm_(params, max_norm=1.5, norm_type=norm_type)
    assert returned == pytest.approx(total, rel=1e-6)
    for p, b in zip(params, before):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad.numpy(), b * 1.5 / (total + 1e-6), rtol=1e-6)
    assert nn.clip_grad_norm_(params, 100.0, norm_type) == pytest.approx(1.5, rel=1e-5)
    np.testing.assert_allclose(params[0].grad.numpy(), before[0] * 1.5 / (total + 1e-6), rtol=1e-6)


def test_clip_grad_value_and_errors():
    params = _params_with_grads(np.random.default_rng(1))
    before = params[0].grad.numpy().copy()
    nn.clip_grad_value_(params, 0.5)
    np.testing.assert_array_equal(params[0].grad.numpy(), np.clip(before, -0.5, 0.5))
    with pytest.raises(ValueError, match="max_norm must be >= 0"):
        nn.clip_grad_norm_(params, -1.0)
    with pytest.raises(ValueError, match="norm_type must be positive or inf"):
        nn.clip_grad_norm_(params, 1.0, norm_type=0)
    with pytest.raises(TypeError, match="expected Tensors"):
        nn.clip_grad_norm_([np.zeros(3)], 1.0)
    params[1].grad = Tensor(np.array([np.inf, 0, 0, 0, 0], np.float32))
    with pytest.raises(RuntimeError, match="total norm of order 2.0 of the gradients is inf"):
        nn.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    assert nn.clip_grad_norm_([], 1.0) == 0.0


def test_recurrent_sequence_argument_errors():
    from nurinet.functional.recurrent import recurrent_sequence, rnn_step

    xg, h, w = Tensor(np.zeros((2, 1, 4))), Tensor(np.zeros((1, 1))), Tensor(np.zeros((4, 1)))
    with pytest.raises(ValueError, match="mode must be 'RNN_TANH'"):
        recurrent_sequence("LSTMX", xg, (h, h), w)
    with pytest.raises(ValueError, match=r"LSTM needs \(h, c\) as state, got 1"):
        recurrent_sequence("LSTM", xg, (h,), w)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu'"):
        rnn_step(xg[0], h, w[:1], nonlinearity="gelu")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_second_order_through_the_layer_equals_reference(kind):
    """A gradient penalty (gradient of a gradient) through the layer, against the reference cells."""
    layer = LAYERS[kind](bidirectional=True, dtype=np.float64, generator=nurinet.Generator(4))
    rng = np.random.default_rng(5)
    x = Tensor(rng.standard_normal((2, 3, I)), requires_grad=True)
    states = [Tensor(np.zeros((2, 2, H))) for _ in range(2 if kind == "lstm" else 1)]

    def penalty(run):
        (gx,) = nurinet.grad((run() ** 2).sum(), [x], create_graph=True)
        return nurinet.grad((gx * gx).sum(), [x, *layer.parameters()])

    fast = penalty(lambda: layer(x)[0])
    xt = nurinet.functional.swapaxes(x, 0, 1)
    slow = penalty(lambda: nurinet.functional.stack(_reference_layer(layer, xt, states)[0]))
    for a, b in zip(fast, slow):  # the penalty is a sum of squares: the outputs' layout does not matter
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-10)


# ----- the fused LSTM kernels (unmasked LSTM sequences) -----------------------------------------
def _fused_and_stepwise(monkeypatch, run):
    """``run()`` through the fused LSTM kernels, then through the per-step ops (the fused path off)."""
    from nurinet.functional import recurrent as R

    fused = run()
    original = R.RecurrentSequence.__init__

    def stepwise_init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.fused = None

    monkeypatch.setattr(R.RecurrentSequence, "__init__", stepwise_init)
    return fused, run()


@pytest.mark.parametrize("bidirectional", [False, True])
def test_fused_lstm_float32_matches_the_step_ops(monkeypatch, bidirectional):
    """Float32 end to end, data input (no input gradient) and zero initial state, as in training."""
    layer = nn.LSTM(I, H, num_layers=2, bidirectional=bidirectional, generator=nurinet.Generator(3))
    x = Tensor(np.random.default_rng(0).standard_normal((N, T, I)).astype(np.float32))

    def run():
        layer.zero_grad()
        out, (h_n, c_n) = layer(x)
        ((out * out).sum() + h_n.sum() + (c_n * c_n).sum()).backward()
        return [out.numpy(), h_n.numpy(), c_n.numpy()] + [p.grad.numpy() for p in layer.parameters()]

    fused, stepwise = _fused_and_stepwise(monkeypatch, run)
    for a, b in zip(fused, stepwise):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fused_lstm_retained_graph_backward_twice_doubles_the_gradients():
    from nurinet.functional.recurrent import recurrent_sequence

    rng = np.random.default_rng(1)
    xg = Tensor(rng.uniform(-1, 1, (4, 2, 4 * H)), requires_grad=True)
    h, c = Tensor(rng.uniform(-1, 1, (2, H))), Tensor(rng.uniform(-1, 1, (2, H)))
    w = Tensor(rng.uniform(-1, 1, (4 * H, H)), requires_grad=True)
    out = recurrent_sequence("LSTM", xg, (h, c), w)
    loss = (out[0] ** 2).sum() + out[2].sum()
    loss.backward(retain_graph=True)
    once = [xg.grad.numpy().copy(), w.grad.numpy().copy()]
    loss.backward()
    np.testing.assert_allclose(xg.grad.numpy(), 2 * once[0], rtol=1e-12)
    np.testing.assert_allclose(w.grad.numpy(), 2 * once[1], rtol=1e-12)


def test_fused_lstm_recycled_buffers_do_not_leak_between_steps():
    """The internal buffers go back to a pool after a backward: repeated steps give identical results,
    and outputs kept from an earlier step are not overwritten by a later one."""
    layer = nn.LSTM(I, H, generator=nurinet.Generator(2))
    rng = np.random.default_rng(2)
    xs = [Tensor(rng.standard_normal((N, T, I)).astype(np.float32)) for _ in range(2)]

    def step(x):
        layer.zero_grad()
        out, _ = layer(x)
        (out[:, -1] ** 2).sum().backward()
        return out, [p.grad.numpy().copy() for p in layer.parameters()]

    out_a, grads_a = step(xs[0])
    kept = out_a.numpy().copy()
    step(xs[1])
    np.testing.assert_array_equal(out_a.numpy(), kept)
    out_again, grads_again = step(xs[0])
    np.testing.assert_array_equal(out_a.numpy(), kept)
    np.testing.assert_array_equal(out_again.numpy(), kept)
    for a, b in zip(grads_a, grads_again):
        np.testing.assert_array_equal(a, b)


def test_fused_lstm_single_thread_steps_is_only_a_speed_choice(monkeypatch):
    """Running the per-step GEMMs on one BLAS thread or on the default threads gives the same numbers."""
    from nurinet._runtime import settings

    layer = nn.LSTM(I, H, dtype=np.float64, generator=nurinet.Generator(5))
    x = Tensor(np.random.default_rng(5).standard_normal((N, T, I)), requires_grad=True)

    def run():
        x.grad = None
        layer.zero_grad()
        out, _ = layer(x)
        (out**2).sum().backward()
        return [out.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in layer.parameters()]

    monkeypatch.setattr(settings, "LSTM_SINGLE_THREAD_STEP_MACS", 1 << 40)
    single = run()
    monkeypatch.setattr(settings, "LSTM_SINGLE_THREAD_STEP_MACS", 0)
    for a, b in zip(single, run()):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_fused_lstm_leaves_a_fortran_ordered_weight_untouched():
    """The kernels scale a C-ordered copy of ``W_hh^T``; a weight whose transpose is C-contiguous stays as it was."""
    from nurinet.functional.recurrent import recurrent_sequence

    rng = np.random.default_rng(3)
    w_array = np.asfortranarray(rng.uniform(-1, 1, (4 * H, H)))
    kept = w_array.copy()
    xg, h, c = rng.uniform(-1, 1, (3, 2, 4 * H)), np.zeros((2, H)), np.zeros((2, H))
    out = recurrent_sequence("LSTM", Tensor(xg), (Tensor(h), Tensor(c)), Tensor(w_array))[0]
    np.testing.assert_array_equal(w_array, kept)
    again = recurrent_sequence("LSTM", Tensor(xg), (Tensor(h), Tensor(c)), Tensor(np.ascontiguousarray(kept)))[0]
    np.testing.assert_allclose(out.numpy(), again.numpy(), rtol=1e-12)


def test_fused_lstm_gives_back_only_its_own_buffers(monkeypatch):
    """The node's work buffers go back to the runtime's pool when its graph is freed, and the next
    sequence takes them again; the outputs and the gate gradients, which leave the op, never go there."""
    from nurinet._runtime import buffers, settings
    from nurinet.functional.recurrent import recurrent_sequence

    monkeypatch.setattr(settings, "BUFFER_MIN_BYTES", 0)
    buffers.clear()
    rng = np.random.default_rng(4)
    w = Tensor(rng.uniform(-1, 1, (4 * H, H)).astype(np.float32), requires_grad=True)
    state = (Tensor(np.zeros((2, H), np.float32)), Tensor(np.zeros((2, H), np.float32)))

    def run():
        xg = Tensor(rng.uniform(-1, 1, (4, 2, 4 * H)).astype(np.float32), requires_grad=True)
        out = recurrent_sequence("LSTM", xg, state, w)
        (out[0] ** 2).sum().backward()
        return out[0].array, xg.grad.array

    try:
        escaped = run()
        pooled = [array for spare in buffers._spare.values() for array in spare]
        assert len(pooled) == 3  # the activations, the cell states and their tanh
        assert not any(array is kept or array is kept.base for array in pooled for kept in escaped)
        again = run()
        assert sorted(map(id, (a for spare in buffers._spare.values() for a in spare))) == sorted(map(id, pooled))
        assert not any(array is kept or array is kept.base for array in pooled for kept in again)
    finally:
        buffers.clear()
