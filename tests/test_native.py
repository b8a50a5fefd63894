"""The optional native kernels (nurinet._native): their math against NumPy in float64, the fused
LSTM recurrence against the NumPy code it replaces, and the loader's fallbacks."""

from __future__ import annotations

import os

import numpy as np
import pytest

import nurinet
from nurinet import Tensor, nn, parallel
from nurinet._runtime import compiled, settings
from nurinet._runtime import native as _native
from tests.nn.harness import check_layer

needs_native = pytest.mark.skipif(not _native.available() or _native.sgemm() is None,
                                  reason="native kernels not built here (no C compiler or no bundled OpenBLAS)")


def _call(name, x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.empty_like(x)
    getattr(_native.library(), name)(x.size, x.ctypes.data, y.ctypes.data)
    return y


@needs_native
@pytest.mark.parametrize(("name", "reference", "tolerance"), [
    ("nn_exp", np.exp, 3e-7),          # relative
    ("nn_sigmoid", lambda v: 1 / (1 + np.exp(-v)), 2e-7),  # absolute: values in (0, 1)
    ("nn_tanh", np.tanh, 2e-7),        # absolute
])
def test_math_matches_float64(name, reference, tolerance):
    x = np.concatenate([np.linspace(-87, 88, 200_001), np.random.default_rng(0).standard_normal(10_000) * 3,
                        [0.0, -0.0, 0.624, 0.626, -0.625, 1e-30, -1e-30]]).astype(np.float32)
    got, want = _call(name, x).astype(np.float64), reference(x.astype(np.float64))
    error = np.abs(got - want) / (want if name == "nn_exp" else 1.0)
    assert error.max() < tolerance


@needs_native
def test_tanh_is_odd_and_accurate_near_zero():
    x = np.geomspace(1e-8, 0.6, 1000).astype(np.float32)
    got = _call("nn_tanh", x)
    np.testing.assert_array_equal(_call("nn_tanh", -x), -got)
    np.testing.assert_allclose(got, np.tanh(x.astype(np.float64)), rtol=3e-7)


@needs_native
def test_math_keeps_nan_and_saturates_at_infinities():
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30], np.float32)
    sig, tanh, exp = _call("nn_sigmoid", x), _call("nn_tanh", x), _call("nn_exp", x)
    assert np.isnan(sig[0]) and np.isnan(tanh[0]) and np.isnan(exp[0])
    np.testing.assert_allclose(sig[1:], [1, 0, 1, 0], atol=1e-37)
    np.testing.assert_array_equal(tanh[1:], [1, -1, 1, -1])
    assert exp[2] < 1e-37 and exp[1] > 1e38  # clamped to exp(-87) and exp(88), never inf or NaN


def _lstm_run(layer, x, state=None, seed=1):
    """Outputs, final states and every gradient of a float32 LSTM layer on ``x``."""
    xt = Tensor(x, requires_grad=True)
    if state is not None:
        state = tuple(Tensor(s, requires_grad=True) for s in state)
    out, (hn, cn) = layer(xt, state)
    rng = np.random.default_rng(seed)
    loss = ((out * Tensor(rng.standard_normal(out.shape).astype(np.float32))).sum()
            + (hn * Tensor(rng.standard_normal(hn.shape).astype(np.float32))).sum()
            + (cn * Tensor(rng.standard_normal(cn.shape).astype(np.float32))).sum())
    layer.zero_grad()
    loss.backward()
    grads = {name: p.grad.numpy().copy() for name, p in layer.named_parameters()}
    grads["x"] = xt.grad.numpy()
    if state is not None:
        grads["h0"], grads["c0"] = state[0].grad.numpy(), state[1].grad.numpy()
    return [out.numpy().copy(), hn.numpy().copy(), cn.numpy().copy()], grads


def _native_and_numpy(make, x, state=None):
    results = []
    for enabled in (True, False):
        old = _native.set_enabled(enabled)
        try:
            results.append(_lstm_run(make(), x, state))
        finally:
            _native.set_enabled(old)
    return results


@needs_native
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("batch", "kwargs", "with_state"), [
    (64, {}, False),
    (7, {"bidirectional": True}, True),
    (33, {"num_layers": 2, "bias": False}, True),
    (1, {"bidirectional": True, "num_layers": 2}, False),
    (20, {"batch_first": False}, True),
])
def test_native_lstm_equals_numpy_lstm(batch, kwargs, with_state, threads):
    steps, features, hidden = 9, 5, 16
    rng = np.random.default_rng(batch)
    x = rng.standard_normal((batch, steps, features)).astype(np.float32)
    if kwargs.get("batch_first") is False:
        x = np.ascontiguousarray(x.transpose(1, 0, 2))
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    state = None
    if with_state:
        state = tuple(rng.standard_normal((layers, batch, hidden)).astype(np.float32) for _ in range(2))

    def make():
        nurinet.manual_seed(0)
        return nn.LSTM(features, hidden, **kwargs)

    before = parallel.get_elementwise_threads()
    parallel.set_elementwise_threads(threads)
    old_rows = settings.LSTM_MIN_ROWS_PER_THREAD
    settings.LSTM_MIN_ROWS_PER_THREAD = 1  # split even the small batches when threads=2
    try:
        (native_out, native_grads), (numpy_out, numpy_grads) = _native_and_numpy(make, x, state)
    finally:
        parallel.set_elementwise_threads(before)
        settings.LSTM_MIN_ROWS_PER_THREAD = old_rows
    for got, want in zip(native_out, numpy_out):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-6)
    assert native_grads.keys() == numpy_grads.keys()
    for name in numpy_grads:
        np.testing.assert_allclose(native_grads[name], numpy_grads[name], rtol=1e-4, atol=2e-5, err_msg=name)


@needs_native
def test_native_lstm_is_used_for_float32_only():
    from nurinet._runtime.fast.lstm import native_kernels

    x32, x64 = np.zeros((2, 3, 8), np.float32), np.zeros((2, 3, 8), np.float64)
    state32, w32 = np.zeros((3, 2), np.float32), np.zeros((8, 2), np.float32)
    assert native_kernels(x32, state32, state32, w32, None) is not None
    assert native_kernels(x64, state32, state32, w32, None) is None
    assert native_kernels(x32, state32, state32, w32.astype(np.float64), None) is None
    old = _native.set_enabled(False)
    try:
        assert native_kernels(x32, state32, state32, w32, None) is None
    finally:
        _native.set_enabled(old)


@needs_native
def test_native_lstm_propagates_nan():
    nurinet.manual_seed(0)
    layer = nn.LSTM(3, 4)
    x = np.zeros((2, 5, 3), np.float32)
    x[1, 2, 0] = np.nan
    out, (hn, _) = layer(Tensor(x))
    out = out.numpy()
    assert np.isfinite(out[0]).all() and np.isfinite(out[1, :2]).all()
    assert np.isnan(out[1, 2:]).all() and np.isnan(hn.numpy()[0, 1]).all()


@pytest.fixture
def fresh_loader(monkeypatch, tmp_path):
    """The loader with no library loaded yet, building into an empty cache folder."""
    monkeypatch.setenv("NURINET_CACHE_DIR", str(tmp_path))
    saved, enabled = dict(compiled._state), _native.set_enabled(True)
    compiled._state.pop("library", None)
    compiled._state.pop("reason", None)
    yield tmp_path
    compiled._state.clear()
    compiled._state.update(saved)
    _native.set_enabled(enabled)


def test_missing_compiler_falls_back_with_a_reason(fresh_loader, monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-for-nurinet")
    assert _native.library() is None and not _native.available()
    assert "no-such-compiler-for-nurinet" in _native.reason()
    assert list(fresh_loader.iterdir()) == []


def test_failing_compiler_leaves_no_file(fresh_loader, monkeypatch):
    monkeypatch.setenv("CC", "false")  # found on PATH, exits 1 for every flag set
    assert _native.library() is None
    assert "failed" in _native.reason()
    assert [p for p in fresh_loader.iterdir()] == []


def test_disabled_loader_reports_why():
    old = _native.set_enabled(False)
    try:
        assert _native.library() is None and "disabled" in _native.reason()
    finally:
        _native.set_enabled(old)


@needs_native
def test_build_is_cached_and_whole(fresh_loader):
    assert _native.library() is not None
    built = list(fresh_loader.iterdir())
    assert len(built) == 1 and built[0].name.startswith("kernels-") and built[0].suffix == ".so"
    stamp = os.stat(built[0]).st_mtime_ns
    compiled._state.pop("library")
    assert _native.library() is not None  # loaded again from the cache, not rebuilt
    assert os.stat(built[0]).st_mtime_ns == stamp and list(fresh_loader.iterdir()) == built


def _with_and_without_native(run):
    """``run()`` with the native kernels, then with NumPy only."""
    results = []
    for enabled in (True, False):
        old = _native.set_enabled(enabled)
        try:
            results.append(run())
        finally:
            _native.set_enabled(old)
    return results


@needs_native
@pytest.mark.parametrize("options", [{}, {"amsgrad": True}, {"weight_decay": 0.01, "maximize": True},
                                     {"betas": (0.5, 0.9), "eps": 1e-3}])
def test_native_adam_equals_numpy_adam(options):
    shapes = [(70, 90), (5000,), (3, 4)]  # two take the kernel, the small one stays in NumPy

    def run():
        rng = np.random.default_rng(0)
        params = [Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in shapes]
        opt = nurinet.optim.Adam(params, lr=0.01, **options)
        for _ in range(5):
            for p in params:
                p.grad = Tensor(rng.standard_normal(p.shape).astype(np.float32))
            opt.step()
        return [p.numpy().copy() for p in params]

    native, numpy = _with_and_without_native(run)
    for got, want in zip(native, numpy):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # rounded in another order


def _pool_run(x, kernel):
    xt = Tensor(x, requires_grad=True)
    fn = nurinet.functional.pooling.MaxPool2d(kernel, kernel, (0, 0), (1, 1), False)
    y = fn(xt)
    gy = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
    y.backward(Tensor(gy))
    return y.numpy().copy(), fn.indices.copy(), xt.grad.numpy().copy()


@needs_native
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("shape", "kernel"), [((3, 5, 24, 24), (2, 2)), ((2, 3, 9, 11), (2, 2)),
                                               ((2, 2, 10, 12), (3, 3)), ((1, 4, 7, 9), (2, 3)),
                                               ((2, 3, 5, 5), (1, 1)), ((1, 1, 40, 70), (2, 2))])
def test_native_max_pool_equals_numpy(shape, kernel, threads):
    rng = np.random.default_rng(0)
    x = rng.integers(-3, 4, shape).astype(np.float32)  # small integers: many ties, first maximum wins
    x.reshape(-1)[rng.choice(x.size, 3, replace=False)] = np.nan  # a NaN is its window's maximum
    before, min_elements = parallel.get_elementwise_threads(), parallel.get_min_elements()
    parallel.set_elementwise_threads(threads)
    parallel.set_min_elements(1)
    try:
        native, numpy = _with_and_without_native(lambda: _pool_run(x, kernel))
    finally:
        parallel.set_elementwise_threads(before)
        parallel.set_min_elements(min_elements)
    for got, want in zip(native, numpy):
        np.testing.assert_array_equal(got, want)


@needs_native
@pytest.mark.parametrize("input_grad", [True, False])
@pytest.mark.parametrize(("shape", "out_channels", "kernel", "padding", "dilation"), [
    ((4, 3, 12, 13), 5, 3, 0, 1),     # 27 taps: the direct convolution
    ((3, 1, 9, 9), 4, 3, 1, 1),       # one channel, padded
    ((2, 1, 11, 10), 3, (2, 3), (2, 1), 2),
    ((2, 4, 11, 10), 3, 3, (2, 1), 2),  # 36 taps: im2col and the native col2im
    ((5, 2, 30, 7), 6, 1, 0, 1),
])
def test_native_conv_equals_numpy(shape, out_channels, kernel, padding, dilation, input_grad):
    rng = np.random.default_rng(0)
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((out_channels, shape[1], kh, kw)).astype(np.float32)
    b = rng.standard_normal(out_channels).astype(np.float32)

    def run():
        xt, wt, bt = Tensor(x, requires_grad=input_grad), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
        y = nurinet.functional.conv2d(xt, wt, bt, padding=padding, dilation=dilation)
        y.backward(Tensor(np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)))
        grads = [wt.grad.numpy().copy(), bt.grad.numpy().copy()]
        return [y.numpy().copy(), *grads, *([xt.grad.numpy().copy()] if input_grad else [])]

    native, numpy = _with_and_without_native(run)
    for got, want in zip(native, numpy):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_keep_freed_memory_applies_on_glibc():
    import platform

    from nurinet import allocator

    applied = allocator.keep_freed_memory()
    assert applied == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")


@pytest.mark.parametrize(("make", "shape", "out", "count"), [
    (lambda: nn.LSTM(4, 6, bidirectional=True), (3, 5, 4), (3, 5, 12), 2 * 4 * 6 * (4 + 6 + 2)),
    (lambda: nn.GRU(4, 6, num_layers=2), (3, 5, 4), (3, 5, 6), 3 * 6 * (4 + 6 + 2) + 3 * 6 * (6 + 6 + 2)),
    (lambda: nn.RNN(4, 6), (3, 5, 4), (3, 5, 6), 6 * (4 + 6 + 2)),
    (lambda: nn.Conv2d(2, 3, 3, padding=1), (2, 2, 5, 5), (2, 3, 5, 5), 3 * 2 * 9 + 3),
    (lambda: nn.MaxPool2d(2), (2, 3, 4, 4), (2, 3, 2, 2), 0),
], ids=["lstm", "gru", "rnn", "conv2d", "max_pool2d"])
def test_numpy_path_passes_the_layer_harness_and_takes_an_empty_batch(make, shape, out, count):
    """With the native kernels off (NURINET_NATIVE=0) the NumPy reference code passes the layer
    harness and accepts every shape the native path accepts, an empty batch included."""
    old = _native.set_enabled(False)
    try:
        check_layer(make(), shape, out, count)
        layer = make()
        x = Tensor(np.zeros((0, *shape[1:]), np.float32), requires_grad=True)
        y = layer(x)
        y = y[0] if isinstance(y, tuple) else y
        assert y.shape == (0, *out[1:])
        y.sum().backward()
        assert x.grad.shape == x.shape
    finally:
        _native.set_enabled(old)


def _allocator_state_in_fresh_process(env_value: str | None) -> str:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "NURINET_KEEP_FREED_MEMORY"}
    if env_value is not None:
        env["NURINET_KEEP_FREED_MEMORY"] = env_value
    code = "import nurinet.allocator as a; print(a.is_applied())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_importing_nurinet_keeps_freed_memory_unless_opted_out():
    import platform

    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert _allocator_state_in_fresh_process(None) == str(glibc)
    assert _allocator_state_in_fresh_process("0") == "False"
