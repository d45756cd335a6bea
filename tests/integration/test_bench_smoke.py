"""Each benchmark runs end to end with a tiny N, so the harness cannot rot."""

from __future__ import annotations

import os
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
    ],
)
def test_benchmark_runs(script: str, expected: list[str]) -> None:
    env = dict(os.environ, CORRAL_BENCH_N="3")
    for name in ("E2B_API_URL", "E2B_SANDBOX_URL"):  # the bench starts its own server
        env.pop(name, None)
    result = subprocess.run(
        [sys.executable, str(BENCH / script)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    for text in expected:
        assert text in result.stdout, result.stdout
