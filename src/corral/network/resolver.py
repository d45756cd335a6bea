"""`Resolver`: the DNS server every sandbox is given (`nameserver <gateway address>`).

```
sandbox ──udp/tcp 53──► Resolver (sockets made in the gateway netns, bound to the gateway)
                          │ source address → sandbox id (gateway); unknown → REFUSED
                          │ one question, name allowed by the sandbox's policy?
                          │   no  → REFUSED; the upstream never sees the name
                          │   yes → DnsUpstream (operator's --dns-upstream), same transport
                          │         A/AAAA at the end of the CNAME chain of the name →
                          │         gateway.pin(sandbox, addresses, ttl ≥ 30 s) and
                          │         PinnedNames (for the SNI/Host proxy), *then* answer
                          └─ one connection-log entry per query (protocol `dns`)
```

Pins are made before the answer leaves, so a sandbox that connects right after resolving
finds its address already allowed, and only where they matter (`pins_needed`: not for a
sandbox whose policy lets it reach every address anyway; one that is narrowed later must
resolve again). A pin lives at least as long as the answer's TTL (never less than
`MIN_PIN_TTL`), so a client that caches the answer can still use it. Queries are
forwarded as the client sent them (with a fresh message id); the answer goes back unchanged
except for the id. A malformed query gets no answer; an answer whose question differs from
the query is dropped (SERVFAIL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from typing import Protocol, cast

import dnslib

from corral.network.connection_log import ConnectionLog
from corral.network.dns_upstream import DnsUpstream, UpstreamError
from corral.network.pinned_names import PinnedNames
from corral.store import ConnectionEntry, Verdict

__all__ = [
    "MIN_PIN_TTL",
    "Answer",
    "NameAllowed",
    "Resolver",
    "ResolverGateway",
    "pins_of_answer",
]

log = logging.getLogger("corral.network.resolver")

MIN_PIN_TTL = 30.0
"""Pins last at least this long (seconds), whatever the answer's TTL."""

DNS_PORT = 53
_MAX_CNAME_CHAIN = 16
_MAX_IN_FLIGHT = 1024
_TCP_IDLE_S = 10.0
_MAX_PINNED_ADDRESSES = 64

NameAllowed = Callable[[str, str], bool]
"""(sandbox id, name) → whether the sandbox's policy lets it resolve and reach the name."""


class ResolverGateway(Protocol):
    """What the resolver needs of the gateway."""

    def sandbox_for_address(self, address: str) -> str | None:
        """The sandbox that owns `address`, or None."""

    def pin(self, sandbox_id: str, ips: Sequence[IPv4Address], ttl: float) -> Awaitable[None]:
        """Let the sandbox reach `ips` for `ttl` seconds."""

    def socket_in_gateway(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A new socket created inside the gateway's network namespace."""


@dataclass(frozen=True)
class Answer:
    """What an upstream answer gives the sandbox: addresses to pin and for how long."""

    addresses: tuple[str, ...]
    ttl: float


def _name(label: object) -> str:
    return str(label).lower().rstrip(".")


def pins_of_answer(answer: dnslib.DNSRecord, name: str) -> Answer:
    """The A/AAAA addresses that `name` leads to in `answer`'s answer section (following its
    CNAME chain), with the smallest TTL on the way, raised to `MIN_PIN_TTL`."""
    chain = [name]
    ttls: list[int] = []
    while len(chain) <= _MAX_CNAME_CHAIN:
        alias = next(
            (
                rr
                for rr in answer.rr
                if rr.rtype == dnslib.QTYPE.CNAME and _name(rr.rname) == chain[-1]
            ),
            None,
        )
        if alias is None or _name(alias.rdata) in chain:
            break
        ttls.append(alias.ttl)
        chain.append(_name(alias.rdata))
    addresses: list[str] = []
    for rr in answer.rr:
        address = str(rr.rdata)
        in_chain = _name(rr.rname) in chain and address not in addresses
        if rr.rtype in (dnslib.QTYPE.A, dnslib.QTYPE.AAAA) and in_chain:
            addresses.append(address)
            ttls.append(rr.ttl)
    ttl = max(float(min(ttls)) if ttls else 0.0, MIN_PIN_TTL)
    return Answer(tuple(addresses[:_MAX_PINNED_ADDRESSES]), ttl)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # 3.11: not a subclass

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self._resolver._on_datagram(data, addr, self)


class Resolver:
    """The sandboxes' DNS server; `start` binds it, `close` stops it."""

    def __init__(
        self,
        gateway: ResolverGateway,
        address: str,
        name_allowed: NameAllowed,
        upstream: DnsUpstream,
        pinned: PinnedNames,
        connection_log: ConnectionLog,
        *,
        port: int = DNS_PORT,
        pins_needed: Callable[[str], bool] = lambda sandbox_id: True,
    ) -> None:
        self._gateway = gateway
        self._address = address
        self._port = port
        self._name_allowed = name_allowed
        self._pins_needed = pins_needed
        self._upstream = upstream
        self._pinned = pinned
        self._log = connection_log
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind udp and tcp `address:port` inside the gateway's network namespace."""
        loop = asyncio.get_running_loop()
        udp = self._gateway.socket_in_gateway(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = self._gateway.socket_in_gateway(socket.AF_INET, socket.SOCK_STREAM)
        with contextlib.ExitStack() as on_error:
            on_error.callback(udp.close)
            on_error.callback(tcp.close)
            for sock in (udp, tcp):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((self._address, self._port))
                sock.setblocking(False)
            tcp.listen(128)
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=udp)
            self._tcp = await asyncio.start_server(self._serve_tcp, sock=tcp)
            on_error.pop_all()

    async def close(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._tcp is not None:
            await self._tcp.wait_closed()
        self._upstream.close()

    # -- transports --------------------------------------------------------------------

    def _on_datagram(self, data: bytes, addr: tuple[str | int, ...], sender: _Datagrams) -> None:
        if len(self._tasks) >= _MAX_IN_FLIGHT:
            return  # overloaded: the client retries
        self._spawn(self._answer_datagram(data, addr, sender))

    async def _answer_datagram(
        self, data: bytes, addr: tuple[str | int, ...], sender: _Datagrams
    ) -> None:
        reply = await self.answer(data, str(addr[0]), self._upstream.query_udp)
        if reply is not None and sender.transport is not None:
            sender.transport.sendto(reply, addr)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        source = str(writer.get_extra_info("peername")[0])
        try:
            while True:
                async with asyncio.timeout(_TCP_IDLE_S):
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    query = await reader.readexactly(length)
                reply = await self.answer(query, source, self._upstream.query_tcp)
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- decisions ---------------------------------------------------------------------

    async def answer(
        self, query: bytes, source: str, forward: Callable[[bytes], Awaitable[bytes]]
    ) -> bytes | None:
        """The reply to `query` from `source` (None: no answer at all); logs the query."""
        try:
            request = dnslib.DNSRecord.parse(query)
        except (dnslib.DNSError, struct.error, ValueError, IndexError):
            return None
        if request.header.qr:
            return None  # an answer sent to us: ignore
        sandbox_id = self._gateway.sandbox_for_address(source)
        if sandbox_id is None or len(request.questions) != 1:
            return _reply(request, dnslib.RCODE.REFUSED)
        name = _name(request.q.qname)
        reply, verdict, reason = await self._decide(sandbox_id, request, name, query, forward)
        now = self._log.now()
        self._log.record(
            ConnectionEntry(
                sandbox_id=sandbox_id,
                timestamp=now,
                protocol="dns",
                destination=self._address,
                port=self._port,
                verdict=verdict,
                reason=reason,
                name=name,
                bytes_sent=len(query),
                bytes_received=len(reply),
                ended_at=now,
            )
        )
        return reply

    async def _decide(
        self,
        sandbox_id: str,
        request: dnslib.DNSRecord,
        name: str,
        query: bytes,
        forward: Callable[[bytes], Awaitable[bytes]],
    ) -> tuple[bytes, Verdict, str]:
        kind = dnslib.QTYPE.get(request.q.qtype, str(request.q.qtype))
        if not name or not self._name_allowed(sandbox_id, name):
            return _reply(request, dnslib.RCODE.REFUSED), Verdict.DENIED, f"{kind} not allowed"
        try:
            raw = await forward(query)
            answer = dnslib.DNSRecord.parse(raw)
        except (UpstreamError, dnslib.DNSError, struct.error, ValueError, IndexError) as exc:
            log.warning("resolver: %s for %s %s of sandbox %s", exc, kind, name, sandbox_id)
            return _reply(request, dnslib.RCODE.SERVFAIL), Verdict.ALLOWED, f"{kind} no upstream"
        if len(answer.questions) != 1 or _name(answer.q.qname) != name:
            return _reply(request, dnslib.RCODE.SERVFAIL), Verdict.ALLOWED, f"{kind} bad upstream"
        pins = pins_of_answer(answer, name)
        ips = [ip for ip in map(ip_address, pins.addresses) if isinstance(ip, IPv4Address)]
        if ips and self._pins_needed(sandbox_id):  # IPv4 only: AAAA answers are not pinned
            try:
                await self._gateway.pin(sandbox_id, ips, pins.ttl)
            except Exception:  # the gateway's errors: an unpinned answer would not work
                log.exception("resolver: cannot pin %s for sandbox %s", name, sandbox_id)
                return _reply(request, dnslib.RCODE.SERVFAIL), Verdict.ALLOWED, f"{kind} no pin"
            self._pinned.add(sandbox_id, name, [str(ip) for ip in ips], pins.ttl)
            return raw, Verdict.ALLOWED, f"{kind} → {' '.join(pins.addresses)}"
        return raw, Verdict.ALLOWED, kind


def _reply(request: dnslib.DNSRecord, rcode: int) -> bytes:
    reply = request.reply(ra=1, aa=0)
    reply.header.rcode = rcode
    packed: bytes = reply.pack()
    return packed
