"""Embedding lookup, its scatter-add gradient, padding rows, and the positional encodings."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nurinet
import nurinet.functional as F
from nurinet import Tensor, nn
from nurinet.functional.embedding import scatter_rows
from tests.nn.harness import check_layer


def test_scatter_rows_equals_add_at():
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 7, (4, 9))
    gy = rng.standard_normal((4, 9, 3)).astype(np.float32)
    want = np.zeros((7, 3), np.float32)
    np.add.at(want, idx.reshape(-1), gy.reshape(-1, 3))
    got = scatter_rows(gy, idx, 7)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    want[2] = 0
    np.testing.assert_allclose(scatter_rows(gy, idx, 7, padding_idx=2), want, rtol=1e-6, atol=1e-6)
    assert not scatter_rows(gy[:0], idx[:0], 7).any()


def test_lookup_and_gradient():
    layer = nn.Embedding(6, 4, generator=nurinet.Generator(0))
    idx = np.array([[1, 3, 1], [5, 0, 1]])
    out = layer(idx)
    np.testing.assert_array_equal(out.numpy(), layer.weight.numpy()[idx])
    weights = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    (out * Tensor(weights)).sum().backward()
    want = np.zeros((6, 4), np.float32)
    np.add.at(want, idx.reshape(-1), weights.reshape(-1, 4))
    np.testing.assert_array_equal(layer.weight.grad.numpy(), want)


def test_padding_row_is_zero_and_gets_no_gradient():
    layer = nn.Embedding(5, 3, padding_idx=-1, generator=nurinet.Generator(0))
    assert layer.padding_idx == 4 and not layer.weight.numpy()[4].any()
    idx = np.array([4, 2, 4, 0])
    layer(idx).sum().backward()
    grad = layer.weight.grad.numpy()
    assert not grad[4].any() and grad[2].tolist() == [1, 1, 1] and grad[0].tolist() == [1, 1, 1]


def test_gradient_of_gradient():
    w = Tensor(np.random.default_rng(0).standard_normal((5, 2)), requires_grad=True)
    idx = np.array([0, 3, 3])
    y = F.embedding(idx, w)
    (g,) = nurinet.grad((y * y).sum(), [w], create_graph=True)
    np.testing.assert_allclose(g.numpy()[3], 4 * w.numpy()[3])
    (gg,) = nurinet.grad(g.sum(), [w])
    np.testing.assert_allclose(gg.numpy(), np.array([[2, 2], [0, 0], [0, 0], [4, 4], [0, 0]]))


def test_init_and_harness():
    layer = nn.Embedding(200, 50, generator=nurinet.Generator(0))
    values = layer.weight.numpy()
    assert values.dtype == np.float32 and abs(values.mean()) < 0.05 and abs(values.std() - 1) < 0.05
    idx = Tensor(np.array([[1, 4, 0], [7, 7, 2]]))
    check_layer(nn.Embedding(8, 3), None, (2, 3, 3), 24, inputs=idx)


def test_from_pretrained_is_frozen():
    table = np.arange(6, dtype=np.float32).reshape(3, 2)
    layer = nn.Embedding.from_pretrained(table)
    assert not layer.weight.requires_grad
    np.testing.assert_array_equal(layer(np.array([2, 0])).numpy(), table[[2, 0]])


def test_out_of_range_and_bad_indices():
    layer = nn.Embedding(10, 3)
    with pytest.raises(IndexError, match=r"index 10 is out of range for num_embeddings=10"):
        layer(np.array([1, 10]))
    with pytest.raises(IndexError, match=r"index -1 is out of range for num_embeddings=10"):
        layer(np.array([-1, 3]))
    with pytest.raises(TypeError, match="indices must be integers, got dtype float64"):
        layer(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"padding_idx=10 must be within num_embeddings=10"):
        nn.Embedding(10, 3, padding_idx=10)


def test_sinusoidal_encoding_formula():
    layer = nn.SinusoidalPositionalEncoding(6, max_len=20)
    x = Tensor(np.zeros((2, 7, 6), np.float32))
    out = layer(x).numpy()
    for p in (0, 3, 6):
        for i in range(3):
            angle = p / 10000 ** (2 * i / 6)
            assert out[1, p, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
            assert out[1, p, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)
    assert out.dtype == np.float32 and "pe" not in layer.state_dict()
    check_layer(layer, (2, 7, 6), (2, 7, 6), 0, make_fresh=lambda: nn.SinusoidalPositionalEncoding(6, 20))
    odd = nn.SinusoidalPositionalEncoding(5, max_len=4)(Tensor(np.zeros((4, 5)))).numpy()
    assert odd.shape == (4, 5) and odd[1, 4] == pytest.approx(math.sin(1 / 10000 ** (4 / 5)))


def test_learned_encoding():
    layer = nn.LearnedPositionalEncoding(4, max_len=10, generator=nurinet.Generator(0))
    x = Tensor(np.ones((2, 3, 4), np.float32))
    np.testing.assert_allclose(layer(x).numpy(), np.broadcast_to(1 + layer.weight.numpy()[:3], (2, 3, 4)))
    check_layer(layer, (2, 3, 4), (2, 3, 4), 40)
    layer(x).sum().backward()
    assert layer.weight.grad.numpy()[:3].tolist() == [[2.0] * 4] * 3 and not layer.weight.grad.numpy()[3:].any()


def test_positional_errors():
    with pytest.raises(ValueError, match=r"sequence length 12 exceeds max_len=10"):
        nn.LearnedPositionalEncoding(4, max_len=10)(Tensor(np.zeros((1, 12, 4), np.float32)))
    with pytest.raises(ValueError, match=r"SinusoidalPositionalEncoding: expected input \(N, T, 4\)"):
        nn.SinusoidalPositionalEncoding(4)(Tensor(np.zeros((1, 3, 5), np.float32)))


@pytest.mark.torch
def test_embedding_matches_torch():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Embedding(9, 4, padding_idx=2).double()
    ours = nn.Embedding(9, 4, padding_idx=2, dtype=np.float64)
    ours.load_state_dict({"weight": theirs.weight.detach().numpy()})
    idx = np.array([[2, 5, 5, 8], [0, 2, 1, 5]])
    w = np.random.default_rng(0).standard_normal((2, 4, 4))
    (theirs(torch.tensor(idx)) * torch.tensor(w)).sum().backward()
    out = ours(idx)
    (out * Tensor(w)).sum().backward()
    np.testing.assert_allclose(out.numpy(), theirs(torch.tensor(idx)).detach().numpy())
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), atol=1e-12)
