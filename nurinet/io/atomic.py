"""Atomic file writes: a file is either its old content or its complete new content.

The bytes go to a temporary file in the destination's directory (so the final
``os.replace`` is a rename within one file system, which is atomic), are flushed
and fsynced, and only then replace the destination. If anything fails on the
way, the temporary file is removed and the previous file is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a binary file for writing that replaces ``path`` only when the block succeeds.

    Example::

        with atomic_open("model.safetensors") as f:
            f.write(header)
            f.write(data)

    Raises:
        FileNotFoundError: the destination's directory does not exist.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Persist the rename itself (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, *chunks: bytes) -> None:
    """Write ``chunks`` one after the other to ``path`` atomically."""
    with atomic_open(path) as f:
        for chunk in chunks:
            f.write(chunk)
