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
import os
import struct
from collections.abc import Iterable
from typing import Any

import numpy as np

from nurinet import backend
from nurinet.io.atomic import atomic_open

CHECKSUM_KEY = "nurinet.sha256"
_MAX_HEADER = 100_000_000  # as the reference implementation: a bigger header is a corrupt file

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8,
    "BOOL": np.bool_, "C64": np.complex64,
}
_CODES = {np.dtype(t): code for code, t in _DTYPES.items()}


class SafetensorsError(ValueError):
    """A file is not valid safetensors, or its content fails the checksum."""


def _to_numpy(value: Any, name: str) -> np.ndarray:
    data = getattr(value, "data", value) if not isinstance(value, np.ndarray) else value
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


def _fail(path: str, what: str) -> SafetensorsError:
    return SafetensorsError(f"{path!r} is not a valid safetensors file: {what}. The file is "
                            "corrupted, truncated or was not written by a safetensors writer.")


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], int]:
    """The parsed JSON header of ``path`` and the byte position where its data starts."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise _fail(path, f"it has {size} bytes, fewer than the 8-byte header length")
        (n,) = struct.unpack("<Q", prefix)
        if n > _MAX_HEADER or 8 + n > size:
            raise _fail(path, f"the header claims {n} bytes but the file has {size} bytes")
        try:
            header = json.loads(f.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise _fail(path, f"its header is not valid JSON ({error})") from None
    if not isinstance(header, dict):
        raise _fail(path, "its header is not a JSON object")
    return header, 8 + n


def _check_entries(path: str, header: dict[str, Any], data_size: int) -> None:
    """Every entry well formed, and the entries tile the data exactly (no gap, no overlap)."""
    spans = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype = np.dtype(_DTYPES[entry["dtype"]])
            shape = [int(d) for d in entry["shape"]]
            begin, end = (int(v) for v in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise _fail(path, f"the header entry of tensor {name!r} is malformed: {entry!r}") from None
        if any(d < 0 for d in shape) or end - begin != dtype.itemsize * int(np.prod(shape)):
            raise _fail(path, f"tensor {name!r} has offsets {begin}..{end} that do not fit its "
                              f"shape {shape} and dtype {entry['dtype']}")
        spans.append((begin, end, name))
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise _fail(path, f"the data of tensor {name!r} starts at {begin}, expected {position}")
        position = end
    if position != data_size:
        raise _fail(path, f"the tensors need {position} bytes of data but the file holds {data_size} "
                          "(truncated or extended)")


def load_file(path: str | os.PathLike, verify: bool = True) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read ``path``: the arrays by name (native byte order, writable) and the metadata.

    Args:
        path: A ``.safetensors`` file.
        verify: Check the ``nurinet.sha256`` checksum when the file has one.

    Raises:
        SafetensorsError: the file is malformed, truncated, or fails its checksum.
    """
    path = os.fspath(path)
    header, start = read_header(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    _check_entries(path, header, len(data))
    metadata = header.get("__metadata__", {}) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _fail(path, "its __metadata__ is not a map of strings")
    expected = metadata.get(CHECKSUM_KEY)
    if verify and expected is not None and _digest(header, [data]) != expected:
        raise SafetensorsError(
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
