"""Preview routing: Host parsing, the traffic token, and tunnels through a real agent."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from agent.harness import AgentProcess  # tests/unit/agent: pytest puts tests/unit on sys.path

from corral.router import DataPlaneRouter
from corral.router.preview import parse_preview_host, traffic_allowed

from .conftest import DictDirectory, Route, control_plane_marker

SID = "a1b2c3d4e5f6g7h8i9j0"
DOMAIN = b"corral.localhost"
SERVICE = Path(__file__).parents[2] / "integration" / "preview_service.py"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (b"8080-" + SID.encode() + b".corral.localhost", (8080, SID)),
        (b"8080-" + SID.encode() + b".corral.localhost:3000", (8080, SID)),
        (b"8080-" + SID.encode() + b".Corral.LocalHost.", (8080, SID)),
        (b"1-x.corral.localhost", (1, "x")),
        (b"65535-id-with-dash.corral.localhost", (65535, "id-with-dash")),
        (b"49983-" + SID.encode() + b".corral.localhost", (49983, SID)),
        (b"65536-x.corral.localhost", None),
        (b"0-x.corral.localhost", None),
        (b"080-x.corral.localhost", None),
        (b"http-x.corral.localhost", None),
        (b"8080.corral.localhost", None),
        (b"8080-.corral.localhost", None),
        (b"8080-a.b.corral.localhost", None),
        (b"8080-xcorral.localhost", None),
        (b"8080-x.corral.localhost.evil.test", None),
        (b"corral.localhost", None),
        (b"api.corral.localhost", None),
        (b"localhost:3000", None),
        (b"[::1]:3000", None),
        (b"", None),
    ],
)
def test_parse_preview_host(host: bytes, expected: tuple[int, str] | None) -> None:
    assert parse_preview_host(host, DOMAIN) == expected


def test_traffic_allowed() -> None:
    assert traffic_allowed(None, None)
    assert traffic_allowed(None, b"anything")
    assert traffic_allowed("secret", b"secret")
    assert traffic_allowed("secret", b" secret ")
    assert not traffic_allowed("secret", None)
    assert not traffic_allowed("secret", b"")
    assert not traffic_allowed("secret", b"Secret")
    assert not traffic_allowed("secret", b"secret2")


# --- through a real agent (on this host) to a real service --------------------------------


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    process = AgentProcess(tmp_path_factory.mktemp("agent"))
    try:
        yield process
    finally:
        assert not process.stop()


@pytest.fixture(scope="module")
def service_port() -> Iterator[int]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    proc = subprocess.Popen([sys.executable, str(SERVICE), str(port)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def directory(agent: AgentProcess) -> DictDirectory:
    directory = DictDirectory()
    directory.routes_by_id[SID] = Route(SID, agent.socket_path, "test-token")
    return directory


@pytest.fixture
async def preview_client(
    directory: DictDirectory,
) -> AsyncIterator[tuple[httpx.AsyncClient, DataPlaneRouter]]:
    router = DataPlaneRouter(directory, control_plane_marker)
    transport = httpx.ASGITransport(app=router)
    async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
        yield client, router
    router.close()


def _host(port: int) -> dict[str, str]:
    return {"host": f"{port}-{SID}.corral.localhost"}


async def test_tunnels_are_pooled_per_port(
    preview_client: tuple[httpx.AsyncClient, DataPlaneRouter], service_port: int
) -> None:
    client, router = preview_client
    peers = {(await client.get("/peer", headers=_host(service_port))).text for _ in range(4)}
    assert len(peers) == 1
    assert router.pool.idle_count(SID, service_port) == 1
    assert router.pool.idle_count(SID) == 0  # envd connections are a separate pool
    router.forget_sandbox(SID)
    assert router.pool.idle_count(SID, service_port) == 0


async def test_close_delimited_body(
    preview_client: tuple[httpx.AsyncClient, DataPlaneRouter], service_port: int
) -> None:
    client, _ = preview_client
    response = await client.get("/close", headers=_host(service_port))
    assert response.status_code == 200 and response.text == "until the end"


async def test_traffic_token_gate(
    preview_client: tuple[httpx.AsyncClient, DataPlaneRouter],
    directory: DictDirectory,
    agent: AgentProcess,
    service_port: int,
) -> None:
    client, _ = preview_client
    directory.routes_by_id[SID] = Route(SID, agent.socket_path, "test-token", "traffic-secret")
    denied = await client.get("/peer", headers=_host(service_port))
    assert denied.status_code == 403 and denied.json()["code"] == 403
    allowed = await client.get(
        "/headers", headers={**_host(service_port), "e2b-traffic-access-token": "traffic-secret"}
    )
    assert allowed.status_code == 200
    assert "e2b-traffic-access-token" not in allowed.json()


async def test_bad_port_header_is_port_not_open(
    preview_client: tuple[httpx.AsyncClient, DataPlaneRouter],
) -> None:
    client, _ = preview_client
    for port in ("http", "0", "70000", ""):
        response = await client.get("/", headers={"e2b-sandbox-id": SID, "e2b-sandbox-port": port})
        assert response.status_code == 502
        assert "port is not open" in response.json()["message"], port


async def test_no_preview_domain_means_control_plane(directory: DictDirectory) -> None:
    router = DataPlaneRouter(directory, control_plane_marker, domain="")
    transport = httpx.ASGITransport(app=router)
    async with httpx.AsyncClient(transport=transport, base_url="http://server") as client:
        response = await client.get("/", headers=_host(8080))
    assert response.status_code == 418
