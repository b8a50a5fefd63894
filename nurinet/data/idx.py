"""The IDX file format of MNIST (and Fashion-MNIST, EMNIST, KMNIST) and an MNIST loader.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim``
big-endian uint32 dimension sizes, then the values in C order, big-endian.
``read_idx`` reads such files, gzip-compressed or raw; ``load_mnist`` reads the
standard MNIST file names from a directory; ``download_mnist`` fetches them
when asked to (nothing here touches the network otherwise).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

# IDX type code -> big-endian dtype.
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(t).newbyteorder("="): code for code, t in _IDX_TYPES.items()}

_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "t10k": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://yann.lecun.com/exdb/mnist/",
)
"""Base URLs tried in order by :func:`download_mnist`."""

MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
"""MD5 checksums of the four standard (gzip-compressed) MNIST files."""


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":  # the gzip magic number; anything else is read as raw IDX
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as err:
        raise ValueError(f"{path}: the gzip stream is truncated or corrupt ({err}); download it again") from err


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not) into a NumPy array.

    Args:
        path: The file. Compression is detected from the content, not the name.

    Returns:
        An array with the file's shape and dtype (uint8, int8, int16, int32,
        float32 or float64) in native byte order.

    Raises:
        ValueError: If the magic number is not an IDX one, or the file is
            shorter or longer than its header says (truncated download).
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX file ({len(raw)} bytes; the header alone is 4+)")
    code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or code not in _IDX_TYPES:
        raise ValueError(
            f"{path}: bad IDX magic number 0x{raw[:4].hex().upper()}; expected 0x0000TTDD with type TT one of "
            f"{', '.join(f'{c:02X}' for c in _IDX_TYPES)} and DD the number of dimensions. Is it an IDX file?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, the file has {len(raw)}"
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_TYPES[code])
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(raw) - header
    if actual != expected:
        problem = "truncated" if actual < expected else "has extra bytes"
        raise ValueError(
            f"{path}: IDX file {problem}: shape {shape} of {dtype.newbyteorder('=').name} needs "
            f"{expected} bytes of data after the header, but there are {actual}"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: Any) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    Args:
        path: Destination file.
        array: A uint8, int8, int16, int32, float32 or float64 array with at
            least one dimension.

    Returns:
        The path written.
    """
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(
            f"write_idx: IDX has no type for {array.dtype}; convert to one of uint8, int8, int16, int32, "
            "float32, float64"
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx: IDX needs 1 to 255 dimensions, got an array of shape {array.shape}")
    body = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body += np.ascontiguousarray(array, dtype=_IDX_TYPES[code]).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(body, mtime=0) if path.suffix == ".gz" else body)
    return path


def _find(directory: Path, base: str) -> Path:
    """The file for ``base`` in ``directory``: ``base.gz``, ``base`` or the dotted variant."""
    candidates = [f"{base}.gz", base, base.replace("-idx", ".idx")]
    for name in candidates:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"load_mnist: none of {candidates} is in {directory}; download the MNIST files there with "
        f"nurinet.data.download_mnist({str(directory)!r}) or copy them in by hand"
    )


def load_mnist(
    path: str | os.PathLike, kind: str = "train", normalize: bool = True, flatten: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST (or a dataset in the same files, such as Fashion-MNIST) from a directory.

    The directory holds the standard files ``{kind}-images-idx3-ubyte`` and
    ``{kind}-labels-idx1-ubyte``, gzip-compressed (``.gz``) or not.

    Args:
        path: The directory.
        kind: "train" (60,000 images) or "t10k" (the 10,000 test images; "test"
            is accepted too).
        normalize: Scale the pixels from 0..255 to [0, 1].
        flatten: Return images as rows (N, 784) for dense layers; otherwise as
            (N, 1, 28, 28) (NCHW, for ``Conv2d``).

    Returns:
        ``x`` float32 images and ``y`` int64 labels (N,).
    """
    kind = "t10k" if kind == "test" else kind
    if kind not in _MNIST_FILES:
        raise ValueError(f"load_mnist: kind must be 'train' or 't10k' (the test set), got {kind!r}")
    directory = Path(path)
    if not directory.is_dir():
        raise FileNotFoundError(f"load_mnist: {directory} is not a directory; pass the folder holding the files")
    image_file, label_file = (_find(directory, base) for base in _MNIST_FILES[kind])
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"load_mnist: {image_file.name} has shape {images.shape} and {label_file.name} {labels.shape}; "
            "expected images (N, H, W) and labels (N,) with the same N"
        )
    x = images.astype(np.float32)
    if normalize:
        x /= np.float32(255.0)
    x = x.reshape(len(x), -1) if flatten else x[:, None]
    return x, labels.astype(np.int64)


class _ChecksumError(ValueError):
    pass


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)  # integrity check, not security
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, target: Path, md5: str, timeout: float) -> None:
    """Download ``url`` into ``target`` atomically: a temporary file, checked, then renamed."""
    import urllib.request

    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            digest = hashlib.md5(usedforsecurity=False)
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != md5:
            raise _ChecksumError(f"{url}: MD5 {digest.hexdigest()}, expected {md5}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def download_mnist(
    directory: str | os.PathLike,
    urls: Sequence[str] | str | None = None,
    checksums: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download the four MNIST files into ``directory`` (opt-in; nothing else uses the network).

    Each file is tried from each mirror in turn, written to a temporary file,
    checked against its MD5 checksum and only then renamed into place, so an
    interrupted download never leaves a partial file under the real name. Files
    already present with the right checksum are kept.

    Args:
        directory: Where to put the files (created if needed).
        urls: Base URLs to try in order; :data:`MNIST_MIRRORS` when omitted.
        checksums: File name -> MD5 of the files to fetch; :data:`MNIST_MD5`
            (the four standard files) when omitted.
        timeout: Seconds to wait for each connection.

    Returns:
        The directory, ready for :func:`load_mnist`.

    Raises:
        ConnectionError: If a file could not be fetched from any mirror (no
            network); the message says how to place the files by hand.
        ValueError: If a mirror served a file with the wrong checksum.
    """
    import urllib.error

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mirrors = [urls] if isinstance(urls, str) else list(urls or MNIST_MIRRORS)
    for name, md5 in (checksums or MNIST_MD5).items():
        target = directory / name
        if target.is_file() and _md5(target) == md5:
            continue
        network_errors, checksum_errors = [], []
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            try:
                _fetch(url, target, md5, timeout)
                break
            except _ChecksumError as err:
                checksum_errors.append(str(err))
            except (urllib.error.URLError, OSError) as err:  # URLError, HTTPError, timeouts, refused connections
                network_errors.append(f"{url}: {err}")
        else:
            _raise_download_error(name, directory, network_errors, checksum_errors)
    return directory


def _raise_download_error(name: str, directory: Path, network: list[str], checksum: list[str]) -> None:
    if checksum:
        raise ValueError(
            f"download_mnist: {name} downloaded with the wrong checksum ({'; '.join(checksum)}); "
            "the mirror may be corrupt or changed. Try another mirror with urls=[...]"
        )
    raise ConnectionError(
        f"download_mnist: could not download {name} from any mirror; is there no network?\n  "
        + "\n  ".join(network)
        + f"\nTo install the files by hand, fetch {', '.join(MNIST_MD5)} on a machine with internet access "
        f"(for example from {MNIST_MIRRORS[0]}) and copy them into {directory}; load_mnist reads them there, "
        "gzip-compressed or not."
    )
