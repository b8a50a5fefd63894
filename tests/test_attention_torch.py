"""Attention and Transformer layers against PyTorch: same weights, same outputs and gradients.

Every parameter, buffer and state_dict key is PyTorch's, so each test builds the PyTorch
layer, loads its state_dict into nurinet's, runs both in float64 (dropout 0, training
mode, so PyTorch takes its reference path) and compares the output, the gradients of
the inputs and of every parameter, to 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet import nn

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

N, L, S, E, H, FF = 3, 5, 4, 8, 2, 12
TOL = 1e-5


def _load(ours: nn.Module, theirs) -> None:
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _pair(array: np.ndarray) -> tuple:
    return nt.Tensor(array.copy(), requires_grad=True), torch.tensor(array, requires_grad=True)


def _close(ours, theirs, what: str) -> None:
    np.testing.assert_allclose(ours.array if isinstance(ours, nt.Tensor) else ours,
                               theirs.detach().numpy(), rtol=TOL, atol=TOL, err_msg=what)


def _backward(outputs: list, rng: np.random.Generator) -> None:
    """Backpropagate a random linear function of the outputs in both libraries."""
    ours, theirs = 0, 0
    for o, t in outputs:
        r = rng.standard_normal(o.shape)
        ours = ours + (o * nt.Tensor(r)).sum()
        theirs = theirs + (t * torch.tensor(r)).sum()
    ours.backward()
    theirs.backward()


def _compare_grads(ours: nn.Module, theirs, inputs: list) -> None:
    for i, (o, t) in enumerate(inputs):
        _close(o.grad, t.grad, f"gradient of input {i}")
    named = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, named[name].grad, f"gradient of {name}")


def _time_first(x: np.ndarray, batch_first: bool) -> np.ndarray:
    return x if batch_first else np.ascontiguousarray(x.swapaxes(0, 1))


CAUSAL_BOOL = np.triu(np.ones((L, L), dtype=bool), 1)


def _padding(n: int, length: int) -> np.ndarray:
    mask = np.zeros((n, length), dtype=bool)
    mask[0, -2:] = True  # Padding at the end of two sequences.
    mask[2, -1] = True
    return mask


MHA_CASES = {
    "self": {},
    "self_padding_causal": {"padding": True, "attn_mask": "causal"},
    "self_float_mask_per_head": {"attn_mask": "float_heads", "average": False},
    "self_time_first": {"batch_first": False, "padding": True},
    "self_is_causal": {"is_causal": True},
    "cross_key_is_value": {"cross": "kv"},
    "cross_separate": {"cross": "separate", "padding": True, "average": False},
    "cross_kdim_vdim": {"cross": "separate", "kdim": 5, "vdim": 3},
    "cross_no_bias_time_first": {"cross": "kv", "bias": False, "batch_first": False},
}


@pytest.mark.parametrize("case", list(MHA_CASES), ids=list(MHA_CASES))
def test_multihead_attention_matches_torch(case: str) -> None:
    c = MHA_CASES[case]
    bf, cross = c.get("batch_first", True), c.get("cross")
    kdim, vdim = c.get("kdim"), c.get("vdim")
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, H, bias=c.get("bias", True), kdim=kdim, vdim=vdim, batch_first=bf,
                                         dtype=torch.float64)
    ours = nn.MultiheadAttention(E, H, bias=c.get("bias", True), kdim=kdim, vdim=vdim, batch_first=bf,
                                 dtype=np.float64)
    _load(ours, theirs)
    rng = np.random.default_rng(0)
    source = S if cross else L
    q = _pair(_time_first(rng.standard_normal((N, L, E)), bf))
    if cross is None:
        k = v = q
    else:
        k = _pair(_time_first(rng.standard_normal((N, S, kdim or E)), bf))
        v = k if cross == "kv" else _pair(_time_first(rng.standard_normal((N, S, vdim or E)), bf))
    kwargs, tkwargs = {}, {}
    if c.get("padding"):
        mask = _padding(N, source)
        kwargs["key_padding_mask"], tkwargs["key_padding_mask"] = mask, torch.tensor(mask)
    if c.get("attn_mask") == "causal":
        kwargs["attn_mask"], tkwargs["attn_mask"] = CAUSAL_BOOL, torch.tensor(CAUSAL_BOOL)
    if c.get("attn_mask") == "float_heads":
        mask = rng.standard_normal((N * H, L, source))
        kwargs["attn_mask"], tkwargs["attn_mask"] = mask, torch.tensor(mask)
    if c.get("is_causal"):
        kwargs["is_causal"] = True
        tkwargs.update(is_causal=True, attn_mask=torch.tensor(CAUSAL_BOOL))
    average = c.get("average", True)
    out, w = ours(q[0], k[0], v[0], average_attn_weights=average, **kwargs)
    tout, tw = theirs(q[1], k[1], v[1], average_attn_weights=average, **tkwargs)
    _close(out, tout, "output")
    _close(w, tw, "attention weights")
    _backward([(out, tout), (w, tw)], rng)
    inputs = [q] if cross is None else ([q, k] if cross == "kv" else [q, k, v])
    _compare_grads(ours, theirs, inputs)


ENCODER_CASES = [(norm_first, act, bf) for norm_first in (False, True) for act in ("relu", "gelu")
                 for bf in (True, False)]


@pytest.mark.parametrize("norm_first,activation,batch_first", ENCODER_CASES)
def test_encoder_layer_matches_torch(norm_first: bool, activation: str, batch_first: bool) -> None:
    torch.manual_seed(1)
    args = {"dim_feedforward": FF, "dropout": 0.0, "activation": activation, "batch_first": batch_first,
                "norm_first": norm_first}
    theirs = torch.nn.TransformerEncoderLayer(E, H, dtype=torch.float64, **args)
    ours = nn.TransformerEncoderLayer(E, H, dtype=np.float64, **args)
    _load(ours, theirs)
    rng = np.random.default_rng(1)
    x = _pair(_time_first(rng.standard_normal((N, L, E)), batch_first))
    padding = _padding(N, L)
    out = ours(x[0], src_mask=CAUSAL_BOOL, src_key_padding_mask=padding)
    tout = theirs(x[1], src_mask=torch.tensor(CAUSAL_BOOL), src_key_padding_mask=torch.tensor(padding))
    _close(out, tout, "output")
    _backward([(out, tout)], rng)
    _compare_grads(ours, theirs, [x])


DECODER_CASES = [(False, "relu", True, False), (True, "gelu", True, False), (False, "gelu", False, True),
                 (True, "relu", False, True)]


@pytest.mark.parametrize("norm_first,activation,batch_first,memory_mask", DECODER_CASES)
def test_decoder_layer_matches_torch(norm_first: bool, activation: str, batch_first: bool,
                                     memory_mask: bool) -> None:
    torch.manual_seed(2)
    args = {"dim_feedforward": FF, "dropout": 0.0, "activation": activation, "batch_first": batch_first,
            "norm_first": norm_first}
    theirs = torch.nn.TransformerDecoderLayer(E, H, dtype=torch.float64, **args)
    ours = nn.TransformerDecoderLayer(E, H, dtype=np.float64, **args)
    _load(ours, theirs)
    rng = np.random.default_rng(2)
    tgt = _pair(_time_first(rng.standard_normal((N, L, E)), batch_first))
    memory = _pair(_time_first(rng.standard_normal((N, S, E)), batch_first))
    tgt_pad, mem_pad = _padding(N, L), _padding(N, S)
    # A bool mask over the memory (T, S) that hides some (query, key) pairs; key 0 stays visible to all.
    mem_mask = None
    if memory_mask:
        mem_mask = rng.random((L, S)) > 0.6
        mem_mask[:, 0] = False
    out = ours(tgt[0], memory[0], tgt_mask=CAUSAL_BOOL, memory_mask=mem_mask, tgt_key_padding_mask=tgt_pad,
               memory_key_padding_mask=mem_pad)
    tout = theirs(tgt[1], memory[1], tgt_mask=torch.tensor(CAUSAL_BOOL),
                  memory_mask=None if mem_mask is None else torch.tensor(mem_mask),
                  tgt_key_padding_mask=torch.tensor(tgt_pad), memory_key_padding_mask=torch.tensor(mem_pad))
    _close(out, tout, "output")
    _backward([(out, tout)], rng)
    _compare_grads(ours, theirs, [tgt, memory])


@pytest.mark.parametrize("norm_first", [False, True])
def test_unmasked_encoder_stack_matches_torch(norm_first: bool) -> None:
    torch.manual_seed(5)
    args = {"dim_feedforward": FF, "dropout": 0.0, "batch_first": True, "norm_first": norm_first}
    theirs = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, H, dtype=torch.float64, **args), 3,
                                         enable_nested_tensor=False)
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, dtype=np.float64, **args), 3)
    _load(ours, theirs)
    rng = np.random.default_rng(5)
    x = _pair(rng.standard_normal((N, L, E)))
    out, tout = ours(x[0]), theirs(x[1])
    _close(out, tout, "output")
    _backward([(out, tout)], rng)
    _compare_grads(ours, theirs, [x])


def test_stacks_with_final_norm_match_torch() -> None:
    torch.manual_seed(3)
    args = {"dim_feedforward": FF, "dropout": 0.0, "batch_first": True, "norm_first": True}
    t_enc = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(E, H, dtype=torch.float64, **args), 2,
                                        norm=torch.nn.LayerNorm(E, dtype=torch.float64), enable_nested_tensor=False)
    t_dec = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(E, H, dtype=torch.float64, **args), 2,
                                        norm=torch.nn.LayerNorm(E, dtype=torch.float64))
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, H, dtype=np.float64, **args), 2,
                                norm=nn.LayerNorm(E, dtype=np.float64))
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, H, dtype=np.float64, **args), 2,
                                norm=nn.LayerNorm(E, dtype=np.float64))
    _load(enc, t_enc)
    _load(dec, t_dec)
    rng = np.random.default_rng(3)
    src, tgt = _pair(rng.standard_normal((N, S, E))), _pair(rng.standard_normal((N, L, E)))
    out = dec(tgt[0], enc(src[0], src_key_padding_mask=_padding(N, S)), tgt_is_causal=True,
              tgt_mask=CAUSAL_BOOL)
    tout = t_dec(tgt[1], t_enc(src[1], src_key_padding_mask=torch.tensor(_padding(N, S))), tgt_is_causal=True,
                 tgt_mask=torch.tensor(CAUSAL_BOOL))
    _close(out, tout, "output")
    _backward([(out, tout)], rng)
    for i, (o, t) in enumerate([src, tgt]):
        _close(o.grad, t.grad, f"gradient of input {i}")
    for ours, theirs in ((enc, t_enc), (dec, t_dec)):
        _compare_grads(ours, theirs, [])


@pytest.mark.parametrize("mask", ["none", "bool", "float", "causal"])
def test_scaled_dot_product_attention_matches_torch(mask: str) -> None:
    rng = np.random.default_rng(4)
    q, k, v = (_pair(rng.standard_normal(s)) for s in ((2, H, L, E), (2, H, S, E), (2, H, S, 3)))
    kwargs: dict = {"scale": 0.3} if mask == "none" else {}
    tkwargs = dict(kwargs)
    if mask == "bool":
        m = rng.random((L, S)) > 0.3
        m[:, 0] = True
        kwargs["attn_mask"], tkwargs["attn_mask"] = m, torch.tensor(m)
    if mask == "float":
        m = rng.standard_normal((2, 1, L, S))
        kwargs["attn_mask"], tkwargs["attn_mask"] = m, torch.tensor(m)
    if mask == "causal":
        kwargs["is_causal"] = tkwargs["is_causal"] = True
    out = F.scaled_dot_product_attention(q[0], k[0], v[0], **kwargs)
    tout = torch.nn.functional.scaled_dot_product_attention(q[1], k[1], v[1], **tkwargs)
    _close(out, tout, "output")
    _backward([(out, tout)], rng)
    for i, (o, t) in enumerate((q, k, v)):
        _close(o.grad, t.grad, f"gradient of input {i}")
