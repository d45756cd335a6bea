"""A fake internet for network tests: a network namespace with servers, made by the test.

`FakeInternet` (used by `conftest.py`) creates `corral-inet-<random>`, gives its `lo` the
addresses of `HOSTS` and starts this file as a script inside it. The script serves, on every
address of the namespace: HTTP on `HTTP_PORTS` (the answer names the address and port that
took the connection), a TCP echo on `TCP_ECHO_PORT`, a TCP sink on `SINK_PORT` (reads to
the end, then answers the byte count: throughput), a UDP echo on `UDP_ECHO_PORT`, and a
DNS server on 53 (UDP and TCP) answering `ZONE`. Every connection, datagram and DNS query
it gets is appended to a log file, so a test can prove that something never arrived.

The Corral server under test gets `--uplink-netns /run/netns/<name>`: its gateway's uplink
veth lands in this namespace (the uplink side takes 169.254.88.1), and nothing of the test
touches the host's network.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

WEB = "198.51.100.10"
WEB_2 = "198.51.100.20"
OTHER = "203.0.113.10"
DNS = "198.51.100.53"
METADATA = "169.254.169.254"
UPLINK_PEER = "169.254.88.1"
HOSTS = (WEB, WEB_2, OTHER, DNS, METADATA)
HTTP_PORTS = (80, 443, 8080, 9000)
TCP_ECHO_PORT = 7000
UDP_ECHO_PORT = 7001
SINK_PORT = 7002
DOT_PORT = 853
ZONE = {
    "web.test": WEB,
    "web2.test": WEB_2,
    "other.test": OTHER,
    "secret.evil.test": OTHER,
}

_PYTHON = str(Path(sys.executable))
_IP_FREEBIND = 15


class FakeInternet:
    """The namespace and its server process; `close()` removes both (idempotent)."""

    def __init__(self) -> None:
        self.name = f"corral-inet-{secrets.token_hex(4)}"
        self.path = f"/run/netns/{self.name}"
        self._dir = Path(tempfile.mkdtemp(prefix="corral-inet-"))
        self.log_path = self._dir / "seen.log"
        self._process: subprocess.Popen[bytes] | None = None
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            self._in_netns(["ip", "link", "set", "lo", "up"])
            for host in HOSTS:
                self._in_netns(["ip", "addr", "add", f"{host}/32", "dev", "lo"])
            ready = self._dir / "ready"
            self._process = subprocess.Popen(
                ["ip", "netns", "exec", self.name, _PYTHON, __file__, str(self.log_path)],
                stdout=subprocess.DEVNULL,
                stderr=open(self._dir / "servers.err", "wb"),  # noqa: SIM115
                env={**os.environ, "FAKE_INTERNET_READY": str(ready)},
            )
            deadline = time.monotonic() + 20
            while not ready.exists():
                if self._process.poll() is not None or time.monotonic() > deadline:
                    err = (self._dir / "servers.err").read_text(errors="replace")
                    raise RuntimeError(f"the fake internet's servers did not start: {err}")
                time.sleep(0.02)
        except BaseException:
            self.close()
            raise

    def _in_netns(self, argv: list[str]) -> None:
        subprocess.run(["ip", "netns", "exec", self.name, *argv], check=True)

    def seen(self) -> str:
        """Everything the servers received so far (one line per event)."""
        try:
            return self.log_path.read_text()
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)
        for item in self._dir.glob("*"):
            item.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._dir.rmdir()


# -- the servers (run as a script inside the namespace) -----------------------------------


class _Log:
    def __init__(self, path: str) -> None:
        self._file = open(path, "a", buffering=1)  # noqa: SIM115
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        with self._lock:
            self._file.write(line + "\n")


def _serve_http(port: int, log: _Log) -> None:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            local = self.connection.getsockname()
            log.write(f"tcp {local[0]}:{local[1]} from {self.client_address[0]}")
            self.connection.settimeout(5)
            with contextlib.suppress(OSError):
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                body = f"hello from {local[0]}:{local[1]}\n".encode()
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )

    _tcp_server(port, Handler)


def _serve_tcp_echo(port: int, log: _Log) -> None:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            local = self.request.getsockname()
            log.write(f"tcp {local[0]}:{local[1]} from {self.client_address[0]}")
            with contextlib.suppress(OSError):
                while data := self.request.recv(1 << 16):
                    self.request.sendall(data)

    _tcp_server(port, Handler)


def _serve_sink(port: int, log: _Log) -> None:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            log.write(f"tcp sink from {self.client_address[0]}")
            total = 0
            buffer = bytearray(1 << 20)
            with contextlib.suppress(OSError):
                while count := self.request.recv_into(buffer):
                    total += count
                self.request.sendall(str(total).encode())

    _tcp_server(port, Handler)


def _tcp_server(port: int, handler: type[socketserver.BaseRequestHandler]) -> None:
    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    server = Server(("0.0.0.0", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def _serve_udp_echo(port: int, log: _Log) -> None:
    # One socket per address: a reply must leave from the address the query went to.
    for host in (*HOSTS, UPLINK_PEER):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)  # the uplink address comes later
        sock.bind((host, port))

        def loop(sock: socket.socket = sock, host: str = host) -> None:
            while True:
                data, peer = sock.recvfrom(65536)
                log.write(f"udp {host}:{port} from {peer[0]}")
                sock.sendto(data, peer)

        threading.Thread(target=loop, daemon=True).start()


def _serve_dns(log: _Log) -> None:
    import dnslib  # only the script needs it

    def answer(data: bytes, peer: str, proto: str) -> bytes:
        request = dnslib.DNSRecord.parse(data)
        name = str(request.q.qname).rstrip(".").lower()
        log.write(f"dns {proto} {name} from {peer}")
        reply = request.reply()
        address = ZONE.get(name)
        if address is not None and request.q.qtype == dnslib.QTYPE.A:
            reply.add_answer(dnslib.RR(name, dnslib.QTYPE.A, rdata=dnslib.A(address), ttl=60))
        elif address is None:
            reply.header.rcode = dnslib.RCODE.NXDOMAIN
        return bytes(reply.pack())

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 53))

    def udp_loop() -> None:
        while True:
            data, peer = udp.recvfrom(65536)
            with contextlib.suppress(Exception):
                udp.sendto(answer(data, peer[0], "udp"), peer)

    class TcpHandler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with contextlib.suppress(Exception):
                size = int.from_bytes(self.request.recv(2), "big")
                data = b""
                while len(data) < size:
                    chunk = self.request.recv(size - len(data))
                    if not chunk:
                        return
                    data += chunk
                reply = answer(data, self.client_address[0], "tcp")
                self.request.sendall(len(reply).to_bytes(2, "big") + reply)

    threading.Thread(target=udp_loop, daemon=True).start()
    _tcp_server(53, TcpHandler)


def _main(log_path: str) -> None:
    log = _Log(log_path)
    for port in HTTP_PORTS:
        _serve_http(port, log)
    _serve_tcp_echo(TCP_ECHO_PORT, log)
    _serve_tcp_echo(DOT_PORT, log)
    _serve_sink(SINK_PORT, log)
    _serve_udp_echo(UDP_ECHO_PORT, log)
    _serve_dns(log)
    Path(os.environ["FAKE_INTERNET_READY"]).touch()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    _main(sys.argv[1])
