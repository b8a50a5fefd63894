"""The array backend: array modules, device names, the CuPy-free path and a light import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nurinet
from nurinet import Tensor, backend
from nurinet.backend import DeviceError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def no_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as on a machine without a usable GPU, even where CuPy is installed."""
    monkeypatch.setattr(backend, "cupy_available", lambda: False)


def test_get_array_module_of_numpy_arrays_and_tensors() -> None:
    assert backend.get_array_module(np.ones(2)) is np
    assert backend.get_array_module(Tensor(np.ones(2))) is np
    assert backend.get_array_module(np.float32(1.0)) is np
    assert nurinet.tensor([1.0]).xp is np


def test_is_cupy_array_is_false_for_cpu_data() -> None:
    assert not backend.is_cupy_array(np.ones(2))
    assert not backend.is_cupy_array([1.0])


def test_to_numpy() -> None:
    a = np.arange(3.0)
    assert backend.to_numpy(a) is a
    out = backend.to_numpy([1, 2])
    assert isinstance(out, np.ndarray) and out.tolist() == [1, 2]
    np.testing.assert_array_equal(backend.to_numpy(Tensor(a)), a)


def test_device_of_cpu_data() -> None:
    assert backend.device_of(np.ones(1)) == "cpu"
    assert nurinet.zeros(2).device == "cpu"


@pytest.mark.parametrize(
    ("name", "canonical"),
    [(None, "cpu"), ("cpu", "cpu"), ("CPU", "cpu"), ("cuda", "cuda:0"), ("gpu", "cuda:0"),
     ("cuda:1", "cuda:1"), ("CUDA:2", "cuda:2")],
)
def test_normalize_device(name, canonical) -> None:
    assert backend.normalize_device(name) == canonical


@pytest.mark.parametrize("name", ["tpu", "cuda:", "cuda:x", "cuda:-1", "mps", ""])
def test_normalize_device_rejects_unknown_names(name) -> None:
    with pytest.raises(ValueError, match=r"unknown device .*use 'cpu', 'cuda' or 'cuda:N'"):
        backend.normalize_device(name)


def test_moving_to_cpu_is_a_no_op() -> None:
    a = np.ones(3)
    assert backend.to_device(a, "cpu") is a
    x = nurinet.tensor([1.0])
    assert x.to("cpu") is x and x.cpu() is x


def test_cuda_without_cupy_raises_an_actionable_device_error(no_cupy: None) -> None:
    actionable = r"'cuda:0' was asked for.*no CUDA GPU.*pip install 'nurinet\[gpu\]'.*device='cpu'"
    with pytest.raises(DeviceError, match=actionable):
        backend.to_device(np.ones(2), "cuda")
    with pytest.raises(DeviceError, match=actionable):
        nurinet.tensor([1.0]).to("cuda")
    with pytest.raises(DeviceError, match=actionable):
        nurinet.tensor([1.0]).cuda()
    with pytest.raises(DeviceError, match=actionable):
        nurinet.zeros(2, device="cuda")
    with pytest.raises(DeviceError, match="cuda:1"):
        nurinet.randn(2, device="cuda:1")


def test_device_error_is_a_runtime_error() -> None:
    assert issubclass(DeviceError, RuntimeError)


def test_constructors_reject_unknown_devices() -> None:
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        nurinet.ones(2, device="tpu")


def test_importing_nurinet_stays_light(fresh_python) -> None:
    heavy = ["cupy", "torch", "matplotlib", "onnx", "mpi4py", "PIL", "scipy", "hypothesis"]
    code = (
        "import sys, nurinet\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    done = fresh_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"import nurinet imported: {done.stdout.strip()}"


def test_is_cupy_array_looks_at_the_type_without_importing_cupy() -> None:
    fake = type("ndarray", (), {"__module__": "cupy._core.core"})()
    assert backend.is_cupy_array(fake)
    assert not backend.is_cupy_array(Tensor(np.ones(1)))


def _needs_gpu() -> None:
    pytest.importorskip("cupy")
    if not backend.cupy_available():
        pytest.skip("CuPy is installed but sees no CUDA device")


def test_round_trip_to_gpu_and_gradient() -> None:
    _needs_gpu()
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    on_gpu = x.to("cuda")
    assert on_gpu.device == "cuda:0" and backend.get_array_module(on_gpu) is not np
    y = (on_gpu * on_gpu).sum()
    assert y.device == "cuda:0"
    y.backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.array, 2 * x.array)
    np.testing.assert_allclose(on_gpu.cpu().numpy(), x.array)


def test_gradcheck_through_device_moves() -> None:
    _needs_gpu()
    from nurinet.autograd import gradcheck, gradgradcheck

    x = Tensor(np.random.default_rng(0).standard_normal(4), requires_grad=True)

    def there_and_back(t: Tensor) -> Tensor:
        return (t.to("cuda").exp() * 2.0).cpu()

    assert gradcheck(there_and_back, [x])
    assert gradgradcheck(there_and_back, [x])
