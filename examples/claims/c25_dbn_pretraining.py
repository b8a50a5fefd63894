"""Claim Y: greedy layer-wise DBN pre-training helps a deep network learn from few labels.

A 64-256-128-10 sigmoid network is trained on 100 labelled digits (the first
100 of a stratified 70/30 split) in two ways, with the same fine-tuning (SGD,
lr 0.1, momentum 0.9, batch 20, 200 epochs, cross-entropy):

* pre-trained: ``nurinet.models.DBN([64, 256, 128])`` is first pre-trained
  greedily (CD-1, 30 epochs per RBM, lr 0.05) on all 1,257 training images
  without their labels, then ``to_classifier(10)`` gives the network;
* random: the same architecture from nurinet's default initialization
  (``nn.Linear``: U(-1/sqrt(fan_in), 1/sqrt(fan_in))).

Criterion (fixed in advance): the claim holds when the pre-trained network's
test accuracy is higher by at least 2 points (graded by ``_common.strength``
over paired seeds: same split, same labelled subset, same batch order).

Run: ``python -m examples.claims.c25_dbn_pretraining [--quick] [--seeds N]``
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "Greedy layer-wise DBN pre-training (on unlabelled data) helps a deep network trained on few labels."


def random_net(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], 10))


def one_run(seed: int, pretrained: bool, sizes: list[int], n_labelled: int, pre_epochs: int,
            epochs: int) -> dict:
    from nurinet.models import DBN

    data = C.digits_split(seed)
    nt.manual_seed(seed)
    if pretrained:
        dbn = DBN(sizes, generator=nt.Generator(seed))
        errors = dbn.pretrain(data["x_train"], epochs=pre_epochs, batch_size=64, lr=0.05)
        model = dbn.to_classifier(10)
        recon = [float(e[-1]) for e in errors]
    else:
        model, recon = random_net(sizes), []
    opt = nt.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    curve: list[float] = []
    C.train_classifier(model, opt, data["x_train"][:n_labelled], data["y_train"][:n_labelled], epochs, 20, seed,
                       on_epoch=lambda e: curve.append(C.accuracy(model, data["x_test"], data["y_test"]))
                       if (e + 1) % max(1, epochs // 20) == 0 else None)
    return {"test": C.accuracy(model, data["x_test"], data["y_test"]),
            "train": C.accuracy(model, data["x_train"][:n_labelled], data["y_train"][:n_labelled]),
            "curve": curve, "reconstruction_error": recon}


def main(argv: Sequence[str] | None = None) -> dict:
    C.require("nurinet.models.DBN")
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=2)
    run = C.Run("c25_dbn_pretraining", args)
    sizes, n_labelled, pre_epochs, epochs = ([64, 32, 16], 100, 2, 10) if args.quick else ([64, 256, 128], 100, 30, 200)
    arms = {"pre-trained": True, "random": False}
    rows = {k: [one_run(s, v, sizes, n_labelled, pre_epochs, epochs) for s in args.seed_list] for k, v in arms.items()}
    stats = {k: {m: C.summary([r[m] for r in rows[k]]) for m in ("train", "test")} for k in arms}
    effect = C.paired_effect([r["test"] for r in rows["pre-trained"]], [r["test"] for r in rows["random"]])
    evidence = (f"{'-'.join(map(str, sizes))}-10 sigmoid net, {n_labelled} labelled digits: test accuracy "
                f"pre-trained {stats['pre-trained']['test']['mean']:.3f} vs random init "
                f"{stats['random']['test']['mean']:.3f} (pre-trained ahead in "
                f"{effect['seeds_agreeing'] * effect['n']:.0f}/{effect['n']} seeds); training accuracy "
                f"{stats['pre-trained']['train']['mean']:.3f} vs {stats['random']['train']['mean']:.3f}.")
    results = {"stats": stats, "effect": effect,
               "mean_curves": {k: np.mean([r["curve"] for r in rows[k]], axis=0).tolist() for k in arms},
               "reconstruction_error": [r["reconstruction_error"] for r in rows["pre-trained"]],
               "per_seed": {k: [r["test"] for r in rows[k]] for k in arms}}

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        for k in arms:
            curve = results["mean_curves"][k]
            ax1.plot(np.linspace(epochs / len(curve), epochs, len(curve)), curve, label=k)
        ax1.set_xlabel("fine-tuning epoch")
        ax1.set_ylabel("test accuracy (mean over seeds)")
        ax1.legend(fontsize=7)
        for i, (a, b) in enumerate(zip(results["per_seed"]["random"], results["per_seed"]["pre-trained"])):
            ax2.plot([0, 1], [a, b], marker="o", c="tab:blue", alpha=0.7)
        ax2.set_xticks([0, 1], ["random init", "DBN pre-trained"])
        ax2.set_ylabel("test accuracy (one line per seed)")

    config = {"sizes": sizes, "labelled": n_labelled, "pretrain": f"CD-1, {pre_epochs} epochs per RBM, lr 0.05, "
              "all training images without labels", "fine_tune": f"SGD lr 0.1 momentum 0.9, batch 20, {epochs} epochs",
              "criterion": "test accuracy pre-trained - random >= 0.02, graded"}
    return run.finish(config, results, C.effect_verdict(CLAIM, effect, 0.02, evidence), plot)


if __name__ == "__main__":
    main()
