"""Transfer learning on the bundled 8x8 digits: reuse features learned on 0-4 to learn 5-9 from few samples.

1. Pretrain an MLP on every image of the digits 0-4.
2. Cut its head, freeze the body, put a new 5-way head on it and train only
   the head on a handful of images per digit 5-9.
3. Also fine-tune the whole network (body at a tenth of the head's learning
   rate, via ``param_groups_with_lr``), and train the same network from
   scratch on the same few images.
4. Compare test accuracy on all the other images of 5-9 and the number of
   epochs each needs to reach a target accuracy, over several seeds.

Nothing is tuned towards a verdict: the printout says which method wins. On
these tiny images a network trained from scratch on 50 samples is already
good, and features learned on 0-4 cover 5-9 only in part, so the frozen body
can lose to it; the comparison is the point of the example.

Run: ``python examples/transfer_learning.py [--shots 10] [--seeds 3] [--epochs 60]``
(from the repository root with ``nurinet`` installed or on ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable

import numpy as np

import nurinet as nt
from nurinet import nn, optim
from nurinet.training import Model
from nurinet.training.transfer import freeze, param_groups_with_lr, replace_head

HIDDEN = 64


def body_and_head(n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(64, HIDDEN, activation="relu"), nn.Linear(HIDDEN, HIDDEN, activation="relu"),
                         nn.Linear(HIDDEN, n_out))


def few_shot(x: np.ndarray, y: np.ndarray, shots: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """``shots`` training images per class, the rest for testing."""
    train = np.concatenate([rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in np.unique(y)])
    test = np.setdiff1d(np.arange(len(y)), train)
    return x[train], y[train], x[test], y[test]


def pretrain(x: np.ndarray, y: np.ndarray, seed: int, epochs: int = 15) -> Model:
    nt.manual_seed(seed)
    model = Model(body_and_head(5))
    model.compile("adam", "cross_entropy", metrics=["accuracy"], lr=3e-3)
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, generator=nt.Generator(seed))
    return model


def frozen_body(pretrained: Model, seed: int) -> Model:
    model = copy.deepcopy(pretrained)
    nt.manual_seed(seed + 100)
    replace_head(model, nn.Linear(HIDDEN, 5))
    freeze(model.network[:-1])  # the slice shares the layers, so this freezes the body in place
    model.compile("adam", "cross_entropy", metrics=["accuracy"], lr=1e-2)  # after replace_head
    return model


def fine_tuned(pretrained: Model, seed: int) -> Model:
    model = copy.deepcopy(pretrained)
    nt.manual_seed(seed + 100)
    replace_head(model, nn.Linear(HIDDEN, 5))
    model.compile(optim.Adam(param_groups_with_lr(model, 1e-2, frozen_lr_factor=0.1)), "cross_entropy",
                  metrics=["accuracy"])
    return model


def from_scratch(_: Model, seed: int) -> Model:
    nt.manual_seed(seed + 100)
    model = Model(body_and_head(5))
    model.compile("adam", "cross_entropy", metrics=["accuracy"], lr=1e-2)
    return model


def train(model: Model, data: tuple[np.ndarray, ...], epochs: int, seed: int, target: float) -> dict:
    x_train, y_train, x_test, y_test = data
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=16, verbose=0,
                        validation_data=(x_test, y_test), generator=nt.Generator(seed)).history
    curve = history["val_accuracy"]
    reached = [i + 1 for i, acc in enumerate(curve) if acc >= target]
    return {"accuracy": curve[-1], "best": max(curve), "epochs_to_target": reached[0] if reached else None,
            "trainable": model.num_parameters(trainable_only=True)}


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=10, help="training images per digit 5-9")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--pretrain-epochs", type=int, default=15, help="epochs on the digits 0-4")
    parser.add_argument("--target", type=float, default=0.85, help="accuracy for 'epochs to target'")
    args = parser.parse_args(argv)
    x, y = nt.data.load_digits(normalize=True)
    old, new = y < 5, y >= 5
    methods: dict[str, Callable[[Model, int], Model]] = {
        "frozen body, new head": frozen_body, "fine-tune (body lr x0.1)": fine_tuned,
        "from scratch": from_scratch}
    results: dict[str, list[dict]] = {name: [] for name in methods}
    for seed in range(args.seeds):
        pretrained = pretrain(x[old], y[old], seed, args.pretrain_epochs)
        data = few_shot(x[new], y[new] - 5, args.shots, np.random.default_rng(seed))
        for name, make in methods.items():
            results[name].append(train(make(pretrained, seed), data, args.epochs, seed, args.target))
    print(f"digits 5-9 with {args.shots} training images per digit ({5 * args.shots} in all), "
          f"tested on the other {int(new.sum()) - 5 * args.shots}; {args.seeds} seeds, {args.epochs} epochs")
    print(f"{'method':<26} {'final acc':>10} {'best acc':>9} {'epochs to ' + format(args.target, '.0%'):>15} "
          f"{'trainable':>10}")
    for name, runs in results.items():
        final = np.mean([r["accuracy"] for r in runs])
        best = np.mean([r["best"] for r in runs])
        reached = [r["epochs_to_target"] for r in runs if r["epochs_to_target"] is not None]
        epochs = f"{np.mean(reached):.1f} ({len(reached)}/{len(runs)})" if reached else f"never (0/{len(runs)})"
        print(f"{name:<26} {final:>10.4f} {best:>9.4f} {epochs:>15} {runs[0]['trainable']:>10,}")
    return results


if __name__ == "__main__":
    main()
