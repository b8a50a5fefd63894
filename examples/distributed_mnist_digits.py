"""Data-parallel training of the digits MLP over several processes with MPI.

Each process holds a copy of the MLP of ``python -m nurinet.demo`` and trains on
its own share of the bundled 8x8 digits (a :class:`DistributedSampler`); after
every backward pass the gradients are averaged over the processes
(:class:`DistributedCallback`), so every copy makes the same update and the
copies stay identical. Only rank 0 prints.

``--batch-size`` is the global batch: each of N processes takes
``batch_size / N`` samples per step, so the updates are those of one process
with the whole batch (up to float32 rounding and the dropout masks, which are
drawn per process), whatever N is.

Run: ``mpiexec -n 2 python examples/distributed_mnist_digits.py [--epochs 40]``
(needs ``pip install 'nurinet[distributed]'``; from the repository root with
``nurinet`` installed or on ``PYTHONPATH``). Without ``mpiexec`` it trains in
one process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import nurinet as nt
import nurinet.distributed as dist
from nurinet.data import DataLoader, TensorDataset, load_digits, train_val_test_split
from nurinet.demo import build_mlp
from nurinet.training import Model
from nurinet.training.checkpoint import ModelCheckpoint


def run(epochs: int, batch_size: int, lr: float, seed: int, checkpoint: str | None) -> dict:
    group = dist.init()
    if batch_size % group.size:
        raise SystemExit(f"--batch-size {batch_size} must be a multiple of the {group.size} processes")
    x, y = load_digits(normalize=True)
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = train_val_test_split(
        x, y, val_fraction=0.1, test_fraction=0.2, stratify=True, generator=nt.Generator(seed)
    )
    nt.manual_seed(seed)
    model = Model(build_mlp())  # rank 0's initial weights are broadcast at the start of fit
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"], lr=lr)
    nt.manual_seed(seed + 1 + group.rank)  # each process draws its own dropout masks

    sampler = dist.DistributedSampler(len(x_train), shuffle=True, seed=seed)
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=batch_size // group.size, sampler=sampler)
    # Every process evaluates the whole validation set: the averaged val_ logs are then exact.
    val = DataLoader(TensorDataset(x_val, y_val), batch_size=256)
    saving = dist.root_only(ModelCheckpoint(checkpoint, monitor="val_loss")) if checkpoint else []
    start = time.perf_counter()
    history = model.fit(train, epochs=epochs, validation_data=val, verbose=2 if group.rank == 0 else 0,
                        callbacks=[dist.DistributedCallback(sampler), *saving])
    seconds = time.perf_counter() - start
    scores = model.predict(x_test, batch_size=256)
    accuracy = float(np.mean(scores.argmax(axis=1) == y_test))
    return {"processes": group.size, "accuracy": accuracy, "seconds": seconds,
            "final_loss": history.history["loss"][-1], "per_process_samples": len(sampler)}


def main() -> None:
    parser = argparse.ArgumentParser(description="Data-parallel digits MLP: mpiexec -n 2 python " + __file__)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64, help="the global batch, over all processes")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="save the best model here (rank 0 only)")
    args = parser.parse_args()
    result = run(args.epochs, args.batch_size, args.lr, args.seed, args.checkpoint)
    if dist.is_root():
        print(f"{result['processes']} process(es), {result['per_process_samples']} training samples each: "
              f"test accuracy {result['accuracy']:.4f}, final training loss {result['final_loss']:.4f} "
              f"({result['seconds']:.1f} s of training)")


if __name__ == "__main__":
    main()
