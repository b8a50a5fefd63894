"""nurinet.distributed: the single-process behaviour always; 2 processes under mpiexec when MPI is installed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nurinet as nt
import nurinet.distributed as dist
from nurinet import nn, optim, threads
from nurinet.data import DataLoader, TensorDataset
from nurinet.distributed import comm as comm_module
from nurinet.distributed import cores
from nurinet.functional import cross_entropy
from nurinet.training import Model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_group():
    """Each test starts (and leaves) the process group uninitialized, and the thread counts as they were
    (``init`` under a faked launcher sets them to the rank's share of the cores)."""
    elementwise = threads.get_elementwise_threads()
    blas = threads.get_num_threads() if threads.backend() != "none" else None
    dist.shutdown()
    yield
    dist.shutdown()
    if threads.get_elementwise_threads() != elementwise:
        threads.set_elementwise_threads(elementwise)
    if blas is not None and threads.get_num_threads() != blas:
        threads.set_num_threads(blas)


class PairComm(dist.Communicator):
    """A stand-in for rank ``rank`` of 2 processes whose peer holds exactly the same arrays.

    A sum therefore doubles; max and min change nothing. ``disagree`` makes max
    add one, as a peer with other values would. On rank 1, a broadcast from
    rank 0 receives ``root_fill`` everywhere.
    """

    backend = "pair"

    def __init__(self, rank: int = 0, disagree: bool = False) -> None:
        super().__init__()
        self.rank, self.size, self.disagree, self.root_fill = rank, 2, disagree, 0.5
        self.calls: list[tuple[str, str, int]] = []

    def allreduce_(self, array, op="sum"):
        super().allreduce_(array, op)
        self.calls.append(("allreduce", str(array.dtype), array.size))
        if op == "sum":
            array *= 2
        elif op == "max" and self.disagree:
            array += 1
        return array

    def broadcast_(self, array, root=0):
        super().broadcast_(array, root)
        self.calls.append(("broadcast", str(array.dtype), array.size))
        if self.rank != root:
            array.fill(self.root_fill)
        return array


def mlp(seed: int = 0) -> nn.Module:
    nt.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8, activation="relu"), nn.Linear(8, 3))


def backward_once(model: nn.Module, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    x = nt.tensor(rng.standard_normal((5, 4)).astype(np.float32))
    y = nt.tensor(rng.integers(0, 3, 5))
    cross_entropy(model(x), y).backward()


# ----- the process group ----------------------------------------------------------------------------
def test_single_process_fallback_without_a_launcher(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert not dist.is_initialized()
    assert (dist.rank(), dist.world_size(), dist.backend()) == (0, 1, "local")  # initializes implicitly
    assert dist.is_initialized() and dist.is_root()
    assert dist.init() is dist.get_communicator()
    dist.barrier()
    dist.shutdown()
    assert not dist.is_initialized()


def test_explicit_mpi_without_mpi4py_says_how_to_install(monkeypatch):
    monkeypatch.setattr(comm_module, "mpi_available", lambda: False)
    with pytest.raises(ImportError, match=r"pip install 'nurinet\[distributed\]'"):
        dist.init(backend="mpi")
    assert not dist.is_initialized()


def test_launched_by_mpiexec_without_mpi4py_warns_and_runs_alone(monkeypatch):
    monkeypatch.setattr(comm_module, "mpi_available", lambda: False)
    monkeypatch.setenv("PMI_SIZE", "2")
    assert dist.launched_by_mpi()
    with pytest.warns(RuntimeWarning, match="mpi4py is not installed"):
        group = dist.init()
    assert group.size == 1


# ----- threads per process under an MPI launcher ----------------------------------------------------------
def test_thread_share_divides_the_cores_among_the_ranks_of_a_machine():
    assert cores.thread_share(16, 4) == 4
    assert cores.thread_share(2, 2) == 1
    assert cores.thread_share(7, 2) == 3  # rounded down: never more threads than cores
    assert cores.thread_share(2, 8) == 1  # more ranks than cores: one thread each
    assert cores.thread_share(8, 0) == 8


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, None),  # not launched by MPI
    ({"PMI_SIZE": "1"}, None),  # a world of one process
    ({"PMI_SIZE": "2", "MPI_LOCALNRANKS": "2"}, 2),  # MPICH's Hydra
    ({"OMPI_COMM_WORLD_SIZE": "8", "OMPI_COMM_WORLD_LOCAL_SIZE": "4"}, 4),  # Open MPI, 2 machines
    ({"MV2_COMM_WORLD_SIZE": "4", "MV2_COMM_WORLD_LOCAL_SIZE": "2"}, 2),  # MVAPICH2
    ({"PMIX_SIZE": "6", "PMIX_RANK": "3", "PMIX_LOCAL_SIZE": "3"}, 3),  # PMIx
    ({"PMI_SIZE": "4"}, 4),  # no local count: all ranks assumed on this machine
    ({"PMI_SIZE": "2", "MPI_LOCALNRANKS": "junk"}, 2),
])
def test_local_ranks_from_the_launchers_variables(environ, expected):
    assert cores.local_ranks(environ) == expected


def test_rank_threads_rules():
    mpich = {"PMI_SIZE": "2", "MPI_LOCALNRANKS": "2"}
    assert cores.rank_threads({}, 16) == (None, False)  # one process keeps its defaults
    assert cores.rank_threads(mpich, 2) == (1, True)  # the case of the issue: 2 ranks on 2 cores
    assert cores.rank_threads(mpich, 16) == (8, True)
    assert cores.rank_threads(mpich, 16, ranks=4) == (4, True)  # MPI's own count of ranks on this machine
    assert cores.rank_threads({**mpich, "NURINET_NUM_THREADS": "3"}, 16) == (3, True)
    assert cores.rank_threads({**mpich, "OMP_NUM_THREADS": "1"}, 16) == (8, False)  # the BLAS keeps its count
    assert cores.rank_threads({**mpich, "NURINET_NUM_THREADS": "3"}, 16, threads=5) == (5, True)
    assert cores.rank_threads({}, 16, threads=2) == (2, True)  # explicit: applies to one process too
    with pytest.raises(ValueError, match="NURINET_NUM_THREADS must be a positive integer"):
        cores.rank_threads({**mpich, "NURINET_NUM_THREADS": "0"}, 16)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            cores.rank_threads({}, 16, threads=bad)


def test_init_gives_each_rank_its_share_and_a_single_process_its_defaults(monkeypatch):
    for name in (*cores.WORLD_SIZE_VARIABLES, *cores.LOCAL_SIZE_VARIABLES, *cores.BLAS_VARIABLES,
                 "NURINET_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cores, "available_cpus", lambda: 8)
    set_calls = []
    monkeypatch.setattr(nt.threads, "set_num_threads", set_calls.append)
    before = threads.get_elementwise_threads()
    assert dist.init("local").threads is None and threads.get_elementwise_threads() == before
    assert set_calls == []
    dist.shutdown()
    # A launcher's variables with the local backend: the cores are shared all the same.
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setenv("MPI_LOCALNRANKS", "4")
    assert dist.init("local").threads == 2
    assert threads.get_elementwise_threads() == 2 and set_calls == [2]
    assert dist.init(threads=3).threads == 3  # explicit, on the group already there
    assert threads.get_elementwise_threads() == 3 and set_calls == [2, 3]
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        dist.init(threads=0)


def test_init_rejects_unknown_backends_and_switching():
    with pytest.raises(ValueError, match="unknown distributed backend 'nccl'"):
        dist.init("nccl")
    dist.init("local")
    if dist.mpi_available():
        with pytest.raises(RuntimeError, match="already initialized with the 'local' backend"):
            dist.init("mpi")


def test_local_collectives_check_their_arguments():
    group = dist.init("local")
    with pytest.raises(ValueError, match="root must be a rank between 0 and 0"):
        group.broadcast_(np.zeros(2, np.float32), root=1)
    with pytest.raises(TypeError, match="C-contiguous NumPy array"):
        group.allreduce_(np.zeros((4, 4), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="unknown reduction op 'prod'"):
        group.allreduce_(np.zeros(2, np.float32), op="prod")


# ----- buckets and gradient averaging ---------------------------------------------------------------
def test_bucket_layout_groups_by_dtype_and_respects_the_cap():
    specs = [((3, 4), np.float32), ((5,), np.float64), ((10,), np.float32), ((2,), np.float64), ((100,), np.float32)]
    layout = dist.BucketLayout(specs, cap_bytes=64)
    summary = [(str(b.dtype), [m[0] for m in b.members], b.size) for b in layout.buckets]
    # 12 float32 = 48 bytes: 10 more would pass 64 bytes, so a new bucket; the 2 float64 fit beside the 5;
    # the 400-byte array gets a bucket of its own.
    assert summary == [("float32", [0], 12), ("float64", [1, 3], 7), ("float32", [2], 10),
                       ("float32", [4], 100)]
    big = dist.BucketLayout(specs, cap_bytes=1 << 20)
    assert [(str(b.dtype), b.size) for b in big.buckets] == [("float32", 122), ("float64", 7)]
    assert all(b.buffer.dtype == b.dtype and b.buffer.size == b.size for b in big.buckets)
    with pytest.raises(ValueError, match="bucket size must be positive"):
        dist.BucketLayout(specs, cap_bytes=0)


def test_allreduce_gradients_averages_in_place_one_message_per_bucket():
    model = mlp()
    backward_once(model)
    before = {name: p.grad.array.copy() for name, p in model.named_parameters()}
    arrays = {name: p.grad.array for name, p in model.named_parameters()}
    pair = PairComm()
    dist.allreduce_gradients(model, average=True, comm=pair)
    for name, p in model.named_parameters():
        assert p.grad.array is arrays[name]  # written in place
        assert p.grad.array.dtype == np.float32
        np.testing.assert_array_equal(p.grad.array, before[name])  # (g + g) / 2
    # the layout check (max and min of 3 numbers, first use only), the "has a gradient" flags,
    # then one float32 bucket for all 67 numbers
    assert pair.calls == [("allreduce", "int64", 3)] * 2 + [("allreduce", "int32", 4),
                                                          ("allreduce", "float32", 4 * 8 + 8 + 8 * 3 + 3)]
    dist.allreduce_gradients(model.parameters(), average=False, comm=PairComm())
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad.array, 2 * before[name])


def test_gradient_reducer_with_small_buckets_and_missing_gradients():
    model = mlp()
    backward_once(model)
    frozen = model[1].bias
    frozen.grad = None  # no gradient on this process (nor, here, on its peer)
    expected = [p.grad.array.copy() if p.grad is not None else None for p in model.parameters()]
    pair = PairComm()
    reducer = dist.GradientReducer(bucket_cap_mb=64 / 2**20, comm=pair)  # 64-byte buckets
    reducer.allreduce(model.parameters())
    reducer.allreduce(model.parameters())  # the layout is reused (and checked once)
    assert frozen.grad is None
    for p, e in zip(model.parameters(), expected):
        if e is not None:
            np.testing.assert_array_equal(p.grad.array, e)
    buckets = len(reducer.layout(list(model.parameters())).buckets)
    assert buckets == 4  # 32 | 8 | 24 | 3 floats of 4 bytes, at most 64 bytes each
    per_call = [c for c in pair.calls if c[1] == "float32"]
    assert len(per_call) == 2 * buckets
    assert len(reducer.layouts) == 1


def test_disagreeing_processes_raise_instead_of_hanging():
    with pytest.raises(RuntimeError, match="processes disagree on the shapes and dtypes"):
        dist.broadcast_parameters(mlp(), comm=PairComm(disagree=True))
    with pytest.raises(RuntimeError, match="disagree on the names of the logs"):
        dist.average_logs({"loss": 1.0}, comm=PairComm(disagree=True))


def test_average_logs_and_broadcast_with_a_peer():
    assert dist.average_logs({"loss": 0.5, "accuracy": 0.75}, comm=PairComm()) == {"accuracy": 0.75, "loss": 0.5}
    model = mlp()
    arrays = [p.array for p in model.parameters()]
    pair = PairComm(rank=1)  # a receiving rank: its parameters are overwritten by the root's
    dist.broadcast_parameters(model, root=0, comm=pair)
    assert [c[0] for c in pair.calls] == ["allreduce", "allreduce", "broadcast"]  # check, then one bucket
    for p, array in zip(model.parameters(), arrays):
        assert p.array is array and p.array.dtype == np.float32  # written in place
        np.testing.assert_array_equal(p.array, np.full(p.array.shape, 0.5, np.float32))
    with pytest.raises(ValueError, match="root must be a rank between 0 and 1"):
        dist.broadcast_parameters(model, root=2, comm=pair)


def test_single_process_collectives_are_no_ops():
    model = mlp()
    backward_once(model)
    grads = [p.grad.array.copy() for p in model.parameters()]
    opt = optim.Adam(model.parameters())
    dist.broadcast_parameters(model)
    dist.broadcast_optimizer_state(opt)
    dist.allreduce_gradients(model)
    for p, g in zip(model.parameters(), grads):
        np.testing.assert_array_equal(p.grad.array, g)
    assert dist.average_logs({"loss": 2.0}) == {"loss": 2.0}
    with pytest.raises(TypeError, match="item 0 is a ndarray"):
        dist.allreduce_gradients([np.zeros(3)])


# ----- the sampler --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, replicas, drop_last", [(10, 2, False), (11, 2, False), (11, 3, True),
                                                     (7, 4, False), (3, 5, False), (0, 2, False)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_distributed_sampler_partitions_the_indices(n, replicas, drop_last, shuffle):
    shares = [dist.DistributedSampler(n, replicas, r, shuffle=shuffle, seed=4, drop_last=drop_last).indices()
              for r in range(replicas)]
    sizes = {len(s) for s in shares}
    assert len(sizes) == 1  # every process gets as many samples, so all take the same number of steps
    combined = np.concatenate(shares)
    if drop_last:
        assert len(combined) == n - n % replicas and len(set(combined.tolist())) == len(combined)
    else:
        assert set(combined.tolist()) == set(range(n))  # covers everything
        assert len(combined) - len(set(combined.tolist())) == len(combined) - n  # repeats only the padding
    assert combined.dtype == np.int64


def test_distributed_sampler_epochs_and_seeds():
    a = dist.DistributedSampler(20, 2, 0, shuffle=True, seed=1)
    b = dist.DistributedSampler(range(20), 2, 0, shuffle=True, seed=1)
    assert list(a) == list(b) and len(a) == 10
    first = a.indices()
    a.set_epoch(1)
    assert not np.array_equal(first, a.indices())
    a.set_epoch(0)
    np.testing.assert_array_equal(first, a.indices())
    assert list(dist.DistributedSampler(5, 2, 1, shuffle=False)) == [1, 3, 0]
    one = dist.DistributedSampler(6, shuffle=False)  # num_replicas and rank from the process group
    assert (one.num_replicas, one.rank, list(one)) == (1, 0, [0, 1, 2, 3, 4, 5])


def test_distributed_sampler_errors():
    with pytest.raises(ValueError, match=r"rank must lie in \[0, 1\]"):
        dist.DistributedSampler(10, 2, 2)
    with pytest.raises(ValueError, match="num_replicas must be a positive integer"):
        dist.DistributedSampler(10, 0, 0)
    with pytest.raises(ValueError, match="leaves no sample"):
        dist.DistributedSampler(3, 4, 0, drop_last=True)
    with pytest.raises(TypeError, match="a dataset or its length"):
        dist.DistributedSampler(object())
    with pytest.raises(ValueError, match="non-negative integer"):
        dist.DistributedSampler(4, 1, 0).set_epoch(-1)


@pytest.mark.torch
@pytest.mark.parametrize("n, replicas, drop_last", [(10, 3, False), (10, 3, True), (2, 3, False), (9, 3, True)])
def test_distributed_sampler_matches_pytorch_without_shuffling(n, replicas, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    for r in range(replicas):
        theirs = torch_data.DistributedSampler(list(range(n)), replicas, r, shuffle=False, drop_last=drop_last)
        ours = dist.DistributedSampler(n, replicas, r, shuffle=False, drop_last=drop_last)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_dataloader_follows_a_sampler():
    x = np.arange(10, dtype=np.float32)[:, None]
    dataset = TensorDataset(x, np.arange(10))
    sampler = dist.DistributedSampler(10, 2, 1, shuffle=False)
    loader = DataLoader(dataset, batch_size=2, sampler=sampler)
    assert len(loader) == 3
    assert [yb.array.tolist() for _, yb in loader] == [[1, 3], [5, 7], [9]]
    slow = DataLoader(dataset, batch_size=2, sampler=sampler, collate_fn=lambda s: [i for _, i in s])
    assert [list(map(int, b)) for b in slow] == [[1, 3], [5, 7], [9]]
    with pytest.raises(ValueError, match="sampler and shuffle=True exclude each other"):
        DataLoader(dataset, sampler=sampler, shuffle=True)
    with pytest.raises(TypeError, match="sampler must be an iterable of indices"):
        DataLoader(dataset, sampler=3)


# ----- the wrapper and the fit callback in one process ---------------------------------------------------
def test_distributed_data_parallel_in_one_process_trains_like_the_module():
    x = nt.tensor(np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32))
    y = nt.tensor(np.array([0, 1, 2, 0, 1, 2]))
    plain, wrapped = mlp(3), dist.DistributedDataParallel(mlp(3))
    np.testing.assert_array_equal(wrapped(x).array, plain(x).array)
    assert next(n for n, _ in wrapped.named_parameters()) == "module.0.weight"
    for model in (plain, wrapped):
        opt = optim.SGD(model.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            cross_entropy(model(x), y).backward()
            if model is wrapped:
                wrapped.sync_gradients()
            opt.step()
    for a, b in zip(plain.parameters(), wrapped.module.parameters()):
        np.testing.assert_array_equal(a.array, b.array)
    assert "world_size=1" in repr(wrapped)
    with pytest.raises(TypeError, match="wraps a Module"):
        dist.DistributedDataParallel(lambda t: t)


def test_distributed_callback_in_one_process_changes_nothing():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    histories = []
    for use_callback in (False, True):
        model = Model(nn.Sequential(mlp(5), nn.BatchNorm1d(3)))
        model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"], lr=0.01)
        sampler = dist.DistributedSampler(40, shuffle=True, seed=2)
        loader = DataLoader(TensorDataset(x, y), batch_size=8, sampler=sampler)
        callbacks = [dist.DistributedCallback(sampler)] if use_callback else []
        history = model.fit(loader, epochs=2, verbose=0, callbacks=callbacks)
        histories.append(history.history)
        assert "step" not in model.optimizer.__dict__  # the wrapped step is removed after fit
    assert histories[0]["loss"][0] == histories[1]["loss"][0]
    assert histories[0]["loss"][1] != histories[1]["loss"][1]  # set_epoch reshuffled the second epoch
    assert len(dist.root_only(dist.DistributedCallback(), root=0)) == 1  # this process is rank 0


def test_distributed_callback_wraps_the_step_once_and_restores_it():
    model = Model(mlp())
    model.compile(optimizer="sgd", loss="cross_entropy", lr=0.1)
    optimizer = model.optimizer
    calls = []

    def patched(closure=None):  # someone else's instance-level patch of step
        calls.append("patched")
        return type(optimizer).step(optimizer, closure)

    optimizer.step = patched
    first, second = dist.DistributedCallback(), dist.DistributedCallback()
    for callback in (first, second):
        callback.set_model(model)
        callback.on_train_begin()  # the second one finds the first's wrapper (as after a fit that raised)
    assert optimizer.step.__wrapped__ is patched  # wrapped once, around the user's patch
    backward_once(model)
    assert optimizer.step(lambda: None) is None and calls == ["patched"]
    second.on_train_end()
    assert optimizer.step is patched


def test_distributed_callback_needs_a_compiled_model_and_a_real_sampler():
    with pytest.raises(TypeError, match="sampler must have set_epoch"):
        dist.DistributedCallback(sampler=[1, 2])
    model = Model(mlp())
    callback = dist.DistributedCallback()
    callback.set_model(model)
    with pytest.raises(RuntimeError, match="call model.compile"):
        callback.on_train_begin()


def test_importing_distributed_does_not_import_mpi4py():
    code = "import sys, nurinet.distributed as d; d.rank(); print('mpi4py' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# ----- stopping together and failing loudly -----------------------------------------------------------
class PeerComm(PairComm):
    """PairComm whose peer wants to stop (adds 1 to the flag of a stop message) or logged other names."""

    def __init__(self, rank: int = 0, peer_stops: bool = False, peer_names_differ: bool = False) -> None:
        super().__init__(rank)
        self.peer_stops, self.peer_names_differ = peer_stops, peer_names_differ

    def allreduce_(self, array, op="sum"):
        super().allreduce_(array, op)
        if op == "sum" and array.dtype == np.float64 and array.size >= 3:  # [stop, tag, tag**2, logs...]
            array[0] += self.peer_stops
            array[1] += self.peer_names_differ
        return array


def test_agree_on_stop_ors_the_wishes_and_averages_the_logs_in_one_message():
    assert dist.agree_on_stop(True) == (True, {})  # one process: its own wish and logs
    assert dist.any_process(False) is False
    pair = PeerComm()
    assert dist.agree_on_stop(False, {"loss": 0.5, "accuracy": 0.25}, comm=pair) == (
        False, {"accuracy": 0.25, "loss": 0.5})
    assert dist.agree_on_stop(True, {"loss": float("nan")}, comm=pair)[0] is True
    assert len(pair.calls) == 2  # one allreduce each
    assert dist.agree_on_stop(False, {"loss": 1.0}, comm=PeerComm(peer_stops=True))[0] is True
    assert dist.any_process(False, comm=PeerComm(peer_stops=True)) is True
    with pytest.raises(RuntimeError, match="logged different names"):
        dist.agree_on_stop(False, {"loss": 1.0}, comm=PeerComm(peer_names_differ=True))


def test_distributed_callback_shares_the_stop_and_the_logs_of_every_batch_and_epoch():
    model = Model(mlp())
    model.compile(optimizer="sgd", loss="cross_entropy", lr=0.1)
    for hook, args in (("on_train_batch_end", (3,)), ("on_epoch_end", (1,))):
        callback = dist.DistributedCallback(comm=PeerComm(peer_stops=True))
        callback.set_model(model)
        model.stop_training = False
        logs = {"loss": 0.5}
        getattr(callback, hook)(*args, logs)
        assert model.stop_training is True and logs == {"loss": 0.5}
        quiet = dist.DistributedCallback(comm=PeerComm(), average_metrics=False)
        quiet.set_model(model)
        model.stop_training = False
        getattr(quiet, hook)(*args, None)  # no logs to average: the stop flag still travels
        assert model.stop_training is False and quiet.comm.calls == [("allreduce", "float64", 3)]


def test_init_aborts_the_job_on_an_uncaught_exception(monkeypatch):
    printed, aborted = [], []

    class Group(PairComm):
        def abort(self, code=1):
            aborted.append((code, list(printed)))

    monkeypatch.setattr(sys, "excepthook", lambda *exc: printed.append(exc[0].__name__))
    original = sys.excepthook
    monkeypatch.setattr(comm_module, "_choose_backend", lambda backend: "local" if backend == "local" else "mpi")
    monkeypatch.setattr(comm_module, "MPICommunicator", lambda timeout=None: Group(rank=1))
    dist.init()
    assert sys.excepthook is not original
    sys.excepthook(ValueError, ValueError("boom"), None)
    assert aborted == [(1, ["ValueError"])]  # the traceback is printed first, then the job aborted
    dist.shutdown()
    assert sys.excepthook is original
    dist.init(abort_on_exception=False)
    assert sys.excepthook is original
    dist.shutdown()
    dist.init("local")  # one process: nothing to abort, Python's own handling stays
    assert sys.excepthook is original


def test_collective_timeout_aborts_and_is_checked():
    for bad in (0, -1.0, True, "10"):
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            dist.init(timeout=bad)

    class NeverDone:
        def Test(self):
            return False

    class Aborted(Exception):
        pass

    group = object.__new__(dist.MPICommunicator)  # the waiting loop alone, without MPI
    group.rank, group.size, group.timeout = 0, 2, 0.05

    def abort(code=1):
        raise Aborted(code)

    group.abort = abort
    with pytest.raises(Aborted):
        group._wait(NeverDone(), "an allreduce")


# ----- two processes under mpiexec -----------------------------------------------------------------------
def _mpiexec() -> str | None:
    """The launcher of the MPI that mpi4py uses: the one beside this Python first (the mpich wheel's)."""
    if not dist.mpi_available():
        return None
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec") or shutil.which("mpirun")


def run_two_ranks(script: str, *args: str, limit_s: float = 60.0) -> tuple[int, str, float]:
    """Run ``tests/<script> ARGS`` on 2 MPI processes: (exit status, stdout and stderr, seconds taken).

    The job runs in a session of its own, so that a job still running after
    ``limit_s`` seconds is killed whole (mpiexec and both ranks), and fails the test.
    """
    launcher = _mpiexec()
    if launcher is None:
        pytest.skip("mpi4py or mpiexec is not installed (pip install 'nurinet[distributed]')")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    command = [launcher, "-n", "2", sys.executable, str(ROOT / "tests" / script), *args]
    start = time.monotonic()
    job = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                           cwd=ROOT, start_new_session=True)
    try:
        output, _ = job.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        output, _ = job.communicate()
        pytest.fail(f"mpiexec -n 2 tests/{script} {' '.join(args)} did not end within {limit_s:g} s:\n{output}")
    return job.returncode, output, time.monotonic() - start


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The findings of tests/distributed_worker.py on each of 2 MPI processes."""
    out = tmp_path_factory.mktemp("mpi")
    status, output, _ = run_two_ranks("distributed_worker.py", str(out))
    assert status == 0, f"mpiexec failed:\n{output}"
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


def test_mpi_world_of_two(two_ranks):
    assert [(r["rank"], r["size"], r["backend"]) for r in two_ranks] == [(0, 2, "mpi"), (1, 2, "mpi")]


def test_mpi_ranks_share_the_cores(two_ranks):
    for result in two_ranks:
        share = result["threads"]
        assert share["local_size"] == 2  # both ranks on this machine, as MPI itself counts them
        assert share["init"] == share["elementwise"] == max(1, share["cpus"] // 2)
        assert share["blas"] in (None, 1)  # OMP_NUM_THREADS=1 from run_two_ranks wins over the share


def test_mpi_ddp_matches_one_process_on_the_combined_batch(two_ranks):
    for result in two_ranks:
        ddp = result["ddp"]
        assert ddp["spread_before_broadcast"] > 0.01  # the ranks started from different weights
        assert ddp["spread_after_broadcast"] == 0.0
        assert ddp["step_spreads"] == [0.0] * 4  # identical parameters after every step
        assert ddp["moved"] > 0.01
        assert ddp["diff_vs_single_process"] < 1e-6  # float32 rounding only
        assert ddp["buckets"] == 4 and ddp["dtypes"] == ["float32"]


def test_mpi_buffers_come_from_rank_0(two_ranks):
    for result in two_ranks:
        buffers = result["buffers"]
        assert buffers["buffer_dtypes"] == ["float32", "int64"]  # running stats and the batch counter
        assert buffers["spread_after_local_updates"] > 0  # the ranks saw different batches
        assert buffers["spread_after_broadcast"] == 0.0
        assert buffers["param_spread"] == 0.0
        assert buffers["layouts"] == 1  # one layout, reused by every forward pass


def test_mpi_fit_with_callback_matches_one_process(two_ranks):
    for result in two_ranks:
        fit = result["fit"]
        assert fit["spread_after_fit"] == 0.0
        assert fit["diff_vs_single_process"] < 1e-6
        np.testing.assert_allclose(fit["loss"], fit["ref_loss"], rtol=1e-5)  # averaged over the ranks
        np.testing.assert_allclose(fit["accuracy"], fit["ref_accuracy"], atol=1e-12)
        assert fit["step_restored"]
    assert two_ranks[0]["fit"]["loss"] == two_ranks[1]["fit"]["loss"]


def test_mpi_optimizer_state_and_edge_cases(two_ranks):
    for result in two_ranks:
        state = result["optimizer_state"]
        assert state["state_entries"] == 4 and state["state_spread"] == 0.0
        assert state["scalar_state"] == [2, 2, 2, 2]
        assert state["betas"] == [0.8, 0.95] and state["betas_is_tuple"]
        misc = result["misc"]
        assert misc["a_grad"] == [1.5, 1.5, 1.5]  # (1 + 2) / 2
        assert misc["b_grad"] == [2.0, 2.0]  # (4 + 0) / 2: the rank without a gradient adds zeros
        assert misc["c_grad_none"]
        assert "processes disagree on the shapes" in misc["mismatch_error"]
        assert misc["logs"] == {"accuracy": 0.625, "loss": 0.5}


def test_mpi_sampler_shares_do_not_overlap(two_ranks):
    shares = [r["sampler"]["indices"] for r in two_ranks]
    assert all(len(s) == 6 for s in shares)
    combined = shares[0] + shares[1]
    assert set(combined) == set(range(11))  # 11 samples, one repeated to give both ranks 6
    assert len(set(shares[0])) == 6 and len(set(shares[1])) == 6


# ----- faults on one of 2 processes under mpiexec ----------------------------------------------------------
# A failing rank must end the job within a minute (issue 20); here it takes about a second (the timeout's 3 s
# in the exit case), so the limit only matters when the fault handling is broken.
def test_mpi_exception_on_one_rank_aborts_the_job(tmp_path):
    status, output, seconds = run_two_ranks("distributed_fault_worker.py", "raise", str(tmp_path))
    assert status != 0, output
    assert "ValueError: injected failure on rank 1" in output  # the traceback is printed before the abort
    assert "rank 1 of 2 stopped on an uncaught ValueError; aborting the MPI job" in output
    assert seconds < 60


def test_mpi_rank_that_exits_quietly_is_caught_by_the_collective_timeout(tmp_path):
    status, output, seconds = run_two_ranks("distributed_fault_worker.py", "exit", str(tmp_path))
    assert status != 0, output
    assert seconds < 60
    # Either rank 0's collective timeout ends the job (and says so), or MPICH's launcher notices the
    # process that exited first and kills the rest without a word; which comes first depends on load.
    if output.strip():
        assert "waited more than 3 s for the other processes" in output or "exit" in output.lower(), output


@pytest.fixture(scope="module")
def agreeing_ranks(tmp_path_factory):
    """What each of 2 MPI processes saw when one of them alone wanted to stop (distributed_fault_worker.py)."""
    out = tmp_path_factory.mktemp("mpi_stop")
    status, output, _ = run_two_ranks("distributed_fault_worker.py", "agree", str(out))
    assert status == 0, f"mpiexec failed:\n{output}"
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.parametrize("scenario, last_batch", [
    ("nan", [1, 2]),  # TerminateOnNaN: rank 1's loss is NaN at epoch 1, batch 2; rank 0's is finite
    ("train_step", [0, 4]),  # rank 1 sets stop_training in its 5th train_step
    ("any_process", [1, 0]),  # a callback shares rank 1's wish (its 7th batch) with any_process
    ("local_state", [0, 5]),  # a callback after DistributedCallback stops on rank 1 alone: should_stop()
    ("early_stopping", None),  # each rank validates on its own data; the averaged val_loss decides
])
def test_mpi_a_stop_on_one_rank_stops_both_at_the_same_step(agreeing_ranks, scenario, last_batch):
    rank0, rank1 = (result[scenario] for result in agreeing_ranks)
    assert rank0["stop_training"] and rank1["stop_training"]
    assert rank0["seen"] == rank1["seen"]  # the same batches ran on both ranks
    if last_batch is not None:
        assert rank0["seen"][-1] == last_batch
    assert rank0["weights"] == rank1["weights"]  # bit for bit (NaN after the NaN step, on both)
    assert rank0["history"] == rank1["history"]
    assert rank0 == rank1
    if scenario == "nan":
        assert rank0["stopped"] == [1, 2]
