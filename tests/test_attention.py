"""Attention and Transformer layers without PyTorch: the layer harness, masks, layouts,
dropout, and the errors for bad input (tests/test_attention_torch.py checks the numbers
against PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet import nn
from nurinet.models import TransformerClassifier
from tests.nn.harness import check_layer

N, L, S, E, H = 2, 5, 4, 8, 2


def _x(*shape: int, seed: int = 0, dtype=np.float32) -> nt.Tensor:
    return nt.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


def _mha_params(e: int, kdim: int | None = None, vdim: int | None = None) -> int:
    return e * (e + (kdim or e) + (vdim or e)) + 3 * e + e * e + e


# ----- the generic layer harness ------------------------------------------------------------


def test_multihead_attention_harness() -> None:
    x = _x(N, L, E)
    check_layer(nn.MultiheadAttention(E, H, generator=nt.Generator(0)), None, (N, L, E), _mha_params(E),
                inputs=[x, x, x])


def test_multihead_attention_kdim_vdim_harness() -> None:
    layer = nn.MultiheadAttention(E, H, kdim=3, vdim=5, dropout=0.3, generator=nt.Generator(0))
    check_layer(layer, None, (N, L, E), _mha_params(E, 3, 5), train_eval_differ=True,
                inputs=[_x(N, L, E), _x(N, S, 3, seed=1), _x(N, S, 5, seed=2)])
    assert layer.in_proj_weight is None
    assert {"q_proj_weight", "k_proj_weight", "v_proj_weight"} <= set(layer.state_dict())


def test_encoder_layer_harness() -> None:
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.2, generator=nt.Generator(0))
    params = _mha_params(E) + (E * 16 + 16) + (16 * E + E) + 2 * 2 * E
    check_layer(layer, (N, L, E), (N, L, E), params, train_eval_differ=True)


def test_decoder_layer_harness() -> None:
    layer = nn.TransformerDecoderLayer(E, H, dim_feedforward=16, dropout=0.0, norm_first=True,
                                       activation="gelu", generator=nt.Generator(0))
    params = 2 * _mha_params(E) + (E * 16 + 16) + (16 * E + E) + 3 * 2 * E
    check_layer(layer, None, (N, L, E), params, inputs=[_x(N, L, E), _x(N, S, E, seed=1)])


def test_stacks_copy_the_layer_and_name_parameters_as_pytorch() -> None:
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, generator=nt.Generator(0))
    encoder = nn.TransformerEncoder(layer, 3, norm=nn.LayerNorm(E))
    keys = set(encoder.state_dict())
    assert "layers.2.self_attn.in_proj_weight" in keys and "layers.0.linear1.bias" in keys
    assert "norm.weight" in keys and "layers.1.norm2.bias" in keys
    first, second = encoder.layers[0].linear1.weight, encoder.layers[1].linear1.weight
    assert first is not second and np.array_equal(first.array, second.array)
    decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, dim_feedforward=16), 2)
    assert "layers.1.multihead_attn.out_proj.weight" in decoder.state_dict()
    memory = encoder(_x(N, S, E))
    assert decoder(_x(N, L, E), memory, tgt_is_causal=True).shape == (N, L, E)


# ----- behaviour ---------------------------------------------------------------------------


def test_weights_are_distributions_and_average_over_heads() -> None:
    layer = nn.MultiheadAttention(E, H, generator=nt.Generator(1))
    q, kv = _x(N, L, E), _x(N, S, E, seed=1)
    out, per_head = layer(q, kv, kv, average_attn_weights=False)
    _, averaged = layer(q, kv, kv)
    assert per_head.shape == (N, H, L, S) and averaged.shape == (N, L, S)
    np.testing.assert_allclose(per_head.array.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(averaged.array, per_head.array.mean(1), rtol=1e-6)
    out2, none = layer(q, kv, kv, need_weights=False)
    assert none is None
    np.testing.assert_allclose(out2.array, out.array, rtol=1e-6)


def test_key_padding_mask_ignores_padded_keys() -> None:
    layer = nn.MultiheadAttention(E, H, generator=nt.Generator(2))
    q, kv = _x(N, L, E), _x(N, S, E, seed=1).numpy().copy()
    padding = np.zeros((N, S), dtype=bool)
    padding[0, -1] = True
    out, w = layer(q, nt.Tensor(kv), nt.Tensor(kv), key_padding_mask=padding)
    assert np.all(w.array[0, :, -1] == 0)
    kv[0, -1] = 100.0  # Changing a padded key changes nothing.
    changed, _ = layer(q, nt.Tensor(kv), nt.Tensor(kv), key_padding_mask=padding)
    np.testing.assert_allclose(changed.array, out.array, rtol=1e-6)
    additive = np.where(padding, -np.inf, 0.0).astype(np.float32)
    same, _ = layer(q, nt.Tensor(kv), nt.Tensor(kv), key_padding_mask=additive)
    np.testing.assert_allclose(same.array, out.array, rtol=1e-6)


def test_causal_self_attention_does_not_look_ahead() -> None:
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.0, generator=nt.Generator(3))
    x = _x(N, L, E).numpy().copy()
    out = layer(nt.Tensor(x), is_causal=True).numpy().copy()
    x[:, -1] += 5.0  # The last step may only change the last output.
    moved = layer(nt.Tensor(x), is_causal=True).numpy()
    np.testing.assert_allclose(moved[:, :-1], out[:, :-1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(moved[:, -1], out[:, -1])
    mask = np.triu(np.ones((L, L), dtype=bool), 1)
    np.testing.assert_allclose(layer(nt.Tensor(x), src_mask=mask).numpy(), moved, rtol=1e-6)


def test_time_first_and_unbatched_layouts_agree_with_batch_first() -> None:
    first = nn.MultiheadAttention(E, H, generator=nt.Generator(4))
    second = nn.MultiheadAttention(E, H, batch_first=False)
    second.load_state_dict(first.state_dict())
    x = _x(N, L, E)
    out, w = first(x, x, x)
    xt = nt.Tensor(np.ascontiguousarray(x.numpy().swapaxes(0, 1)))
    out_t, w_t = second(xt, xt, xt)
    np.testing.assert_allclose(out_t.numpy().swapaxes(0, 1), out.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(w_t.numpy(), w.numpy(), rtol=1e-5, atol=1e-7)
    single = x[0]
    out_1, w_1 = first(single, single, single)
    assert out_1.shape == (L, E) and w_1.shape == (L, L)
    np.testing.assert_allclose(out_1.numpy(), out.numpy()[0], rtol=1e-5, atol=1e-6)


def test_self_attention_fast_path_equals_separate_projections() -> None:
    layer = nn.MultiheadAttention(E, H, generator=nt.Generator(5))
    x = _x(N, L, E)
    fast, _ = layer(x, x, x)
    # Equal values in distinct tensors: three separate projections.
    slow, _ = layer(x, nt.Tensor(x.numpy().copy()), nt.Tensor(x.numpy().copy()))
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-5, atol=1e-6)
    kv = nt.Tensor(x.numpy().copy())  # key is value: one packed key/value projection.
    packed, _ = layer(x, kv, kv)
    np.testing.assert_allclose(packed.numpy(), fast.numpy(), rtol=1e-5, atol=1e-6)


def test_float32_stays_float32_and_dropout_is_reproducible() -> None:
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.5, generator=nt.Generator(6))
    x = nt.Tensor(_x(N, L, E).numpy(), requires_grad=True)
    out = layer(x)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())
    q, k, v = _x(1, H, L, E), _x(1, H, S, E, seed=1), _x(1, H, S, E, seed=2)
    a, wa = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, need_weights=True, generator=nt.Generator(9))
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, generator=nt.Generator(9))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    kept = wa.numpy() != 0
    assert 0.2 < kept.mean() < 0.8  # About half of the weights were dropped.


def test_fully_masked_query_gets_zero_output_and_gradient() -> None:
    q = nt.Tensor(_x(3, E).numpy().astype(np.float64), requires_grad=True)
    k = nt.Tensor(_x(S, E, seed=1).numpy().astype(np.float64), requires_grad=True)
    mask = np.ones((3, S), dtype=bool)
    mask[1] = False
    out = F.scaled_dot_product_attention(q, k, k, attn_mask=mask)
    assert np.all(out.numpy()[1] == 0) and np.all(np.isfinite(out.numpy()))
    out.sum().backward()
    assert np.all(q.grad.numpy()[1] == 0) and np.all(np.isfinite(k.grad.numpy()))


def test_float_mask_adds_to_the_scores() -> None:
    q, k, v = _x(L, E, dtype=np.float64), _x(S, E, seed=1, dtype=np.float64), _x(S, 3, seed=2, dtype=np.float64)
    bias = np.random.default_rng(3).standard_normal((L, S))
    out, w = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=0.5, need_weights=True)
    s = q.numpy() @ k.numpy().T * 0.5 + bias
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(w.numpy(), p, rtol=1e-12)
    np.testing.assert_allclose(out.numpy(), p @ v.numpy(), rtol=1e-12)


def test_gelu_and_callable_activation() -> None:
    x = _x(N, L, E)
    by_name = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.0, activation="gelu",
                                         generator=nt.Generator(7))
    by_fn = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.0, activation=F.gelu)
    by_fn.load_state_dict(by_name.state_dict())
    np.testing.assert_allclose(by_fn(x).numpy(), by_name(x).numpy(), rtol=1e-6)


# ----- errors ------------------------------------------------------------------------------


def test_embed_dim_must_divide_by_heads() -> None:
    with pytest.raises(ValueError, match=r"embed_dim \(10\) must be divisible by num_heads \(4\)"):
        nn.MultiheadAttention(10, 4)
    with pytest.raises(ValueError, match=r"TransformerEncoderLayer: d_model \(10\) must be divisible"):
        nn.TransformerEncoderLayer(10, 3)


def test_wrong_mask_shapes_name_expected_and_got() -> None:
    layer = nn.MultiheadAttention(E, H)
    x = _x(N, L, E)
    with pytest.raises(ValueError, match=r"key_padding_mask has shape \(2, 4\), expected \(N, S\) = \(2, 5\)"):
        layer(x, x, x, key_padding_mask=np.zeros((N, L - 1), dtype=bool))
    with pytest.raises(ValueError, match=r"attn_mask has shape \(5, 4\), expected \(L, S\) = \(5, 5\)"):
        layer(x, x, x, attn_mask=np.zeros((L, L - 1), dtype=bool))
    with pytest.raises(ValueError, match=r"mask has shape \(3, 4\).*\(\*, L, S\)"):
        F.scaled_dot_product_attention(_x(L, E), _x(S, E), _x(S, E), attn_mask=np.ones((3, 4), bool))
    with pytest.raises(TypeError, match="bool or floating point"):
        layer(x, x, x, attn_mask=np.zeros((L, L), dtype=np.int64))


def test_query_key_size_mismatch() -> None:
    layer = nn.MultiheadAttention(E, H)
    with pytest.raises(ValueError, match=r"key has 6 features .* expects 8 \(kdim\)"):
        layer(_x(N, L, E), _x(N, S, 6), _x(N, S, E))
    with pytest.raises(ValueError, match=r"query has 6 features .* expects 8 \(embed_dim\)"):
        layer(_x(N, L, 6), _x(N, S, E), _x(N, S, E))
    with pytest.raises(ValueError, match="same sequence length"):
        layer(_x(N, L, E), _x(N, S, E), _x(N, S + 1, E))
    with pytest.raises(ValueError, match="same batch size"):
        layer(_x(N, L, E), _x(N + 1, S, E), _x(N + 1, S, E))
    with pytest.raises(ValueError, match=r"same size in the last dim, got 8 and 6"):
        F.scaled_dot_product_attention(_x(L, E), _x(S, 6), _x(S, E))
    with pytest.raises(ValueError, match="same sequence length"):
        F.scaled_dot_product_attention(_x(L, E), _x(S, E), _x(S + 1, E))
    with pytest.raises(TypeError, match="MultiheadAttention has float32 parameters but got a float64 query"):
        layer(*[_x(N, L, E, dtype=np.float64)] * 3)


def test_transformer_layer_mask_errors_name_the_argument() -> None:
    enc = nn.TransformerEncoderLayer(E, H, dim_feedforward=16)
    dec = nn.TransformerDecoderLayer(E, H, dim_feedforward=16)
    x, memory = _x(N, L, E), _x(N, S, E)
    with pytest.raises(ValueError, match=r"TransformerEncoderLayer: src_key_padding_mask has shape \(2, 4\), "
                                         r"expected \(2, 5\).*np.arange"):
        enc(x, src_key_padding_mask=np.zeros((N, L - 1), bool))
    with pytest.raises(ValueError, match=r"TransformerEncoderLayer: src_mask has shape \(4, 4\), expected "
                                         r"\(L, S\) = \(5, 5\) or \(N \* nhead, L, S\) = \(4, 5, 5\)"):
        enc(x, src_mask=np.zeros((L - 1, L - 1), bool))
    with pytest.raises(ValueError, match=r"TransformerEncoderLayer: src_key_padding_mask has shape \(2, 5\), "
                                         r"expected \(5,\)"):
        enc(_x(L, E), src_key_padding_mask=np.zeros((N, L), bool))
    with pytest.raises(ValueError, match=r"TransformerDecoderLayer: memory_key_padding_mask has shape \(2, 5\), "
                                         r"expected \(2, 4\)"):
        dec(x, memory, memory_key_padding_mask=np.zeros((N, L), bool))
    with pytest.raises(ValueError, match=r"TransformerDecoderLayer: memory_mask has shape \(5, 5\), expected "
                                         r"\(L, S\) = \(5, 4\)"):
        dec(x, memory, memory_mask=np.zeros((L, L), bool))
    with pytest.raises(ValueError, match=r"TransformerDecoderLayer: tgt_mask has shape \(5, 4\)"):
        dec(x, memory, tgt_mask=np.zeros((L, S), bool))
    with pytest.raises(ValueError, match=r"tgt \(2, 5, 8\) and memory \(3, 4, 8\) must both be batched"):
        dec(x, _x(N + 1, S, E))
    # The right shapes pass, as bool arrays or float Tensors.
    assert enc(x, src_mask=nt.Tensor(np.zeros((N * H, L, L), np.float32)),
               src_key_padding_mask=np.zeros((N, L), bool)).shape == (N, L, E)
    assert dec(x, memory, memory_mask=np.zeros((L, S), bool), tgt_key_padding_mask=np.zeros((N, L), bool),
               memory_key_padding_mask=np.zeros((N, S), bool)).shape == (N, L, E)


def test_heads_error_says_how_to_fix() -> None:
    with pytest.raises(ValueError, match=r"Use a num_heads among \[1, 2, 3, 4, 6, 12\] or change embed_dim"):
        nn.MultiheadAttention(12, 5)
    with pytest.raises(ValueError, match=r"TransformerDecoderLayer: d_model \(10\) must be divisible by nhead "
                                         r"\(3\).*among \[1, 2, 5, 10\]"):
        nn.TransformerDecoderLayer(10, 3)


def test_transformer_layer_errors() -> None:
    with pytest.raises(ValueError, match="activation must be 'relu', 'gelu' or a callable"):
        nn.TransformerEncoderLayer(E, H, activation="swishy")
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=16)
    with pytest.raises(ValueError, match=r"src must have shape \(N, L, d_model\) with d_model=8"):
        layer(_x(N, L, 6))
    with pytest.raises(ValueError, match=r"drop probability"):
        nn.MultiheadAttention(E, H, dropout=1.0)


# ----- the small Transformer classifier -----------------------------------------------------


def _classifier(**kwargs) -> TransformerClassifier:
    args = {"d_model": 16, "nhead": 2, "num_layers": 2, "dim_feedforward": 32, "generator": nt.Generator(0)}
    return TransformerClassifier(12, 3, **{**args, **kwargs})


def test_transformer_classifier_harness() -> None:
    ids = nt.Tensor(np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]]))
    per_layer = _mha_params(16) + (16 * 32 + 32) + (32 * 16 + 16) + 2 * 2 * 16
    params = 12 * 16 + 2 * per_layer + 2 * 16 + 16 * 3 + 3
    # make_fresh: the perturbed deep copy would also perturb the positional table, a
    # non-persistent buffer that load_state_dict does not restore.
    check_layer(_classifier(), None, (2, 3), params, train_eval_differ=True, inputs=ids,
                make_fresh=lambda: _classifier(generator=nt.Generator(5)))


def test_transformer_classifier_ignores_padding() -> None:
    model = _classifier(norm_first=False).eval()
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]])
    longer = np.concatenate([ids, np.zeros((2, 3), dtype=ids.dtype)], axis=1)
    np.testing.assert_allclose(model(longer).numpy(), model(ids).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"integer token ids of shape \(N, T\)"):
        model(np.zeros((2, 5), dtype=np.float32))


def test_transformer_classifier_learns_a_token_task() -> None:
    # Class = which of the tokens 1, 2, 3 the sequence contains (once, at a random place).
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 48)
    ids = rng.integers(4, 12, (48, 6))
    ids[np.arange(48), rng.integers(0, 6, 48)] = labels + 1
    ids[::3, -2:] = 0  # Some padding.
    model = _classifier(dropout=0.0)
    opt = nt.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        loss = F.cross_entropy(model(ids), labels)
        loss.backward()
        opt.step()
    accuracy = (model.eval()(ids).numpy().argmax(1) == labels).mean()
    assert accuracy > 0.9, f"training accuracy {accuracy}"
