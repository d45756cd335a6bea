"""Preview URLs: `{port}-{sandboxId}.{domain}` reaches a service inside the sandbox.

The service (`preview_service.py`, stdlib only) runs inside the sandbox; the test talks to
the server's own address with the preview Host header (nothing resolves `*.localhost`
here), through the router, a tunnel via the agent, to `127.0.0.1:<port>` inside.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

DOMAIN = "corral.localhost"
SERVICE = (Path(__file__).parent / "preview_service.py").read_text()
PORT = 8080


@pytest.fixture(autouse=True)
def _e2b_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("E2B_DOMAIN", DOMAIN)


def _host(sbx: Any, port: int = PORT) -> str:
    return f"{port}-{sbx.sandbox_id}.{DOMAIN}"


def _wait_listening(sbx: Any, port: int) -> None:
    result = sbx.commands.run(
        f"for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && exit 0; "
        f"(exec 3<>/dev/tcp/::1/{port}) 2>/dev/null && exit 0; sleep 0.1; done; exit 1",
        timeout=30,
    )
    assert result.exit_code == 0


def _start_service(sbx: Any, port: int = PORT, bind: str = "127.0.0.1") -> None:
    sbx.files.write("/tmp/preview_service.py", SERVICE)
    sbx.commands.run(f"python3 /tmp/preview_service.py {port} {bind}", background=True)
    _wait_listening(sbx, port)


@pytest.fixture
def served(sandbox: Any) -> Any:
    _start_service(sandbox)
    return sandbox


@pytest.fixture
def preview(corral_server: Any) -> Any:
    with httpx.Client(base_url=corral_server.url, timeout=60) as client:
        yield client


def test_get_host_is_the_preview_host(sandbox: Any) -> None:
    assert sandbox.get_host(PORT) == _host(sandbox)


def test_http_server_in_sandbox_is_reachable(sandbox: Any, preview: httpx.Client) -> None:
    sandbox.commands.run("mkdir -p /tmp/site && echo hello-preview > /tmp/site/index.html")
    sandbox.commands.run(
        f"cd /tmp/site && python3 -m http.server {PORT} --bind 0.0.0.0", background=True
    )
    _wait_listening(sandbox, PORT)
    response = preview.get("/index.html", headers={"host": sandbox.get_host(PORT)})
    assert response.status_code == 200
    assert response.text == "hello-preview\n"


def test_large_response_streams_through(served: Any, preview: httpx.Client) -> None:
    size = 64 * 1024 * 1024 + 17
    digest, received, chunks = hashlib.sha256(), 0, 0
    with preview.stream("GET", f"/bytes?n={size}", headers={"host": _host(served)}) as response:
        assert response.status_code == 200
        for chunk in response.iter_raw():
            digest.update(chunk)
            received += len(chunk)
            chunks += 1
    pattern = bytes(i % 251 for i in range(251 * 1024))
    expected = hashlib.sha256()
    left = size
    while left:
        part = pattern[: min(left, len(pattern))]
        expected.update(part)
        left -= len(part)
    assert received == size and digest.hexdigest() == expected.hexdigest()
    assert chunks > 1  # streamed, not buffered into one piece


def test_post_bodies_fixed_and_chunked(served: Any, preview: httpx.Client) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    response = preview.post("/echo", headers={"host": _host(served)}, content=body)
    assert response.status_code == 200 and response.content == body

    def parts() -> Any:
        yield b"first,"
        yield b"x" * 100000
        yield b",last"

    response = preview.post("/echo", headers={"host": _host(served)}, content=parts())
    assert response.content == b"first," + b"x" * 100000 + b",last"


def test_keep_alive_reuses_the_client_and_tunnel_connections(
    served: Any, preview: httpx.Client
) -> None:
    peers = {preview.get("/peer", headers={"host": _host(served)}).text for _ in range(5)}
    assert len(peers) == 1  # one tunnel (one TCP connection inside) served all five


def test_close_delimited_response_is_complete(served: Any, preview: httpx.Client) -> None:
    response = preview.get("/close", headers={"host": _host(served)})
    assert response.status_code == 200 and response.text == "until the end"
    assert preview.get("/peer", headers={"host": _host(served)}).status_code == 200


def test_e2b_routing_headers_reach_other_ports(served: Any, preview: httpx.Client) -> None:
    headers = {"e2b-sandbox-id": served.sandbox_id, "e2b-sandbox-port": str(PORT)}
    response = preview.get("/headers", headers=headers)
    assert response.status_code == 200
    assert response.json()["e2b-sandbox-port"] == str(PORT)


def test_host_with_port_suffix_and_upper_case(served: Any, preview: httpx.Client) -> None:
    host = f"{PORT}-{served.sandbox_id}.{DOMAIN.upper()}:3000"
    response = preview.get("/headers", headers={"host": host})
    assert response.status_code == 200 and response.json()["host"] == host


def test_nothing_listening_is_502_port_not_open(sandbox: Any, preview: httpx.Client) -> None:
    response = preview.get("/", headers={"host": _host(sandbox, 9)})
    assert response.status_code == 502
    assert response.json() == {
        "sandboxId": sandbox.sandbox_id,
        "message": "The sandbox is running but port is not open",
        "code": 502,
    }


def test_unknown_sandbox_is_502_not_found(corral_server: Any, preview: httpx.Client) -> None:
    response = preview.get("/", headers={"host": f"8080-{'x' * 20}.{DOMAIN}"})
    assert response.status_code == 502
    assert "was not found" in response.json()["message"]


def test_other_hosts_still_reach_the_control_plane(
    corral_server: Any, preview: httpx.Client
) -> None:
    for host in (f"api.{DOMAIN}", "8080-abc.other.test", "localhost"):
        response = preview.get("/health", headers={"host": host})
        assert response.status_code == 200, host


def test_service_bound_to_ipv6_loopback_only(sandbox: Any, preview: httpx.Client) -> None:
    _start_service(sandbox, 8081, "::1")
    response = preview.get("/peer", headers={"host": _host(sandbox, 8081)})
    assert response.status_code == 200 and response.text.startswith("::1:")


def _ws_url(sbx: Any, server: Any, port: int = PORT) -> str:
    return f"ws://{_host(sbx, port)}:{server.port}/ws"


def _server_socket(server: Any) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=30)


def test_websocket_echo(served: Any, corral_server: Any) -> None:
    with ws_connect(
        _ws_url(served, corral_server), sock=_server_socket(corral_server), open_timeout=30
    ) as ws:
        for message in ("hello", "x" * 70000, b"\x00\x01binary\xff"):
            ws.send(message)
            assert ws.recv(timeout=30) == message
        ws.ping()


def test_websocket_unknown_port_and_sandbox(sandbox: Any, corral_server: Any) -> None:
    with pytest.raises(InvalidStatus) as closed_port:
        ws_connect(_ws_url(sandbox, corral_server, 9), sock=_server_socket(corral_server))
    assert closed_port.value.response.status_code == 502
    assert b"port is not open" in closed_port.value.response.body
    url = f"ws://8080-{'x' * 20}.{DOMAIN}:{corral_server.port}/ws"
    with pytest.raises(InvalidStatus) as unknown:
        ws_connect(url, sock=_server_socket(corral_server))
    assert unknown.value.response.status_code == 502
    assert b"was not found" in unknown.value.response.body


def test_websocket_is_closed_when_the_sandbox_is_killed(
    sandbox_factory: Callable[..., Any], corral_server: Any
) -> None:
    sbx = sandbox_factory()
    _start_service(sbx)
    with ws_connect(_ws_url(sbx, corral_server), sock=_server_socket(corral_server)) as ws:
        ws.send("before")
        assert ws.recv(timeout=30) == "before"
        sbx.kill()
        deadline = time.monotonic() + 30
        with pytest.raises(Exception):  # noqa: B017 - closed one way or another
            while time.monotonic() < deadline:
                ws.recv(timeout=1)


# --- allowPublicTraffic=false -----------------------------------------------------------


def test_private_sandbox_requires_the_traffic_token(
    sandbox_factory: Callable[..., Any], preview: httpx.Client, corral_server: Any
) -> None:
    sbx = sandbox_factory(network={"allow_public_traffic": False})
    token = sbx.traffic_access_token
    assert isinstance(token, str) and len(token) >= 20
    _start_service(sbx)
    host = {"host": _host(sbx)}
    missing = preview.get("/peer", headers=host)
    assert missing.status_code == 403
    assert "e2b-traffic-access-token" in missing.json()["message"]
    wrong = preview.get("/peer", headers={**host, "e2b-traffic-access-token": token + "x"})
    assert wrong.status_code == 403
    right = preview.get("/headers", headers={**host, "e2b-traffic-access-token": token})
    assert right.status_code == 200
    assert "e2b-traffic-access-token" not in right.json()  # not handed to the service
    # envd itself keeps its own token rule: the SDK works without the traffic token.
    assert sbx.commands.run("echo ok").stdout == "ok\n"
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(_ws_url(sbx, corral_server), sock=_server_socket(corral_server))
    assert refused.value.response.status_code == 403
    with ws_connect(
        _ws_url(sbx, corral_server),
        sock=_server_socket(corral_server),
        additional_headers={"e2b-traffic-access-token": token},
    ) as ws:
        ws.send("private")
        assert ws.recv(timeout=30) == "private"


def test_public_sandboxes_have_no_traffic_token(sandbox_factory: Callable[..., Any]) -> None:
    assert sandbox_factory().traffic_access_token is None
    assert sandbox_factory(network={"allow_public_traffic": True}).traffic_access_token is None


def test_traffic_token_survives_reconnect(sandbox_factory: Callable[..., Any]) -> None:
    from e2b import Sandbox

    sbx = sandbox_factory(network={"allow_public_traffic": False})
    again = Sandbox.connect(sbx.sandbox_id)
    assert again.traffic_access_token == sbx.traffic_access_token


def test_forwarding_works_without_internet_access(
    sandbox_factory: Callable[..., Any], preview: httpx.Client
) -> None:
    sbx = sandbox_factory(allow_internet_access=False)
    _start_service(sbx)
    response = preview.post("/echo", headers={"host": _host(sbx)}, content=b"offline")
    assert response.status_code == 200 and response.content == b"offline"


# --- async SDK -------------------------------------------------------------------------


async def test_async_sandbox_get_host(corral_server: Any) -> None:
    from e2b import AsyncSandbox

    sbx = await AsyncSandbox.create(timeout=120)
    try:
        await sbx.files.write("/tmp/preview_service.py", SERVICE)
        await sbx.commands.run(f"python3 /tmp/preview_service.py {PORT}", background=True)
        host = sbx.get_host(PORT)
        assert host == f"{PORT}-{sbx.sandbox_id}.{DOMAIN}"
        async with httpx.AsyncClient(base_url=corral_server.url, timeout=60) as client:
            for _ in range(100):
                response = await client.post("/echo", headers={"host": host}, content=b"async")
                if response.status_code != 502:
                    break
                await asyncio.sleep(0.1)
            assert response.status_code == 200 and response.content == b"async"
    finally:
        await sbx.kill()


# --- the tunnel endpoint is the router's alone ------------------------------------------

_PROBE = r"""
import ctypes, os, socket
found = []
for line in open("/proc/net/unix").read().splitlines()[1:]:
    fields = line.split()
    if len(fields) >= 8:
        found.append(fields[7])
try:
    os.listdir("/proc/1/fd")
    found.append("listed /proc/1/fd")
except OSError:
    pass
libc = ctypes.CDLL(None, use_errno=True)
pidfd = libc.syscall(434, 1, 0)  # pidfd_open(agent)
for fd in range(64):
    if pidfd >= 0 and libc.syscall(438, pidfd, fd, 0) >= 0:  # pidfd_getfd
        found.append(f"took fd {fd}")
print(found)
"""


@pytest.mark.requires_isolation
def test_sandbox_root_cannot_reach_the_agent_socket(sandbox: Any) -> None:
    """No named unix socket is visible, the agent's fds cannot be listed or copied."""
    sandbox.files.write("/tmp/probe.py", _PROBE)
    result = sandbox.commands.run("python3 /tmp/probe.py", user="root")
    assert result.stdout.strip() == "[]"


def test_envd_is_reachable_by_host_too(sandbox: Any, preview: httpx.Client) -> None:
    """`49983-<id>.<domain>` is envd: the SDK's own URLs without `E2B_SANDBOX_URL`."""
    response = preview.get("/health", headers={"host": _host(sandbox, 49983)})
    assert response.status_code == 204
    envs = preview.get(
        "/envs",
        headers={"host": _host(sandbox, 49983), "x-access-token": sandbox._envd_access_token},
    )
    assert envs.status_code == 200
