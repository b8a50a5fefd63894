"""nurinet.threads: reading, setting and temporarily limiting NumPy's BLAS threads."""

import sys

import numpy as np
import pytest

from nurinet import gemm, threads
from nurinet._runtime import libraries


@pytest.fixture
def fresh(monkeypatch):
    """Forget the detected backend before and after a test (tests below force one or the other);
    NumPy's BLAS runs the products meanwhile (with MKL as the provider the counts are MKL's)."""
    monkeypatch.setattr(threads, "_state", {})
    monkeypatch.setattr(libraries, "_state", {})  # the OpenBLAS lookup too
    provider = gemm.set_provider("numpy")
    yield threads
    threads._state.clear()
    libraries._state.clear()
    gemm.set_provider(provider)


PROVIDERS_WITH_OWN_THREADS = [
    pytest.param("mkl", marks=pytest.mark.skipif(not gemm.mkl_available(), reason="MKL is not installed")),
    pytest.param("native", marks=pytest.mark.skipif(not gemm.native_available(),
                                                    reason="nurinet's own GEMM does not build here")),
]


@pytest.mark.parametrize("name", PROVIDERS_WITH_OWN_THREADS)
def test_with_mkl_or_the_native_gemm_the_counts_are_theirs_and_openblas_keeps_one_thread(name):
    provider = gemm.set_provider(name)
    try:
        before = threads.get_num_threads()
        assert before == gemm.get_num_threads()
        with threads.limit_threads(1):
            assert gemm.get_num_threads() == 1
        assert gemm.get_num_threads() == before
        openblas = threads._openblas()
        if openblas is not None:
            assert int(openblas[1]()) == 1
    finally:
        gemm.set_provider(provider)


def _require_control(module):
    if module.backend() == "none":
        pytest.skip("no controllable BLAS in this NumPy (neither threadpoolctl nor OpenBLAS found)")


def test_get_set_and_limit_restore(fresh):
    _require_control(fresh)
    before = fresh.get_num_threads()
    assert isinstance(before, int) and before >= 1
    with fresh.limit_threads(1):
        assert fresh.get_num_threads() == 1
        a = np.ones((64, 64), np.float32)
        np.testing.assert_allclose(a @ a, np.full((64, 64), 64.0))  # BLAS still works on one thread
    assert fresh.get_num_threads() == before


def test_limit_restores_after_an_exception(fresh):
    _require_control(fresh)
    before = fresh.get_num_threads()
    with pytest.raises(KeyError), fresh.limit_threads(1):
        raise KeyError("inside")
    assert fresh.get_num_threads() == before


def test_openblas_ctypes_fallback_without_threadpoolctl(fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import threadpoolctl now fails
    if fresh.backend() != "openblas-ctypes":
        pytest.skip("this NumPy does not bundle OpenBLAS")
    before = fresh.get_num_threads()
    fresh.set_num_threads(1)
    assert fresh.get_num_threads() == 1
    fresh.set_num_threads(before)
    assert fresh.get_num_threads() == before


def test_no_backend_warns_once_and_does_nothing(fresh, monkeypatch):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    monkeypatch.setattr(libraries, "bundled_libraries", list)
    assert fresh.backend() == "none"
    with pytest.warns(RuntimeWarning, match="OPENBLAS_NUM_THREADS"):
        assert fresh.get_num_threads() is None
    with fresh.limit_threads(1):  # no second warning, no error
        pass


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_bad_thread_count(bad):
    with pytest.raises(ValueError, match="positive integer"):
        threads.set_num_threads(bad)
    with pytest.raises(ValueError, match="positive integer"), threads.limit_threads(bad):
        pass
