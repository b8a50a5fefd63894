"""RNN, LSTM, GRU and their cells against PyTorch: outputs and every gradient, float64."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
from nurinet import Tensor
from nurinet.nn.recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

pytestmark = pytest.mark.torch

KINDS = {"rnn_tanh": (RNN, {}), "rnn_relu": (RNN, {"nonlinearity": "relu"}), "lstm": (LSTM, {}),
         "gru": (GRU, {})}
CONFIGS = [  # (num_layers, bidirectional, batch_first, bias)
    (1, False, True, True),
    (1, True, False, True),
    (2, False, False, True),
    (2, True, True, True),
    (1, False, True, False),
]
N, T, I, H = 3, 5, 4, 6


def _torch_layer(torch, kind, layers, bidirectional, batch_first, bias):
    cls = {"rnn_tanh": torch.nn.RNN, "rnn_relu": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    extra = {"nonlinearity": "relu"} if kind == "rnn_relu" else {}
    return cls(I, H, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias,
               **extra).double()


def _ours_from(theirs, kind, layers, bidirectional, batch_first, bias):
    cls, extra = KINDS[kind]
    ours = cls(I, H, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, bias=bias,
               dtype=np.float64, **extra)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours


def _run_both(torch, kind, config, lengths=None, seed=0, initial_states=True, mask=None):
    """``mask`` (ours, ``(N, T)`` or ``(T, N)`` by batch_first) stands for lengths: torch packs by its row sums."""
    layers, bidirectional, batch_first, _bias = config
    torch_lengths = lengths if mask is None else np.asarray(mask).sum(axis=1 if batch_first else 0)
    torch.manual_seed(seed)
    theirs = _torch_layer(torch, kind, *config)
    ours = _ours_from(theirs, kind, *config)
    rng = np.random.default_rng(seed)
    shape = (N, T, I) if batch_first else (T, N, I)
    x = rng.standard_normal(shape)
    states = [rng.standard_normal((layers * (2 if bidirectional else 1), N, H))
              for _ in range(2 if kind == "lstm" else 1)]
    out_dirs = 2 if bidirectional else 1
    w_out = rng.standard_normal(shape[:2] + (out_dirs * H,))
    w_states = [rng.standard_normal(s.shape) for s in states]

    tx = torch.tensor(x, requires_grad=True)
    ts = [torch.tensor(s, requires_grad=True) for s in states]
    thx = (tuple(ts) if kind == "lstm" else ts[0]) if initial_states else None
    if torch_lengths is None:
        tout, th = theirs(tx, thx)
    else:
        from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

        packed = pack_padded_sequence(tx, torch.tensor(torch_lengths), batch_first=batch_first,
                                      enforce_sorted=False)
        tout, th = theirs(packed, thx)
        tout = pad_packed_sequence(tout, batch_first=batch_first, total_length=T)[0]
    th = list(th) if kind == "lstm" else [th]
    tloss = (tout * torch.tensor(w_out)).sum() + sum((a * torch.tensor(w)).sum() for a, w in zip(th, w_states))
    tloss.backward()

    ox = Tensor(x, requires_grad=True)
    os_ = [Tensor(s, requires_grad=True) for s in states]
    ohx = (tuple(os_) if kind == "lstm" else os_[0]) if initial_states else None
    oout, oh = ours(ox, ohx, lengths=lengths) if mask is None else ours(ox, ohx, mask=mask)
    oh = list(oh) if kind == "lstm" else [oh]
    oloss = (oout * Tensor(w_out)).sum() + sum((a * Tensor(w)).sum() for a, w in zip(oh, w_states))
    oloss.backward()

    np.testing.assert_allclose(oout.numpy(), tout.detach().numpy(), atol=1e-10)
    for a, b in zip(oh, th):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(ox.grad.numpy(), tx.grad.numpy(), atol=1e-5)
    for a, b in zip(os_, ts) if initial_states else ():
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), atol=1e-5)
    tparams = dict(theirs.named_parameters())
    names = [name for name, _ in ours.named_parameters()]
    assert names == list(tparams)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), atol=1e-5, err_msg=name)


@pytest.mark.parametrize("config", CONFIGS, ids=[f"L{c[0]}-bi{int(c[1])}-bf{int(c[2])}-b{int(c[3])}"
                                                 for c in CONFIGS])
@pytest.mark.parametrize("kind", list(KINDS))
def test_layer_matches_torch(kind, config):
    torch = pytest.importorskip("torch")
    _run_both(torch, kind, config)


@pytest.mark.parametrize("config", [(1, True, True, True), (2, True, False, True), (2, False, True, True)],
                         ids=["bi-bf", "L2-bi", "L2-bf"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_variable_lengths_match_packed_torch(kind, config):
    torch = pytest.importorskip("torch")
    _run_both(torch, kind, config, lengths=np.array([5, 2, 4]))


@pytest.mark.parametrize("kind", list(KINDS))
def test_mask_matches_packed_torch(kind):
    """A Keras-style prefix mask, time first (T, N), stacked and bidirectional, against pack_padded_sequence."""
    torch = pytest.importorskip("torch")
    mask = np.arange(T)[:, None] < np.array([2, 5, 3])[None, :]  # (T, N): lengths 2, 5, 3
    _run_both(torch, kind, (2, True, False, True), mask=mask, seed=4)


@pytest.mark.parametrize("lengths", [None, (3, 5, 1)], ids=["full", "lengths"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_zero_initial_states_match_torch(kind, lengths):
    """No hx (zeros in both libraries, no gradient wanted for them), stacked, bidirectional, time first."""
    torch = pytest.importorskip("torch")
    _run_both(torch, kind, (3, True, False, True), lengths=None if lengths is None else np.array(lengths), seed=3,
              initial_states=False)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cells_match_torch(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    cls = {"rnn": (torch.nn.RNNCell, RNNCell), "lstm": (torch.nn.LSTMCell, LSTMCell),
           "gru": (torch.nn.GRUCell, GRUCell)}[kind]
    theirs = cls[0](I, H).double()
    ours = cls[1](I, H, dtype=np.float64)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(2)
    x, h, c = rng.standard_normal((N, I)), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    ox, oh, oc = (Tensor(a, requires_grad=True) for a in (x, h, c))
    if kind == "lstm":
        tout, oout = theirs(tx, (th, tc)), ours(ox, (oh, oc))
        (tout[0].sum() + 2 * tout[1].sum()).backward()
        (oout[0].sum() + 2 * oout[1].sum()).backward()
        pairs = [(oout[0], tout[0]), (oout[1], tout[1]), (oc.grad, tc.grad)]
    else:
        tout, oout = theirs(tx, th), ours(ox, oh)
        tout.sum().backward()
        oout.sum().backward()
        pairs = [(oout, tout)]
    pairs += [(ox.grad, tx.grad), (oh.grad, th.grad)]
    pairs += [(p.grad, q.grad) for p, q in zip(ours.parameters(), theirs.parameters())]
    for a, b in pairs:
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), atol=1e-10)


def test_default_init_range_like_torch():
    pytest.importorskip("torch")
    layer = LSTM(3, 16, num_layers=2, bidirectional=True, generator=nurinet.Generator(0))
    bound = 1 / np.sqrt(16)
    values = np.concatenate([p.numpy().ravel() for p in layer.parameters()])
    assert values.min() >= -bound and values.max() <= bound and values.std() > bound / 2


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s) for s in ((3, 4), (6,))]
    ours = [nurinet.Parameter(np.zeros_like(g)) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads):
        o.grad, t.grad = Tensor(g.copy()), torch.tensor(g)
    total = nurinet.nn.clip_grad_norm_(ours, 0.7, norm_type)
    assert total == pytest.approx(float(torch.nn.utils.clip_grad_norm_(theirs, 0.7, norm_type)), rel=1e-12)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    nurinet.nn.clip_grad_value_(ours, 0.1)
    torch.nn.utils.clip_grad_value_(theirs, 0.1)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.numpy(), t.grad.numpy(), rtol=1e-12)
