"""``nurinet.backends`` answers ``torch.backends``'s queries truthfully and accepts its switches."""

from __future__ import annotations

import pytest

import nurinet
from nurinet import backend


def test_mps_is_neither_available_nor_built():
    assert nurinet.backends.mps.is_available() is False
    assert nurinet.backends.mps.is_built() is False


def test_tutorial_device_pick_falls_back_to_cpu_or_cuda():
    # The usual cascade of older tutorials, with torch replaced by nurinet.
    if nurinet.cuda.is_available():
        expected = "cuda"
    else:
        expected = "cpu"
    chosen = ("cuda" if nurinet.cuda.is_available()
              else "mps" if nurinet.backends.mps.is_available() else "cpu")
    assert chosen == expected
    assert str(nurinet.device(chosen)) == expected


def test_cudnn_answers_as_cupy_does():
    cudnn = nurinet.backends.cudnn
    if not backend.cupy_available():
        assert cudnn.is_available() is False
        assert cudnn.version() is None
    else:
        assert cudnn.is_available() == (cudnn.version() is not None)
    assert cudnn.is_acceptable(nurinet.ones(2)) is False


@pytest.mark.parametrize(("name", "default"), [("benchmark", False), ("deterministic", False),
                                                 ("enabled", True), ("allow_tf32", True)])
def test_cudnn_switches_are_stored(name, default):
    cudnn = nurinet.backends.cudnn
    assert getattr(cudnn, name) is default
    try:
        setattr(cudnn, name, not default)
        import nurinet.backends.cudnn as imported  # PyTorch's `import torch.backends.cudnn as cudnn`

        assert imported is cudnn
        assert getattr(imported, name) is (not default)
    finally:
        setattr(cudnn, name, default)


def test_cuda_matmul_allow_tf32_is_stored_and_changes_nothing():
    matmul = nurinet.backends.cuda.matmul
    x = nurinet.randn(8, 8)
    before = (x @ x).numpy()
    assert matmul.allow_tf32 is False
    try:
        matmul.allow_tf32 = True
        matmul.allow_fp16_reduced_precision_reduction = False
        assert nurinet.backends.cuda.matmul.allow_tf32 is True
        assert (x @ x).numpy().tobytes() == before.tobytes()
    finally:
        matmul.allow_tf32 = False
        matmul.allow_fp16_reduced_precision_reduction = True


def test_cuda_is_built_means_cupy_is_installed():
    assert nurinet.backends.cuda.is_built() == (backend._load_cupy() is not None)


def test_importing_nurinet_backends_imports_no_cupy(fresh_python):
    done = fresh_python("import sys, nurinet\nnurinet.backends.cudnn.benchmark = True\nprint('cupy' in sys.modules)\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
