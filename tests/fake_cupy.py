"""A stand-in for CuPy, so that nurinet's GPU code path runs on machines without a GPU.

No machine nurinet was built on had a GPU, so the CuPy branch of every op had never run. This
module imitates CuPy where nurinet's code could go wrong on a GPU:

* Arrays have their own type, :class:`ndarray`, whose ``__module__`` is ``"cupy"`` (so
  :func:`nurinet.backend.is_cupy_array` takes it for a CuPy array). It wraps a private NumPy
  array; nothing outside this module should ever see that array.
* ``np.asarray(device_array)`` raises the ``TypeError`` of ``cupy.ndarray.__array__``; the
  copy to the host is explicit: :func:`asnumpy` or ``ndarray.get()``.
* Ufuncs refuse NumPy arrays and other array-likes among their operands (CuPy's
  ``Unsupported type``), other functions refuse NumPy arrays, and ``out=`` must be a device
  array. The exceptions are CuPy's too: index arrays (``a[np_index]``, ``take``,
  ``take_along_axis``, ``ufunc.at``, ``cupyx.scatter_add``) may live on the host, and so may the
  value stored through an advanced index.
* Reductions and full integer indexing return 0-d device arrays, not NumPy scalars.
* NumPy's ufuncs and functions applied to a device array dispatch to this module
  (``__array_ufunc__`` and ``__array_function__``), as they do to CuPy.
* ``cupy.cuda`` has one device (``runtime.getDeviceCount() == 1``); ``cupyx.scatter_add`` and
  ``cupyx.scipy.special`` exist.

What it deliberately does not imitate: speed, streams and asynchrony, memory pools, raw
kernels, CuPy's own dtype promotion (NumPy's is used), several devices, and the exact set of
NumPy functions CuPy lacks: every NumPy function is offered here (less a few, such as
``errstate``), so a NumPy function missing from CuPy passes here and fails only on a real GPU.
``cupy.random`` offers NumPy's module-level functions (results on the device); generator
objects such as ``default_rng()`` are NumPy's own and draw on the host. Non-ufunc functions
accept lists and other Python sequences where CuPy may ask for an array.

Use :func:`install` (through the ``fake_cupy`` fixture of ``tests/conftest.py``) to make
``import cupy`` and ``nurinet.backend`` find it for the length of one test.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

IMPLICIT_CONVERSION_ERROR = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)
DEVICE_COUNT = 1

# NumPy names CuPy does not have: floating-point error state is a host (NumPy) notion.
_MISSING_FROM_CUPY = frozenset({"errstate", "seterr", "geterr", "seterrcall", "geterrcall", "ctypeslib"})

# Functions whose listed positional arguments are index arrays, which CuPy copies from the host.
_HOST_INDEX_ARGUMENTS = {"take": (1,), "take_along_axis": (1,), "ix_": None}


def _unsupported(value: Any) -> TypeError:
    return TypeError(f"Unsupported type {type(value)}")


def _is_foreign_array(value: Any) -> bool:
    """A NumPy array or any other object NumPy would convert through ``__array__`` (a Tensor)."""
    if isinstance(value, np.ndarray):
        return True
    return not isinstance(value, (ndarray, np.generic)) and hasattr(type(value), "__array__")


class _Unwrapper:
    """Turns device arrays in (nested) arguments into their NumPy arrays, remembering each one.

    Remembering them lets :meth:`wrap` hand back the very device array a NumPy function returned
    (``out=``, ``asarray`` of an array), as CuPy does.
    """

    def __init__(self, allow_host: bool = False) -> None:
        self.allow_host = allow_host
        self.seen: dict[int, ndarray] = {}

    def unwrap(self, value: Any, allow_host: bool | None = None) -> Any:
        allow = self.allow_host if allow_host is None else allow_host
        if type(value) is ndarray:
            self.seen[id(value._host)] = value
            return value._host
        if type(value) in (list, tuple):
            return type(value)(self.unwrap(v, allow) for v in value)
        if not allow and _is_foreign_array(value):
            raise _unsupported(value)
        return value

    def wrap(self, result: Any) -> Any:
        if isinstance(result, np.ndarray):
            known = self.seen.get(id(result))
            return known if known is not None and known._host is result else ndarray._from_host(result)
        if isinstance(result, np.generic):
            return ndarray._from_host(np.asarray(result))  # CuPy returns 0-d arrays, not scalars.
        if type(result) in (list, tuple):
            return type(result)(self.wrap(r) for r in result)
        if isinstance(result, tuple) and hasattr(result, "_fields"):  # named tuples (np.unique_all)
            return type(result)(*(self.wrap(r) for r in result))
        return result


def _device_function(name: str, host_function: Callable, host_positions: tuple[int, ...] | None = ()) -> Callable:
    """A device version of a NumPy function: unwrap the arguments, call NumPy, wrap the results.

    Args:
        name: The function's name, for error messages and ``__name__``.
        host_function: The NumPy function.
        host_positions: Positional arguments that may be host arrays (indices); None for all.
    """

    def call(*args: Any, **kwargs: Any) -> Any:
        unwrapper = _Unwrapper(allow_host=host_positions is None)
        host_args = [unwrapper.unwrap(a, True if host_positions and i in host_positions else None)
                     for i, a in enumerate(args)]
        host_kwargs = {k: unwrapper.unwrap(v) for k, v in kwargs.items()}
        return unwrapper.wrap(host_function(*host_args, **host_kwargs))

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"Device version of numpy's ``{name}`` (see tests/fake_cupy.py)."
    return call


class ufunc:
    """A device ufunc: operands must be device arrays or scalars, as in CuPy's kernels."""

    __module__ = "cupy"

    def __init__(self, host_ufunc: np.ufunc) -> None:
        self._host_ufunc = host_ufunc
        self.__name__ = host_ufunc.__name__
        self.nin, self.nout, self.nargs = host_ufunc.nin, host_ufunc.nout, host_ufunc.nargs

    def _run(self, method: str, args: tuple, kwargs: dict, host_positions: tuple[int, ...] = ()) -> Any:
        unwrapper = _Unwrapper()
        host_args = []
        for i, a in enumerate(args):
            if i not in host_positions and not isinstance(a, (ndarray, int, float, complex, bool, np.generic)):
                raise _unsupported(a)
            host_args.append(unwrapper.unwrap(a, i in host_positions))
        host_kwargs = {k: unwrapper.unwrap(v) for k, v in kwargs.items()}
        return unwrapper.wrap(getattr(self._host_ufunc, method)(*host_args, **host_kwargs))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("__call__", args, kwargs)

    def reduce(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("reduce", args, kwargs)

    def accumulate(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("accumulate", args, kwargs)

    def reduceat(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("reduceat", args, kwargs, host_positions=(1,))

    def outer(self, *args: Any, **kwargs: Any) -> Any:
        return self._run("outer", args, kwargs)

    def at(self, a: Any, indices: Any, b: Any = None) -> None:
        """``a[indices] op= b`` with repeated indices accumulating; indices may be host arrays.

        CuPy's ``ufunc.at`` turns ``indices`` into one array (``cupy.asarray``) that indexes the
        first axis: a tuple of index arrays, which NumPy takes per axis, would mean something else.
        """
        if type(a) is not ndarray:
            raise _unsupported(a)
        if isinstance(indices, (tuple, list)) and any(isinstance(i, (slice, tuple, list, np.ndarray, ndarray))
                                                      for i in indices):
            raise NotImplementedError("CuPy's ufunc.at takes one index array over the first axis; "
                                      "use cupyx.scatter_add for a tuple of indices")
        index = _host_index(indices)
        if b is None:
            self._host_ufunc.at(a._host, index)
        else:
            self._host_ufunc.at(a._host, index, _Unwrapper().unwrap(b))

    def __repr__(self) -> str:
        return f"<ufunc '{self.__name__}'>"


def _host_index(key: Any) -> Any:
    """An index for the host array: device index arrays unwrapped, host ones kept (CuPy copies them)."""
    if isinstance(key, tuple):
        return tuple(_host_index(k) for k in key)
    if type(key) is ndarray:
        return key._host
    if not isinstance(key, np.ndarray) and _is_foreign_array(key):
        raise IndexError(f"unsupported index type {type(key)}")
    return key


def _is_basic_index(key: Any) -> bool:
    """True when ``key`` has no array or list in it: a plain view (CuPy then fills instead of scattering)."""
    items = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (int, np.integer, slice)) for k in items)


class _MemoryPointer:
    """What ``cupy.ndarray.data`` is: a pointer, not the values (unlike a NumPy array's ``data``)."""

    __module__ = "cupy.cuda.memory"

    def __init__(self, host: np.ndarray) -> None:
        self.ptr = host.__array_interface__["data"][0]
        self.device_id = 0

    def __repr__(self) -> str:
        return f"<MemoryPointer 0x{self.ptr:x} device={self.device_id}>"


class _Flags:
    """``cupy.ndarray.flags``: only the three flags CuPy keeps (no ``writeable``, no ``aligned``)."""

    __module__ = "cupy._core.flags"

    def __init__(self, host: np.ndarray) -> None:
        self.c_contiguous = bool(host.flags.c_contiguous)
        self.f_contiguous = bool(host.flags.f_contiguous)
        self.owndata = bool(host.flags.owndata)

    def __getitem__(self, name: str) -> bool:
        keys = {"C_CONTIGUOUS": "c_contiguous", "F_CONTIGUOUS": "f_contiguous", "OWNDATA": "owndata"}
        return getattr(self, keys[name])


class Device:
    """``cupy.cuda.Device``: a context manager selecting a GPU; only device 0 exists."""

    __module__ = "cupy.cuda.device"

    def __init__(self, device: Any = None) -> None:
        self.id = 0 if device is None else int(device)

    def _check(self) -> None:
        if not 0 <= self.id < DEVICE_COUNT:
            raise runtime.CUDARuntimeError(f"cudaErrorInvalidDevice: invalid device ordinal {self.id}")

    def __enter__(self) -> Any:
        self._check()
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def use(self) -> None:
        self._check()

    def synchronize(self) -> None:
        """Nothing to wait for: the double runs every operation when it is called."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"<CUDA Device {self.id}>"


class ndarray:
    """A device array: a NumPy array held privately, reachable only through CuPy's API.

    Args:
        shape: The shape of the new (uninitialised) array.
        dtype: Its dtype (float64 by default, as in CuPy).
        memptr: Unsupported (must be None).
        strides: Unsupported (must be None).
        order: ``"C"`` or ``"F"``.
    """

    __module__ = "cupy"
    __slots__ = ("__weakref__", "_host")
    __array_priority__ = 100.0
    __hash__ = None  # type: ignore[assignment] - arrays are unhashable, as in NumPy and CuPy

    def __init__(self, shape: Any, dtype: Any = float, memptr: Any = None, strides: Any = None,
                 order: str = "C") -> None:
        if memptr is not None or strides is not None:
            raise NotImplementedError("the CuPy double does not take memptr or strides")
        self._host = np.empty(shape, dtype, order=order)

    @classmethod
    def _from_host(cls, host: np.ndarray) -> ndarray:
        array = object.__new__(cls)
        array._host = host
        return array

    # ----- NumPy interoperation: refused implicitly, dispatched explicitly -----------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(IMPLICIT_CONVERSION_ERROR)

    def __array_ufunc__(self, host_ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        device_ufunc = getattr(_modules["cupy"], host_ufunc.__name__, None)
        if not isinstance(device_ufunc, ufunc):
            return NotImplemented
        if "out" in kwargs and len(kwargs["out"]) == 1:
            kwargs["out"] = kwargs["out"][0]
        return getattr(device_ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func: Callable, types_: Any, args: tuple, kwargs: dict) -> Any:
        module = _modules["cupy"]
        for part in func.__module__.split(".")[1:]:
            module = getattr(module, part, None)
            if module is None:
                return NotImplemented
        device_function = getattr(module, func.__name__, None)
        if device_function is None or device_function is func:
            return NotImplemented
        return device_function(*args, **kwargs)

    # ----- CuPy's own API ----------------------------------------------------------------------
    def get(self, stream: Any = None, order: str = "C", out: np.ndarray | None = None,
            blocking: bool = True) -> np.ndarray:
        """A NumPy copy of the array (into ``out`` when given)."""
        if out is not None:
            np.copyto(out, self._host)
            return out
        return np.array(self._host, order=order, copy=True)

    def set(self, arr: np.ndarray, stream: Any = None) -> None:
        """Copy the host array ``arr`` (same shape and dtype) into this array."""
        if not isinstance(arr, np.ndarray) or arr.shape != self.shape or arr.dtype != self.dtype:
            raise ValueError("set() needs a NumPy array of the same shape and dtype")
        self._host[...] = arr

    @property
    def device(self) -> Device:
        return Device(0)

    @property
    def data(self) -> _MemoryPointer:
        return _MemoryPointer(self._host)

    @property
    def flags(self) -> _Flags:
        return _Flags(self._host)

    @property
    def shape(self) -> tuple[int, ...]:
        return self._host.shape

    @shape.setter
    def shape(self, value: Any) -> None:
        self._host = self._host.reshape(value)

    @property
    def dtype(self) -> np.dtype:
        return self._host.dtype

    @property
    def ndim(self) -> int:
        return self._host.ndim

    @property
    def size(self) -> int:
        return self._host.size

    @property
    def itemsize(self) -> int:
        return self._host.itemsize

    @property
    def nbytes(self) -> int:
        return self._host.nbytes

    @property
    def strides(self) -> tuple[int, ...]:
        return self._host.strides

    @property
    def base(self) -> ndarray | None:
        return None if self._host.base is None else ndarray._from_host(self._host.base)

    @property
    def T(self) -> ndarray:
        return ndarray._from_host(self._host.T)

    @property
    def mT(self) -> ndarray:
        return ndarray._from_host(self._host.mT)

    @property
    def real(self) -> ndarray:
        return ndarray._from_host(self._host.real)

    @property
    def imag(self) -> ndarray:
        return ndarray._from_host(self._host.imag)

    @property
    def flat(self) -> Iterator[ndarray]:
        return (ndarray._from_host(np.asarray(v)) for v in self._host.flat)

    # ----- Python protocols ----------------------------------------------------------------------
    def __getitem__(self, key: Any) -> ndarray:
        return _Unwrapper().wrap(self._host[_host_index(key)])

    def __setitem__(self, key: Any, value: Any) -> None:
        index = _host_index(key)
        if isinstance(value, np.ndarray) and value.ndim and _is_basic_index(index):
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")  # CuPy's fill path
        self._host[index] = _Unwrapper().unwrap(value, allow_host=isinstance(value, np.ndarray))

    def __len__(self) -> int:
        return len(self._host)

    def __iter__(self) -> Iterator[ndarray]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        return bool(self._host)

    def __float__(self) -> float:
        return float(self._host)

    def __int__(self) -> int:
        return int(self._host)

    def __complex__(self) -> complex:
        return complex(self._host)

    def __repr__(self) -> str:
        return repr(self._host)

    def __str__(self) -> str:
        return str(self._host)

    def __format__(self, spec: str) -> str:
        return format(self._host, spec)

    def __copy__(self) -> ndarray:
        return ndarray._from_host(self._host.copy())

    def __deepcopy__(self, memo: dict | None) -> ndarray:
        return ndarray._from_host(self._host.copy())

    def __reduce__(self) -> tuple[Callable, tuple[np.ndarray]]:
        return _rebuild, (self._host.copy(),)


def _rebuild(host: np.ndarray) -> ndarray:
    return ndarray._from_host(host)


# The methods of cupy.ndarray (see cupy/_core/core.pyi): each runs NumPy's on the private array.
_NDARRAY_METHODS = (
    "item", "tolist", "tobytes", "tofile", "dump", "dumps", "astype", "copy", "view", "fill", "reshape",
    "transpose", "swapaxes", "flatten", "ravel", "squeeze", "take", "put", "repeat", "choose", "sort",
    "argsort", "partition", "argpartition", "searchsorted", "nonzero", "compress", "diagonal", "max",
    "argmax", "min", "argmin", "ptp", "clip", "round", "trace", "sum", "cumsum", "mean", "var", "std",
    "prod", "cumprod", "all", "any", "conj", "conjugate", "dot",
)
_METHOD_HOST_POSITIONS = {"take": (0,), "put": (0,), "compress": (0,)}  # index arguments may be host arrays


def _make_method(name: str) -> Callable:
    host_positions = _METHOD_HOST_POSITIONS.get(name, ())

    def method(self: ndarray, *args: Any, **kwargs: Any) -> Any:
        unwrapper = _Unwrapper()
        unwrapper.seen[id(self._host)] = self
        host_args = [unwrapper.unwrap(a, True if i in host_positions else None) for i, a in enumerate(args)]
        host_kwargs = {k: unwrapper.unwrap(v) for k, v in kwargs.items()}
        if name == "ptp":
            return unwrapper.wrap(np.ptp(self._host, *host_args, **host_kwargs))  # not a method in NumPy 2
        return unwrapper.wrap(getattr(self._host, name)(*host_args, **host_kwargs))

    method.__name__ = method.__qualname__ = name
    return method


for _name in _NDARRAY_METHODS:
    setattr(ndarray, _name, _make_method(_name))

# Operators: (dunder, ufunc name, reflected). Each goes through the device ufunc, so a NumPy operand
# is refused, and defers to an object of higher __array_priority__ (a Tensor), as CuPy does.
_BINARY_OPERATORS = (
    ("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("truediv", "true_divide"),
    ("floordiv", "floor_divide"), ("mod", "remainder"), ("pow", "power"), ("matmul", "matmul"),
    ("and", "bitwise_and"), ("or", "bitwise_or"), ("xor", "bitwise_xor"), ("lshift", "left_shift"),
    ("rshift", "right_shift"),
)
_COMPARISONS = (("lt", "less"), ("le", "less_equal"), ("gt", "greater"), ("ge", "greater_equal"),
                ("eq", "equal"), ("ne", "not_equal"))
_UNARY_OPERATORS = (("neg", "negative"), ("pos", "positive"), ("abs", "absolute"), ("invert", "invert"))


def _defers_to(other: Any) -> bool:
    return type(other) is not ndarray and getattr(other, "__array_priority__", 0) > ndarray.__array_priority__


def _binary(ufunc_name: str, reflected: bool = False, in_place: bool = False) -> Callable:
    def operator(self: ndarray, other: Any) -> Any:
        if _defers_to(other):
            return NotImplemented
        if ufunc_name in ("equal", "not_equal") and other is None:
            return NotImplemented  # ``array == None`` falls back to identity, not a kernel error
        device_ufunc = getattr(_modules["cupy"], ufunc_name)
        if in_place:
            return device_ufunc(self, other, out=self)
        return device_ufunc(other, self) if reflected else device_ufunc(self, other)

    return operator


def _unary(ufunc_name: str) -> Callable:
    def operator(self: ndarray) -> Any:
        return getattr(_modules["cupy"], ufunc_name)(self)

    return operator


for _dunder, _ufunc_name in _BINARY_OPERATORS:
    setattr(ndarray, f"__{_dunder}__", _binary(_ufunc_name))
    setattr(ndarray, f"__r{_dunder}__", _binary(_ufunc_name, reflected=True))
    setattr(ndarray, f"__i{_dunder}__", _binary(_ufunc_name, in_place=True))
for _dunder, _ufunc_name in _COMPARISONS:
    setattr(ndarray, f"__{_dunder}__", _binary(_ufunc_name))
for _dunder, _ufunc_name in _UNARY_OPERATORS:
    setattr(ndarray, f"__{_dunder}__", _unary(_ufunc_name))


# ----- the modules ----------------------------------------------------------------------------------
class _NumpyMirror(types.ModuleType):
    """A module whose missing attributes are NumPy's (``source``'s), turned into device versions.

    Ufuncs become :class:`ufunc`, functions unwrap their arguments and wrap their results, and
    types (dtypes, ``float32``) and constants are NumPy's own, as they are in CuPy.
    """

    def __init__(self, name: str, source: types.ModuleType | Callable[[], types.ModuleType],
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(name, "Device mirror of a NumPy (or SciPy) module (tests/fake_cupy.py).")
        # A callable source is imported on first use (scipy.special: only when a test needs it).
        self._load_source = source if callable(source) else (lambda: source)
        self.__dict__.update(extra or {})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _MISSING_FROM_CUPY:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        try:
            value = getattr(self._load_source(), name)
        except AttributeError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None
        device_value = _device_version(name, value)
        setattr(self, name, device_value)  # built once per install
        return device_value


def _device_version(name: str, value: Any) -> Any:
    if isinstance(value, np.ufunc):
        return ufunc(value)
    if isinstance(value, (type, types.ModuleType)) or not callable(value):
        return value  # dtypes, scalar types, constants (cupy.float32 is numpy.float32)
    return _device_function(name, value, _HOST_INDEX_ARGUMENTS.get(name, ()))


def get_array_module(*args: Any) -> types.ModuleType:
    """``cupy`` when any argument is a device array, else ``numpy``."""
    return _modules["cupy"] if any(type(a) is ndarray for a in args) else np


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: np.ndarray | None = None,
            blocking: bool = True) -> np.ndarray:
    """A NumPy array of ``a``: copied off the device for a device array, else ``np.asarray``."""
    if type(a) is ndarray:
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def asarray(a: Any, dtype: Any = None, order: Any = None, *, blocking: bool = False) -> ndarray:
    """``a`` as a device array: itself when it already is one (of that dtype), else a device copy."""
    if type(a) is ndarray:
        return a if dtype is None or a.dtype == np.dtype(dtype) else a.astype(dtype)
    return ndarray._from_host(np.array(_host_value(a), dtype=dtype, order=order or "K", copy=True))


def array(obj: Any, dtype: Any = None, copy: bool = True, order: str = "K", subok: bool = False,
          ndmin: int = 0, *, blocking: bool = False) -> ndarray:
    """A device array of ``obj`` (host data is copied to the device)."""
    if type(obj) is ndarray:
        host = np.array(obj._host, dtype=dtype, copy=copy, order=order, ndmin=ndmin)
        return obj if host is obj._host else ndarray._from_host(host)
    return ndarray._from_host(np.array(_host_value(obj), dtype=dtype, copy=True, order=order, ndmin=ndmin))


def _host_value(obj: Any) -> Any:
    """Host data for a copy to the device; nested lists may hold 0-d device arrays, as CuPy allows."""
    if type(obj) is ndarray:
        return obj._host
    if type(obj) in (list, tuple):
        return type(obj)(_host_value(v) for v in obj)
    return obj


def scatter_add(a: ndarray, slices: Any, value: Any) -> None:
    """``cupyx.scatter_add``: ``a[slices] += value`` with repeated indices accumulating."""
    np.add.at(a._host, _host_index(slices), _Unwrapper().unwrap(value))


def scatter_max(a: ndarray, slices: Any, value: Any) -> None:
    """``cupyx.scatter_max``."""
    np.maximum.at(a._host, _host_index(slices), _Unwrapper().unwrap(value))


def scatter_min(a: ndarray, slices: Any, value: Any) -> None:
    """``cupyx.scatter_min``."""
    np.minimum.at(a._host, _host_index(slices), _Unwrapper().unwrap(value))


class CUDARuntimeError(RuntimeError):
    """``cupy.cuda.runtime.CUDARuntimeError``."""

    __module__ = "cupy_backends.cuda.api.runtime"


class _Stream:
    """``cupy.cuda.Stream``: work is synchronous here, so there is nothing to wait for."""

    __module__ = "cupy.cuda.stream"

    def __init__(self, non_blocking: bool = False, null: bool = False) -> None:
        self.null = null

    def synchronize(self) -> None:
        """Nothing to wait for."""

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _MemoryPool:
    """``cupy.get_default_memory_pool()``: host memory is NumPy's, so it holds nothing."""

    __module__ = "cupy.cuda.memory"

    def free_all_blocks(self) -> None:
        """Nothing is kept."""

    def used_bytes(self) -> int:
        return 0

    def total_bytes(self) -> int:
        return 0


runtime = types.ModuleType("cupy_backends.cuda.api.runtime")
runtime.getDeviceCount = lambda: DEVICE_COUNT
runtime.getDevice = lambda: 0
runtime.CUDARuntimeError = CUDARuntimeError


def _build_modules() -> dict[str, types.ModuleType]:
    """The fake ``cupy``, ``cupy.cuda`` and ``cupyx`` packages, by their ``sys.modules`` names."""
    cuda = types.ModuleType("cupy.cuda", "Fake cupy.cuda: one device, synchronous streams.")
    null_stream = _Stream(null=True)
    cuda.__dict__.update(
        runtime=runtime, Device=Device, Stream=_Stream, get_current_stream=lambda: null_stream,
        is_available=lambda: True, memory=types.SimpleNamespace(MemoryPointer=_MemoryPointer),
    )
    pool = _MemoryPool()
    cupy = _NumpyMirror("cupy", np, {
        "ndarray": ndarray, "ufunc": ufunc, "cuda": cuda, "get_array_module": get_array_module,
        "asnumpy": asnumpy, "asarray": asarray, "array": array,
        "get_default_memory_pool": lambda: pool, "get_default_pinned_memory_pool": lambda: pool,
        "__version__": "13.0.0+fake",
    })
    cupy.linalg = _NumpyMirror("cupy.linalg", np.linalg)
    cupy.fft = _NumpyMirror("cupy.fft", np.fft)
    cupy.random = _NumpyMirror("cupy.random", np.random)
    cupy.lib = types.ModuleType("cupy.lib")
    cupy.lib.stride_tricks = _NumpyMirror("cupy.lib.stride_tricks", np.lib.stride_tricks)
    special = _NumpyMirror("cupyx.scipy.special", lambda: importlib.import_module("scipy.special"))
    scipy = types.ModuleType("cupyx.scipy")
    scipy.special = special
    cupyx = types.ModuleType("cupyx", "Fake cupyx: scatter operations and scipy.special.")
    cupyx.__dict__.update(scatter_add=scatter_add, scatter_max=scatter_max, scatter_min=scatter_min, scipy=scipy)
    return {"cupy": cupy, "cupy.cuda": cuda, "cupy.linalg": cupy.linalg, "cupy.fft": cupy.fft,
            "cupy.random": cupy.random, "cupy.lib": cupy.lib, "cupy.lib.stride_tricks": cupy.lib.stride_tricks,
            "cupyx": cupyx, "cupyx.scipy": scipy, "cupyx.scipy.special": special}


_modules: dict[str, types.ModuleType] = _build_modules()


def install(monkeypatch: Any) -> types.ModuleType:
    """Make ``import cupy`` (and ``cupyx``) give the double until ``monkeypatch`` is undone.

    ``nurinet.backend`` caches the result of its first ``import cupy`` (``_cupy``,
    ``_cupy_checked``): the cache is emptied here, so the next lookup finds the double, and
    ``monkeypatch`` puts the old cache back afterwards, so other tests see no CuPy again.

    Args:
        monkeypatch: pytest's ``monkeypatch`` fixture (its undo ends the installation).

    Returns:
        The fake ``cupy`` module.
    """
    from nurinet import backend

    for name, module in _modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_checked", False)
    return _modules["cupy"]
