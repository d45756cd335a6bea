"""Hitting a limit is observable: the server records a limit event, visible through
`GET /sandboxes/{id}/events`, and the events outlive the sandbox.

Each test runs a real hog in a fresh sandbox of the session server (default limits: 1024
MiB, 2 CPUs, 1024 pids) and waits for the sampler (every 5 s) to report the hit. The CPU
test first lowers the hog sandbox's quota to one CPU through its cgroup, as an operator
could, so two busy loops exceed it whatever the host's load.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_isolation import run_any  # the shared "result whatever the exit code" helper

pytestmark = [pytest.mark.requires_isolation, pytest.mark.usefixtures("corral_server")]

API_KEY = {"X-API-KEY": "e2b_corral_test"}
CGROUP = Path("/sys/fs/cgroup")
WAIT_S = 30.0


def _events(sandbox_id: str) -> list[dict[str, Any]]:
    url = f"{os.environ['E2B_API_URL']}/sandboxes/{sandbox_id}/events"
    response = httpx.get(url, headers=API_KEY, timeout=30)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def _wait_for_event(sandbox_id: str, kind: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while True:
        found = [e for e in _events(sandbox_id) if e["kind"] == kind]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            pytest.fail(f"no {kind} event within {WAIT_S:.0f} s: {_events(sandbox_id)}")
        time.sleep(0.5)


def test_oom_kill_is_recorded_and_kept_after_the_kill(sandbox_factory: Any) -> None:
    hog = sandbox_factory()
    assert _events(hog.sandbox_id) == []
    limit_mb = hog.get_info().memory_mb
    result = run_any(hog, f"python3 -c 'b = bytearray({limit_mb * 2} << 20)'")
    assert result.exit_code != 0
    event = _wait_for_event(hog.sandbox_id, "oom_kill")
    assert event["count"] >= 1
    assert f"memory limit of {limit_mb} MiB" in event["detail"]
    hog.kill()
    assert event in _events(hog.sandbox_id)  # still there once the sandbox is gone


def test_fork_flood_is_recorded_as_pids_max(sandbox_factory: Any) -> None:
    hog = sandbox_factory()
    flood = (
        "import os\n"
        "try:\n"
        "    while True:\n"
        "        os.posix_spawn('/bin/sleep', ['sleep', '2'], {})\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
    )
    result = run_any(hog, f'python3 -c "{flood}"')
    assert result.stdout.startswith("refused"), (result.stdout, result.stderr)
    event = _wait_for_event(hog.sandbox_id, "pids_max")
    assert event["count"] >= 1 and "processes" in event["detail"]


def _limit_to_one_cpu(sandbox_id: str) -> None:
    v1 = CGROUP / "cpu" / "corral" / sandbox_id
    if v1.is_dir():
        (v1 / "cpu.cfs_quota_us").write_text(str(int((v1 / "cpu.cfs_period_us").read_text())))
    else:
        v2 = CGROUP / "corral" / sandbox_id / "cpu.max"
        period = v2.read_text().split()[1]
        v2.write_text(f"{period} {period}")


def test_cpu_hog_over_its_quota_is_recorded_as_throttling(sandbox_factory: Any) -> None:
    hog = sandbox_factory()
    _limit_to_one_cpu(hog.sandbox_id)
    spin = "timeout 3 sh -c 'while :; do :; done'"
    run_any(hog, f"{spin} & {spin} & wait")
    event = _wait_for_event(hog.sandbox_id, "cpu_throttled")
    assert event["count"] >= 1 and "scheduler period" in event["detail"]
