"""nurinet's own GEMM (``native/gemm.c``) against float64 NumPy: every layout, edge shapes, threads,
NaN, the fall-backs to NumPy, concurrent callers and a fork.

The op registry reaches it too (tests/test_fast_paths.py, provider ``"native"``); these checks cover
what small registry samples cannot: tiles cut at every edge, several depth passes, the thread split
and the pool.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading

import numpy as np
import pytest

from nurinet import nn, optim
from nurinet._runtime import gemm, probe, settings

pytestmark = pytest.mark.skipif(not gemm.native_available(), reason="nurinet's own GEMM needs AVX-512 and a C compiler")


@pytest.fixture
def native_gemm():
    """The native provider at every size, restored afterwards."""
    old = gemm.set_provider("native")
    saved = settings.snapshot()
    settings.GEMM_MIN_MACS = settings.NATIVE_GEMM_MIN_MACS = settings.NATIVE_GEMM_THREAD_MIN_MACS = 1
    settings.NATIVE_GEMM_MIN_SIDE = 1
    threads = gemm._native_threads()
    yield
    gemm.set_num_threads(threads)
    settings.restore(saved)
    gemm.set_provider(old)


def _operands(rng, m, n, k, trans_a, trans_b):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    return (a.T if trans_a else a), (b.T if trans_b else b)


def _reference(a, b):
    return a.astype(np.float64) @ b.astype(np.float64)


@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_every_layout_and_edge_matches_float64(native_gemm, trans_a, trans_b, threads):
    """Rows around the 12-row tile, columns around the 32-column sliver, depths around the 256 pass."""
    gemm.set_num_threads(threads)
    rng = np.random.default_rng(0)
    for m, n, k in itertools.product([1, 11, 12, 13, 64, 130], [1, 15, 16, 17, 32, 33, 100], [1, 16, 17, 256, 300]):
        a, b = _operands(rng, m, n, k, trans_a, trans_b)
        with probe.counting() as counts:
            got = gemm.matmul(a, b)
        assert counts["native.gemm"] == 1
        assert got.dtype == np.float32 and got.shape == (m, n) and got.flags.c_contiguous
        np.testing.assert_allclose(got, _reference(a, b), rtol=1e-4, atol=1e-4 * np.sqrt(k), err_msg=f"{m}x{n}x{k}")


def test_large_products_are_bitwise_the_same_on_any_thread_count(native_gemm):
    rng = np.random.default_rng(1)
    for m, n, k in [(128, 512, 784), (2048, 128, 384), (70, 1100, 300), (513, 2100, 40)]:
        a, b = _operands(rng, m, n, k, False, True)
        results = []
        for threads in (1, 2, 4):
            gemm.set_num_threads(threads)
            results.append(gemm.matmul(a, b))
        for other in results[1:]:
            np.testing.assert_array_equal(other, results[0])
        np.testing.assert_allclose(results[0], _reference(a, b), rtol=1e-4, atol=1e-3)


def test_output_is_written_not_read_and_nan_spreads_as_in_blas(native_gemm):
    rng = np.random.default_rng(2)
    a, b = _operands(rng, 40, 70, 300, False, False)
    out = np.full((40, 70), np.nan, np.float32)  # what was in `out` must not leak into the result
    assert gemm.matmul(a, b, out=out) is out
    assert np.isfinite(out).all()
    a[5, 299] = np.nan  # in the second depth pass
    b[0, 69] = np.inf
    got = gemm.matmul(a, b)
    assert np.isnan(got[5]).all()
    rest = np.delete(got, 5, axis=0)
    assert np.isinf(rest[:, 69]).all() or np.isnan(rest[:, 69]).any()
    assert np.isfinite(np.delete(rest, 69, axis=1)).all()


def test_zero_depth_gives_zeros(native_gemm):
    out = np.full((5, 40), np.nan, np.float32)
    gemm.matmul(np.ones((5, 0), np.float32), np.ones((0, 40), np.float32), out=out)
    np.testing.assert_array_equal(out, 0.0)


def test_what_it_cannot_take_goes_to_numpy(native_gemm):
    rng = np.random.default_rng(3)
    x32 = rng.standard_normal((30, 40)).astype(np.float32)
    cases = {
        "float64": (x32.astype(np.float64), x32.T.astype(np.float64)),
        "mixed dtypes": (x32, x32.T.astype(np.float64)),
        "strided": (x32[:, ::2], x32[:20, :30]),
        "batched": (np.stack([x32, x32]), np.stack([x32.T, x32.T])),
    }
    for name, (a, b) in cases.items():
        with probe.counting() as counts:
            got = gemm.matmul(a, b)
        assert "native.gemm" not in counts, name
        np.testing.assert_allclose(got, np.matmul(a, b), rtol=1e-5, err_msg=name)
    out = np.empty((30, 30), np.float32)
    with probe.counting() as counts:  # an `out` that overlaps an operand: NumPy copies as needed
        square = np.ascontiguousarray(x32[:, :30])
        got = gemm.matmul(square, square, out=square)
    assert "native.gemm" not in counts and got is square
    del out


def test_small_products_stay_with_numpy_by_default():
    old = gemm.set_provider("native")
    try:
        a = np.ones((4, 8), np.float32)
        with probe.counting() as counts:
            gemm.matmul(a, a.T)
        assert "native.gemm" not in counts  # below settings.NATIVE_GEMM_MIN_MACS the ctypes call costs more
    finally:
        gemm.set_provider(old)


def test_concurrent_callers_share_the_pool_safely(native_gemm):
    gemm.set_num_threads(2)
    rng = np.random.default_rng(4)
    pairs = [_operands(rng, 96, 300, 200, False, bool(i % 2)) for i in range(4)]
    want = [_reference(a, b) for a, b in pairs]
    errors = []

    def work(i):
        for _ in range(20):
            got = gemm.matmul(*pairs[i])
            if not np.allclose(got, want[i], rtol=1e-4, atol=1e-3):
                errors.append(i)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors


def _product_in_child(queue):
    a = np.arange(64 * 300, dtype=np.float32).reshape(64, 300) / 1e4
    queue.put(float(np.abs(gemm.matmul(a, a.T) - _reference(a, a.T)).max()))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork here")
def test_a_forked_child_runs_products_with_a_fresh_pool(native_gemm):
    gemm.set_num_threads(2)
    a = np.ones((64, 300), np.float32)
    gemm.matmul(a, a.T)  # the parent's pool has started its worker
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_product_in_child, args=(queue,))
    child.start()
    child.join(60)
    assert child.exitcode == 0, "the child hung or died: its pool must not wait for the parent's threads"
    assert queue.get(timeout=5) < 1e-2


def test_set_provider_names_the_reason_when_it_cannot(monkeypatch):
    monkeypatch.setitem(gemm._state, "native", None)
    monkeypatch.setitem(gemm._state, "native_reason", "this CPU or compiler has no AVX-512 (x86-64 Linux)")
    with pytest.raises(RuntimeError, match="AVX-512"):
        gemm.set_provider("native")


def test_thread_count_follows_the_blas_environment(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert gemm._threads_from_environment() == 1
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert gemm._threads_from_environment() == 3


@pytest.mark.parametrize("trans_b", [False, True])
def test_a_bias_row_is_added_as_the_product_is_stored(native_gemm, trans_b):
    rng = np.random.default_rng(5)
    for m, n, k in [(7, 33, 5), (130, 100, 300), (64, 512, 784)]:
        a, b = _operands(rng, m, n, k, False, trans_b)
        bias = rng.standard_normal(n).astype(np.float32)
        np.testing.assert_allclose(gemm.matmul(a, b, bias=bias), _reference(a, b) + bias, rtol=1e-4,
                                   atol=1e-4 * np.sqrt(k))
    out = np.full((3, 40), np.nan, np.float32)
    bias = np.arange(40, dtype=np.float32)
    gemm.matmul(np.ones((3, 0), np.float32), np.ones((0, 40), np.float32), out=out, bias=bias)
    np.testing.assert_array_equal(out, np.broadcast_to(bias, (3, 40)))


def test_a_bias_the_kernel_cannot_take_is_added_after(native_gemm):
    rng = np.random.default_rng(6)
    a, b = _operands(rng, 20, 30, 40, False, False)
    for bias in (rng.standard_normal(30), rng.standard_normal((1, 30)).astype(np.float32)):  # float64; 2-D
        np.testing.assert_allclose(gemm.matmul(a, b, bias=bias), _reference(a, b) + bias, rtol=1e-4, atol=1e-4)


def _gathered_reference(source, offsets, sample, rows, length):
    base = source.reshape(-1)[sample * source[0].size:]
    return np.stack([base[o:o + length] for o in offsets[:rows]]).astype(np.float64)


def test_gathered_rows_match_the_built_operand(native_gemm):
    """A convolution's windows read in place: row r of sample s's operand starts at offsets[r]."""
    rng = np.random.default_rng(7)
    samples, rows, length = 3, 37, 70
    source = rng.standard_normal((samples, 400)).astype(np.float32)
    offsets = rng.integers(0, 400 - length, rows).astype(np.int64)
    built = [_gathered_reference(source, offsets, s, rows, length) for s in range(samples)]  # rows x length
    a = rng.standard_normal((20, rows)).astype(np.float32)
    out = np.full((20, samples * length), np.nan, np.float32)
    assert gemm.gathered_products(a, source, offsets, out, k=rows, n=length, samples=samples, a_stride=0,
                                  source_stride=400, out_stride=length, trans_b=False, accumulate=0)
    want = np.concatenate([a.astype(np.float64) @ b for b in built], axis=1)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    # the weight-gradient form: sum over samples of g_s (20 x length) @ built_s.T, then added to it
    g = rng.standard_normal((20, samples * length)).astype(np.float32)
    gw = np.full((20, rows), np.nan, np.float32)
    kwargs = {"k": length, "n": rows, "samples": samples, "a_stride": length, "source_stride": 400, "out_stride": 0,
              "trans_b": True}
    assert gemm.gathered_products(g, source, offsets, gw, accumulate=1, **kwargs)
    want = sum(g[:, s * length:(s + 1) * length].astype(np.float64) @ built[s].T for s in range(samples))
    np.testing.assert_allclose(gw, want, rtol=1e-4, atol=1e-3)
    assert gemm.gathered_products(g, source, offsets, gw, accumulate=2, **kwargs)
    np.testing.assert_allclose(gw, 2 * want, rtol=1e-4, atol=2e-3)


def test_gathered_products_decline_what_they_cannot_take(native_gemm):
    a = np.ones((4, 3), np.float64)
    assert not gemm.gathered_products(a, np.ones((1, 10)), np.zeros(3, np.int64), np.ones((4, 5)), k=3, n=5,
                                      samples=1, a_stride=0, source_stride=10, out_stride=5, trans_b=False,
                                      accumulate=0)


def test_a_read_only_out_is_refused_as_numpy_does(native_gemm):
    rng = np.random.default_rng(9)
    a, b = _operands(rng, 20, 30, 40, False, False)
    out = np.zeros((20, 30), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError):
        gemm.matmul(a, b, out=out)
    assert not out.any()


def test_a_bias_inside_out_is_added_as_numpy_adds_it(native_gemm):
    """A bias that is a row of `out` must be read before the product overwrites it (NumPy: y += bias)."""
    rng = np.random.default_rng(10)
    a, b = _operands(rng, 40, 70, 50, False, True)
    out = np.full((40, 70), np.nan, np.float32)
    product = _reference(a, b)
    got = gemm.matmul(a, b, out=out, bias=out[0])
    np.testing.assert_allclose(got, product + product[0], rtol=1e-4, atol=1e-3)


def test_gathered_products_decline_offsets_they_would_misread(native_gemm):
    source, out = np.ones((1, 10), np.float32), np.empty((4, 5), np.float32)
    kwargs = {"k": 3, "n": 5, "samples": 1, "a_stride": 0, "source_stride": 10, "out_stride": 5, "trans_b": False,
              "accumulate": 0}
    for offsets in (np.zeros(3, np.int32), [0, 1, 2], np.zeros(6, np.int64)[::2]):
        assert not gemm.gathered_products(np.ones((4, 3), np.float32), source, offsets, out, **kwargs)
    read_only = np.empty((4, 5), np.float32)
    read_only.flags.writeable = False
    assert not gemm.gathered_products(np.ones((4, 3), np.float32), source, np.zeros(3, np.int64), read_only,
                                      **kwargs)


def test_relu_is_applied_as_the_product_is_stored(native_gemm):
    """A linear layer followed by ReLU: after the last depth pass and the bias; NaN stays NaN."""
    rng = np.random.default_rng(10)
    for m, n, k in [(7, 33, 5), (130, 100, 600)]:  # one depth pass; three
        a, b = _operands(rng, m, n, k, False, True)
        a[3, 0] = np.nan
        bias = rng.standard_normal(n).astype(np.float32)
        want = np.maximum(_reference(a, b) + bias, 0)
        for given in (bias, bias.reshape(1, n)):  # fused; added after the product
            got = gemm.matmul(a, b, bias=given, relu=True)
            assert np.isnan(got[3]).all()
            np.testing.assert_allclose(np.delete(got, 3, 0), np.delete(want, 3, 0), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(np.delete(gemm.matmul(a, b, relu=True), 3, 0),
                                   np.delete(np.maximum(_reference(a, b), 0), 3, 0), rtol=1e-4, atol=1e-3)
    out = np.full((3, 40), np.nan, np.float32)
    bias = np.linspace(-1, 1, 40, dtype=np.float32)
    gemm.matmul(np.ones((3, 0), np.float32), np.ones((0, 40), np.float32), out=out, bias=bias, relu=True)
    np.testing.assert_array_equal(out, np.broadcast_to(np.maximum(bias, 0), (3, 40)))


POOL_OPTIMIZERS = {
    "sgd_momentum": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.2),
                     "native.nn_sgd_momentum_update"),
    "sgd_nesterov": (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                     "native.nn_sgd_momentum_update"),
    "adam": (lambda ps: optim.Adam(ps, lr=0.01), "native.nn_adam_update"),
    "amsgrad": (lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True), "native.nn_adam_update"),
}


@pytest.mark.parametrize("name", list(POOL_OPTIMIZERS))
def test_optimizer_updates_on_the_pool_match_numpy(native_gemm, name):
    """SGD's and Adam's one-pass updates split over the GEMM's threads, against NumPy's arithmetic."""
    from nurinet._runtime.modes import reference_only

    make, kernel = POOL_OPTIMIZERS[name]
    settings.NATIVE_POOL_MIN_ELEMENTS = 1
    gemm.set_num_threads(3)

    def train():
        rng = np.random.default_rng(8)
        params = [nn.Parameter(rng.standard_normal(shape).astype(np.float32)) for shape in ((301, 77), (5000,))]
        opt = make(params)
        for step in range(3):
            for p in params:
                p.grad = nn.Parameter(np.random.default_rng(step).standard_normal(p.shape).astype(np.float32))
            opt.step()
        return [p.array.copy() for p in params]

    with probe.counting() as counts:
        got = train()
    assert counts[kernel] >= 4
    with reference_only():
        want = train()
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
