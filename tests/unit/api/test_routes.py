"""Every control-plane route: exact statuses and JSON bodies (protocol doc §3)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from orchestrator.fakes import MemoryRuntime

from corral.api import build_control_plane
from corral.orchestrator import Orchestrator
from corral.protocol import ENVD_VERSION
from corral.runtime import SandboxStartError
from corral.store import MemoryStore

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def _assert_error(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == status and isinstance(body["message"], str)
    for fragment in fragments:
        assert fragment in body["message"]


async def _create(client: httpx.AsyncClient, **body: object) -> dict[str, object]:
    payload = {"templateID": "base", "metadata": {}, "envVars": {}, **body}
    response = await client.post("/v2/sandboxes", json=payload)
    assert response.status_code == 201, response.text
    result = response.json()
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize("path", ["/v2/sandboxes", "/sandboxes"])
async def test_create_returns_201_sandbox(
    client: httpx.AsyncClient, runtime: MemoryRuntime, path: str
) -> None:
    response = await client.post(
        path,
        json={"templateID": "base", "timeout": 60, "metadata": {"a": "b"}, "envVars": {"X": "1"}},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["templateID"] == "base-id" and body["alias"] == "base"
    assert body["envdVersion"] == ENVD_VERSION == "0.6.13"
    assert body["clientID"] and body["envdAccessToken"]
    assert body["trafficAccessToken"] is None and body["domain"] is None
    assert body["sandboxID"] in runtime.running
    assert dict(runtime.specs[body["sandboxID"]].env_vars) == {"X": "1"}


async def test_create_accepts_sdk_extras(client: httpx.AsyncClient) -> None:
    await _create(
        client,
        secure=True,
        allow_internet_access=False,
        autoPause=False,
        network={"denyOut": ["0.0.0.0/0"]},
    )


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"metadata": {}}, "'templateID' is required"),
        ({"templateID": 5}, "'templateID'"),
        ({"templateID": "base", "timeout": "60"}, "'timeout' must be an integer"),
        ({"templateID": "base", "timeout": True}, "'timeout' must be an integer"),
        ({"templateID": "base", "timeout": 1.5}, "'timeout' must be an integer"),
        ({"templateID": "base", "timeout": 0}, "'timeout' must be between"),
        ({"templateID": "base", "timeout": 10**9}, "'timeout' must be between"),
        ({"templateID": "base", "metadata": []}, "'metadata' must be an object"),
        ({"templateID": "base", "metadata": {"k": 1}}, "'metadata.k' must be a string"),
        ({"templateID": "base", "envVars": {"A": None}}, "'envVars.A' must be a string"),
        ({"templateID": "base", "envVars": {"A=B": "x"}}, "'envVars'"),
        ({"templateID": "base", "metadata": {"k": "v" * 20000}}, "'metadata'"),
        ({"templateID": "base", "autoPause": True}, "'autoPause'"),
        ({"templateID": "base", "autoPause": "yes"}, "'autoPause' must be a boolean"),
        ({"templateID": "base", "autoResume": {"enabled": True}}, "'autoResume'"),
        ({"templateID": "base", "network": []}, "'network' must be an object"),
    ],
)
async def test_create_rejects_bad_bodies_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, object], fragment: str
) -> None:
    _assert_error(await client.post("/v2/sandboxes", json=body), 400, fragment)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b"\xff\xfe"])
async def test_create_rejects_malformed_json(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        "/v2/sandboxes", content=raw, headers={"content-type": "application/json"}
    )
    _assert_error(response, 400)


async def test_oversized_bodies_are_refused_while_streaming(client: httpx.AsyncClient) -> None:
    huge = b'{"templateID": "base", "metadata": {"k": "' + b"x" * (2 << 20) + b'"}}'
    _assert_error(await client.post("/v2/sandboxes", content=huge), 413, "larger than")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 65536

    response = await client.post("/v2/sandboxes", content=chunks())
    _assert_error(response, 413, "larger than")


async def test_create_unknown_template_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v2/sandboxes", json={"templateID": "nope"})
    _assert_error(response, 404, "template 'nope' not found")


async def test_create_beyond_capacity_is_429(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await _create(client)
    _assert_error(await client.post("/v2/sandboxes", json={"templateID": "base"}), 429)


async def test_create_start_failure_is_500_json(
    client: httpx.AsyncClient, runtime: MemoryRuntime
) -> None:
    runtime.fail_next_start = SandboxStartError("rootfs missing")
    response = await client.post("/v2/sandboxes", json={"templateID": "base"})
    _assert_error(response, 500, "rootfs missing")


async def test_internal_error_is_500_without_traceback(
    orchestrator: Orchestrator, store: MemoryStore
) -> None:
    def broken_insert(record: object) -> None:
        raise RuntimeError("disk on fire /secret/path")

    store.insert = broken_insert  # type: ignore[method-assign]
    transport = httpx.ASGITransport(app=build_control_plane(orchestrator))
    async with httpx.AsyncClient(transport=transport, base_url="http://corral") as http:
        response = await http.post(
            "/v2/sandboxes", json={"templateID": "base"}, headers={"X-API-KEY": "k"}
        )
    _assert_error(response, 500, "internal server error")
    assert "secret" not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize("prefix", ["/v2/sandboxes", "/sandboxes"])
async def test_connect_extends_only(client: httpx.AsyncClient, prefix: str) -> None:
    created = await _create(client, timeout=600)
    sandbox_id = created["sandboxID"]
    before = (await client.get(f"/sandboxes/{sandbox_id}")).json()["endAt"]
    response = await client.post(f"{prefix}/{sandbox_id}/connect", json={"timeout": 10})
    assert response.status_code == 200
    assert response.json()["sandboxID"] == sandbox_id
    assert response.json()["envdAccessToken"] == created["envdAccessToken"]
    assert (await client.get(f"/sandboxes/{sandbox_id}")).json()["endAt"] == before
    response = await client.post(f"{prefix}/{sandbox_id}/connect", json={"timeout": 3600})
    assert response.status_code == 200
    after = (await client.get(f"/sandboxes/{sandbox_id}")).json()["endAt"]
    assert after > before


async def test_connect_accepts_empty_and_memory_bodies(client: httpx.AsyncClient) -> None:
    sandbox_id = (await _create(client))["sandboxID"]
    assert (await client.post(f"/v2/sandboxes/{sandbox_id}/connect", json={})).status_code == 200
    response = await client.post(f"/v2/sandboxes/{sandbox_id}/connect", content=b"")
    assert response.status_code == 200
    response = await client.post(
        f"/v2/sandboxes/{sandbox_id}/connect", json={"timeout": 120, "memory": False}
    )
    assert response.status_code == 200


async def test_connect_errors(client: httpx.AsyncClient) -> None:
    _assert_error(await client.post("/v2/sandboxes/nope/connect", json={}), 404, "not found")
    sandbox_id = (await _create(client))["sandboxID"]
    response = await client.post(f"/v2/sandboxes/{sandbox_id}/connect", json={"timeout": "x"})
    _assert_error(response, 400, "'timeout'")


async def test_get_detail(client: httpx.AsyncClient) -> None:
    created = await _create(client, timeout=120, metadata={"user": "ann"})
    sandbox_id = created["sandboxID"]
    response = await client.get(f"/sandboxes/{sandbox_id}")
    assert response.status_code == 200
    body = response.json()
    for key in ("startedAt", "endAt"):
        assert RFC3339_Z.match(body[key]), body[key]
    started = datetime.fromisoformat(body["startedAt"]).timestamp()
    end = datetime.fromisoformat(body["endAt"]).timestamp()
    assert abs(started - time.time()) < 5 and 115 < end - started < 125
    assert body["sandboxID"] == sandbox_id and body["templateID"] == "base-id"
    assert body["alias"] == "base" and body["state"] == "running"
    assert body["metadata"] == {"user": "ann"}
    assert body["envdAccessToken"] == created["envdAccessToken"]
    assert body["envdVersion"] == "0.6.13" and body["clientID"]
    assert body["cpuCount"] == 2 and body["memoryMB"] == 1024 and body["diskSizeMB"] > 0
    assert body["lifecycle"] == {"autoResume": False, "onTimeout": "kill"}
    _assert_error(await client.get("/sandboxes/unknown"), 404, "not found")


async def test_kill(client: httpx.AsyncClient, runtime: MemoryRuntime) -> None:
    sandbox_id = (await _create(client))["sandboxID"]
    response = await client.delete(f"/sandboxes/{sandbox_id}")
    assert response.status_code == 204 and response.content == b""
    assert sandbox_id in runtime.stopped
    _assert_error(await client.delete(f"/sandboxes/{sandbox_id}"), 404)
    _assert_error(await client.get(f"/sandboxes/{sandbox_id}"), 404)
    assert (await client.get("/v2/sandboxes")).json() == []


async def test_set_timeout(client: httpx.AsyncClient) -> None:
    sandbox_id = (await _create(client, timeout=600))["sandboxID"]
    response = await client.post(f"/sandboxes/{sandbox_id}/timeout", json={"timeout": 30})
    assert response.status_code == 204 and response.content == b""
    body = (await client.get(f"/sandboxes/{sandbox_id}")).json()
    end = datetime.fromisoformat(body["endAt"]).timestamp()
    assert abs(end - (time.time() + 30)) < 5
    _assert_error(await client.post("/sandboxes/nope/timeout", json={"timeout": 30}), 404)
    response = await client.post(f"/sandboxes/{sandbox_id}/timeout", json={})
    _assert_error(response, 400, "'timeout' is required")
    response = await client.post(f"/sandboxes/{sandbox_id}/timeout", json={"timeout": [1]})
    _assert_error(response, 400, "'timeout' must be an integer")
    response = await client.post(f"/sandboxes/{sandbox_id}/timeout", content=b"nope")
    _assert_error(response, 400, "not valid JSON")


async def test_expired_sandbox_disappears(
    client: httpx.AsyncClient, orchestrator: Orchestrator
) -> None:
    sandbox_id = str((await _create(client))["sandboxID"])
    orchestrator.set_timeout(sandbox_id, 0.02)
    for _ in range(200):
        if (await client.get(f"/sandboxes/{sandbox_id}")).status_code == 404:
            break
        await asyncio.sleep(0.01)
    _assert_error(await client.get(f"/sandboxes/{sandbox_id}"), 404)
    assert (await client.get("/v2/sandboxes")).json() == []
    _assert_error(await client.delete(f"/sandboxes/{sandbox_id}"), 404)


async def test_auth(orchestrator: Orchestrator) -> None:
    async def call(app_keys: tuple[str, ...], headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=build_control_plane(orchestrator, app_keys))
        async with httpx.AsyncClient(transport=transport, base_url="http://corral") as http:
            return await http.get("/v2/sandboxes", headers=headers)

    _assert_error(await call((), {}), 401, "X-API-KEY")
    _assert_error(await call((), {"X-API-KEY": ""}), 401)
    assert (await call((), {"X-API-KEY": "anything"})).status_code == 200
    _assert_error(await call(("k1", "k2"), {"X-API-KEY": "k3"}), 401, "invalid API key")
    assert (await call(("k1", "k2"), {"X-API-KEY": "k2"})).status_code == 200


async def test_health_needs_no_key(orchestrator: Orchestrator) -> None:
    transport = httpx.ASGITransport(app=build_control_plane(orchestrator, ("k",)))
    async with httpx.AsyncClient(transport=transport, base_url="http://corral") as http:
        assert (await http.get("/health")).status_code == 200


async def test_unknown_route_and_wrong_method(client: httpx.AsyncClient) -> None:
    _assert_error(await client.get("/nope"), 404, "no route")
    _assert_error(await client.get("/v2/sandboxes/x/y/z"), 404)
    _assert_error(await client.get("/sandboxes/abc/"), 404)  # no slash redirects
    response = await client.put("/v2/sandboxes", json={})
    _assert_error(response, 405, "not allowed")
    _assert_error(await client.get("/sandboxes/abc/timeout"), 405)
    _assert_error(await client.patch("/sandboxes/abc"), 405)
