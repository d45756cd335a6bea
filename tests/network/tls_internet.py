"""A fake internet with names: DNS (wildcards, a CNAME chain), HTTPS with SNI, HTTP with Host.

`TlsInternet` (N2's suites) is a namespace like `fake_internet.FakeInternet`, usable by
`conftest.running_server` (it has the same `path`, the same addresses and the DNS server at
`fake_internet.DNS`), but its servers speak names: on every address, HTTPS on 443 with a
self-made certificate for every name of `ZONE` (the answer says which SNI and address it
got), HTTP on 80 (the answer says which Host), and a TCP server on 9000 that answers
`GET /bytes/N` with N bytes. Every DNS query it gets is appended to a log file
(`dns_queries()`), so a test can prove a name never reached it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import socketserver
import ssl
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
HOSTS = (WEB, WEB_2, OTHER, DNS)
ZONE: dict[str, tuple[str, str]] = {
    "web.test": ("A", WEB),
    "shared.test": ("A", WEB),  # same address as web.test (shared hosting)
    "api.wild.test": ("A", WEB_2),
    "wild.test": ("A", WEB_2),
    "alias.test": ("CNAME", "edge.cdn.test"),
    "edge.cdn.test": ("A", OTHER),
    "secret.evil.test": ("A", OTHER),
}
BULK_PORT = 9000

_PYTHON = str(Path(sys.executable))


class TlsInternet:
    """The namespace and its server process; `close()` removes both (idempotent)."""

    def __init__(self) -> None:
        self.name = f"corral-inet-n2-{secrets.token_hex(3)}"
        self.path = f"/run/netns/{self.name}"
        self.dir = Path(tempfile.mkdtemp(prefix="corral-inet-n2-"))
        self.ca_path = self.dir / "cert.pem"
        self._log = self.dir / "dns.log"
        self._process: subprocess.Popen[bytes] | None = None
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        try:
            _certificate(self.dir)
            batch = "link set lo up\n" + "".join(f"addr add {h}/32 dev lo\n" for h in HOSTS)
            subprocess.run(["ip", "-n", self.name, "-batch", "-"], input=batch.encode(), check=True)
            ready = self.dir / "ready"
            self._process = subprocess.Popen(
                ["ip", "netns", "exec", self.name, _PYTHON, __file__, str(self.dir)],
                stdout=subprocess.DEVNULL,
                stderr=open(self.dir / "servers.err", "wb"),  # noqa: SIM115
                env={**os.environ, "TLS_INTERNET_READY": str(ready)},
            )
            deadline = time.monotonic() + 20
            while not ready.exists():
                if self._process.poll() is not None or time.monotonic() > deadline:
                    err = (self.dir / "servers.err").read_text(errors="replace")
                    raise RuntimeError(f"the fake internet's servers did not start: {err}")
                time.sleep(0.02)
        except BaseException:
            self.close()
            raise

    def dns_queries(self) -> list[str]:
        """Every name the DNS server was asked, in order."""
        if not self._log.exists():
            return []
        return self._log.read_text().split()

    def close(self) -> None:
        if self._process is not None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
            self._process = None
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)
        for item in self.dir.glob("*"):
            item.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.dir.rmdir()


def _certificate(directory: Path) -> None:
    names = ",".join(f"DNS:{n}" for n in ZONE)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        + ["-nodes", "-days", "2", "-subj", "/CN=corral fake internet"]
        + ["-addext", f"subjectAltName={names}"]
        + ["-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")],
        check=True,
        capture_output=True,
    )


# -- the servers (run as a script inside the namespace) -----------------------------------


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


def _read_head(sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return head


def _host_of(head: bytes) -> str:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"host":
            return value.strip().decode(errors="replace")
    return "-"


def _reply(sock: socket.socket, body: bytes) -> None:
    sock.sendall(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )


def _serve(directory: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")

    def remember_sni(tls: ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> None:
        tls.client_sni = name  # type: ignore[attr-defined]

    context.sni_callback = remember_sni  # type: ignore[assignment]

    class Https(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with contextlib.suppress(OSError):
                self.request.settimeout(10)
                local = self.request.getsockname()[0]
                tls = context.wrap_socket(self.request, server_side=True)  # detaches request
                head = _read_head(tls)
                sni = getattr(tls, "client_sni", None)
                _reply(tls, f"https {sni} host {_host_of(head)} at {local}\n".encode())
                tls.unwrap()

    class Http(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with contextlib.suppress(OSError):
                self.request.settimeout(10)
                head = _read_head(self.request)
                local = self.request.getsockname()[0]
                _reply(self.request, f"http host {_host_of(head)} at {local}\n".encode())

    class Bulk(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                self.request.settimeout(30)
                head = _read_head(self.request)
                size = int(head.split(b" ", 2)[1].rsplit(b"/", 1)[1])
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                chunk = b"x" * (1 << 20)
                while size > 0:
                    self.request.sendall(chunk[: min(size, len(chunk))])
                    size -= len(chunk)

    for port, handler in ((443, Https), (80, Http), (BULK_PORT, Bulk)):
        server = _Server(("0.0.0.0", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    _serve_dns(directory / "dns.log")


def _answer(data: bytes, log: threading.Lock, log_path: Path) -> bytes:
    import dnslib

    request = dnslib.DNSRecord.parse(data)
    name = str(request.q.qname).rstrip(".").lower()
    with log, open(log_path, "a") as out:
        out.write(name + "\n")
    reply = request.reply()
    while name in ZONE:
        kind, value = ZONE[name]
        reply.add_answer(*dnslib.RR.fromZone(f"{name}. 60 IN {kind} {value}"))
        if kind != "CNAME":
            break
        name = value
    if not reply.rr:
        reply.header.rcode = dnslib.RCODE.NXDOMAIN
    return bytes(reply.pack())


def _serve_dns(log_path: Path) -> None:
    lock = threading.Lock()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((DNS, 53))

    def udp_loop() -> None:
        while True:
            data, peer = udp.recvfrom(65536)
            with contextlib.suppress(Exception):
                udp.sendto(_answer(data, lock, log_path), peer)

    class Tcp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with contextlib.suppress(Exception):
                size = int.from_bytes(self.request.recv(2), "big")
                data = b""
                while len(data) < size:
                    data += self.request.recv(size - len(data))
                reply = _answer(data, lock, log_path)
                self.request.sendall(len(reply).to_bytes(2, "big") + reply)

    threading.Thread(target=udp_loop, daemon=True).start()
    server = _Server((DNS, 53), Tcp)
    threading.Thread(target=server.serve_forever, daemon=True).start()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    _serve(Path(sys.argv[1]))
    Path(os.environ["TLS_INTERNET_READY"]).touch()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
