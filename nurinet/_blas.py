"""Moved to :mod:`nurinet._runtime.blas`; this module re-exports its public names."""

from nurinet._runtime.blas import available, axpby, axpy, set_enabled

__all__ = ["available", "axpby", "axpy", "set_enabled"]
