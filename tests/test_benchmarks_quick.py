"""The benchmark suite's smoke run: every available workload runs and its loss falls (no timing checked)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_ALL = ROOT / "benchmarks" / "run_all.py"


def _run_all_module():
    spec = importlib.util.spec_from_file_location("run_all_under_test", RUN_ALL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_quick_suite_runs_every_workload_and_losses_fall(tmp_path):
    out = tmp_path / "suite.json"
    proc = subprocess.run([sys.executable, str(RUN_ALL), "--quick", "--no-torch", "--rounds", "1",
                           "--warmup", "0", "--json", str(out)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    payload = json.loads(out.read_text())
    run_all = _run_all_module()
    expected = [w.label for w in run_all.WORKLOADS if (ROOT / "benchmarks" / f"{w.module}.py").exists()]
    entries = {e["workload"]: e for e in payload["suite"]}
    assert sorted(entries) == sorted(expected)
    for label, entry in entries.items():
        check = entry["loss_check"]["nurinet"]
        assert check["falls"] and check["steps"] >= 2, (label, check)
        assert entry["libraries"]["nurinet"]["median_s"] > 0
        assert entry["samples_per_second"]["nurinet"] > 0
        assert entry["peak_step_memory_bytes"]["nurinet"] >= 0
    assert "| workload |" in proc.stdout


def test_loss_falls_rule():
    run_all = _run_all_module()
    assert run_all.loss_falls([2.3, 2.2, 2.0, 1.9])
    assert not run_all.loss_falls([2.0, 2.1, 2.2, 2.3])
    assert not run_all.loss_falls([2.0])


def test_recording_restores_the_loss_function():
    run_all = _run_all_module()
    import nurinet as nt
    import nurinet.functional as F

    original = F.mse_loss
    losses = []
    with run_all.recording([F], ("mse_loss",), losses):
        F.mse_loss(nt.tensor([1.0, 2.0]), nt.tensor([0.0, 0.0]))
    assert F.mse_loss is original
    assert losses == pytest.approx([2.5])


TINY_BENCH = '''
import os
from pathlib import Path

from benchmarks.common import Case

OUT = Path(__file__).with_name("seen")


def tiny_nurinet():
    OUT.write_text(f"{os.getpid()} {os.environ.get('TINY_BENCH_SETTING')}")
    return lambda: 1e-3


CASES = [Case("tiny", tiny_nurinet, iters=2)]
'''


def test_measured_rounds_run_in_a_worker_process_with_the_given_environment(tmp_path):
    import os

    from benchmarks import common

    path = tmp_path / "tiny_bench.py"
    path.write_text(TINY_BENCH)
    spec = importlib.util.spec_from_file_location("tiny_bench_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    env = {**os.environ, "TINY_BENCH_SETTING": "from-the-parent"}
    result = common.run_cases(module.CASES, rounds=3, warmup=1, use_torch=False, progress=False, env=env)[0]
    assert result.times["nurinet"] == pytest.approx([1e-3] * 3)
    pid, setting = (tmp_path / "seen").read_text().split()
    assert int(pid) != os.getpid() and setting == "from-the-parent"
