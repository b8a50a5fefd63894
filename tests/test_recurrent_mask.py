"""RNN, LSTM, GRU with a Keras-style ``mask``: the same outputs, final states and gradients as the
equivalent ``lengths``, in every layout; the errors for bad masks; SequenceClassifier's ``mask``."""

from __future__ import annotations

import numpy as np
import pytest

from nurinet import Tensor, nn
from nurinet.models import SequenceClassifier

N, T, I, H = 3, 5, 4, 6
LENGTHS = np.array([5, 2, 4])
LAYERS = {
    "rnn": lambda **kw: nn.RNN(I, H, **kw),
    "lstm": lambda **kw: nn.LSTM(I, H, **kw),
    "gru": lambda **kw: nn.GRU(I, H, **kw),
}


def _mask(lengths, batch_first, steps=T):
    """The prefix mask of ``lengths``: ``(N, T)`` if batch_first else ``(T, N)``."""
    rows = np.arange(steps)[None, :] < np.asarray(lengths)[:, None]
    return rows if batch_first else rows.T


def _run(layer, x, states, **kwargs):
    """Forward and backward through a fixed weighted sum; the leaves' gradients and the results."""
    xt = Tensor(x, requires_grad=True)
    st = [Tensor(s, requires_grad=True) for s in states]
    hx = tuple(st) if isinstance(layer, nn.LSTM) else st[0]
    layer.zero_grad()
    out, finals = layer(xt, hx, **kwargs)
    finals = list(finals) if isinstance(layer, nn.LSTM) else [finals]
    rng = np.random.default_rng(7)
    loss = (out * Tensor(rng.standard_normal(out.shape))).sum()
    for f in finals:
        loss = loss + (f * Tensor(rng.standard_normal(f.shape))).sum()
    loss.backward()
    grads = [xt.grad.numpy()] + [s.grad.numpy() for s in st]
    grads += [p.grad.numpy().copy() for _, p in layer.named_parameters()]
    return [out.numpy()] + [f.numpy() for f in finals], grads


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("batch_first", [True, False], ids=["bf", "tf"])
@pytest.mark.parametrize("kind", list(LAYERS))
def test_mask_equals_lengths_exactly(kind, batch_first, bidirectional):
    layer = LAYERS[kind](num_layers=2, batch_first=batch_first, bidirectional=bidirectional, dtype=np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I))
    count = 2 * layer.num_directions
    states = [rng.standard_normal((count, N, H)) for _ in range(2 if kind == "lstm" else 1)]
    expected = _run(layer, x, states, lengths=LENGTHS)
    bool_mask = _mask(LENGTHS, batch_first)
    for mask in (bool_mask, bool_mask.astype(np.int64), bool_mask.astype(np.float32), Tensor(bool_mask),
                 bool_mask.tolist()):
        got = _run(layer, x, states, mask=mask)
        for ours, theirs in zip(got[0] + got[1], expected[0] + expected[1]):
            np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("kind", list(LAYERS))
def test_full_mask_equals_no_mask(kind):
    layer = LAYERS[kind](bidirectional=True, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((N, T, I))
    out, _ = layer(Tensor(x), mask=np.ones((N, T), bool))
    np.testing.assert_array_equal(out.numpy(), layer(Tensor(x))[0].numpy())


def test_mask_pads_with_zeros_and_ignores_padded_inputs():
    layer = nn.GRU(I, H, bidirectional=True, dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((N, T, I))
    mask = _mask(LENGTHS, True)
    out, h_n = layer(Tensor(x), mask=mask)
    junk = x.copy()
    junk[~mask] = 1e3
    out2, h_n2 = layer(Tensor(junk), mask=mask)
    np.testing.assert_array_equal(out.numpy(), out2.numpy())
    np.testing.assert_array_equal(h_n.numpy(), h_n2.numpy())
    assert not out.numpy()[~mask].any()


def test_unbatched_mask_is_one_row_of_steps():
    layer = nn.LSTM(I, H, dtype=np.float64)
    x = Tensor(np.random.default_rng(3).standard_normal((T, I)))
    out, (h_n, c_n) = layer(x, mask=np.array([1, 1, 1, 0, 0]))
    ref, (h_ref, c_ref) = layer(x, lengths=np.array([3]))
    assert out.shape == (T, H)
    for a, b in ((out, ref), (h_n, h_ref), (c_n, c_ref)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_bad_mask_shape_names_layer_layout_and_shapes():
    x = Tensor(np.zeros((N, T, I), np.float32))
    with pytest.raises(ValueError, match=r"GRU: mask must have shape \(3, 5\) \(N, T\) with batch_first=True "
                                         r".*got shape \(5, 3\)"):
        nn.GRU(I, H)(x, mask=_mask(LENGTHS, False))
    with pytest.raises(ValueError, match=r"LSTM: mask must have shape \(5, 3\) \(T, N\) with batch_first=False "
                                         r".*got shape \(3, 5\)"):
        nn.LSTM(I, H, batch_first=False)(Tensor(np.zeros((T, N, I), np.float32)), mask=_mask(LENGTHS, True))
    with pytest.raises(ValueError, match=r"RNN: mask must have shape \(5,\) \(T,\) for an unbatched input"):
        nn.RNN(I, H)(Tensor(np.zeros((T, I), np.float32)), mask=np.ones((1, T), bool))


def test_non_prefix_mask_is_refused_with_a_hint():
    layer, x = nn.LSTM(I, H), Tensor(np.zeros((N, T, I), np.float32))
    left_padded = _mask(LENGTHS, True)[:, ::-1]
    with pytest.raises(ValueError, match=r"LSTM: mask of sequence 1 has a real step at t=3 after padding at "
                                         r"t=0: only right-padded sequences are supported.*lengths="):
        layer(x, mask=left_padded)
    gap = np.ones((N, T), bool)
    gap[2, 2] = False
    with pytest.raises(ValueError, match=r"sequence 2 has a real step at t=3 after padding at t=2"):
        layer(x, mask=gap)


def test_mask_needs_a_real_step_and_zero_one_values():
    layer, x = nn.GRU(I, H), Tensor(np.zeros((N, T, I), np.float32))
    empty = _mask(LENGTHS, True)
    empty[1] = False
    with pytest.raises(ValueError, match=r"GRU: mask has no real \(True\) step for sequence 1"):
        layer(x, mask=empty)
    with pytest.raises(ValueError, match=r"GRU: mask must be boolean or hold only 0 and 1.*other than 0 and 1"):
        layer(x, mask=_mask(LENGTHS, True) * 2)
    with pytest.raises(ValueError, match=r"mask must be boolean or hold only 0 and 1.*dtype <U1"):
        layer(x, mask=np.full((N, T), "a"))


def test_lengths_and_mask_together_are_refused():
    layer, x = nn.RNN(I, H), Tensor(np.zeros((N, T, I), np.float32))
    with pytest.raises(ValueError, match="RNN: give lengths or mask, not both"):
        layer(x, lengths=LENGTHS, mask=_mask(LENGTHS, True))


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_sequence_classifier_mask_equals_lengths(pooling):
    model = SequenceClassifier("gru", num_classes=3, input_size=I, hidden_size=5, bidirectional=True,
                               pooling=pooling).eval()
    x = np.random.default_rng(4).standard_normal((N, T, I)).astype(np.float32)
    np.testing.assert_array_equal(model(x, mask=_mask(LENGTHS, True)).numpy(), model(x, lengths=LENGTHS).numpy())
    tokens = SequenceClassifier("lstm", num_classes=2, vocab_size=9, embedding_dim=4, hidden_size=5).eval()
    ids = np.random.default_rng(5).integers(0, 9, (N, T))
    np.testing.assert_array_equal(tokens(ids, mask=_mask(LENGTHS, True)).numpy(),
                                  tokens(ids, lengths=LENGTHS).numpy())
    with pytest.raises(ValueError, match="SequenceClassifier: give lengths or mask, not both"):
        model(x, lengths=LENGTHS, mask=_mask(LENGTHS, True))
    with pytest.raises(ValueError, match=r"SequenceClassifier: mask must have shape \(3, 5\)"):
        model(x, mask=_mask(LENGTHS, False))
