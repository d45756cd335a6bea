"""The data-plane router against a stand-in agent, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from corral.router import DataPlaneRouter, compute_signature
from corral.router.pool import AgentConnection

from .conftest import ENVD, SANDBOX, TOKEN, DictDirectory, Route
from .stand_in_agent import serve_stand_in_agent


async def test_health_is_forwarded(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers=ENVD)
    assert response.status_code == 204 and response.content == b""


async def test_request_line_headers_and_body_are_forwarded(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/process.Process/List?a=1&b=%2F",
        headers={**ENVD, "X-Access-Token": TOKEN, "Connection": "keep-alive"},
        content=b'{"x": 1}',
    )
    assert response.status_code == 200
    seen = response.json()
    assert seen["method"] == "POST" and seen["path"] == "/process.Process/List"
    assert seen["query"] == "a=1&b=%2F"
    assert seen["body"] == '{"x": 1}'
    headers = seen["headers"]
    assert headers["x-access-token"] == TOKEN and headers["content-length"] == "8"
    assert headers["e2b-sandbox-id"] == SANDBOX
    assert "connection" not in headers
    assert response.headers["content-type"] == "application/json"


async def test_chunked_request_body_streams_through(client: httpx.AsyncClient) -> None:
    parts = [b"\x00\x00\x00\x00\x05hello", b"x" * 70000, b"\x02\x00\x00\x00\x02{}"]

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part
            await asyncio.sleep(0.01)

    response = await client.post("/echo", headers=ENVD, content=body())
    assert response.status_code == 200
    assert response.content == b"".join(parts)


async def test_streamed_response_arrives_incrementally(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/forever", headers=ENVD) as response:
        assert response.status_code == 200
        lines = []
        async for line in response.aiter_lines():
            lines.append(line)
            if len(lines) == 3:
                break
    assert lines == ["tick-0", "tick-1", "tick-2"]


async def test_long_chunked_response_is_complete(client: httpx.AsyncClient) -> None:
    response = await client.get("/stream?n=500", headers=ENVD)
    assert response.text == "".join(f"chunk-{i}\n" for i in range(500))


async def test_keep_alive_connections_are_reused(
    client: httpx.AsyncClient, router: DataPlaneRouter
) -> None:
    for _ in range(5):
        assert (await client.get("/health", headers=ENVD)).status_code == 204
    assert router.pool.idle_count(SANDBOX) == 1
    assert router.pool.active_count(SANDBOX) == 0


@pytest.mark.parametrize("notice_eof", [True, False])
async def test_stale_pooled_connection_is_replaced(
    client: httpx.AsyncClient,
    router: DataPlaneRouter,
    directory: DictDirectory,
    short_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    notice_eof: bool,
) -> None:
    socket_path = str(short_dir / "restarting.sock")
    directory.routes_by_id[SANDBOX] = Route(SANDBOX, socket_path, TOKEN)
    async with serve_stand_in_agent(socket_path):
        assert (await client.get("/health", headers=ENVD)).status_code == 204
    assert router.pool.idle_count(SANDBOX) == 1  # now dead: the agent went away
    if not notice_eof:  # the EOF is not seen before reuse: the replay path must kick in
        monkeypatch.setattr(AgentConnection, "usable", lambda self, now, idle: True)
    async with serve_stand_in_agent(socket_path):
        response = await client.post("/x", headers=ENVD, content=b"replayable")
        assert response.status_code == 200 and response.json()["body"] == "replayable"


async def test_unknown_sandbox_is_502_was_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"E2b-Sandbox-Id": "nope", **_port(49983)})
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "sandboxId": "nope",
        "message": "The sandbox was not found",
        "code": 502,
    }


async def test_other_ports_are_502_port_not_open(client: httpx.AsyncClient) -> None:
    response = await client.post("/execute", headers={**ENVD, **_port(49999)}, json={})
    assert response.status_code == 502
    assert response.json() == {
        "sandboxId": SANDBOX,
        "message": "The sandbox is running but port is not open",
        "code": 502,
    }


async def test_dead_agent_is_502_port_not_open(
    client: httpx.AsyncClient, directory: DictDirectory, short_dir: Path
) -> None:
    directory.routes_by_id[SANDBOX] = Route(SANDBOX, str(short_dir / "missing.sock"), TOKEN)
    response = await client.get("/health", headers=ENVD)
    assert response.status_code == 502 and "port is not open" in response.json()["message"]


async def test_kill_mid_stream_aborts_the_client_and_later_requests_get_502(
    client: httpx.AsyncClient, router: DataPlaneRouter, directory: DictDirectory
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("GET", "/forever", headers=ENVD) as response:
            assert response.status_code == 200
            count = 0
            async for _ in response.aiter_lines():
                count += 1
                if count == 2:
                    del directory.routes_by_id[SANDBOX]
                    router.forget_sandbox(SANDBOX)
    response = await client.get("/health", headers=ENVD)
    assert response.status_code == 502 and "was not found" in response.json()["message"]


async def test_client_disconnect_releases_the_agent_connection(
    base_url: str, router: DataPlaneRouter
) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        async with http.stream("GET", "/forever", headers=ENVD) as response:
            async for _ in response.aiter_lines():
                break
        assert router.pool.active_count(SANDBOX) == 1
    for _ in range(200):
        if router.pool.active_count(SANDBOX) == 0:
            break
        await asyncio.sleep(0.01)
    assert router.pool.active_count(SANDBOX) == 0
    assert router.pool.idle_count(SANDBOX) == 0  # an abandoned stream is never reused


async def test_signed_files_link_is_routed_by_signature(client: httpx.AsyncClient) -> None:
    path = "/home/user/x y"
    signature = compute_signature(path, "read", "", TOKEN, None)
    url = f"/files?path={quote(path, safe='')}&signature={quote(signature, safe='')}"
    response = await client.get(url)
    assert response.status_code == 200
    assert response.json()["path"] == "/files"
    assert "signature=" in response.json()["query"]


async def test_bad_signature_is_401(client: httpx.AsyncClient) -> None:
    signature = compute_signature("/x", "read", "", "another-token", None)
    response = await client.get(f"/files?path=%2Fx&signature={quote(signature, safe='')}")
    assert response.status_code == 401
    assert response.json() == {"code": 401, "message": "invalid signature"}
    response = await client.post(f"/files?path=%2Fx&signature={quote(signature, safe='')}")
    assert response.status_code == 401


async def test_everything_else_goes_to_the_control_plane(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).status_code == 418
    assert (await client.get("/files?path=%2Fx")).status_code == 418
    assert (await client.post("/v2/sandboxes", json={})).status_code == 418


async def test_concurrent_requests_and_streams(client: httpx.AsyncClient) -> None:
    async def one(i: int) -> str:
        response = await client.post("/x", headers=ENVD, content=str(i).encode())
        return str(json.loads(response.content)["body"])

    results = await asyncio.gather(*(one(i) for i in range(50)))
    assert results == [str(i) for i in range(50)]


def _port(port: int) -> dict[str, str]:
    return {"E2b-Sandbox-Port": str(port)}
