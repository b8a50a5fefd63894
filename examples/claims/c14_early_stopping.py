"""Claim E: early stopping (watch the validation loss with patience, restore the best weights) prevents overfitting.

A 64-256-256-10 ReLU MLP is trained on 300 digits with Adam (lr 0.001, batch
32) through ``Model.fit``, with 150 digits for validation and the rest
(stratified) for testing. Run 1 trains for the full 150 epochs; run 2 (same
seed, same initial weights) adds
``EarlyStopping(monitor="val_loss", patience=10, restore_best_weights=True)``.

Criterion (fixed in advance): the claim holds when the early-stopped model's
test cross-entropy is lower by at least 0.05 nats and its test accuracy is no
more than 1 point lower (graded by seed agreement on the loss).

Run: ``python -m examples.claims.c14_early_stopping [--quick] [--seeds N]``
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

import nurinet as nt
from examples.claims import _common as C
from nurinet import nn

CLAIM = "Early stopping on the validation loss (with patience, restoring the best weights) prevents overfitting."


def one_run(seed: int, stop: bool, epochs: int, patience: int) -> dict:
    from nurinet.training import EarlyStopping, Model

    data = C.digits_split(seed, val_fraction=150 / 1797)
    xtr, ytr = data["x_train"][:300], data["y_train"][:300]
    nt.manual_seed(seed)
    model = Model(nn.Sequential(nn.Linear(64, 256, activation="relu"), nn.Linear(256, 256, activation="relu"),
                                nn.Linear(256, 10)))
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"], lr=1e-3)
    callbacks = [EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)] if stop else []
    history = model.fit(xtr, ytr, batch_size=32, epochs=epochs, verbose=0, callbacks=callbacks,
                        validation_data=(data["x_val"], data["y_val"]), generator=nt.Generator(seed))
    test = model.evaluate(data["x_test"], data["y_test"], batch_size=512)
    return {"test_loss": test["loss"], "test_accuracy": test["accuracy"], "epochs_run": len(history.epoch),
            "best_epoch": int(np.argmin(history.history["val_loss"])) + 1,
            "val_loss_curve": history.history["val_loss"]}


def main(argv: Sequence[str] | None = None) -> dict:
    C.require("nurinet.training.EarlyStopping")
    args = C.parse_args(__doc__.splitlines()[0], argv, full_seeds=5, quick_seeds=1)
    run = C.Run("c14_early_stopping", args)
    epochs, patience = (15, 3) if args.quick else (150, 10)
    full = [one_run(s, False, epochs, patience) for s in args.seed_list]
    early = [one_run(s, True, epochs, patience) for s in args.seed_list]
    loss_effect = C.paired_effect([r["test_loss"] for r in early], [r["test_loss"] for r in full], False)
    acc_change = float(np.mean([e["test_accuracy"] - f["test_accuracy"] for e, f in zip(early, full)]))
    grade = C.strength(loss_effect, 0.05)
    held = grade in ("strong", "moderate") and acc_change >= -0.01
    if not held and grade in ("strong", "moderate"):
        grade = "partial"
    stats = {name: {k: C.summary([r[k] for r in rows]) for k in ("test_loss", "test_accuracy", "epochs_run")}
             for name, rows in (("full", full), ("early_stopping", early))}
    evidence = (f"test cross-entropy {stats['full']['test_loss']['mean']:.3f} after all {epochs} epochs vs "
                f"{stats['early_stopping']['test_loss']['mean']:.3f} with early stopping (stopped after "
                f"{stats['early_stopping']['epochs_run']['mean']:.0f} epochs on average); test accuracy "
                f"{stats['full']['test_accuracy']['mean']:.3f} vs {stats['early_stopping']['test_accuracy']['mean']:.3f}.")
    results = {"stats": stats, "loss_effect": loss_effect, "accuracy_change": acc_change,
               "best_epoch": C.summary([r["best_epoch"] for r in full])}

    def plot(fig):
        ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        ax1.plot(range(1, epochs + 1), full[0]["val_loss_curve"], label="validation loss (full run, seed 0)")
        ax1.axvline(early[0]["epochs_run"], c="tab:red", ls="--", label="early stop")
        ax1.set_xlabel("epoch")
        ax1.set_ylabel("cross-entropy")
        ax1.legend(fontsize=7)
        names = ("full", "early_stopping")
        ax2.bar([0, 1], [stats[n]["test_loss"]["mean"] for n in names],
                yerr=[stats[n]["test_loss"]["std"] for n in names])
        ax2.set_xticks([0, 1], [f"{epochs} epochs", "early stopping"])
        ax2.set_ylabel("test cross-entropy")

    return run.finish({"epochs": epochs, "patience": patience, "train_samples": 300, "val_samples": 150,
                       "optimizer": "Adam lr 1e-3"}, results, C.verdict(CLAIM, held, grade, evidence), plot)


if __name__ == "__main__":
    main()
