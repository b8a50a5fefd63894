"""The native LSTM kernels' packed GEMM (kernels.c): against NumPy through its exported wrapper
``small_sgemm``, and inside the LSTM kernels against the sgemm path and the NumPy recurrence."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet
from nurinet import gemm, nn, parallel
from nurinet._runtime import libraries, settings
from nurinet._runtime import native as _native
from nurinet._runtime.fast import lstm as fast_lstm
from nurinet._runtime.parallel import single_blas_thread
from tests.test_native import _lstm_run

needs_native = pytest.mark.skipif(not _native.available() or _native.sgemm() is None,
                                  reason="native kernels not built here (no C compiler or no bundled OpenBLAS)")

SHAPES = [(1, 1, 1), (3, 5, 7), (33, 17, 65), (64, 128, 512), (64, 512, 128), (7, 40, 33), (9, 33, 300)]


def small_sgemm(a, b, c, beta):
    """c = a @ b + beta c in the packed GEMM, in place; a, b, c float32 row-major (views allowed)."""
    for array in (a, b, c):
        assert array.dtype == np.float32 and array.strides[1] == 4
    (m, k), n = a.shape, b.shape[1]
    _native.library().small_sgemm(m, n, k, a.ctypes.data, a.strides[0] // 4, b.ctypes.data, b.strides[0] // 4,
                                  beta, c.ctypes.data, c.strides[0] // 4)


def _operands(m, k, n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32),
            rng.standard_normal((m, n)).astype(np.float32))


def _close(got, want, k):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.sqrt(k))


@needs_native
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
@pytest.mark.parametrize(("m", "k", "n"), SHAPES)
def test_small_sgemm_matches_numpy(m, k, n, beta):
    a, b, c = _operands(m, k, n)
    want = a.astype(np.float64) @ b.astype(np.float64) + beta * c.astype(np.float64)
    small_sgemm(a, b, c, beta)
    _close(c, want, k)


@needs_native
@pytest.mark.parametrize(("m", "k", "n"), [(3, 5, 7), (33, 17, 65), (40, 300, 70)])
def test_small_sgemm_leading_dimensions(m, k, n):
    """Operands that are column windows of wider arrays; c's columns outside the window are kept."""
    a, b, c = _operands(m, k + 3, n + 5)
    want = c.copy()
    want[:, 2 : n + 2] += a[:, 1 : k + 1] @ b[2 : k + 2, 3 : n + 3]
    small_sgemm(a[:, 1 : k + 1], b[2 : k + 2, 3 : n + 3], c[:, 2 : n + 2], 1.0)
    _close(c, want, k)


@needs_native
@pytest.mark.parametrize(("m", "k", "n"), [(1, 1, 1), (33, 17, 65), (64, 128, 512)])
def test_small_sgemm_beta_zero_does_not_read_c(m, k, n):
    a, b, _ = _operands(m, k, n)
    c = np.full((m, n), np.nan, np.float32)
    small_sgemm(a, b, c, 0.0)
    _close(c, a.astype(np.float64) @ b, k)


@needs_native
@pytest.mark.parametrize(("m", "k", "n"), [(3, 5, 7), (33, 17, 65), (64, 512, 128)])
def test_small_sgemm_propagates_nan(m, k, n):
    """A NaN in a gives NaN in its row of c and nowhere else, as in BLAS; an inf in b, its column."""
    a, b, c = _operands(m, k, n)
    row, depth = m // 2, k - 1
    a[row, depth] = np.nan
    small_sgemm(a, b, c, 0.0)
    assert np.isnan(c[row]).all()
    assert not np.isnan(np.delete(c, row, axis=0)).any()
    a, b, c = _operands(m, k, n, seed=1)
    b[0, n - 1] = np.inf
    a[:, 0] = np.abs(a[:, 0]) + 1  # positive, so that the column is +inf and no NaN comes of it
    small_sgemm(a, b, c, 0.0)
    assert np.isposinf(c[:, n - 1]).all()
    assert np.isfinite(c[:, : n - 1]).all()


@needs_native
def test_packed_gemm_rule():
    old = settings.LSTM_PACKED_GEMM_MAX_HIDDEN
    try:
        with single_blas_thread() as single:
            wanted = int(single and gemm.provider() != "mkl")
            assert fast_lstm.packed_gemm(128) == wanted
            assert fast_lstm.packed_gemm(fast_lstm.PACKED_MIN_HIDDEN - 1) == 0
            settings.LSTM_PACKED_GEMM_MAX_HIDDEN = 0
            assert fast_lstm.packed_gemm(128) == 0
    finally:
        settings.LSTM_PACKED_GEMM_MAX_HIDDEN = old


@needs_native
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("batch", "hidden", "kwargs"), [
    (19, 17, {"bidirectional": True}),
    (8, 64, {}),
    (3, 33, {"bias": False}),
])
def test_lstm_with_packed_gemm_equals_sgemm_and_numpy(batch, hidden, kwargs, threads, monkeypatch):
    """The LSTM kernels with the packed GEMM (at every hidden size here) against the sgemm path and NumPy."""
    monkeypatch.setattr(fast_lstm, "PACKED_MIN_HIDDEN", 1)
    monkeypatch.setattr(settings, "LSTM_MIN_ROWS_PER_THREAD", 1)
    monkeypatch.setattr(settings, "LSTM_SINGLE_THREAD_STEP_MACS", 1 << 40)  # one BLAS thread unsplit too
    rng = np.random.default_rng(hidden)
    x = rng.standard_normal((batch, 6, 5)).astype(np.float32)
    chosen = []
    rule = fast_lstm.packed_gemm
    monkeypatch.setattr(fast_lstm, "packed_gemm", lambda h: chosen.append(rule(h)) or chosen[-1])
    before = parallel.get_elementwise_threads()
    parallel.set_elementwise_threads(threads)
    results = {}
    try:
        for name, native, ceiling in (("packed", True, 1 << 20), ("sgemm", True, 0), ("numpy", False, 0)):
            monkeypatch.setattr(settings, "LSTM_PACKED_GEMM_MAX_HIDDEN", ceiling)
            old = _native.set_enabled(native)
            try:
                nurinet.manual_seed(0)
                results[name] = _lstm_run(nn.LSTM(5, hidden, batch_first=True, **kwargs), x)
            finally:
                _native.set_enabled(old)
    finally:
        parallel.set_elementwise_threads(before)
    if gemm.provider() != "mkl" and libraries.openblas_threads() is not None:
        assert 1 in chosen  # the packed GEMM ran (chosen holds the sgemm runs' zeros too)
    got_out, got_grads = results["packed"]
    for other in ("sgemm", "numpy"):
        want_out, want_grads = results[other]
        for got, want in zip(got_out, want_out):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6, err_msg=other)
        for name in want_grads:
            np.testing.assert_allclose(got_grads[name], want_grads[name], rtol=1e-4, atol=2e-5,
                                       err_msg=f"{other}: {name}")
