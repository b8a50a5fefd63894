"""Run by tests/test_distributed.py under ``mpiexec -n 2``: each rank writes its findings as JSON.

Usage: mpiexec -n 2 python tests/distributed_worker.py OUT_DIR

Every check compares the 2-process run with a 1-process run of the same
training on the combined batch, or the processes with one another.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

import nurinet as nt
import nurinet.distributed as dist
from nurinet import nn, optim, threads
from nurinet.data import DataLoader, TensorDataset
from nurinet.distributed import cores
from nurinet.functional import cross_entropy
from nurinet.training import Model
from nurinet.training.callbacks import Callback

PER_RANK_BATCH = 8


def data(n: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 0.5)
    return x, y


def build(seed: int) -> nn.Module:
    nt.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16, activation="tanh"), nn.Linear(16, 3))


def spread(comm: dist.Communicator, arrays: list[np.ndarray]) -> float:
    """The largest difference between the processes over all entries of ``arrays``."""
    flat = np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])
    high, low = flat.copy(), flat.copy()
    comm.allreduce_(high, op="max")
    comm.allreduce_(low, op="min")
    return float(np.max(high - low))


def params_of(module: nn.Module) -> list[np.ndarray]:
    return [p.array.copy() for p in module.parameters()]


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(max(np.max(np.abs(u.astype(np.float64) - v)) for u, v in zip(a, b)))


def check_ddp_loop(comm: dist.Communicator) -> dict:
    """A hand-written loop with DistributedDataParallel and SGD with momentum."""
    x, y = data()
    network = build(seed=100 + comm.rank)  # different on purpose: construction must broadcast
    before = spread(comm, params_of(network))
    ddp = dist.DistributedDataParallel(network, bucket_cap_mb=1e-4)  # ~100-byte buckets: several
    start = params_of(network)
    after_broadcast = spread(comm, start)
    opt = optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    step_spreads = []
    steps = len(x) // (PER_RANK_BATCH * comm.size)
    for step in range(steps):
        first = step * PER_RANK_BATCH * comm.size + comm.rank * PER_RANK_BATCH
        xb, yb = nt.tensor(x[first:first + PER_RANK_BATCH]), nt.tensor(y[first:first + PER_RANK_BATCH])
        opt.zero_grad()
        cross_entropy(ddp(xb), yb).backward()
        ddp.sync_gradients()
        opt.step()
        step_spreads.append(spread(comm, params_of(network)))
    # The same training in one process, on the combined batches, from the same start.
    reference = build(seed=0)
    for p, values in zip(reference.parameters(), start):
        p.array[...] = values
    ref_opt = optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
    big = PER_RANK_BATCH * comm.size
    for step in range(steps):
        xb, yb = nt.tensor(x[step * big:(step + 1) * big]), nt.tensor(y[step * big:(step + 1) * big])
        ref_opt.zero_grad()
        cross_entropy(reference(xb), yb).backward()
        ref_opt.step()
    layout = ddp.reducer.layout([p for p in network.parameters()])
    return {
        "spread_before_broadcast": before,
        "spread_after_broadcast": after_broadcast,
        "step_spreads": step_spreads,
        "diff_vs_single_process": max_diff(params_of(network), params_of(reference)),
        "moved": max_diff(params_of(network), start),
        "buckets": len(layout.buckets),
        "dtypes": sorted({str(p.grad.array.dtype) for p in network.parameters()}),
    }


def check_buffers(comm: dist.Communicator) -> dict:
    """BatchNorm: rank 0's running statistics reach every process before each forward pass."""
    x, y = data()
    network = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    ddp = dist.DistributedDataParallel(network)
    opt = optim.SGD(ddp.parameters(), lr=0.1)
    for step in range(3):
        first = step * 16 + comm.rank * 8
        opt.zero_grad()
        cross_entropy(ddp(nt.tensor(x[first:first + 8])), nt.tensor(y[first:first + 8])).backward()
        ddp.sync_gradients()
        opt.step()
    buffers = [b.array for b in network.buffers()]
    after_local_updates = spread(comm, buffers)  # each rank's last batch moved its own statistics
    dist.broadcast_buffers(network, cache=ddp._buffer_layouts)
    return {
        "buffer_dtypes": sorted({str(b.dtype) for b in buffers}),
        "spread_after_local_updates": after_local_updates,
        "spread_after_broadcast": spread(comm, [b.array for b in network.buffers()]),
        "param_spread": spread(comm, params_of(network)),
        "layouts": len(ddp._buffer_layouts),
    }


def check_fit(comm: dist.Communicator) -> dict:
    """Model.fit with DistributedCallback and a shuffling DistributedSampler, against one process."""
    x, y = data()
    dataset = TensorDataset(x, y)

    def train(model: Model, sampler: dist.DistributedSampler, batch: int, distributed: bool) -> dict:
        model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"], lr=0.01)
        loader = DataLoader(dataset, batch_size=batch, sampler=sampler)
        callbacks = [dist.DistributedCallback(sampler)] if distributed else [_SetEpoch(sampler)]
        history = model.fit(loader, epochs=3, verbose=0, callbacks=callbacks)
        return history.history

    model = Model(build(seed=200 + comm.rank))
    history = train(model, dist.DistributedSampler(len(dataset), shuffle=True, seed=3), PER_RANK_BATCH, True)
    start = params_of(Model(build(seed=200)))  # rank 0's initial parameters, which the callback broadcast
    reference = Model(build(seed=0))
    for p, values in zip(reference.parameters(), start):
        p.array[...] = values
    ref_sampler = dist.DistributedSampler(len(dataset), num_replicas=1, rank=0, shuffle=True, seed=3)
    ref_history = train(reference, ref_sampler, PER_RANK_BATCH * comm.size, False)
    return {
        "spread_after_fit": spread(comm, params_of(model)),
        "diff_vs_single_process": max_diff(params_of(model), params_of(reference)),
        "loss": history["loss"],
        "ref_loss": ref_history["loss"],
        "accuracy": history["accuracy"],
        "ref_accuracy": ref_history["accuracy"],
        "step_restored": "step" not in model.optimizer.__dict__,
    }


class _SetEpoch(Callback):
    def __init__(self, sampler: dist.DistributedSampler) -> None:
        super().__init__()
        self.sampler = sampler

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.sampler.set_epoch(epoch)


def check_optimizer_state(comm: dist.Communicator) -> dict:
    """Adam state built on rank 0 only reaches the other rank through broadcast_optimizer_state."""
    network = build(seed=5)
    opt = optim.Adam(network.parameters(), lr=0.01, betas=(0.8, 0.95))
    if comm.rank == 0:
        x, y = data(16)
        for _ in range(2):
            opt.zero_grad()
            cross_entropy(network(nt.tensor(x)), nt.tensor(y)).backward()
            opt.step()
    dist.broadcast_parameters(network)
    dist.broadcast_optimizer_state(opt)
    arrays = [v for key in sorted(opt.state) for v in opt.state[key].values() if isinstance(v, np.ndarray)]
    steps = [v for key in sorted(opt.state) for v in opt.state[key].values() if not isinstance(v, np.ndarray)]
    return {
        "state_entries": len(opt.state),
        "state_spread": spread(comm, arrays) if arrays else None,
        "scalar_state": steps,
        "betas": list(opt.param_groups[0]["betas"]),
        "betas_is_tuple": isinstance(opt.param_groups[0]["betas"], tuple),
    }


def check_unused_and_mismatch(comm: dist.Communicator) -> dict:
    """A parameter with a gradient on one rank only; then two ranks with different models."""
    a = nt.Parameter(np.ones(3, dtype=np.float32))
    b = nt.Parameter(np.ones(2, dtype=np.float32))
    (a * float(comm.rank + 1)).sum().backward()  # a.grad = rank + 1 on each rank
    if comm.rank == 0:
        (b * 4.0).sum().backward()  # b has a gradient on rank 0 only
    c = nt.Parameter(np.ones(2, dtype=np.float32))  # no gradient anywhere
    dist.allreduce_gradients([a, b, c])
    result = {"a_grad": a.grad.array.tolist(), "b_grad": b.grad.array.tolist(), "c_grad_none": c.grad is None}
    mismatched = nn.Linear(4, 3 + comm.rank)
    try:
        dist.broadcast_parameters(mismatched)
        result["mismatch_error"] = None
    except RuntimeError as err:
        result["mismatch_error"] = str(err)
    result["logs"] = dist.average_logs({"loss": float(comm.rank), "accuracy": 0.5 + comm.rank / 4})
    return result


def main() -> None:
    out = Path(sys.argv[1])
    comm = dist.init()
    result = {"rank": comm.rank, "size": comm.size, "backend": comm.backend}
    # Right after init: each rank's share of the cores (run_two_ranks sets OMP_NUM_THREADS=1, so the BLAS keeps 1).
    result["threads"] = {"init": comm.threads, "cpus": cores.available_cpus(), "local_size": comm.local_size(),
                         "elementwise": threads.get_elementwise_threads(), "blas": threads.get_num_threads()}
    result["ddp"] = check_ddp_loop(comm)
    result["buffers"] = check_buffers(comm)
    result["fit"] = check_fit(comm)
    result["optimizer_state"] = check_optimizer_state(comm)
    result["misc"] = check_unused_and_mismatch(comm)
    sampler = dist.DistributedSampler(11, shuffle=True, seed=1)
    result["sampler"] = {"indices": sampler.indices().tolist(), "len": len(sampler)}
    (out / f"rank{comm.rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
