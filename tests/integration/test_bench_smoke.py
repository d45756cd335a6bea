"""Each benchmark runs end to end with a tiny N, so the harness cannot rot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("create_first_output.py", ["create+first_output: n=3", "p95=", "throughput:"]),
        ("command_roundtrip.py", ["commands.run('true'): n=3", "p99=", "baseline fork+exec"]),
        ("idle_memory.py", ["idle sandboxes=3", "MemAvailable drop per sandbox:", "PSS"]),
        ("burst_create.py", ["burst n=3:", "failures=0", "per-create: n=3"]),
    ],
)
def test_benchmark_runs(script: str, expected: list[str]) -> None:
    env = dict(os.environ, CORRAL_BENCH_N="3")
    for name in ("E2B_API_URL", "E2B_SANDBOX_URL"):  # the bench starts its own server
        env.pop(name, None)
    # Own session, so a hung benchmark is killed together with the server it started.
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / script)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"{script} hung; stdout:\n{stdout}\nstderr:\n{stderr}")
    assert proc.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    for text in expected:
        assert text in stdout, stdout
