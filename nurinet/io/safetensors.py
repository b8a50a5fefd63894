"""Reader and writer of the safetensors format, written with NumPy only.

Layout of a file::

    8 bytes        N, the header length, unsigned little-endian
    N bytes        JSON header (UTF-8, padded with spaces to a multiple of 8)
    rest           the tensors' raw bytes, little-endian, C order, back to back

The header maps each tensor name to ``{"dtype": "F32", "shape": [..],
"data_offsets": [begin, end]}`` (offsets relative to the start of the data) and
may hold ``"__metadata__"``, a flat ``{str: str}`` map. Files written here are
read by the ``safetensors`` package and the other way round.

nurinet adds one optional metadata entry, ``"nurinet.sha256"``: the SHA-256 of
the rest of the header (canonical JSON) followed by the data. ``load_file``
checks it when present, so a flipped byte, a truncated file or an edited header
is rejected instead of loading wrong numbers. Loading never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import reprlib
import struct
from collections.abc import Iterable
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.io.atomic import atomic_open

CHECKSUM_KEY = "nurinet.sha256"
_MAX_HEADER = 100_000_000  # as the reference implementation: a bigger header is a corrupt file
_MAX_DIMS = 64  # NumPy's most dimensions
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BOOL": np.bool_, "C64": np.complex64,
}
_CODES = {np.dtype(t): code for code, t in _DTYPES.items()}


class SafetensorsError(ValueError):
    """A file is not valid safetensors, or its content fails the checksum."""


class CorruptFileError(SafetensorsError):
    """A file is damaged, truncated, tampered with or crafted: its header or content is not
    what nurinet writes. The message names the file and what is wrong with it.

    Every malformed header (a shape that is not a list of non-negative integers, offsets out
    of range, metadata that is not a map of strings, JSON nested too deep, an architecture
    that declares more than the file holds) raises this one type, never a NumPy, JSON or
    recursion error.
    """


def storable_dtype(dtype: Any) -> bool:
    """Whether arrays of ``dtype`` have a safetensors code here (so can be saved)."""
    return np.dtype(dtype).newbyteorder("=") in _CODES


def _to_numpy(value: Any, name: str) -> np.ndarray:
    data = getattr(value, "array", value) if not isinstance(value, np.ndarray) else value
    array = backend.to_numpy(data) if backend.is_cupy_array(data) else np.asarray(data)
    if array.dtype not in _CODES:
        raise TypeError(f"cannot save tensor {name!r}: dtype {array.dtype} is not supported by "
                        f"safetensors here (supported: {sorted(str(d) for d in _CODES)})")
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    # np.ascontiguousarray would turn a 0-d array into a 1-d one.
    return array if array.flags.c_contiguous else np.array(array, order="C")


def _digest(header: dict[str, Any], chunks: Iterable[Any]) -> str:
    """SHA-256 of the header without the checksum entry (canonical JSON), then the data chunks."""
    meta = {k: v for k, v in header.get("__metadata__", {}).items() if k != CHECKSUM_KEY}
    rest = {**{k: v for k, v in header.items() if k != "__metadata__"}, "__metadata__": meta}
    h = hashlib.sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def serialize(tensors: dict[str, Any], metadata: dict[str, str] | None = None,
              checksum: bool = True) -> tuple[bytes, list[np.ndarray]]:
    """The header bytes (length prefix included) and the arrays to write after it, in order."""
    metadata = dict(metadata or {})
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(f"safetensors metadata must map str to str, got {key!r}: {type(value).__name__}")
    header: dict[str, Any] = {}
    arrays, offset = [], 0
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise ValueError(f"invalid tensor name {name!r}: it must be a string other than '__metadata__'")
        array = _to_numpy(value, name)
        header[name] = {"dtype": _CODES[array.dtype.newbyteorder("=")], "shape": list(array.shape),
                        "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        arrays.append(array)
    if checksum:
        chunks = (memoryview(a).cast("B") for a in arrays if a.size)
        metadata[CHECKSUM_KEY] = _digest({**header, "__metadata__": metadata}, chunks)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(len(text) + 8) % 8)  # the data then starts 8-byte aligned
    return struct.pack("<Q", len(text)) + text, arrays


def save_file(tensors: dict[str, Any], path: str | os.PathLike, metadata: dict[str, str] | None = None,
              checksum: bool = True) -> None:
    """Write ``{name: array}`` to ``path`` atomically (the old file survives a failed write).

    Args:
        tensors: Arrays or Tensors by name (taken off the GPU if needed).
        path: Destination file.
        metadata: Optional ``{str: str}`` stored in the header.
        checksum: Add the ``nurinet.sha256`` entry that :func:`load_file` verifies.
    """
    head, arrays = serialize(tensors, metadata, checksum)
    with atomic_open(path) as f:
        f.write(head)
        for array in arrays:
            if array.size:
                f.write(memoryview(array).cast("B"))


def _fail(path: str, what: str) -> CorruptFileError:
    return CorruptFileError(f"{path!r} is not a valid safetensors file: {what}. The file is "
                            "corrupted, truncated or was not written by a safetensors writer.")


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], int]:
    """The parsed JSON header of ``path`` and the byte position where its data starts.

    Only the header's framing and JSON are checked here; :func:`read_checked_header` also
    checks every entry against the file's size.

    Raises:
        CorruptFileError: the header is too short, too long, not JSON or nested too deep.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise _fail(path, f"it has {size} bytes, fewer than the 8-byte header length")
        (n,) = struct.unpack("<Q", prefix)
        if n > _MAX_HEADER or 8 + n > size:
            raise _fail(path, f"the header claims {n} bytes but the file has {size} bytes"
                              + (f" (at most {_MAX_HEADER} are allowed)" if n > _MAX_HEADER else ""))
        header = _parse_header_json(path, f.read(n))
    if not isinstance(header, dict):
        raise _fail(path, "its header is not a JSON object")
    return header, 8 + n


def _parse_header_json(path: str, raw: bytes) -> Any:
    # ValueError covers integers longer than Python's digit limit; RecursionError, arrays or
    # objects nested thousands deep (the JSON parser recurses once per level).
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        reason = "it is nested too deep" if isinstance(error, RecursionError) else str(error)
        raise _fail(path, f"its header is not valid JSON ({reason})") from None


def read_checked_header(path: str | os.PathLike) -> tuple[dict[str, Any], int]:
    """:func:`read_header`, then every tensor entry and the metadata checked against the
    file's size, reading no tensor data (so a hostile header costs only its own bytes).

    Raises:
        CorruptFileError: the header is malformed or does not fit the file.
    """
    path = os.fspath(path)
    header, start = read_header(path)
    _check_metadata(path, header)
    _check_entries(path, header, os.path.getsize(path) - start)
    return header, start


def _check_metadata(path: str, header: dict[str, Any]) -> None:
    metadata = header.get("__metadata__", {})
    if metadata is None:
        return
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _fail(path, "its __metadata__ is not a map of strings")


def _is_count(value: Any) -> bool:
    """A JSON integer >= 0 (bool is an int in Python; a float such as 2.0 is not a count)."""
    return type(value) is int and value >= 0


def _is_dim(value: Any) -> bool:
    """A dimension as the reference implementation reads one (a 64-bit unsigned integer), kept
    below 2**63 so that products of dimensions stay cheap to compute exactly."""
    return _is_count(value) and value < 2**63


def _entry_span(path: str, name: str, entry: Any) -> tuple[int, int]:
    """The data offsets of one tensor entry, after checking its dtype, shape and offsets."""
    if not isinstance(entry, dict) or not isinstance(entry.get("dtype"), str) \
            or entry["dtype"] not in _DTYPES:
        raise _fail(path, f"the header entry of tensor {name!r} is malformed (no known dtype): "
                          f"{_short(entry)}")
    extra = sorted(set(entry) - _ENTRY_KEYS)
    if extra:
        raise _fail(path, f"the header entry of tensor {name!r} has unknown fields {_short(extra)}")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not isinstance(shape, list) or len(shape) > _MAX_DIMS or not all(_is_dim(d) for d in shape):
        raise _fail(path, f"tensor {name!r} has shape {_short(shape)}: a shape is a list of at most "
                          f"{_MAX_DIMS} integers in [0, 2**63)")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(v) for v in offsets):
        raise _fail(path, f"tensor {name!r} has data_offsets {_short(offsets)}: they must be two "
                          "non-negative integers [begin, end]")
    begin, end = offsets
    nbytes = np.dtype(_DTYPES[entry["dtype"]]).itemsize * math.prod(shape)  # exact: Python ints
    if end - begin != nbytes:
        raise _fail(path, f"tensor {name!r} has offsets {begin}..{end} that do not fit its "
                          f"shape {_short(shape)} and dtype {entry['dtype']} ({nbytes} bytes)")
    return begin, end


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring = 3, 8, 4, 60


def _short(value: Any) -> str:
    """A short repr for messages: a crafted value may be huge or nested thousands deep."""
    return _SHORT.repr(value)


def _check_entries(path: str, header: dict[str, Any], data_size: int) -> None:
    """Every entry well formed, and the entries tile the data exactly (no gap, no overlap)."""
    spans = sorted((*_entry_span(path, name, entry), name)
                   for name, entry in header.items() if name != "__metadata__")
    position = 0
    for begin, end, name in spans:
        if begin != position:
            raise _fail(path, f"the data of tensor {name!r} starts at {begin}, expected {position}")
        position = end
    if position != data_size:
        raise _fail(path, f"the tensors need {position} bytes of data but the file holds {data_size} "
                          "(truncated or extended)")


def tensor_shapes(header: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of a header checked by :func:`read_checked_header`."""
    return {name: tuple(entry["shape"]) for name, entry in header.items() if name != "__metadata__"}


def load_file(path: str | os.PathLike, verify: bool = True) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read ``path``: the arrays by name (native byte order, writable) and the metadata.

    Args:
        path: A ``.safetensors`` file.
        verify: Check the ``nurinet.sha256`` checksum when the file has one.

    Raises:
        CorruptFileError: the file is malformed, truncated, or fails its checksum
            (a :class:`SafetensorsError`).
    """
    path = os.fspath(path)
    header, start = read_checked_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    _check_entries(path, header, len(data))  # the file may have changed since its header was read
    metadata = header.get("__metadata__", {}) or {}
    expected = metadata.get(CHECKSUM_KEY)
    if verify and expected is not None and _digest(header, [data]) != expected:
        raise CorruptFileError(
            f"{path!r} failed its SHA-256 check: the file was modified or damaged after it was "
            "written (a flipped byte, an edited header or a partial copy); refusing to load it"
        )
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        dtype = np.dtype(_DTYPES[entry["dtype"]]).newbyteorder("<")
        array = np.frombuffer(data, dtype, offset=begin, count=(end - begin) // dtype.itemsize)
        tensors[name] = array.reshape(tuple(entry["shape"])).astype(dtype.newbyteorder("="), copy=True)
    return tensors, dict(metadata)
