"""Importing nurinet shortens the spin of NumPy's idle OpenBLAS threads (nurinet/_runtime/spin.py).

Each check runs in a fresh process, since the setting is made once, at import. What is checked is
behaviour, not speed: after a threaded product, an idle OpenBLAS worker that spins burns processor
time while the main thread sleeps; with the short spin it sleeps too. The margins are wide (the
default spin burns nearly all of a 0.1 s sleep; the short one a few milliseconds at most).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nurinet._runtime import spin

PROBE = """
import resource, time
import numpy as np
import nurinet
from nurinet._runtime import spin, parallel
a = np.ones((600, 600), np.float32)
for _ in range(3):
    a @ a
before = resource.getrusage(resource.RUSAGE_SELF)
time.sleep(0.1)
after = resource.getrusage(resource.RUSAGE_SELF)
burned = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
print(spin.is_applied(), round(burned * 1e3, 1), parallel.get_elementwise_threads())
"""

needs_openblas = pytest.mark.skipif(spin._functions() is None,
                                    reason="NumPy's BLAS here is not an OpenBLAS with a thread-restart API")


def _probe(**env: str) -> tuple[str, float, int]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OPENBLAS_THREAD_TIMEOUT", "NURINET_OPENBLAS_SPIN_LOG2", "NURINET_NUM_THREADS",
                          "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    clean["NURINET_BLAS"] = "numpy"  # NumPy's OpenBLAS runs the products (with MKL its spin does not matter)
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0], float(out[1]), int(out[2])


@needs_openblas
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS runs no worker thread on one CPU")
def test_idle_openblas_threads_sleep_soon_after_importing_nurinet() -> None:
    applied, burned_ms, _ = _probe()
    assert applied == "True"
    assert burned_ms < 40, f"an idle OpenBLAS thread still spun for {burned_ms} ms of a 100 ms sleep"


@needs_openblas
def test_the_users_openblas_setting_and_the_opt_out_are_left_alone() -> None:
    assert _probe(OPENBLAS_THREAD_TIMEOUT="25")[0] == "False"
    assert _probe(NURINET_OPENBLAS_SPIN_LOG2="0")[0] == "False"


@needs_openblas
def test_the_environment_of_child_processes_is_unchanged() -> None:
    code = "import os, nurinet; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


@needs_openblas
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one CPU: no threads either way")
def test_with_the_short_spin_nurinet_uses_its_elementwise_threads_by_default() -> None:
    assert _probe()[2] >= 2
    assert _probe(NURINET_OPENBLAS_SPIN_LOG2="0")[2] == 1
