"""HTTP/1.1 behaviour over a raw socket: keep-alive, pipelining, chunking, bad requests."""

from __future__ import annotations

import re
import socket
import time

from .harness import AgentProcess


def _connect(agent: AgentProcess) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(agent.socket_path)
    return sock


def _read_until(sock: socket.socket, needle: bytes, count: int = 1) -> bytes:
    data = b""
    while data.count(needle) < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _list(token: str, extra: bytes = b"") -> bytes:
    return (
        b"POST /process.Process/List HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n"
        b"x-access-token: " + token.encode() + b"\r\n" + extra + b"content-length: 2\r\n\r\n{}"
    )


def test_keep_alive_and_pipelining(agent: AgentProcess) -> None:
    token = agent.config.access_token
    with _connect(agent) as sock:
        sock.sendall(_list(token) + b"GET /health HTTP/1.1\r\nhost: a\r\n\r\n" + _list(token))
        data = _read_until(sock, b"HTTP/1.1 ", 3)
        time.sleep(0.05)
        sock.setblocking(False)
        try:
            data += sock.recv(65536)
        except BlockingIOError:
            pass
    statuses = re.findall(rb"HTTP/1\.1 (\d+) ", data)
    assert statuses == [b"200", b"204", b"200"]
    assert data.count(b"{}") == 2


def test_streaming_response_wire_format(agent: AgentProcess) -> None:
    token = agent.config.access_token
    envelope = b'\x00\x00\x00\x00\x1f{"process":{"cmd":"/bin/true"}}'
    request = (
        b"POST /process.Process/Start HTTP/1.1\r\nhost: a\r\n"
        b"content-type: application/connect+json\r\nx-access-token: " + token.encode() + b"\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
        # the envelope split over two chunks
        + b"3\r\n"
        + envelope[:3]
        + b"\r\n"
        + b"%x\r\n" % (len(envelope) - 3)
        + envelope[3:]
        + b"\r\n0\r\n\r\n"
    )
    with _connect(agent) as sock:
        sock.sendall(request)
        data = _read_until(sock, b"\r\n0\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 200 OK"
    assert b"content-type: application/connect+json" in lines
    assert b"transfer-encoding: chunked" in lines
    assert body.endswith(b"\x02\x00\x00\x00\x02{}\r\n0\r\n\r\n")


def test_connection_close_is_honoured(agent: AgentProcess) -> None:
    with _connect(agent) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
        data = _read_until(sock, b"\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 204")
        assert b"connection: close" in data
        assert sock.recv(100) == b""  # closed by the agent


def test_malformed_request_gets_400_and_close(agent: AgentProcess) -> None:
    with _connect(agent) as sock:
        sock.sendall(b"THIS IS NOT HTTP\r\n\r\n")
        data = _read_until(sock, b"}")
        assert data.startswith(b"HTTP/1.1 400")
        assert sock.recv(100) == b""


def test_expect_100_continue(agent: AgentProcess) -> None:
    with _connect(agent) as sock:
        sock.sendall(_list(agent.config.access_token, b"expect: 100-continue\r\n")[:-2])
        assert _read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"{}")
        assert b"HTTP/1.1 200 OK" in _read_until(sock, b"200 OK")


def test_agent_survives_abrupt_disconnects(agent: AgentProcess) -> None:
    for _ in range(20):
        with _connect(agent) as sock:
            sock.sendall(b"POST /process.Process/List HTTP/1.1\r\ncontent-length: 100\r\n\r\n{")
    with _connect(agent) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: a\r\n\r\n")
        assert _read_until(sock, b"\r\n\r\n").startswith(b"HTTP/1.1 204")
