"""nurinet.gemm: the matrix-product provider (NumPy's BLAS or MKL) gives NumPy's results either way."""

from __future__ import annotations

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet import nn, threads
from nurinet._runtime import gemm, settings
from nurinet._runtime import native as _native

needs_mkl = pytest.mark.skipif(not gemm.mkl_available(), reason="MKL is not installed (pip install 'nurinet[mkl]')")


@pytest.fixture
def provider_restored():
    before = gemm._state["requested"]
    yield
    gemm.set_provider(before)


def _operands(rng, shape_a, shape_b, dtype, trans_a=False, trans_b=False):
    """Operands of the given logical shapes, stored transposed (swapped last axes) when asked."""
    def make(shape, trans):
        if not trans:
            return rng.standard_normal(shape).astype(dtype)
        stored = rng.standard_normal(shape[:-2] + (shape[-1], shape[-2])).astype(dtype)
        return stored.swapaxes(-1, -2)
    return make(shape_a, trans_a), make(shape_b, trans_b)


def _close(dtype):
    return {"rtol": 1e-5, "atol": 1e-4} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


@pytest.mark.parametrize("provider", ["numpy", pytest.param("mkl", marks=needs_mkl)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_two_dim_products_match_numpy(provider, dtype, trans_a, trans_b, provider_restored):
    gemm.set_provider(provider)
    a, b = _operands(np.random.default_rng(0), (67, 90), (90, 45), dtype, trans_a, trans_b)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    got = gemm.matmul(a, b)
    assert got.dtype == dtype and got.shape == (67, 45) and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, **_close(dtype))


@pytest.mark.parametrize("provider", ["numpy", pytest.param("mkl", marks=needs_mkl)])
@pytest.mark.parametrize("shape", [(3, 40, 33), (2, 3, 40, 33)])
def test_batched_products_and_out_match_numpy(provider, shape, provider_restored):
    gemm.set_provider(provider)
    rng = np.random.default_rng(1)
    a, b = _operands(rng, shape, shape[:-2] + (33, 50), np.float32, trans_b=True)
    out = np.full(shape[:-1] + (50,), np.nan, np.float32)
    assert gemm.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-4)


@needs_mkl
def test_mkl_runs_the_products_it_can_take(mkl_calls):
    calls = mkl_calls
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((64, 64)).astype(np.float32), rng.standard_normal((64, 64)).astype(np.float32)
    gemm.matmul(a, b.T)
    gemm.matmul(a[None].repeat(3, 0), b[None].repeat(3, 0))
    assert calls == ["gemm", "batch"]


@needs_mkl
@pytest.mark.parametrize("case", ["mixed dtypes", "integers", "strided", "broadcast batch", "tiny", "vector",
                                  "zero inner", "bad out"])
def test_what_mkl_cannot_take_goes_to_numpy(case, mkl_calls):
    calls = mkl_calls
    rng = np.random.default_rng(3)
    a = rng.standard_normal((64, 64)).astype(np.float32)
    out = None
    operands = {
        "mixed dtypes": (a, a.astype(np.float64)),
        "integers": (np.ones((64, 64), np.int64), np.ones((64, 64), np.int64)),
        "strided": (rng.standard_normal((64, 128)).astype(np.float32)[:, ::2], a),
        "broadcast batch": (a[None].repeat(3, 0), a),
        "tiny": (a[:4, :4], a[:4, :4]),
        "vector": (a, a[0]),
        "zero inner": (np.ones((64, 0), np.float32), np.ones((0, 64), np.float32)),
        "bad out": (a, a),
    }[case]
    if case == "bad out":
        out = np.empty((64, 64), np.float32, order="F")
    expected = np.matmul(*operands)
    got = gemm.matmul(*operands, out=out)
    assert calls == []
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.fixture
def mkl_calls(provider_restored, monkeypatch):
    """MKL as the provider, its two routines wrapped to append "gemm" or "batch" to the list yielded."""
    gemm.set_provider("mkl")
    calls = []
    routines = gemm._mkl()["routines"]
    for dtype, (single, batched) in list(routines.items()):
        monkeypatch.setitem(routines, dtype, (_counting(single, calls, "gemm"), _counting(batched, calls, "batch")))
    return calls


def _counting(func, calls, name):
    def wrapper(*args):
        calls.append(name)
        return func(*args)
    return wrapper


def test_unknown_provider_is_refused(provider_restored):
    with pytest.raises(ValueError, match="unknown provider 'blis'"):
        gemm.set_provider("blis")


def test_asking_for_a_missing_mkl_says_how_to_install_it(provider_restored, monkeypatch):
    monkeypatch.setitem(gemm._state, "mkl", {})
    monkeypatch.setitem(gemm._state, "mkl_reason", "libmkl_rt was not found")
    with pytest.raises(RuntimeError, match=r"libmkl_rt was not found.*nurinet\[mkl\]"):
        gemm.set_provider("mkl")
    gemm.set_provider("auto")
    assert gemm.provider() == ("native" if gemm.native_available() else "numpy")  # the next provider
    assert gemm.sgemm_function() is None


def test_a_bad_environment_setting_is_reported(provider_restored, monkeypatch):
    monkeypatch.setitem(gemm._state, "requested", "fast")
    monkeypatch.delitem(gemm._state, "active", raising=False)
    with pytest.raises(ValueError, match="NURINET_BLAS='fast'"):
        gemm.provider()


@needs_mkl
def test_openblas_gets_one_thread_while_mkl_runs_the_products(provider_restored):
    if threads._openblas() is None:
        pytest.skip("NumPy's OpenBLAS is not controllable here")
    getter = threads._openblas()[1]
    gemm.set_provider("numpy")
    gemm.provider()
    before = int(getter())
    gemm.set_provider("mkl")
    gemm.provider()
    assert int(getter()) == 1
    gemm.set_provider("numpy")
    gemm.provider()
    assert int(getter()) == before


@needs_mkl
def test_native_kernels_call_mkl_when_it_is_the_provider(provider_restored):
    gemm.set_provider("mkl")
    found = gemm.sgemm_function()
    assert found is not None and _native.sgemm() == found
    gemm.set_provider("numpy")
    assert gemm.sgemm_function() is None


def _small_model_gradients(provider: str, dtype) -> list[np.ndarray]:
    """Gradients of a model with every kind of product (linear, convolution, LSTM, attention)."""
    gemm.set_provider(provider)
    nt.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    lstm = nn.LSTM(8, 16, batch_first=True)
    attention = nn.MultiheadAttention(16, 4, batch_first=True)
    head = nn.Linear(16, 5)
    modules = [conv, lstm, attention, head]
    for module in modules:
        module.double() if dtype == np.float64 else module.float()
    rng = np.random.default_rng(4)
    x = nt.tensor(rng.standard_normal((4, 3, 6, 6)).astype(dtype))
    features = F.relu(conv(x)).mean(axis=3).permute(0, 2, 1)  # (4, 6, 8): a sequence of 6 steps
    seq, _ = lstm(features)
    attended, _ = attention(seq, seq, seq)
    loss = F.cross_entropy(head(attended[:, -1]), nt.tensor(np.arange(4) % 5))
    loss.backward()
    return [p.grad.numpy().copy() for m in modules for p in m.parameters()]


@needs_mkl
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_gradients_agree_between_providers(dtype, provider_restored):
    ours, reference = _small_model_gradients("mkl", dtype), _small_model_gradients("numpy", dtype)
    for got, expected in zip(ours, reference):
        np.testing.assert_allclose(got, expected, **_close(dtype))


@needs_mkl
def test_optimizer_updates_use_mkl_routines_with_mkl(provider_restored):
    from nurinet._runtime import blas as _blas

    gemm.set_provider("mkl")
    assert _blas._routines()[("axpby", np.dtype(np.float32))].__name__ == "cblas_saxpby_64"
    y, x = np.ones(settings.BLAS_MIN_ELEMENTS, np.float32), np.full(settings.BLAS_MIN_ELEMENTS, 2.0, np.float32)
    assert _blas.axpby(0.5, x, 3.0, y)
    np.testing.assert_array_equal(y, np.full_like(y, 4.0))
    gemm.set_provider("numpy")
    assert not _blas._routines() or "scipy" in _blas._routines()[("axpby", np.dtype(np.float32))].__name__


def test_the_numpy_path_hands_out_to_the_arrays_own_module(provider_restored, monkeypatch):
    """With ``out=``, the product goes to the module of the operands (``cupy.matmul`` for CuPy arrays)."""
    seen = []

    class FakeModule:
        @staticmethod
        def matmul(a, b, out):
            seen.append("matmul")
            return np.matmul(a, b, out=out)

    monkeypatch.setattr(gemm, "get_array_module", lambda a: FakeModule)
    gemm.set_provider("numpy")
    a = np.ones((3, 4), np.float32)
    out = np.empty((3, 5), np.float32)
    assert gemm.matmul(a, np.ones((4, 5), np.float32), out=out) is out
    assert seen == ["matmul"] and np.all(out == 4)
