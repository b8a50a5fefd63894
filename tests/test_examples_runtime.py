"""Stored example results say how nurinet ran (issue 21): ``examples/_common.write_result`` adds a
``runtime`` entry with the C kernels' state, the matrix-product provider and the ``NURINET_*``
environment variables, so that a result from the reference path (``NURINET_NATIVE=0``) cannot pass
for one from the default path."""

from __future__ import annotations

import json
import os

from examples import _common as common
from nurinet import _native


def test_write_result_records_the_runtime(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("NURINET_")]:  # CI's MKL rerun sets NURINET_BLAS
        monkeypatch.delenv(name)
    monkeypatch.setenv("NURINET_TEST_MARK", "1")
    path = common.write_result({"score": 1.0}, str(tmp_path / "r.json"), "unused.json")
    record = json.loads(path.read_text())
    assert record["score"] == 1.0
    runtime = record["runtime"]
    assert runtime["native_kernels"] == ("on" if _native.available() else f"off: {_native.reason()}")
    assert runtime["matmul_provider"] in {"numpy", "mkl", "native"}
    assert runtime["environment"] == {"NURINET_TEST_MARK": "1"}


def test_write_result_records_the_reference_path(tmp_path):
    old = _native.set_enabled(False)
    try:
        path = common.write_result({}, str(tmp_path / "r.json"), "unused.json")
    finally:
        _native.set_enabled(old)
    assert json.loads(path.read_text())["runtime"]["native_kernels"].startswith("off: disabled")


def test_write_result_keeps_a_runtime_entry_of_its_own(tmp_path):
    path = common.write_result({"runtime": "given"}, str(tmp_path / "r.json"), "unused.json")
    assert json.loads(path.read_text())["runtime"] == "given"
