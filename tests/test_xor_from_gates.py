"""XOR wired from three trained perceptrons (AND, NAND, OR), and the example that shows it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import nurinet
from nurinet import nn

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
TABLES = {"AND": [0, 0, 0, 1], "NAND": [1, 1, 1, 0], "OR": [0, 1, 1, 1]}


def _trained(name: str, **kwargs) -> nn.Perceptron:
    gate = nn.Perceptron(2, **kwargs)
    assert gate.fit(X, np.array(TABLES[name]), epochs=100).converged, name
    np.testing.assert_array_equal(gate.predict(X), TABLES[name])
    return gate


@pytest.mark.parametrize("weight_init", ["zeros", "uniform", "normal"])
def test_three_trained_perceptrons_wire_into_xor(weight_init: str) -> None:
    g = nurinet.Generator(7)
    and_gate, nand_gate, or_gate = (_trained(name, weight_init=weight_init, generator=g)
                                    for name in ("AND", "NAND", "OR"))
    hidden = np.stack([nand_gate.predict(X), or_gate.predict(X)], axis=1)
    np.testing.assert_array_equal(and_gate.predict(hidden), [0, 1, 1, 0])


def test_one_perceptron_never_learns_xor() -> None:
    fit = nn.Perceptron(2).fit(X, np.array([0, 1, 1, 0]), epochs=200)
    assert not fit.converged and min(fit.errors) > 0


def test_xor_example_quick(tmp_path) -> None:
    path = Path(__file__).resolve().parent.parent / "examples" / "xor_from_gates.py"
    spec = importlib.util.spec_from_file_location("_example_xor_from_gates", path)
    example = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = example
    spec.loader.exec_module(example)
    result = example.main(["--quick", "--out", str(tmp_path / "r.json")])
    assert result["from_zeros"]["xor_correct"] and result["from_zeros"]["xor_outputs"] == [0, 1, 1, 0]
    assert result["random_starts"]["xor_correct"] == result["random_starts"]["runs"] == 3
    assert not result["single_perceptron_on_xor"]["converged"]
    assert (tmp_path / "r.json").is_file()
