"""Every claim experiment (examples/claims) runs end to end in its --quick mode.

Each script runs in a subprocess (one BLAS thread, no figure) with one seed and
writes its JSON to a temporary folder. The test checks the record's shape,
never the verdict: the verdict is what the experiment measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (ROOT / "examples" / "claims").glob("c[0-9][0-9]_*.py"))
MISSING_FEATURE_EXIT = 3  # examples/claims/_common.py: a nurinet feature the experiment needs is not there yet


def test_there_are_claim_scripts():
    assert len(SCRIPTS) >= 10, SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_claim_quick_run_writes_a_verdict(name, tmp_path):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", f"examples.claims.{name}", "--quick", "--seeds", "1", "--no-plot",
         "--out", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    if proc.returncode == MISSING_FEATURE_EXIT:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    record = json.loads((tmp_path / f"{name}.json").read_text())
    assert record["name"] == name and record["quick"] is True and record["seeds"] == [0]
    verdict = record["verdict"]
    assert isinstance(verdict["held"], bool)
    assert verdict["strength"] in ("strong", "moderate", "weak", "none", "partial")
    assert verdict["text"].startswith(("HELD", "DID NOT HOLD"))
    assert record["results"], "the experiment recorded no measurements"
    assert verdict["text"] in proc.stdout  # the summary line is printed


def test_common_verdict_grades():
    sys.path.insert(0, str(ROOT))
    from examples.claims import _common as C

    strong = C.paired_effect([0.9, 0.92, 0.91], [0.8, 0.81, 0.8])
    assert C.strength(strong, 0.05) == "strong"
    mixed = C.paired_effect([0.9, 0.92, 0.7], [0.8, 0.81, 0.8])
    assert C.strength(mixed, 0.01) == "moderate"
    assert C.strength(C.paired_effect([0.81, 0.8], [0.8, 0.8]), 0.05) == "weak"
    assert C.strength(C.paired_effect([0.7, 0.7], [0.8, 0.8]), 0.05) == "none"
    lower = C.paired_effect([1.0, 2.0], [3.0, 4.0], higher_is_better=False)
    assert lower["mean_advantage"] == 2.0 and lower["seeds_agreeing"] == 1.0


def test_common_parse_args_rejects_zero_seeds():
    sys.path.insert(0, str(ROOT))
    from examples.claims import _common as C

    with pytest.raises(SystemExit):
        C.parse_args("x", ["--seeds", "0"])
    args = C.parse_args("x", ["--quick"], full_seeds=5, quick_seeds=2)
    assert args.seed_list == [0, 1] and args.out.name == "quick"
