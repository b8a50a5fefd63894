"""The attention op cut along its batch into pieces on threads (``attend_split`` and
``attend_backward_split`` of ``nurinet._runtime.fast.attention``) against the same op run whole:
outputs, weights and gradients must agree to float32 rounding, with masks, dropout, broadcast
key/value batches, the weights as an output and queries whose keys are all masked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet import nn
from nurinet._runtime import probe, settings
from nurinet.autograd import grad
from nurinet.functional.attention import Attention

FORWARD = "split.nurinet._runtime.fast.attention:attend_split"
BACKWARD = "split.nurinet._runtime.fast.attention:attend_backward_split"


@contextmanager
def _threads(n: int, min_elements: int = 1) -> Iterator[None]:
    saved = settings.snapshot()
    settings.ELEMENTWISE_THREADS, settings.PARALLEL_MIN_ELEMENTS = n, min_elements
    try:
        yield
    finally:
        settings.restore(saved)


def _arrays(shapes: list[tuple[int, ...]], dtype: Any = np.float32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def _sdpa_run(arrays: list[np.ndarray], **kwargs: Any) -> list[np.ndarray]:
    """Outputs (and weights) and the gradients of q, k, v for fixed upstream gradients."""
    q, k, v = (nt.Tensor(a, requires_grad=True) for a in arrays)
    result = F.scaled_dot_product_attention(q, k, v, generator=nt.Generator(5), **kwargs)
    outs = list(result) if isinstance(result, tuple) else [result]
    rng = np.random.default_rng(9)
    nt.autograd.backward(outs, [nt.Tensor(rng.standard_normal(y.shape).astype(y.dtype)) for y in outs])
    return [y.array.copy() for y in outs] + [x.grad.array.copy() for x in (q, k, v)]


def _split_and_whole(run: Any) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, int]]:
    with _threads(1):
        whole = run()
    with _threads(2), probe.counting() as counts:
        split = run()
    return split, whole, dict(counts)


def _assert_same(split: list[np.ndarray], whole: list[np.ndarray]) -> None:
    assert len(split) == len(whole)
    for a, b in zip(split, whole):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _masked_rows(length: int, source: int) -> np.ndarray:
    """A bool SDPA mask (True = takes part) with some keys left out and query 1 seeing none."""
    mask = np.ones((length, source), dtype=bool)
    mask[0, 1] = mask[length - 1, 0] = False
    mask[1] = False
    return mask


CASES = {
    "plain": ([(4, 3, 5, 8), (4, 3, 6, 8), (4, 3, 6, 7)], {}),
    "causal_dropout_broadcast_kv": ([(4, 3, 5, 8), (1, 3, 6, 8), (1, 1, 6, 7)],
                                    {"dropout_p": 0.3, "is_causal": True}),
    "broadcast_q": ([(1, 3, 5, 8), (4, 3, 6, 8), (4, 3, 6, 7)], {"dropout_p": 0.2}),
    "mask_weights_dead_row": ([(3, 2, 5, 4), (3, 2, 6, 4), (3, 2, 6, 3)],
                              {"attn_mask": _masked_rows(5, 6), "need_weights": True}),
    "per_batch_float_mask": ([(3, 2, 5, 4), (3, 2, 6, 4), (3, 2, 6, 3)],
                             {"attn_mask": np.random.default_rng(2).standard_normal((3, 1, 5, 6)).astype(np.float32)}),
    "split_on_second_axis": ([(1, 5, 4, 6), (1, 5, 3, 6), (1, 5, 3, 2)], {"is_causal": True, "need_weights": True}),
    "three_batch_dims": ([(2, 3, 2, 4, 3), (2, 1, 2, 5, 3), (2, 3, 2, 5, 4)], {"dropout_p": 0.5}),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_split_attention_matches_the_whole(case: str, dtype: Any) -> None:
    shapes, kwargs = CASES[case]
    arrays = _arrays(shapes, dtype)
    split, whole, counts = _split_and_whole(lambda: _sdpa_run(arrays, **kwargs))
    assert counts.get(FORWARD) == 1 and counts.get(BACKWARD) == 1, counts
    _assert_same(split, whole)
    assert all(np.isfinite(x).all() for x in split)


def test_all_masked_rows_give_zero_weights_and_keep_dead_whole() -> None:
    q, k, v = (nt.Tensor(a, requires_grad=True) for a in _arrays([(4, 2, 5, 4), (4, 2, 6, 4), (4, 2, 6, 3)]))
    mask = _masked_rows(5, 6)
    with _threads(2):
        op = Attention(0.5, np.where(mask, 0.0, -np.inf).astype(np.float32), need_weights=True)
        out, weights = op(q, k, v)
    assert op.dead is not None and op.dead.shape == (4, 2, 5, 1)
    assert op.dead[:, :, 1].all() and op.dead.sum() == 4 * 2
    assert op.p.shape == op.pd.shape == (4, 2, 5, 6)
    assert not weights.array[:, :, 1].any() and not out.array[:, :, 1].any()
    with _threads(2):
        op2 = Attention(0.5, None)
        op2(q, k, v)
    assert op2.dead is None


def test_double_backward_after_a_split_forward() -> None:
    arrays = _arrays([(4, 2, 5, 4), (1, 2, 6, 4), (4, 2, 6, 3)])
    mask = _masked_rows(5, 6)

    def run() -> list[np.ndarray]:
        q, k, v = (nt.Tensor(a, requires_grad=True) for a in arrays)
        out = F.scaled_dot_product_attention(q, k, v, mask, dropout_p=0.25, generator=nt.Generator(1))
        gq, gk, gv = grad(F.sum(out * out), (q, k, v), create_graph=True)
        second = grad(F.sum(gq * gq) + F.sum(gk) + F.sum(gv * gv), (q, k, v))
        return [g.array.copy() for g in (gq, gk, gv, *second)]

    split, whole, counts = _split_and_whole(run)
    assert counts.get(FORWARD, 0) >= 1
    _assert_same(split, whole)


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_layer_split_matches_the_whole(batch_first: bool) -> None:
    n, length, e = 4, 6, 8
    x = _arrays([(n, length, e) if batch_first else (length, n, e)])[0]
    padding = np.zeros((n, length), dtype=bool)
    padding[1, 2:] = True
    padding[2] = True  # every key of one sequence is padding: all of its queries see no key

    def run() -> list[np.ndarray]:
        layer = nn.MultiheadAttention(e, 2, dropout=0.2, batch_first=batch_first, generator=nt.Generator(0))
        layer.train()
        xt = nt.Tensor(x, requires_grad=True)
        out, weights = layer(xt, xt, xt, key_padding_mask=padding, need_weights=True,
                             average_attn_weights=False, is_causal=False)
        F.sum(out * out).backward()
        grads = [p.grad.array.copy() for p in layer.parameters()]
        return [out.array.copy(), weights.array.copy(), xt.grad.array.copy(), *grads]

    split, whole, counts = _split_and_whole(run)
    assert counts.get(FORWARD) == 1 and counts.get(BACKWARD) == 1, counts
    _assert_same(split, whole)


def test_no_split_below_the_floor_with_one_thread_or_without_batch() -> None:
    arrays = _arrays([(4, 3, 5, 8), (4, 3, 6, 8), (4, 3, 6, 7)])
    size = 4 * 3 * 5 * 6
    for threads, floor in ((2, size + 1), (1, 1)):
        with _threads(threads, floor), probe.counting() as counts:
            _sdpa_run(arrays)
        assert not counts, counts
    with _threads(2), probe.counting() as counts:  # 2-D attention, or a batch of ones: nothing to cut
        _sdpa_run(_arrays([(5, 8), (6, 8), (6, 7)]))
        _sdpa_run(_arrays([(1, 1, 5, 8), (1, 6, 8), (6, 7)]))
    assert not counts, counts
    with _threads(2, size), probe.counting() as counts:
        _sdpa_run(arrays)
    assert counts.get(FORWARD) == 1

