"""`CONNECT 127.0.0.1:<port>`: the agent's byte tunnel (preview URLs), over its unix socket."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator

import pytest

from corral.agent.tunnel import tunnel_port

from .harness import AgentClient

TOKEN = "test-token"


def _connect(client: AgentClient, target: str, token: str | None = TOKEN) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(client.socket_path)
    head = f"CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n"
    if token is not None:
        head += f"x-access-token: {token}\r\n"
    sock.sendall((head + "\r\n").encode())
    return sock


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _read_all(sock: socket.socket, rest: bytes = b"") -> bytes:
    data = bytearray(rest)
    while chunk := sock.recv(1 << 20):
        data += chunk
    return bytes(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that echoes each connection until EOF, then closes."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                while data := conn.recv(1 << 20):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


@pytest.mark.parametrize(
    ("target", "port"),
    [
        ("127.0.0.1:8080", 8080),
        ("localhost:1", 1),
        ("[::1]:65535", 65535),
        ("127.0.0.1:0", None),
        ("127.0.0.1:65536", None),
        ("10.0.0.1:80", None),
        ("example.com:443", None),
        ("127.0.0.1:80x", None),
        ("127.0.0.1", None),
        ("127.0.0.1:٣", None),
    ],
)
def test_tunnel_port_accepts_only_loopback(target: str, port: int | None) -> None:
    assert tunnel_port(target) == port


def test_bytes_flow_both_ways_with_half_close(client: AgentClient, echo_port: int) -> None:
    with _connect(client, f"127.0.0.1:{echo_port}") as sock:
        head, rest = _read_head(sock)
        assert head == b"HTTP/1.1 200 Connection Established"
        payload = bytes(range(256)) * 40000  # 10 MiB: exercises flow control both ways
        sender = threading.Thread(target=lambda: (sock.sendall(payload), sock.shutdown(1)))
        sender.start()
        echoed = _read_all(sock, rest)
        sender.join(10)
    assert echoed == payload


def test_bytes_sent_with_the_head_are_delivered(client: AgentClient, echo_port: int) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(client.socket_path)
    with sock:
        sock.sendall(
            f"CONNECT 127.0.0.1:{echo_port} HTTP/1.1\r\nx-access-token: {TOKEN}\r\n\r\n".encode()
            + b"early bytes"
        )
        sock.shutdown(socket.SHUT_WR)
        head, rest = _read_head(sock)
        assert head.startswith(b"HTTP/1.1 200")
        assert _read_all(sock, rest) == b"early bytes"


def test_closed_port_is_502(client: AgentClient) -> None:
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    with _connect(client, f"127.0.0.1:{port}") as sock:
        data = _read_all(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 502 ")
    assert json.loads(body) == {
        "code": 502,
        "message": f"nothing accepts connections on port {port}",
    }


@pytest.mark.parametrize("token", [None, "wrong"])
def test_token_is_required(client: AgentClient, echo_port: int, token: str | None) -> None:
    with _connect(client, f"127.0.0.1:{echo_port}", token) as sock:
        data = _read_all(sock)
    assert data.startswith(b"HTTP/1.1 401 ")
    assert data.count(b"HTTP/1.1") == 1  # one answer, then the connection is closed


def test_non_loopback_target_is_400(client: AgentClient) -> None:
    with _connect(client, "10.1.2.3:80") as sock:
        data = _read_all(sock)
    assert data.startswith(b"HTTP/1.1 400 ")
    assert b"127.0.0.1:<port>" in data


def test_websocket_upgrade_on_envd_paths_is_still_400(client: AgentClient) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(client.socket_path)
        sock.sendall(
            b"GET /envs HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: websocket\r\n"
            b"x-access-token: " + TOKEN.encode() + b"\r\n\r\n"
        )
        data = _read_all(sock)
    assert data.count(b"HTTP/1.1 ") == 1
