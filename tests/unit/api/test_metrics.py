"""Metrics and limit-event routes: exact statuses and bodies (protocol doc §3.2, §3.7)."""

from __future__ import annotations

import re
import time
from dataclasses import replace

import httpx
from orchestrator.fakes import MemoryRuntime

from corral.orchestrator import Orchestrator
from corral.runtime import UsageSample

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
METRIC_KEYS = {
    "timestamp": str,
    "timestampUnix": int,
    "cpuCount": int,
    "cpuUsedPct": float,
    "memUsed": int,
    "memTotal": int,
    "memCache": int,
    "diskUsed": int,
    "diskTotal": int,
}
ZERO = UsageSample(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


async def _create(client: httpx.AsyncClient) -> str:
    response = await client.post("/v2/sandboxes", json={"templateID": "base"})
    assert response.status_code == 201, response.text
    sandbox_id = response.json()["sandboxID"]
    assert isinstance(sandbox_id, str)
    return sandbox_id


def _check_metric(metric: object) -> None:
    assert isinstance(metric, dict)
    assert set(metric) == set(METRIC_KEYS)
    for key, kind in METRIC_KEYS.items():
        assert type(metric[key]) is kind, (key, metric[key])
    assert RFC3339_Z.match(metric["timestamp"])
    assert abs(metric["timestampUnix"] - time.time()) < 60


def _check_error(response: httpx.Response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message"} and body["code"] == status
    assert fragment in body["message"]


async def test_metrics_of_a_new_sandbox_have_one_full_sample(client: httpx.AsyncClient) -> None:
    sandbox_id = await _create(client)
    response = await client.get(f"/sandboxes/{sandbox_id}/metrics")
    assert response.status_code == 200
    [metric] = response.json()
    _check_metric(metric)
    assert metric["cpuCount"] == 2 and metric["memTotal"] == 1024 * 1024 * 1024


async def test_metrics_window(client: httpx.AsyncClient) -> None:
    sandbox_id = await _create(client)
    now = int(time.time())
    before = await client.get(
        f"/sandboxes/{sandbox_id}/metrics", params={"start": now - 3600, "end": now - 1800}
    )
    assert before.status_code == 200 and before.json() == []
    around = await client.get(
        f"/sandboxes/{sandbox_id}/metrics", params={"start": now - 10, "end": now + 10}
    )
    assert len(around.json()) == 1
    for params, fragment in (
        ({"start": "yesterday"}, "'start'"),
        ({"end": "1.5"}, "'end'"),
        ({"start": now, "end": now - 1}, "after"),
    ):
        response = await client.get(f"/sandboxes/{sandbox_id}/metrics", params=params)
        _check_error(response, 400, fragment)


async def test_metrics_of_unknown_sandbox_is_404(client: httpx.AsyncClient) -> None:
    _check_error(await client.get("/sandboxes/nosuchsandbox0000000/metrics"), 404, "nosuch")


async def test_metrics_of_several_sandboxes(client: httpx.AsyncClient) -> None:
    first, second = await _create(client), await _create(client)
    response = await client.get(
        "/sandboxes/metrics", params={"sandbox_ids": f"{first},unknown,{second}"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"sandboxes"} and set(body["sandboxes"]) == {first, second}
    for metric in body["sandboxes"].values():
        _check_metric(metric)
    _check_error(await client.get("/sandboxes/metrics"), 400, "sandbox_ids")


async def test_events_of_a_sandbox(
    client: httpx.AsyncClient, orchestrator: Orchestrator, runtime: MemoryRuntime
) -> None:
    sandbox_id = await _create(client)
    empty = await client.get(f"/sandboxes/{sandbox_id}/events")
    assert empty.status_code == 200 and empty.json() == []
    runtime.usages[sandbox_id] = replace(ZERO, oom_kills=2, throttled_periods=3)
    await orchestrator.telemetry.sample_all()
    events = (await client.get(f"/sandboxes/{sandbox_id}/events")).json()
    assert [(e["kind"], e["count"]) for e in events] == [("oom_kill", 2), ("cpu_throttled", 3)]
    for event in events:
        assert set(event) == {"timestamp", "timestampUnix", "kind", "detail", "count"}
        assert RFC3339_Z.match(event["timestamp"]) and isinstance(event["timestampUnix"], int)
        assert "limit" in event["detail"]
    assert (await client.delete(f"/sandboxes/{sandbox_id}")).status_code == 204
    after = await client.get(f"/sandboxes/{sandbox_id}/events")
    assert after.status_code == 200 and after.json() == events  # kept after the kill
    _check_error(await client.get(f"/sandboxes/{sandbox_id}/metrics"), 404, sandbox_id)
    _check_error(await client.get("/sandboxes/nosuchsandbox0000000/events"), 404, "nosuch")
