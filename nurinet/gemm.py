"""Moved to :mod:`nurinet._runtime.gemm`; this module re-exports its public names.

Matrix products through one provider (nurinet's own GEMM on AVX-512 CPUs, NumPy's BLAS or Intel MKL);
``NURINET_BLAS`` picks it at import, :func:`set_provider` at run time.
"""

from nurinet._runtime.gemm import (
    PROVIDERS,
    get_num_threads,
    matmul,
    mkl_available,
    native_available,
    provider,
    set_num_threads,
    set_provider,
    sgemm_function,
    single_thread,
)

__all__ = ["PROVIDERS", "get_num_threads", "matmul", "mkl_available", "native_available", "provider",
           "set_num_threads", "set_provider", "sgemm_function", "single_thread"]
