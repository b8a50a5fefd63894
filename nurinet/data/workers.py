"""Worker processes of ``DataLoader(num_workers=n)``: samples read and collated in parallel.

The main process sends each worker tasks (an epoch number, a task number and the batch's
indices) on the worker's own queue, at most ``prefetch_factor`` per worker ahead, and collects
the collated batches from one shared queue, yielding them in task order. A worker of an
:class:`~nurinet.data.IterableDataset` runs its own copy of the dataset's iterator and answers each
task with its next batch, or with "exhausted", after which it gets no more tasks that epoch.

An exception in a worker travels back with its traceback as text and is raised again in the
main process when its batch is due. Workers end when the epoch ends (or its iterator is
garbage-collected), or, with ``persistent_workers=True``, when the DataLoader goes.
"""

from __future__ import annotations

import functools
import itertools
import os
import pickle
import queue
import random
import sys
import time
import traceback
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from nurinet import random as nt_random

# How often a waiting worker checks that its parent lives, and a waiting main process that its
# workers do (seconds); the time a worker gets to finish at shutdown before it is terminated.
_POLL_S = 1.0
_JOIN_S = 5.0


@dataclass(frozen=True)
class WorkerInfo:
    """What :func:`get_worker_info` tells the code running in a worker process.

    Attributes:
        id: This worker's number, ``0 .. num_workers - 1``.
        num_workers: How many workers the DataLoader runs.
        seed: This worker's seed (the default generator, ``random`` and NumPy's global
            generator of the worker are seeded with it).
        dataset: This worker's copy of the dataset.
    """

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """The :class:`WorkerInfo` of this DataLoader worker process, or None in the main process.

    An :class:`~nurinet.data.IterableDataset` calls it in ``__iter__`` to yield only its share
    of the samples (each worker runs its own copy of the dataset), and a ``worker_init_fn`` to
    configure the worker's copy.
    """
    return _worker_info


class ExceptionWrapper:
    """An exception caught in a worker, carried to the main process with its traceback as text."""

    def __init__(self, exc_info: tuple[Any, ...], where: str) -> None:
        self.exc_type = exc_info[0] if _picklable(exc_info[0]) else RuntimeError
        self.exc_msg = "".join(traceback.format_exception(*exc_info))
        self.where = where

    def reraise(self) -> None:
        """Raise the exception again, its message holding the worker's traceback."""
        msg = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        try:
            exc = self.exc_type(msg)
        except Exception:  # noqa: BLE001 - an exception type whose constructor takes other arguments
            raise RuntimeError(msg) from None
        raise exc


def _picklable(obj: Any) -> bool:
    try:
        pickle.dumps(obj)
    except Exception:  # noqa: BLE001 - pickling fails in many ways (local classes, lambdas, ...)
        return False
    return True


def _seed_worker(seed: int) -> None:
    """Give the worker its own random streams, so workers do not repeat each other's draws
    (a forked worker would otherwise inherit the parent's state). PyTorch seeds the same three."""
    nt_random.default_generator.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # for datasets that use NumPy's global functions; nurinet never does


def _worker_loop(fetcher: Any, index_queue: Any, result_queue: Any, worker_id: int, num_workers: int,
                 seed: int, worker_init_fn: Callable[[int], Any] | None, parent_pid: int) -> None:
    """A worker's life: answer tasks until told to stop (None) or the parent is gone."""
    global _worker_info
    _seed_worker(seed)
    _worker_info = WorkerInfo(worker_id, num_workers, seed, fetcher.dataset)
    where = f"in DataLoader worker process {worker_id}"
    init_error = None
    try:
        if worker_init_fn is not None:
            worker_init_fn(worker_id)
    except Exception:  # noqa: BLE001 - the user's code: any error goes back to the main process
        init_error = ExceptionWrapper(sys.exc_info(), where)
    epoch = None
    while True:
        try:
            task = index_queue.get(timeout=_POLL_S)
        except queue.Empty:
            if os.getppid() != parent_pid:  # orphaned: the main process died without stopping us
                break
            continue
        if task is None:
            break
        task_epoch, number, indices = task
        if init_error is not None:
            reply: tuple[str, Any] = ("error", init_error)
        else:
            if task_epoch != epoch:  # a new epoch: an iterable dataset starts over
                epoch = task_epoch
                reply = _attempt(fetcher.start_epoch, where)
                if reply[0] == "error":
                    result_queue.put((task_epoch, number, worker_id, reply))
                    continue
            reply = _attempt(functools.partial(fetcher.fetch, indices), where)
        result_queue.put((task_epoch, number, worker_id, reply))
    # Results nobody will read must not keep this process alive at exit.
    result_queue.cancel_join_thread()
    result_queue.close()


def _attempt(work: Callable[[], Any], where: str) -> tuple[str, Any]:
    """``("batch", pickled result)``, ``("end", None)`` when the data ran out, or ``("error", wrapper)``.

    The batch is pickled here, not by the queue's background thread, so that a batch that
    cannot be pickled becomes an error the main process sees instead of a silent hang.
    """
    try:
        result = work()
        return "batch", None if result is None else pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    except StopIteration:
        return "end", None
    except Exception:  # noqa: BLE001 - the user's code: any error goes back to the main process
        return "error", ExceptionWrapper(sys.exc_info(), where)


def _context(multiprocessing_context: Any) -> Any:
    """The multiprocessing context: the given one, else 'fork' where the platform has it, else 'spawn'."""
    import multiprocessing  # here, not at import: only num_workers > 0 needs it

    if multiprocessing_context is None:
        methods = multiprocessing.get_all_start_methods()
        return multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    if isinstance(multiprocessing_context, str):
        return multiprocessing.get_context(multiprocessing_context)
    return multiprocessing_context


def _shutdown(workers: list[Any], index_queues: list[Any], result_queue: Any, graceful: list[bool]) -> None:
    """Stop the workers (letting each finish its task unless ``graceful[0]`` is False) and close the queues."""
    for q in index_queues:
        try:
            q.put(None)
        except (OSError, ValueError):  # already closed
            pass
    deadline = time.monotonic() + (_JOIN_S if graceful[0] else 0.0)
    for w in workers:
        w.join(timeout=max(deadline - time.monotonic(), 0.0))
        if w.is_alive():
            w.terminate()
            w.join(timeout=_JOIN_S)
    for q in [*index_queues, result_queue]:
        q.cancel_join_thread()
        q.close()


class WorkerPool:
    """The worker processes of one DataLoader (for one epoch, or for all with persistent workers).

    Args:
        fetcher: What each worker runs: ``start_epoch()`` then ``fetch(indices)`` per task
            (StopIteration when an iterable dataset is exhausted); copied into each worker.
        num_workers: How many processes.
        prefetch_factor: Tasks in flight per worker.
        timeout: Seconds to wait for a batch before raising (0: wait for ever).
        worker_init_fn: Called in each worker with its id before its first task.
        multiprocessing_context: A context or a start method name; None: 'fork' where
            available, else 'spawn'.
        base_seed: Worker ``i`` is seeded with ``base_seed + i``.
    """

    def __init__(self, fetcher: Any, num_workers: int, prefetch_factor: int, timeout: float,
                 worker_init_fn: Callable[[int], Any] | None, multiprocessing_context: Any,
                 base_seed: int) -> None:
        ctx = _context(multiprocessing_context)
        self.num_workers, self.prefetch_factor, self.timeout = num_workers, prefetch_factor, timeout
        self.result_queue = ctx.Queue()
        self.index_queues: list[Any] = []
        self.workers: list[Any] = []
        self.epoch = 0
        self._graceful = [True]
        for worker_id in range(num_workers):
            index_queue = ctx.Queue()
            index_queue.cancel_join_thread()  # tasks left unread at shutdown must not block our exit
            worker = ctx.Process(
                target=_worker_loop, daemon=True,
                args=(fetcher, index_queue, self.result_queue, worker_id, num_workers,
                      base_seed + worker_id, worker_init_fn, os.getpid()),
            )
            worker.start()
            self.index_queues.append(index_queue)
            self.workers.append(worker)
        # Runs on shutdown(), when the pool is garbage-collected, or at interpreter exit.
        self._finalizer = weakref.finalize(self, _shutdown, self.workers, self.index_queues,
                                           self.result_queue, self._graceful)

    @property
    def alive(self) -> bool:
        """Whether the pool is running (not shut down, no worker gone)."""
        return self._finalizer.alive and all(w.is_alive() for w in self.workers)

    def shutdown(self, graceful: bool = True) -> None:
        """Stop the workers; a second call does nothing."""
        self._graceful[0] = graceful
        self._finalizer()

    def epoch_iterator(self, tasks: Iterator[Any], owns_pool: bool) -> _EpochIterator:
        """An iterator over one epoch's batches, for ``tasks`` (index arrays, or None each for an
        iterable dataset); with ``owns_pool`` it shuts the pool down when it ends."""
        self.epoch += 1
        return _EpochIterator(self, tasks, owns_pool)


class _EpochIterator:
    """One epoch's batches from a :class:`WorkerPool`, in task order."""

    def __init__(self, pool: WorkerPool, tasks: Iterator[Any], owns_pool: bool) -> None:
        self._pool, self._tasks, self._owns_pool = pool, tasks, owns_pool
        self._epoch = pool.epoch
        self._sent = 0  # tasks sent
        self._next = 0  # the task whose batch is yielded next
        self._replies: dict[int, tuple[str, Any]] = {}
        self._active = [True] * pool.num_workers
        self._cycle = itertools.cycle(range(pool.num_workers))
        self._tasks_left = True
        for _ in range(pool.prefetch_factor * pool.num_workers):
            self._send()

    def __iter__(self) -> _EpochIterator:
        return self

    def _send(self) -> None:
        """Send the next task to the next worker (in turn) that still has data."""
        if not self._tasks_left or not any(self._active):
            return
        worker_id = next(self._cycle)
        while not self._active[worker_id]:
            worker_id = next(self._cycle)
        try:
            indices = next(self._tasks)
        except StopIteration:
            self._tasks_left = False
            return
        self._pool.index_queues[worker_id].put((self._epoch, self._sent, indices))
        self._sent += 1

    def __next__(self) -> Any:
        while self._next < self._sent:
            while self._next not in self._replies:
                self._receive()
            kind, payload = self._replies.pop(self._next)
            self._next += 1
            self._send()
            if kind == "batch":
                return None if payload is None else pickle.loads(payload)
            if kind == "error":
                self._finish()
                payload.reraise()
        self._finish()
        raise StopIteration

    def _receive(self) -> None:
        """Wait for one reply of this epoch, watching the timeout and the workers' health."""
        timeout = self._pool.timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None
        while True:
            wait = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            if wait <= 0:
                self._finish(graceful=False)
                raise RuntimeError(f"DataLoader timed out after {timeout} seconds waiting for a batch")
            try:
                epoch, number, worker_id, reply = self._pool.result_queue.get(timeout=wait)
            except queue.Empty:
                self._check_workers()
                continue
            if epoch != self._epoch:  # left over from an epoch that was not finished
                continue
            if reply[0] == "end":  # this worker's copy of an iterable dataset is exhausted
                self._active[worker_id] = False
            self._replies[number] = reply
            return

    def _check_workers(self) -> None:
        dead = [w for w in self._pool.workers if not w.is_alive()]
        if dead:
            self._finish(graceful=False)
            codes = ", ".join(f"pid {w.pid} exit code {w.exitcode}" for w in dead)
            raise RuntimeError(f"DataLoader worker(s) exited unexpectedly ({codes})")

    def _finish(self, graceful: bool = True) -> None:
        if self._owns_pool:
            self._pool.shutdown(graceful)

    def __del__(self) -> None:
        # An epoch abandoned half way (break, an error in the training step) still stops its workers.
        if getattr(self, "_owns_pool", False):
            self._pool.shutdown()
