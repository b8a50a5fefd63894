"""The fast paths of the CNN training step: disjoint max-pool windows, recycled conv buffers, the wide-row
convolution, and elementwise work split over threads (threads on and off must agree)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import nurinet as nt
import nurinet.functional as F
from nurinet._runtime import buffers, gemm, parallel, settings, spin
from nurinet._runtime.fast import conv as fast_conv
from nurinet.functional.pooling import MaxPool2d


def _pool_grad(x: np.ndarray, kernel: object, gy_seed: int = 1, fast: bool = True) -> tuple[np.ndarray, ...]:
    a = nt.tensor(x)
    a.requires_grad = True
    y, idx = F.max_pool2d(a, kernel, return_indices=True)
    gy = np.random.default_rng(gy_seed).standard_normal(y.shape).astype(x.dtype)
    nt.autograd.backward(y, nt.tensor(gy))
    return y.array, idx.array, a.grad.array


@pytest.mark.parametrize(("shape", "kernel"), [((2, 3, 8, 8), 2), ((2, 3, 7, 9), (2, 3)), ((1, 2, 6, 5), (3, 1)),
                                               ((1, 1, 3, 3), 1)])
def test_disjoint_max_pool_matches_the_general_path(shape: tuple[int, ...], kernel: object,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # Rounded values: many ties, which must go to the first maximum in both paths.
    x = np.random.default_rng(0).standard_normal(shape).round().astype(np.float32)
    fast = _pool_grad(x, kernel)
    monkeypatch.setattr(MaxPool2d, "_disjoint", lambda self: False)
    general = _pool_grad(x, kernel)
    for a, b in zip(fast, general):
        np.testing.assert_array_equal(a, b)


def test_disjoint_max_pool_routes_nan_windows_to_their_first_nan() -> None:
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan
    y, idx, gx = _pool_grad(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1
    assert gx[0, 0, 0, 1] != 0 and gx[0, 0, 1, 0] == 0


# NumPy's products, so that the convolutions build column matrices (the native GEMM reads the input's
# windows in place and needs none).
@pytest.mark.parametrize("gemm_provider", ["numpy"], indirect=True)
def test_conv_buffers_are_recycled_without_corrupting_live_graphs(gemm_provider: str) -> None:
    rng = np.random.default_rng(0)
    # 4 channels: 36 input taps, more than the native direct convolution takes, so the column-matrix path runs.
    w = nt.tensor(rng.standard_normal((4, 4, 3, 3)).astype(np.float32))
    w.requires_grad = True
    # Big enough (a 2.1 MB column matrix) for the buffer pool to keep.
    xs = [nt.tensor(rng.standard_normal((4, 4, 64, 64)).astype(np.float32)) for _ in range(3)]
    expected = []
    for x in xs:  # one graph at a time: the reference weight gradients
        w.grad = None
        F.conv2d(x, w).sum().backward()
        expected.append(w.grad.array.copy())
    assert buffers._spare  # the column matrices went back to the pool
    losses = [F.conv2d(x, w).sum() for x in xs]  # three graphs alive at once, buffers taken from the pool
    for loss, want in zip(losses, expected):
        w.grad = None
        loss.backward()
        np.testing.assert_allclose(w.grad.array, want, rtol=1e-5, atol=1e-4)


# ----- the wide-row convolution path, elementwise threads -----


@pytest.fixture
def threads_restored() -> object:
    """Restore the elementwise thread settings a test changes."""
    before = (parallel.get_elementwise_threads(), parallel.get_min_elements())
    yield
    parallel.set_elementwise_threads(before[0])
    parallel.set_min_elements(before[1])


def _conv_run(x: np.ndarray, w: np.ndarray, b: np.ndarray, **kwargs: object) -> tuple[np.ndarray, ...]:
    xt, wt, bt = nt.tensor(x), nt.tensor(w), nt.tensor(b)
    for t in (xt, wt, bt):
        t.requires_grad = True
    y = F.conv2d(xt, wt, bt, **kwargs)
    gy = np.random.default_rng(5).standard_normal(y.shape).astype(x.dtype)
    nt.autograd.backward(y, nt.tensor(gy))
    return y.array, xt.grad.array, wt.grad.array, bt.grad.array


CONV_CASES = [  # (x shape, w shape, conv2d keyword arguments)
    ((3, 4, 7, 9), (6, 4, 3, 2), {"padding": (1, 2)}),
    ((2, 4, 9, 8), (6, 2, 3, 3), {"padding": 1, "dilation": (2, 1), "groups": 2}),
    ((5, 3, 5, 5), (2, 3, 1, 1), {}),
    ((2, 1, 3, 3), (2, 1, 3, 3), {}),
    ((7, 2, 4, 6), (3, 2, 2, 3), {"padding": "same"}),
]


@pytest.mark.parametrize(("x_shape", "w_shape", "kwargs"), CONV_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_wide_conv_matches_the_general_path(x_shape: tuple[int, ...], w_shape: tuple[int, ...], kwargs: dict,
                                            dtype: type, threads: int, monkeypatch: pytest.MonkeyPatch,
                                            threads_restored: object) -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    parallel.set_elementwise_threads(threads)
    parallel.set_min_elements(1)
    monkeypatch.setattr(settings, "CONV_CHUNK_BYTES", 1)  # one sample per chunk: many chunks, split over threads
    wide = _conv_run(x, w, b, **kwargs)
    monkeypatch.setattr(fast_conv, "conv2d_forward", lambda *args: None)  # the im2col path
    general = _conv_run(x, w, b, **kwargs)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for got, want in zip(wide, general):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_wide_conv_keeps_no_column_matrix_and_skips_the_image_gradient() -> None:
    rng = np.random.default_rng(1)
    x = nt.tensor(rng.standard_normal((2, 1, 8, 8)).astype(np.float32))  # an image: no gradient wanted
    conv = nt.nn.Conv2d(1, 3, 3)
    y = conv(x)
    assert y.creator.cols is None
    y.sum().backward()
    assert x.grad is None and conv.weight.grad is not None


def test_wide_conv_matches_the_reference_on_the_mnist_shapes() -> None:
    from nurinet.functional.conv_reference import conv2d_reference

    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 32, 26, 26)).astype(np.float64)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float64)
    got = F.conv2d(nt.tensor(x), nt.tensor(w)).array
    want = conv2d_reference(nt.tensor(x), nt.tensor(w)).array
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def _threads_on_off(threads_fn: object) -> tuple[object, object]:
    parallel.set_min_elements(1)
    parallel.set_elementwise_threads(1)
    inline = threads_fn()
    parallel.set_elementwise_threads(2)
    threaded = threads_fn()
    return inline, threaded


def test_relu_threads_on_and_off_give_the_same_result(threads_restored: object) -> None:
    # Odd first dimension (uneven pieces), exact zeros (the gradient at 0 is 0), negative zeros.
    x = np.random.default_rng(3).standard_normal((5, 3, 7)).round().astype(np.float32)
    x[0, 0, :3] = -0.0

    def run() -> tuple[np.ndarray, np.ndarray]:
        a = nt.tensor(x)
        a.requires_grad = True
        y = F.relu(a)
        nt.autograd.backward(y, nt.tensor(np.arange(x.size, dtype=np.float32).reshape(x.shape)))
        return y.array, a.grad.array

    for inline, threaded in zip(*_threads_on_off(run)):
        np.testing.assert_array_equal(inline, threaded)
        assert inline.dtype == threaded.dtype == np.float32


@pytest.mark.parametrize(("shape", "kernel"), [((5, 3, 8, 8), 2), ((3, 2, 7, 9), (2, 3))])
def test_max_pool_threads_on_and_off_give_the_same_result(shape: tuple[int, ...], kernel: object,
                                                          threads_restored: object) -> None:
    x = np.random.default_rng(4).standard_normal(shape).round().astype(np.float32)  # many ties
    inline, threaded = _threads_on_off(lambda: _pool_grad(x, kernel))
    for a, b in zip(inline, threaded):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("options", [{}, {"amsgrad": True, "weight_decay": 0.1}, {"maximize": True}])
def test_adam_threads_on_and_off_give_the_same_result(options: dict, threads_restored: object) -> None:
    rng = np.random.default_rng(6)
    start = rng.standard_normal((33, 17)).astype(np.float32)
    grads = [rng.standard_normal(start.shape).astype(np.float32) for _ in range(3)]

    def run() -> np.ndarray:
        p = nt.tensor(start.copy())
        p.requires_grad = True
        opt = nt.optim.Adam([p], lr=1e-2, **options)
        for g in grads:
            p.grad = nt.tensor(g)
            opt.step()
        return p.array

    inline, threaded = _threads_on_off(run)
    np.testing.assert_array_equal(inline, threaded)


def test_parallel_split_covers_every_row_once(threads_restored: object) -> None:
    parallel.set_elementwise_threads(3)
    parallel.set_min_elements(1)
    out = np.zeros(7)
    parallel.split(lambda o: np.add(o, 1, out=o), out)
    np.testing.assert_array_equal(out, np.ones(7))
    assert parallel.bounds(5, 2) == [(0, 2), (2, 5)] and parallel.bounds(1, 2) == [(0, 1)]


def test_parallel_errors_reach_the_caller(threads_restored: object) -> None:
    parallel.set_elementwise_threads(2)

    def fail() -> None:
        raise RuntimeError("piece failed")

    with pytest.raises(RuntimeError, match="piece failed"):
        parallel.run([lambda: None, fail])
    with pytest.raises(ValueError, match="positive integer"):
        parallel.set_elementwise_threads(0)
    with pytest.raises(ValueError, match="positive integer"):
        parallel.set_min_elements(-1)


def test_parallel_thread_count_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURINET_NUM_THREADS", "3")
    assert parallel._threads_from_env() == 3
    monkeypatch.setenv("NURINET_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="NURINET_NUM_THREADS"):
        parallel._threads_from_env()


def test_threads_default_to_one_while_openblas_threads_spin(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NURINET_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert parallel._threads_from_env() is None  # no setting: the default is decided at first use
    monkeypatch.setitem(spin._state, "applied", False)  # as with NURINET_OPENBLAS_SPIN_LOG2=0
    provider = gemm.set_provider("numpy")
    try:
        assert parallel._default_threads() == 1
        monkeypatch.setitem(spin._state, "applied", True)  # what importing nurinet does by default
        assert parallel._default_threads() == min(2, os.cpu_count() or 1)
        monkeypatch.setitem(spin._state, "applied", False)
        monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "4")
        assert parallel._default_threads() == min(2, os.cpu_count() or 1)
    finally:
        gemm.set_provider(provider)


@pytest.mark.skipif(not gemm.mkl_available(), reason="MKL is not installed")
def test_threads_default_to_the_cpus_when_mkl_runs_the_products(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NURINET_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    provider = gemm.set_provider("mkl")
    try:
        assert parallel._default_threads() == min(2, os.cpu_count() or 1)
    finally:
        gemm.set_provider(provider)
