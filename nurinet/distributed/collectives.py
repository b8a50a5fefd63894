"""Collectives on models: broadcast parameters and optimizer state, average gradients and logs.

Gradients are averaged in *buckets*: the gradients of many parameters are
copied into a few contiguous buffers (one dtype each, at most
``bucket_cap_mb`` megabytes), and each buffer is summed over the processes with
one in-place ``Allreduce``. A small MLP thus costs one or two messages per
step instead of one per parameter; the buffers are kept and reused from step
to step.

Every function here is collective: all processes must call it, in the same
order, on models of the same architecture. The first use of a parameter
layout checks that the processes agree on it (number, shapes and dtypes of
the tensors), so a mismatch raises a clear error instead of hanging.
"""

from __future__ import annotations

import json
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from nurinet import backend as nt_backend
from nurinet.autograd.tensor import Tensor
from nurinet.distributed.comm import Communicator, get_communicator

DEFAULT_BUCKET_CAP_MB = 25.0

Spec = tuple[tuple[int, ...], np.dtype]


# ----- packing many arrays into a few contiguous buffers ------------------------------------------
class _Bucket:
    """One contiguous buffer of one dtype and the slice each member array occupies in it."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.members: list[tuple[int, int, int, tuple[int, ...]]] = []  # (index, start, stop, shape)
        self.size = 0
        self.buffer: np.ndarray | None = None

    def add(self, index: int, shape: tuple[int, ...]) -> None:
        count = int(np.prod(shape, dtype=np.int64))
        self.members.append((index, self.size, self.size + count, shape))
        self.size += count

    def allocate(self) -> None:
        self.buffer = np.empty(self.size, dtype=self.dtype)


class BucketLayout:
    """Where each of a list of arrays (given by shape and dtype) lives in a few per-dtype buffers.

    Arrays keep their order inside a dtype; a bucket is closed when the next
    array would take it past ``cap_bytes`` (an array larger than that gets a
    bucket of its own).

    Args:
        specs: ``(shape, dtype)`` of each array.
        cap_bytes: The largest size of a bucket, in bytes.
    """

    def __init__(self, specs: list[Spec], cap_bytes: int) -> None:
        if cap_bytes <= 0:
            raise ValueError(f"the bucket size must be positive, got {cap_bytes} bytes")
        self.specs = list(specs)
        self.buckets: list[_Bucket] = []
        open_buckets: dict[np.dtype, _Bucket] = {}
        for index, (shape, dtype) in enumerate(self.specs):
            dtype = np.dtype(dtype)
            bucket = open_buckets.get(dtype)
            nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
            if bucket is None or (bucket.size and (bucket.size * dtype.itemsize + nbytes > cap_bytes)):
                bucket = open_buckets[dtype] = _Bucket(dtype)
                self.buckets.append(bucket)
            bucket.add(index, tuple(shape))
        for bucket in self.buckets:
            bucket.allocate()

    def signature(self) -> list[int]:
        """Numbers that differ (almost surely) between two different layouts: compared across processes."""
        text = repr([(tuple(shape), np.dtype(dtype).str) for shape, dtype in self.specs])
        return [len(self.specs), sum(b.size for b in self.buckets), zlib.crc32(text.encode())]


def _pack(bucket: _Bucket, arrays: list[Any]) -> np.ndarray:
    """Copy the member arrays into the bucket's buffer (a missing array, ``None``, as zeros)."""
    buffer = bucket.buffer
    for index, start, stop, _ in bucket.members:
        array = arrays[index]
        if array is None:
            buffer[start:stop] = 0
        else:
            buffer[start:stop] = nt_backend.to_numpy(array).reshape(-1)
    return buffer


def _write(tensor_array: Any, values: np.ndarray) -> bool:
    """Copy ``values`` into ``tensor_array`` in place; False when that array cannot be written."""
    if isinstance(tensor_array, np.ndarray):
        if not tensor_array.flags.writeable or tensor_array.shape != values.shape:
            return False
        np.copyto(tensor_array, values, casting="unsafe")
        return True
    if nt_backend.is_cupy_array(tensor_array) and tensor_array.shape == values.shape:
        tensor_array[...] = nt_backend.get_array_module(tensor_array).asarray(values)
        return True
    return False


def _same_device(values: np.ndarray, like: Any) -> Any:
    """A fresh copy of ``values`` with ``like``'s dtype, on ``like``'s device."""
    return nt_backend.to_device(values.astype(like.dtype, copy=True), nt_backend.device_of(like))


# ----- checks across processes ------------------------------------------------------------------------
def check_agreement(comm: Communicator, numbers: list[int], what: str) -> None:
    """Raise on every process when the processes passed different ``numbers`` (a collective).

    Two small in-place Allreduces (max and min) tell every process whether
    all of them agree, so they all raise together and none is left waiting.
    """
    if comm.size == 1:
        return
    highest = np.asarray(numbers, dtype=np.int64)
    lowest = highest.copy()
    comm.allreduce_(highest, op="max")
    comm.allreduce_(lowest, op="min")
    if not np.array_equal(highest, lowest):
        raise RuntimeError(
            f"the {comm.size} processes disagree on {what} (rank {comm.rank} has {numbers}; over all "
            f"ranks the values range from {lowest.tolist()} to {highest.tolist()}); every process must "
            "build the same model and call the distributed functions in the same order"
        )


def _comm(comm: Communicator | None) -> Communicator:
    return get_communicator() if comm is None else comm


def _tensors(source: Any, what: str) -> list[Tensor]:
    """The tensors of a module (parameters, then buffers) or of an iterable of tensors."""
    from nurinet.nn.module import Module

    if isinstance(source, Module):
        return [*source.parameters(), *source.buffers()]
    if isinstance(source, Tensor):
        return [source]
    tensors = list(source)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what} expects a Module or Tensors, but item {i} is a {type(t).__name__}")
    return tensors


class LayoutCache:
    """Bucket layouts (with their buffers) by the shapes and dtypes of the tensors, kept for reuse.

    A layout is checked across the processes when it is built, so its first use
    is collective; the few most recent layouts are kept (a model whose set of
    trainable parameters changes gets a new one).

    Args:
        bucket_cap_mb: The largest bucket, in megabytes.
        what: What the tensors are, for the error when the processes disagree.
    """

    def __init__(self, bucket_cap_mb: float = DEFAULT_BUCKET_CAP_MB, what: str = "the tensors",
                 keep: int = 4) -> None:
        self.cap_bytes = _cap_bytes(bucket_cap_mb)
        self.what = what
        self.keep = keep
        self._layouts: OrderedDict[tuple, BucketLayout] = OrderedDict()

    def get(self, comm: Communicator, tensors: list[Any]) -> BucketLayout:
        key = tuple((t.array.shape, t.array.dtype.str) for t in tensors)
        layout = self._layouts.get(key)
        if layout is None:
            layout = BucketLayout([(t.array.shape, t.array.dtype) for t in tensors], self.cap_bytes)
            check_agreement(comm, layout.signature(), f"the shapes and dtypes of {self.what}")
            self._layouts[key] = layout
            if len(self._layouts) > self.keep:
                self._layouts.popitem(last=False)
        return layout

    def __len__(self) -> int:
        return len(self._layouts)


# ----- broadcasts ----------------------------------------------------------------------------------------
def broadcast_tensors(tensors: Iterable[Tensor], root: int = 0, comm: Communicator | None = None,
                      bucket_cap_mb: float = DEFAULT_BUCKET_CAP_MB, cache: LayoutCache | None = None) -> None:
    """Overwrite ``tensors`` on every process with their values on ``root``, in place (bucketed).

    Args:
        tensors: The tensors, the same number, shapes and dtypes on every process.
        root: The rank whose values win.
        comm: The communicator; the process group of :func:`init` by default.
        bucket_cap_mb: The largest bucket, in megabytes (when no ``cache`` is given).
        cache: Reuse the buckets (and the agreement check) of earlier calls, as
            a broadcast made every step does.
    """
    comm = _comm(comm)
    root = comm.check_root(root)
    tensors = _tensors(tensors, "broadcast_tensors")
    if comm.size == 1 or not tensors:
        return
    cache = cache if cache is not None else LayoutCache(bucket_cap_mb, "the tensors to broadcast")
    layout = cache.get(comm, tensors)
    for bucket in layout.buckets:
        if comm.rank == root:
            _pack(bucket, [t.array for t in tensors])
        comm.broadcast_(bucket.buffer, root)
        if comm.rank == root:
            continue
        for index, start, stop, shape in bucket.members:
            tensor = tensors[index]
            values = bucket.buffer[start:stop].reshape(shape)
            if not _write(tensor.array, values):
                tensor.array = _same_device(values, tensor.array)


def broadcast_parameters(module: Any, root: int = 0, comm: Communicator | None = None) -> None:
    """Give every process ``root``'s parameters and buffers (call once, before training).

    Args:
        module: A Module (its parameters and buffers) or an iterable of Tensors.
        root: The rank whose values win.
        comm: The communicator; the process group of :func:`init` by default.
    """
    broadcast_tensors(_tensors(module, "broadcast_parameters"), root, comm)


def broadcast_buffers(module: Any, root: int = 0, comm: Communicator | None = None,
                      cache: LayoutCache | None = None) -> None:
    """Give every process ``root``'s buffers (BatchNorm running statistics...); see :func:`broadcast_tensors`."""
    broadcast_tensors(list(module.buffers()), root, comm, cache=cache)


def _broadcast_bytes(comm: Communicator, payload: bytes | None, root: int) -> bytes:
    length = np.array([0 if payload is None else len(payload)], dtype=np.int64)
    comm.broadcast_(length, root)
    data = np.zeros(int(length[0]), dtype=np.uint8)
    if comm.rank == root:
        data[:] = np.frombuffer(payload, dtype=np.uint8)
    comm.broadcast_(data, root)
    return data.tobytes()


def _to_json(value: Any) -> Any:
    """Plain JSON data, with tuples and arrays marked so that they come back as they were."""
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v) for v in value]}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"broadcast_optimizer_state cannot send a hyperparameter or state value of type "
        f"{type(value).__name__} ({value!r}); optimizer state must be arrays, numbers or strings"
    )


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def broadcast_optimizer_state(optimizer: Any, root: int = 0, comm: Communicator | None = None) -> None:
    """Give every process ``root``'s optimizer state: hyperparameters and buffers (moments, steps).

    Needed when training resumes from a checkpoint that only ``root`` loaded;
    with a fresh optimizer the state is empty and only the hyperparameters are
    sent. The description travels as JSON bytes and each array with one
    ``Bcast``; nothing is pickled.
    """
    comm = _comm(comm)
    root = comm.check_root(root)
    if comm.size == 1:
        return
    payload = None
    arrays: list[np.ndarray] = []
    if comm.rank == root:
        payload, arrays = _describe_optimizer(optimizer.state_dict())
    description = json.loads(_broadcast_bytes(comm, payload, root).decode("utf-8"))
    received = []
    for i, (shape, dtype) in enumerate(description["arrays"]):
        buffer = arrays[i] if comm.rank == root else np.empty(shape, dtype=np.dtype(dtype))
        received.append(comm.broadcast_(buffer, root))
    if comm.rank != root:
        optimizer.load_state_dict(_rebuild_optimizer_state(description, received))


def _describe_optimizer(state_dict: dict[str, Any]) -> tuple[bytes, list[np.ndarray]]:
    arrays: list[np.ndarray] = []
    state = []
    for position, values in state_dict["state"].items():
        entry = {}
        for name, value in values.items():
            if isinstance(value, np.ndarray) or nt_backend.is_cupy_array(value):
                arrays.append(np.ascontiguousarray(nt_backend.to_numpy(value)))
                entry[name] = {"__array__": len(arrays) - 1}
            else:
                entry[name] = _to_json(value)
        state.append([list(position), entry])
    description = {
        "param_groups": _to_json(state_dict["param_groups"]),
        "state": state,
        "arrays": [[list(a.shape), a.dtype.str] for a in arrays],
    }
    return json.dumps(description).encode("utf-8"), arrays


def _rebuild_optimizer_state(description: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    state = {}
    for position, entry in description["state"]:
        state[tuple(position)] = {
            name: arrays[value["__array__"]] if isinstance(value, dict) and "__array__" in value
            else _from_json(value)
            for name, value in entry.items()
        }
    return {"state": state, "param_groups": _from_json(description["param_groups"])}


# ----- gradient averaging ------------------------------------------------------------------------------
class GradientReducer:
    """Sums or averages the ``.grad`` of parameters over all processes, in reused buckets.

    Per call: one small Allreduce of "has a gradient" flags (so a parameter
    unused on every process keeps ``grad=None``, and one unused on some
    processes contributes zeros there), then one in-place Allreduce per bucket.

    Args:
        bucket_cap_mb: The largest bucket, in megabytes (PyTorch's default, 25).
        comm: The communicator; the process group of :func:`init` by default.
    """

    def __init__(self, bucket_cap_mb: float = DEFAULT_BUCKET_CAP_MB, comm: Communicator | None = None) -> None:
        self.comm = comm
        self.layouts = LayoutCache(bucket_cap_mb, "the parameters whose gradients are averaged")

    def layout(self, params: list[Tensor]) -> BucketLayout:
        """The bucket layout of these parameters, built (and checked across processes) once."""
        return self.layouts.get(_comm(self.comm), params)

    def allreduce(self, params: Iterable[Tensor], average: bool = True) -> None:
        """Replace each parameter's ``.grad`` by its sum (or mean) over the processes."""
        comm = _comm(self.comm)
        params = [p for p in params if p.requires_grad]
        if comm.size == 1 or not params:
            return
        layout = self.layout(params)
        present = np.array([p.grad is not None for p in params], dtype=np.int32)
        comm.allreduce_(present, op="max")
        grads = [None if p.grad is None else p.grad.array for p in params]
        for bucket in layout.buckets:
            buffer = comm.allreduce_(_pack(bucket, grads), op="sum")
            if average:
                buffer /= comm.size  # in place: a float32 buffer stays float32
            for index, start, stop, shape in bucket.members:
                if present[index]:
                    _set_grad(params[index], buffer[start:stop].reshape(shape))


def _set_grad(param: Tensor, values: np.ndarray) -> None:
    grad = param.grad
    if grad is not None and grad.creator is None and _write(grad.array, values):
        return
    param.grad = Tensor._wrap(_same_device(values, param.array), False)


_default_reducer: GradientReducer | None = None


def allreduce_gradients(params: Any, average: bool = True, comm: Communicator | None = None) -> None:
    """Sum (or average, the default) the gradients of ``params`` over all processes, in place.

    Call it after ``loss.backward()`` and before ``optimizer.step()``. Gradients
    are bucketed (see :class:`GradientReducer`); the buckets of the default
    communicator are reused between calls.

    Args:
        params: A Module (its trainable parameters) or an iterable of parameters.
        average: Divide the sum by the number of processes, so that each process
            ends with the gradient of the mean loss over the combined batch.
        comm: The communicator; the process group of :func:`init` by default.
    """
    global _default_reducer
    from nurinet.nn.module import Module

    tensors = list(params.parameters()) if isinstance(params, Module) else _tensors(params, "allreduce_gradients")
    if comm is not None:
        GradientReducer(comm=comm).allreduce(tensors, average)
        return
    if _default_reducer is None:
        _default_reducer = GradientReducer()
    _default_reducer.allreduce(tensors, average)


def average_logs(logs: Mapping[str, float], comm: Communicator | None = None) -> dict[str, float]:
    """The mean of each logged number over the processes (every process must log the same names).

    Each process gives equal weight, which is the exact mean of a per-sample
    average when every process sees as many samples (as with
    :class:`DistributedSampler`).
    """
    comm = _comm(comm)
    if comm.size == 1:
        return dict(logs)
    names = sorted(logs)
    check_agreement(comm, [len(names), zlib.crc32("\0".join(names).encode())], "the names of the logs")
    values = np.array([float(logs[name]) for name in names], dtype=np.float64)
    comm.allreduce_(values, op="sum")
    values /= comm.size
    return {name: float(value) for name, value in zip(names, values)}


# ----- decisions that every process must take together ---------------------------------------------------
def any_process(flag: bool, comm: Communicator | None = None) -> bool:
    """Whether ``flag`` is true on any process: a logical OR over the processes (a collective).

    A process that acts alone on its own numbers (stops, skips a step, breaks
    out of a loop) makes the processes call different collectives, which
    mixes up their messages or makes them wait for ever. Share the decision
    first, so that every process acts on it at the same point:
    ``if dist.any_process(not math.isfinite(loss)): break``.
    """
    stop, _ = agree_on_stop(flag, None, comm)
    return stop


def agree_on_stop(stop: bool, logs: Mapping[str, float] | None = None,
                  comm: Communicator | None = None) -> tuple[bool, dict[str, float]]:
    """Whether any process wants to stop, and the mean of ``logs`` over the processes, in one message.

    :class:`DistributedCallback` calls this at the end of every batch and
    epoch, so that the callbacks after it see the same logs, and so the same
    ``stop_training``, on every process.

    Args:
        stop: Whether this process wants to stop.
        logs: Numbers to average (every process must log the same names), or None.
        comm: The communicator; the process group of :func:`init` by default.

    Returns:
        ``(stop, means)``: whether any process wants to stop, and each log's mean.

    Raises:
        RuntimeError: on every process, when the processes logged different names.
    """
    comm = _comm(comm)
    names = sorted(logs) if logs else []
    if comm.size == 1:
        return bool(stop), {name: float(logs[name]) for name in names}
    # 20 bits of a checksum of the names: its square still sums exactly in float64.
    tag = float(zlib.crc32("\0".join(names).encode()) & 0xFFFFF)
    message = np.array([float(bool(stop)), tag, tag * tag, *(float(logs[name]) for name in names)],
                       dtype=np.float64)
    comm.allreduce_(message, op="sum")
    # The tags are equal everywhere exactly when their sum is n * tag and the sum of squares n * tag**2
    # (then the tags' spread around this tag is zero); every process sees the same sums, so all raise.
    if message[1] != comm.size * tag or message[2] != comm.size * tag * tag:
        raise RuntimeError(
            f"the {comm.size} processes logged different names (rank {comm.rank} has {names}); every "
            "process must compile the same metrics and call the distributed functions in the same order"
        )
    values = message[3:] / comm.size
    return bool(message[0] > 0), {name: float(value) for name, value in zip(names, values)}


def _cap_bytes(bucket_cap_mb: float) -> int:
    if isinstance(bucket_cap_mb, bool) or not isinstance(bucket_cap_mb, (int, float)) or not bucket_cap_mb > 0:
        raise ValueError(f"bucket_cap_mb must be a positive number of megabytes, got {bucket_cap_mb!r}")
    return max(1, int(bucket_cap_mb * 1024 * 1024))
