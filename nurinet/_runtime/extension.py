"""CPython extension modules of nurinet: C that calls Python's own API, built on first use.

:mod:`nurinet._runtime.compiled` builds plain C loaded with :mod:`ctypes`, which suits array loops.
Code that handles Python objects (the backward engine's loop over graph nodes, ``native/engine.c``)
must instead be an extension module: compiled against this interpreter's headers (``Python.h``) and
imported. This module builds one the first time it is asked for, with the system C compiler
(``$CC`` or ``cc``), caches it beside the kernel library (:func:`~nurinet._runtime.compiled.cache_dir`)
under a name that carries a hash of the source, the compiler, the interpreter and its headers, and
imports it from there.

Nothing here is required: without a compiler or the interpreter's headers (a Python installed without
its ``-dev`` package), with ``NURINET_NATIVE=0`` (``settings.NATIVE``), or when the build fails,
:func:`load` returns None and the caller runs its Python code, which does the same (the tests run both).
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType

from nurinet._runtime import compiled, settings

__all__ = ["load", "reason"]

SOURCE_FOLDER = Path(__file__).with_name("native")
# macOS links an extension's Python symbols when it is loaded, as the interpreter's own build does.
FLAGS = ("-O2", "-fPIC", "-shared", "-fno-strict-aliasing") + (
    ("-undefined", "dynamic_lookup") if sys.platform == "darwin" else ())
_modules: dict[str, ModuleType | None] = {}
_reasons: dict[str, str] = {}


def load(name: str) -> ModuleType | None:
    """The extension built from ``native/<name>.c`` (module ``_nurinet_<name>``), or None.

    None when native code is switched off or the module cannot be built here; :func:`reason` says why.
    The build runs once per process (and once per machine, thanks to the cache).
    """
    if not settings.NATIVE:
        return None
    if name not in _modules:
        try:
            _modules[name] = _import(name, _build(name))
        except (OSError, RuntimeError, ImportError, ValueError, subprocess.SubprocessError) as error:
            _reasons[name] = f"extension {name} unavailable: {error}"
            _modules[name] = None
    return _modules[name]


def reason(name: str) -> str:
    """Why :func:`load` returns None for ``name`` (empty when it does not)."""
    if not settings.NATIVE:
        return "disabled (NURINET_NATIVE=0 or set_enabled(False))"
    load(name)
    return _reasons.get(name, "")


def _headers() -> Path:
    include = Path(sysconfig.get_paths()["include"])
    if not (include / "Python.h").exists():
        raise RuntimeError(f"this Python has no C headers ({include / 'Python.h'} is missing; "
                           "install the python3-dev package, or equivalent, to build them)")
    return include


def _build(name: str) -> Path:
    """The path of ``native/<name>.c`` built as an extension for this interpreter, compiling it if needed."""
    include, compiler = _headers(), compiled.compiler()
    source = SOURCE_FOLDER / f"{name}.c"
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    version = compiled.compiler_version(compiler)
    identity = f"{version}\n{FLAGS}\n{include}\n{sys.version}\n{suffix}".encode()
    digest = hashlib.sha256(source.read_bytes() + identity).hexdigest()[:16]
    target = compiled.cache_dir() / f"{name}-{digest}{suffix}"

    def command(out: str) -> list[str]:
        return [compiler, *FLAGS, f"-I{include}", "-o", out, str(source)]

    return compiled.build_into_cache(target, [command], source.name)


def _import(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_nurinet_{name}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import the extension at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
