"""`get_metrics()` through the official SDK (sync and async), the batch route and the
`corral sandbox events` command, against a real server.

The server samples every 5 s (its default) and once right after each create.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from e2b import AsyncSandbox, Sandbox, SandboxNotFoundException

from corral.cli import main

pytestmark = pytest.mark.usefixtures("corral_server")

API_KEY = {"X-API-KEY": "e2b_corral_test"}
MIB = 1024 * 1024
INTERVAL_S = 5.0


def _detail(sandbox_id: str) -> dict[str, Any]:
    """`GET /sandboxes/{id}` (the SDK's `SandboxInfo` leaves out the disk size)."""
    url = f"{os.environ['E2B_API_URL']}/sandboxes/{sandbox_id}"
    response = httpx.get(url, headers=API_KEY, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _check(metric: Any, sbx: Any) -> None:
    detail = _detail(sbx.sandbox_id)
    assert metric.cpu_count == detail["cpuCount"]
    assert metric.mem_total == detail["memoryMB"] * MIB
    assert metric.disk_total == detail["diskSizeMB"] * MIB
    assert 0.0 <= metric.cpu_used_pct <= 100.0
    assert metric.mem_used > 0 and metric.mem_cache >= 0 and metric.disk_used >= 0
    assert abs(metric.timestamp.timestamp() - time.time()) < 120


def _wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = predicate()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout:.0f} s")
        time.sleep(0.5)


def test_a_new_sandbox_has_a_sample_at_once(sandbox: Any) -> None:
    metrics = sandbox.get_metrics()
    assert len(metrics) >= 1
    _check(metrics[0], sandbox)


def test_window_before_the_sandbox_existed_is_empty(sandbox: Any) -> None:
    now = datetime.now(UTC)
    assert sandbox.get_metrics(start=now - timedelta(hours=2), end=now - timedelta(hours=1)) == []
    recent = sandbox.get_metrics(start=now - timedelta(minutes=5), end=now + timedelta(minutes=1))
    assert len(recent) >= 1


def test_samples_follow_memory_and_cpu_use(sandbox: Any) -> None:
    sandbox.commands.run(
        "python3 -c 'import time; b = bytearray(b\"x\") * (64 << 20); time.sleep(60)' "
        "& (timeout 40 sh -c 'while :; do :; done')",
        background=True,
    )
    started = time.time()

    def busy_sample() -> Any:
        return next(
            (
                m
                for m in sandbox.get_metrics()
                if m.timestamp.timestamp() > started and m.mem_used >= 64 * MIB
            ),
            None,
        )

    metric = _wait_for(busy_sample, 6 * INTERVAL_S, "sample with the memory in use")
    _check(metric, sandbox)
    assert metric.cpu_used_pct > 0.0


def test_metrics_of_a_killed_sandbox_raise_not_found(sandbox_factory: Any) -> None:
    sbx = sandbox_factory()
    sbx.kill()
    with pytest.raises(SandboxNotFoundException):
        sbx.get_metrics()
    with pytest.raises(SandboxNotFoundException):
        Sandbox.get_metrics(sbx.sandbox_id)


async def test_async_sdk_reads_metrics(corral_server: Any) -> None:
    sbx = await AsyncSandbox.create(timeout=120)
    try:
        metrics = await sbx.get_metrics()
        assert len(metrics) >= 1 and metrics[0].cpu_count >= 1
        now = datetime.now(UTC)
        assert (
            await sbx.get_metrics(start=now - timedelta(days=1), end=now - timedelta(hours=1)) == []
        )
        by_id = await AsyncSandbox.get_metrics(sbx.sandbox_id)
        assert len(by_id) >= 1
    finally:
        await sbx.kill()
    with pytest.raises(SandboxNotFoundException):
        await AsyncSandbox.get_metrics(sbx.sandbox_id)


def test_batch_route_has_the_latest_sample_of_each(
    sandbox_factory: Any, http: httpx.Client
) -> None:
    first, second = sandbox_factory(), sandbox_factory()
    response = http.get(
        "/sandboxes/metrics",
        params={"sandbox_ids": f"{first.sandbox_id},{second.sandbox_id},nosuchsandbox"},
        headers=API_KEY,
    )
    assert response.status_code == 200
    found = response.json()["sandboxes"]
    assert set(found) == {first.sandbox_id, second.sandbox_id}
    assert found[first.sandbox_id]["memTotal"] == _detail(first.sandbox_id)["memoryMB"] * MIB


def test_events_command_of_a_quiet_sandbox(sandbox: Any, corral_server: Any) -> None:
    runner = CliRunner()
    args = ["sandbox", "events", "--url", corral_server.url, "--api-key", "e2b_corral_test"]
    quiet = runner.invoke(main, [*args, sandbox.sandbox_id])
    assert quiet.exit_code == 0, quiet.output
    assert "has hit no limit" in quiet.output
    as_json = runner.invoke(main, [*args, "--json", sandbox.sandbox_id])
    assert as_json.exit_code == 0 and as_json.output.strip() == "[]"
    unknown = runner.invoke(main, [*args, "nosuchsandbox"])
    assert unknown.exit_code != 0 and "404" in unknown.output
