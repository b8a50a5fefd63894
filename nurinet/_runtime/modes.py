"""Two modes for tests: every fast path off (:func:`reference_only`), or on at every size (:func:`forced`).

Both change :mod:`nurinet._runtime.settings` (and the matrix-product provider) inside a ``with`` block
and put everything back after it. They are process-wide, not per thread: use them from one thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nurinet._runtime import gemm, settings

__all__ = ["forced", "reference_only"]


@contextmanager
def _changed(values: dict[str, object], provider: str | None) -> Iterator[None]:
    saved = settings.snapshot()
    old_provider = gemm.set_provider(provider) if provider is not None else None
    settings.restore({**saved, **values})
    try:
        yield
    finally:
        settings.restore(saved)
        if old_provider is not None:
            gemm.set_provider(old_provider)


@contextmanager
def reference_only() -> Iterator[None]:
    """Run NumPy's reference code only: no native kernels, no threads, no BLAS helpers, no MKL, no
    fused array formulations (``settings.FUSED_PATHS``).

    Every op then takes its plain path, on the calling thread.
    """
    values = {"NATIVE": False, "BLAS_HELPERS": False, "FUSED_PATHS": False, "ELEMENTWISE_THREADS": 1}
    with _changed(values, "numpy"):
        yield


@contextmanager
def forced(threads: int = 2, provider: str | None = None, **overrides: object) -> Iterator[None]:
    """Run every fast path wherever its arrays qualify: every size floor at its minimum, threads on,
    the native kernels and BLAS helpers on (where a compiler and the BLAS routines exist).

    Args:
        threads: Elementwise threads (at least 2, so the threaded splits run).
        provider: A matrix-product provider to use inside the block (``"mkl"``, ``"numpy"``);
            None keeps the current one.
        **overrides: Further settings by name, to pick between two fast paths
            (``CONV_DIRECT_MAX_TAPS=0``: the im2col kernels rather than the direct convolution).

    Raises:
        KeyError: If an override names no setting.
    """
    values: dict[str, object] = {name: 1 for name in settings.FLOORS}
    values.update(NATIVE=True, BLAS_HELPERS=True, FUSED_PATHS=True, ELEMENTWISE_THREADS=max(2, threads))
    unknown = set(overrides) - set(settings.snapshot())
    if unknown:
        raise KeyError(f"forced: no such setting {sorted(unknown)}")
    values.update(overrides)
    with _changed(values, provider):
        yield
