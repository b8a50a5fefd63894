"""Atomic file writes: a file is either its old content or its complete new content.

The bytes go to a temporary file in the destination's directory (so the final
``os.replace`` is a rename within one file system, which is atomic), are flushed
and fsynced, and only then replace the destination. If anything fails on the
way, the temporary file is removed and the previous file is left untouched.

A process killed during a save (``kill -9``, the out-of-memory killer, a power cut)
cannot remove its temporary file, so the temporary files are named to be recognised:
``.<name>.nurinet-tmp-<host>-<pid>-<random>``, where ``<host>`` is a short hash of the
machine's name and ``<pid>`` the writer's process id. Every save first removes the
*stale* temporary files of its directory, whatever file they were for:

- written on this machine by a process that no longer runs;
- written on this machine under this process's own id but not by one of its saves in
  progress (an earlier process that had the same id: containers reuse small ids);
- written on another machine (a shared file system), whose processes cannot be
  asked, and not modified for :data:`STALE_AFTER_SECONDS`.

A temporary file of a live process on this machine is never removed, however old, so
a save in progress elsewhere is never broken. Files named otherwise are never touched.

``mkstemp`` creates the temporary file with mode ``0600``; before the rename it gets the
mode ``open()`` would have given the file (``0666`` less the process's umask), or the mode
of the file it replaces, so a saved model is as readable as any other file the user writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO

STALE_AFTER_SECONDS = 3600.0  # for temporary files of other machines only
_MARK = ".nurinet-tmp-"
_NAME_KEPT = 100  # characters of the destination's name kept in its temporary name
_TEMPORARY = re.compile(r"\A\..*\.nurinet-tmp-(?P<host>[0-9a-f]{8})-(?P<pid>[1-9][0-9]*)-[A-Za-z0-9_]+\Z",
                        re.DOTALL)
_HOST = hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
_in_flight: set[str] = set()  # this process's temporary files being written (by any thread)
_in_flight_lock = threading.Lock()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Open a binary file for writing that replaces ``path`` only when the block succeeds.

    Stale temporary files of crashed saves in the same directory are removed first (see
    the module docstring).

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
    remove_stale_temporary_files(directory)
    prefix = f".{os.path.basename(path)[:_NAME_KEPT]}{_MARK}{_HOST}-{os.getpid()}-"
    mode = _file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=directory)
    with _in_flight_lock:
        _in_flight.add(tmp)
    try:
        with contextlib.suppress(OSError):  # a file system without modes keeps its own
            os.chmod(tmp, mode)
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    finally:
        with _in_flight_lock:
            _in_flight.discard(tmp)
    _fsync_directory(directory)


def _file_mode(path: str) -> int:
    """The permission bits a save of ``path`` gets: those of the file it replaces, else
    ``0666`` less the umask, as a file created with ``open()``."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process's umask. Read from ``/proc/self/status`` on Linux (setting it to read it
    back, as ``os.umask`` must, would race with other threads creating files); elsewhere,
    the value read once when this module was imported."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022 if _UMASK_AT_IMPORT is None else _UMASK_AT_IMPORT


def _umask_at_import() -> int | None:
    """The umask where ``/proc`` cannot tell it. ``os.umask`` reads it only by setting it, so
    another thread creating a file meanwhile would get the wrong mode: done once, at import."""
    if os.path.exists("/proc/self/status"):
        return None
    old = os.umask(0o022)
    os.umask(old)
    return old


_UMASK_AT_IMPORT = _umask_at_import()


def remove_stale_temporary_files(directory: str | os.PathLike) -> list[str]:
    """Remove the temporary files that crashed saves left in ``directory``.

    Never raises: a file that cannot be examined or removed is left alone.

    Returns:
        The paths removed.
    """
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if _MARK not in entry.name:
            continue
        match = _TEMPORARY.match(entry.name)
        if match is None or not _is_stale(entry, match["host"], int(match["pid"])):
            continue
        with contextlib.suppress(OSError):  # another process may have removed it meanwhile
            os.remove(entry.path)
            removed.append(entry.path)
    return removed


def _is_stale(entry: os.DirEntry, host: str, pid: int) -> bool:
    if host != _HOST or os.name != "posix":  # no way to ask the writer: judge by age
        try:
            return time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_SECONDS
        except OSError:
            return False
    if pid == os.getpid():
        with _in_flight_lock:
            return os.path.abspath(entry.path) not in _in_flight
    return not _process_alive(pid)


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (POSIX: signal 0 tests without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user; anything else: assume it runs
        return True
    return True


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
