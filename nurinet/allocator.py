"""Moved to :mod:`nurinet._runtime.allocator`; this module re-exports its public name.

:func:`keep_freed_memory` keeps freed array memory in the process (glibc's ``mallopt``), for entry points.
"""

from nurinet._runtime.allocator import keep_freed_memory

__all__ = ["keep_freed_memory"]
