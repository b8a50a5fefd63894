"""XOR from gates: three trained perceptrons (AND, NAND, OR) wired into the XOR no single one can learn.

A perceptron draws one straight line, so it learns AND, NAND and OR (each separable by a line)
and never settles on XOR (no line separates (0, 1) and (1, 0) from (0, 0) and (1, 1)). Two
layers of them do: ``XOR(a, b) = AND(NAND(a, b), OR(a, b))``; NAND and OR form a hidden layer
whose two outputs make XOR separable for the AND on top.

Each gate is an ``nn.Perceptron`` trained by Rosenblatt's rule on its four-row truth table,
from zeros or, with ``--random-starts N``, from N random starts (``weight_init="uniform"``).

Measures: whether each gate converged and in how many epochs, the learned lines, the wired
network's truth table against XOR's, and a single perceptron's mistakes on XOR after
``--epochs`` epochs (it never reaches zero).

Writes ``examples/results/xor_from_gates[_quick].json``.

Usage::

    python examples/xor_from_gates.py                     # gates from zeros
    python examples/xor_from_gates.py --random-starts 20  # and from 20 random starts
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # so that the example runs from a checkout without installing nurinet

import nurinet as nt
from examples import _common as common
from nurinet import nn

INPUTS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
TRUTH_TABLES = {
    "AND": np.array([0, 0, 0, 1]),
    "NAND": np.array([1, 1, 1, 0]),
    "OR": np.array([0, 1, 1, 1]),
    "XOR": np.array([0, 1, 1, 0]),
}


def train_gate(name: str, epochs: int, weight_init: str = "zeros",
               generator: nt.Generator | None = None) -> tuple[nn.Perceptron, dict[str, Any]]:
    """A perceptron trained on the truth table of ``name``, and what its training did."""
    gate = nn.Perceptron(2, weight_init=weight_init, generator=generator)
    fit = gate.fit(INPUTS, TRUTH_TABLES[name], epochs=epochs)
    return gate, {"converged": fit.converged, "epochs": fit.epochs, "mistakes_per_epoch": fit.errors,
                  "weight": gate.weight.array.tolist(), "bias": float(gate.bias.array)}


def xor_network(and_gate: nn.Perceptron, nand_gate: nn.Perceptron, or_gate: nn.Perceptron, x: np.ndarray) -> np.ndarray:
    """``AND(NAND(x), OR(x))``: the hidden layer's two outputs are the top gate's two inputs."""
    hidden = np.stack([nand_gate.predict(x), or_gate.predict(x)], axis=1)
    return and_gate.predict(hidden)


def wire_xor(epochs: int, weight_init: str = "zeros", generator: nt.Generator | None = None) -> dict[str, Any]:
    """Train the three gates and wire them; returns each gate's training and the network's outputs."""
    gates, report = {}, {}
    for name in ("AND", "NAND", "OR"):
        gates[name], report[name] = train_gate(name, epochs, weight_init, generator)
    outputs = xor_network(gates["AND"], gates["NAND"], gates["OR"], INPUTS)
    return {"gates": report, "xor_outputs": outputs.tolist(),
            "xor_correct": bool((outputs == TRUTH_TABLES["XOR"]).all())}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100, help="most epochs of the rule per gate")
    parser.add_argument("--random-starts", type=int, default=20, help="also wire XOR from this many random starts")
    common.add_run_options(parser, seed="the random starts", quick="3 random starts",
                           out="xor_from_gates[_quick].json")
    args = parser.parse_args(argv)
    if args.quick:
        args.random_starts = min(args.random_starts, 3)
    return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from_zeros = wire_xor(args.epochs)
    generator = nt.Generator(args.seed)
    random_runs = [wire_xor(args.epochs, "uniform", generator) for _ in range(args.random_starts)]
    _, single = train_gate("XOR", args.epochs)
    result = {
        "config": common.config(args),
        "from_zeros": from_zeros,
        "random_starts": {
            "runs": args.random_starts,
            "xor_correct": sum(run["xor_correct"] for run in random_runs),
            "gates_converged": sum(all(g["converged"] for g in run["gates"].values()) for run in random_runs),
        },
        "single_perceptron_on_xor": {"converged": single["converged"], "epochs": single["epochs"],
                                     "mistakes_in_last_epoch": single["mistakes_per_epoch"][-1]},
    }
    for name, gate in from_zeros["gates"].items():
        print(f"{name:>4}: converged={gate['converged']} in {gate['epochs']} epochs, "
              f"w={np.round(gate['weight'], 3).tolist()}, b={gate['bias']:.3f}")
    print(f"AND(NAND, OR) on (0,0), (0,1), (1,0), (1,1): {from_zeros['xor_outputs']} "
          f"(XOR: {TRUTH_TABLES['XOR'].tolist()})")
    print(f"from random starts: XOR right in {result['random_starts']['xor_correct']}/{args.random_starts}")
    print(f"one perceptron on XOR: converged={single['converged']}, "
          f"{single['mistakes_per_epoch'][-1]} mistakes in epoch {single['epochs']}")
    out = common.write_result(result, args.out, common.result_name("xor_from_gates", args.quick))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
