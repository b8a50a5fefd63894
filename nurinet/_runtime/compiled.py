"""The compiled kernel library: built from C on first use, cached on disk, loaded with :mod:`ctypes`.

The library holds plain C (no Python C API): ``native/kernels.c``, the fused loops of
:mod:`nurinet._runtime.native`, and ``native/gemm.c``, nurinet's own matrix product, which
:mod:`nurinet._runtime.gemm` uses. The first time a kernel is asked for, this module compiles both
with the system C compiler (``$CC`` or ``cc``) for this machine's CPU, keeps the shared library in a
cache folder, and loads it with :mod:`ctypes`, which releases the GIL during each call. It sits
below both users so that either can load the library.

Nothing here is required. Without a compiler, on an unsupported platform, with ``NURINET_NATIVE=0``
in the environment (``settings.NATIVE``), or after :func:`set_enabled` (False), :func:`library`
returns None and every caller runs its NumPy code, which computes the same thing (the tests compare the two).

The cache folder is ``$NURINET_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/nurinet`` or
``~/.cache/nurinet``. A library's file name carries a hash of the source, the compiler's version,
the flags and the CPU, so an edited source, another compiler or another machine sharing the folder
gets its own build; it is written under a temporary name and renamed into place, so a concurrent or
interrupted build never leaves a half-written library behind.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nurinet._runtime import probe, settings

__all__ = ["available", "build_into_cache", "cache_dir", "compiler", "compiler_version", "library", "raw_library", "reason", "set_enabled"]

# The C sources, compiled together into one library.
SOURCES = (Path(__file__).with_name("native") / "kernels.c", Path(__file__).with_name("native") / "gemm.c")
# No -ffast-math: it would let the compiler assume there are no NaNs, and a NaN must come out as NaN.
BASE_FLAGS = ("-O3", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared", "-pthread")
# Tried first: code for this CPU (x86: 512-bit vectors where it has them, faster on AVX-512 machines;
# docs/performance.md); then the portable build, should the compiler refuse those flags.
FLAG_SETS = (
    ("-march=native", "-mprefer-vector-width=512") if platform.machine().lower() in ("x86_64", "amd64")
    else ("-march=native",),
    (),
)
_P, _I64, _INT, _F = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_float
# Argument types of every exported kernel (see kernels.c for what each one computes).
_SIGNATURES = {
    "nn_exp": [_I64, _P, _P],
    "nn_sigmoid": [_I64, _P, _P],
    "nn_tanh": [_I64, _P, _P],
    "lstm_forward": [_I64, _I64, _I64, _I64, _I64, _P, _P, _P, _P, _P, _P, _P, _INT, _P, _INT, _INT],
    "lstm_backward": [_I64, _I64, _I64, _I64, _I64, _P, _P, _P, _P, _P, _P, _P, _P, _P, _INT, _INT, _INT, _P, _INT, _INT],
    "small_sgemm": [_I64, _I64, _I64, _P, _I64, _P, _I64, _F, _P, _I64],
    "nn_adam_update": [_I64, _P, _P, _P, _P, _P, _F, _F, _F, _F, _F, _INT],
    "nn_sgd_momentum_update": [_I64, _P, _P, _P, _F, _F, _F, _INT, _INT],
    "maxpool2d_blocks_forward": [_I64, _I64, _I64, _I64, _I64, _P, _P, _P],
    "maxpool2d_blocks_backward": [_I64, _I64, _I64, _I64, _I64, _P, _P, _P],
    "col2im_wide": [_I64, _I64, _I64, _I64, _I64, _P, _P, _P],
    "conv2d_direct_forward": [_I64] * 8 + [_P] * 6,
    "conv2d_direct_weight_grad": [_I64] * 8 + [_P] * 6,
    "wide_to_nchw": [_I64] * 6 + [_P] * 3,
    "nchw_to_wide": [_I64] * 6 + [_P] * 3,
    "relu_forward": [_I64, _P, _P],
    "relu_backward": [_I64, _P, _P, _P],
    "relu_backward_column_sums": [_I64, _I64, _P, _P, _P, _P, _P],
    "layer_norm_forward": [_I64, _I64, _P, _P, _P, _F, _P, _P, _P, _P, _P],
    "layer_norm_backward": [_I64, _I64, _P, _P, _P, _P, _P, _P, _P, _P],
    "softmax_rows_forward": [_I64, _I64, _P, _P],
    "softmax_rows_backward": [_I64, _I64, _P, _P],
    "softmax_xent_forward": [_I64, _I64, _P, _P, _P, _P, _P],
    "softmax_xent_backward": [_I64, _I64, _P, _P, _F, _P],
    "nn_sgemm": [_I64, _I64, _I64, _INT, _P, _I64, _INT, _P, _I64, _P, _INT, _P, _I64, _INT],
    "nn_gemm_set_spin": [_I64],
    "nn_gemm_park": [],
    "nn_sgemm_gathered": [_I64, _I64, _I64, _INT, _P, _I64, _I64, _INT, _P, _P, _I64, _P, _I64, _I64, _I64, _INT, _INT],
}
# Exported functions that return an int, with their argument types (the rest return nothing).
_RETURNING_INT = {"nn_gemm_supported": []}
_state: dict[str, Any] = {}


def set_enabled(enabled: bool) -> bool:
    """Use the native kernels when they can be built (True) or always NumPy; returns the old value."""
    old, settings.NATIVE = settings.NATIVE, bool(enabled)
    return old


def available() -> bool:
    """Whether the native kernels are enabled and built (building them now if needed)."""
    return library() is not None


def reason() -> str:
    """Why :func:`library` returns None (empty when it does not)."""
    if not settings.NATIVE:
        return "disabled (NURINET_NATIVE=0 or set_enabled(False))"
    library()
    return _state.get("reason", "")


def library() -> Any:
    """The loaded kernel library (a :class:`ctypes.CDLL`), or None when it cannot or may not be used."""
    if not settings.NATIVE:
        return None
    if "library" not in _state:
        _state["library"] = _load()
    if probe.counts is not None and _state["library"] is not None:  # tests only: count each kernel used
        return probe.Counted(_state["library"], "native.")
    return _state["library"]


def raw_library() -> Any:
    """:func:`library` without the tests' counting wrapper (for callers that count their own hits)."""
    library()
    return _state.get("library") if settings.NATIVE else None


def _load() -> Any:
    try:
        path = _build()
        lib = ctypes.CDLL(str(path))
        for table, restype in ((_SIGNATURES, None), (_RETURNING_INT, ctypes.c_int)):
            for name, argtypes in table.items():
                func = getattr(lib, name)
                func.argtypes, func.restype = argtypes, restype
        return lib
    except (OSError, RuntimeError, subprocess.SubprocessError, AttributeError) as error:
        _state["reason"] = f"native kernels unavailable: {error}"
        return None


def compiler() -> str:
    """The C compiler to build with: ``$CC`` or ``cc``; raises RuntimeError when it is not on PATH."""
    name = os.environ.get("CC") or "cc"
    if shutil.which(name) is None:
        raise RuntimeError(f"no C compiler ({name!r} is not on PATH; set CC to use another)")
    return name


@functools.cache
def compiler_version(compiler: str) -> str:
    """``compiler --version`` (part of every build's cache key), asked once per process."""
    return subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30, check=False).stdout


def _machine_id(compiler: str) -> str:
    """What a build depends on besides the source: compiler version, flags, platform and CPU."""
    version = compiler_version(compiler)
    cpu = ""
    try:
        with open("/proc/cpuinfo") as info:  # Linux: the model and the instruction-set flags
            cpu = "".join(line for line in info if line.startswith(("model name", "flags")))[:4096]
    except OSError:
        cpu = platform.processor()
    flags = " | ".join(" ".join(BASE_FLAGS + extra) for extra in FLAG_SETS)
    return f"{version}\n{flags}\n{platform.platform()}\n{platform.machine()}\n{cpu}"


def cache_dir() -> Path:
    """The folder that holds the compiled libraries."""
    base = os.environ.get("NURINET_CACHE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "nurinet"


def _build() -> Path:
    """The path of a library built from ``SOURCES`` for this machine, compiling it if needed."""
    cc = compiler()
    source = b"".join(path.read_bytes() for path in SOURCES)
    digest = hashlib.sha256(source + _machine_id(cc).encode()).hexdigest()[:16]
    target = cache_dir() / f"kernels-{digest}.so"
    sources = [str(path) for path in SOURCES]
    commands = [lambda out, extra=extra: [cc, *BASE_FLAGS, *extra, "-o", out, *sources] for extra in FLAG_SETS]
    return build_into_cache(target, commands, ", ".join(path.name for path in SOURCES))


def build_into_cache(target: Path, commands: Sequence[Callable[[str], list[str]]], what: str) -> Path:
    """``target``, built unless it exists by the first of ``commands`` that succeeds.

    Each command is made for the output path it must write (a temporary file beside ``target``), which is
    renamed into place when the command succeeds: another process sees no file or a whole one, and a
    failed or interrupted build leaves nothing behind. ``what`` names the sources in the error.

    Raises:
        RuntimeError: Every command failed (the last one's error output is in the message), or there
            was none.
    """
    if not commands:
        raise RuntimeError(f"no command to build {what}")
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{target.stem.split('-')[0]}-", suffix=target.suffix, dir=target.parent)
    os.close(handle)
    try:
        for command in commands:
            line = command(temp)
            done = subprocess.run(line, capture_output=True, text=True, timeout=120, check=False)
            if done.returncode == 0:
                break
        else:
            raise RuntimeError(f"{line[0]} failed on {what}: {done.stderr.strip()[:500]}")
        os.replace(temp, target)  # atomic
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return target
