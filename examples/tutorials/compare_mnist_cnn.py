"""Runs ``pytorch_mnist_cnn.py`` under nurinet and under PyTorch (``--torch``) with the same seeds and
epochs, and writes both test curves (accuracy and average test loss after every epoch) as JSON.

Usage::

    python examples/tutorials/compare_mnist_cnn.py                       # 14 epochs, seed 1, bundled digits
    python examples/tutorials/compare_mnist_cnn.py --seeds 1 2 --epochs 14
    python examples/tutorials/compare_mnist_cnn.py --mnist DIR --epochs 3 # MNIST t10k split 8,000/2,000
    python examples/tutorials/compare_mnist_cnn.py --parity               # same start, no dropout

``--parity`` instead trains the tutorial's ``Net`` in both libraries in one process from the same
initial weights (PyTorch's, seed 1, copied into nurinet), with dropout off (``eval()`` mode), Adadelta
without StepLR and the same batches in the same order, and records both test losses after each epoch: the two then differ
only by float rounding, which separates the libraries' arithmetic from the different initial weights
and dropout masks that the same seed draws in each.

Each run is the tutorial script itself in a fresh process (with this checkout first on ``PYTHONPATH``, so that
it imports the checkout's nurinet rather than an installed copy), its command line recorded in the JSON;
the figures are parsed from what it prints (``Test set: Average loss: 0.1234, Accuracy: 330/359``), so
the losses have the 4 decimals the tutorial prints. The result goes to
``examples/results/tutorial_mnist_cnn[_parity]_<epochs>epochs[_mnist].json`` unless ``--out`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SCRIPT = HERE / "pytorch_mnist_cnn.py"
TEST_LINE = re.compile(r"Test set: Average loss: ([^,\s]+), Accuracy: (\d+)/(\d+)")  # nan too


def run(library: str, seed: int, epochs: int, mnist: str | None) -> dict:
    """One run of the tutorial: its command, per-epoch test loss and accuracy, and wall seconds."""
    argv = [str(SCRIPT.relative_to(ROOT)), "--seed", str(seed), "--epochs", str(epochs)]
    if mnist:
        argv += ["--mnist", mnist]
    if library == "torch":
        argv.append("--torch")
    # The checkout's nurinet, not an installed copy (the script's own folder comes first on its path).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    found = TEST_LINE.findall(done.stdout)
    if len(found) != epochs:
        raise RuntimeError(f"expected {epochs} test lines, found {len(found)}:\n{done.stdout[-2000:]}")
    return {
        "command": "python " + " ".join(argv),
        "test_loss": [float(loss) for loss, _, _ in found],
        "test_correct": [int(correct) for _, correct, _ in found],
        "test_size": int(found[0][2]),
        "test_accuracy": [round(int(correct) / int(size), 6) for _, correct, size in found],
        "seconds": round(seconds, 1),
    }


def _tutorial(library: str):
    """The tutorial's module, imported for ``library`` (it picks PyTorch when ``--torch`` is in argv)."""
    import importlib.util

    argv, sys.argv = sys.argv, [str(SCRIPT)] + (["--torch"] if library == "torch" else [])
    try:
        spec = importlib.util.spec_from_file_location(f"_tutorial_mnist_cnn_{library}", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.argv = argv
    return module


def parity(epochs: int, mnist: str | None) -> dict:
    """Both libraries from the same start (see the module's docstring): per-epoch test losses."""
    import numpy as np
    import torch

    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(HERE))
    from _data import load_images

    import nurinet

    with_torch, with_nurinet = _tutorial("torch"), _tutorial("nurinet")
    torch.manual_seed(1)
    torch_net, nurinet_net = with_torch.Net(), with_nurinet.Net()
    nurinet_net.load_state_dict({k: nurinet.from_numpy(v.detach().numpy().copy())
                                 for k, v in torch_net.state_dict().items()})
    torch_net.eval()
    nurinet_net.eval()
    x_train, y_train, x_test, y_test = load_images(mnist, 0)
    x_train, x_test = (((x - 0.1307) / 0.3081).astype(np.float32) for x in (x_train, x_test))
    libraries = {
        "torch": (torch, with_torch.F, torch_net, torch.optim.Adadelta(torch_net.parameters(), lr=1.0)),
        "nurinet": (nurinet, with_nurinet.F, nurinet_net, nurinet.optim.Adadelta(nurinet_net.parameters(), lr=1.0)),
    }
    losses = {name: [] for name in libraries}
    for _ in range(epochs):
        for name, (lib, F, net, optimizer) in libraries.items():
            for start in range(0, len(x_train), 64):
                optimizer.zero_grad()
                x, y = lib.from_numpy(x_train[start:start + 64]), lib.from_numpy(y_train[start:start + 64])
                F.nll_loss(net(x), y).backward()
                optimizer.step()
            with lib.no_grad():
                losses[name].append(round(F.nll_loss(net(lib.from_numpy(x_test)), lib.from_numpy(y_test)).item(), 6))
    return {"setup": "PyTorch's initial weights (manual_seed(1)) copied into nurinet; dropout off (eval mode); "
                     "Adadelta lr 1.0 without StepLR; batches of 64 in the data's order",
            "test_loss": losses}


def configuration() -> dict:
    """The libraries and the nurinet configuration the runs used (the default unless the environment
    says otherwise)."""
    import numpy
    import torch

    sys.path.insert(0, str(ROOT))
    import nurinet
    from nurinet import _native as native
    from nurinet import gemm

    return {
        "nurinet_native_env": os.environ.get("NURINET_NATIVE", "(unset: default, C kernels on)"),
        "nurinet_native_kernels": native.available(), "nurinet_matmul_provider": gemm.provider(),
        "nurinet_from": str(Path(nurinet.__file__).parent.parent),
        "nurinet_version": getattr(nurinet, "__version__", None),
        "numpy": numpy.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=14, help="epochs (the tutorial's default: 14)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="seeds (the tutorial's default: 1)")
    parser.add_argument("--mnist", metavar="DIR", default=None, help="MNIST t10k files (default: bundled digits)")
    parser.add_argument("--parity", action="store_true", help="same start and no dropout in both, in one process")
    parser.add_argument("--out", default=None, help="JSON result")
    args = parser.parse_args(argv)
    data = "MNIST t10k split 8,000/2,000 (seed 0)" if args.mnist else \
        "bundled 8x8 digits upsampled to 28x28, 1,438 train / 359 test (seed 0)"
    produced_by = "python examples/tutorials/compare_mnist_cnn.py " + " ".join(argv or sys.argv[1:])
    suffix = f"{args.epochs}epochs{'_mnist' if args.mnist else ''}"
    if args.parity:
        record = {"tutorial": "examples/tutorials/pytorch_mnist_cnn.py's Net", "data": data, "epochs": args.epochs,
                  "produced_by": produced_by, **parity(args.epochs, args.mnist), "configuration": configuration()}
        out = Path(args.out) if args.out else ROOT / "examples" / "results" / f"tutorial_mnist_cnn_parity_{suffix}.json"
        out.write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps(record["test_loss"]))
        print(f"wrote {out}")
        return record
    runs = []
    for seed in args.seeds:
        for library in ("nurinet", "torch"):
            result = run(library, seed, args.epochs, args.mnist)
            print(f"{library:8s} seed {seed}: test accuracy {result['test_accuracy'][-1]:.4f}, "
                  f"test loss {result['test_loss'][-1]:.4f}, {result['seconds']:.0f} s", flush=True)
            runs.append({"library": library, "seed": seed, **result})
    record = {
        "tutorial": "pytorch/examples mnist/main.py (examples/tutorials/pytorch_mnist_cnn.py)",
        "data": data, "epochs": args.epochs, "seeds": args.seeds,
        "settings": "the tutorial's defaults: Adadelta lr 1.0, StepLR step 1 gamma 0.7, batch 64, test batch 1000",
        "produced_by": produced_by,
        "configuration": configuration(), "runs": runs,
    }
    out = Path(args.out) if args.out else ROOT / "examples" / "results" / f"tutorial_mnist_cnn_{suffix}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return record


if __name__ == "__main__":
    main()
