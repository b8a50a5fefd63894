"""Moved to :mod:`nurinet._runtime.allocator`; this module re-exports its public names.

Importing nurinet keeps freed array memory in the process (glibc's ``mallopt``) unless
``NURINET_KEEP_FREED_MEMORY=0``; :func:`keep_freed_memory` applies it by hand after such an opt-out.
"""

from nurinet._runtime.allocator import is_applied, keep_freed_memory

__all__ = ["is_applied", "keep_freed_memory"]
