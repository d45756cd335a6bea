"""`SniProxy`: the gateway's check of names on tcp 80/443 to addresses allowed by name only.

```
sandbox ──tcp 80/443 to a pinned-only address──► nft dnat ──► SniProxy (gateway netns)
   1. source address → sandbox id; SO_ORIGINAL_DST → the address the sandbox dialled
   2. read at most MAX_PEEK bytes (PEEK_TIMEOUT_S): TLS ClientHello SNI or HTTP Host
   3. allowed if the name is allowed for the sandbox AND (the resolver gave the sandbox
      that address for that very name, or the address is allowed by itself: CIDR/open)
   4. connect to the original destination from the gateway netns, replay the peeked bytes,
      splice both ways (asyncio transports, flow-controlled, half-close kept)
   otherwise close (HTTP gets a 403 saying why); either way one connection-log entry
```

So a sandbox allowed `a.example` cannot reach `b.example` by dialling an address it got
for `a.example` and naming `b.example` (shared hosting, CDNs), nor connect to a pinned
address with a name the policy denies. Not covered (documented in THREAT_MODEL): what the
client says *inside* TLS (domain fronting: an allowed SNI and another Host) and later
requests of a kept-alive HTTP connection.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable
from typing import Protocol

from corral.network.connection_log import ConnectionLog
from corral.network.pinned_names import PinnedNames
from corral.network.server_name import MAX_PEEK, NeedMore, Peek, server_name
from corral.store import ConnectionEntry, FlowEnd, Verdict

__all__ = [
    "CONNECT_TIMEOUT_S",
    "PEEK_TIMEOUT_S",
    "AddressAllowed",
    "NameAllowed",
    "ProxyGateway",
    "SniProxy",
    "original_destination",
]

log = logging.getLogger("corral.network.sni_proxy")

PEEK_TIMEOUT_S = 10.0
"""A client that has not sent its ClientHello or request head by then is closed."""
CONNECT_TIMEOUT_S = 10.0

_SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
_HIGH_WATER = 1 << 20
_LOW_WATER = 256 << 10

NameAllowed = Callable[[str, str], bool]
"""(sandbox id, name) → whether the sandbox's policy allows the name."""
AddressAllowed = Callable[[str, str], bool]
"""(sandbox id, address) → whether the sandbox may reach the address without a name."""


class ProxyGateway(Protocol):
    """What the proxy needs of the gateway."""

    def sandbox_for_address(self, address: str) -> str | None:
        """The sandbox that owns `address`, or None."""

    def socket_in_gateway(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A new socket created inside the gateway's network namespace."""


def original_destination(sock: socket.socket) -> tuple[str, int]:
    """(address, port) a redirected IPv4 connection was dialled to (conntrack's record)."""
    raw = sock.getsockopt(socket.SOL_IP, _SO_ORIGINAL_DST, 16)
    port, packed = struct.unpack_from("!2xH4s", raw)
    return socket.inet_ntoa(packed), port


class SniProxy:
    """Listens on `address:port` in the gateway netns; `start` / `close`."""

    def __init__(
        self,
        gateway: ProxyGateway,
        address: str,
        port: int,
        name_allowed: NameAllowed,
        address_allowed: AddressAllowed,
        pinned: PinnedNames,
        connection_log: ConnectionLog,
    ) -> None:
        self._gateway = gateway
        self._address = address
        self._port = port
        self._name_allowed = name_allowed
        self._address_allowed = address_allowed
        self._pinned = pinned
        self.connection_log = connection_log
        self._server: asyncio.Server | None = None
        self._open: set[_Client] = set()

    async def start(self) -> None:
        sock = self._gateway.socket_in_gateway(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._address, self._port))
            sock.listen(1024)
            sock.setblocking(False)
            self._server = await asyncio.get_running_loop().create_server(
                lambda: _Client(self), sock=sock
            )
        except BaseException:
            sock.close()
            raise

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for client in list(self._open):
            client.abort()
        if self._server is not None:
            await self._server.wait_closed()

    # -- used by _Client ---------------------------------------------------------------

    def _track(self, client: _Client, opened: bool) -> None:
        if opened:
            self._open.add(client)
        else:
            self._open.discard(client)

    def _decide(self, sandbox_id: str, destination: str, peek: Peek) -> tuple[Verdict, str]:
        what = "sni" if peek.kind == "tls" else "host"
        if destination == self._address:
            return Verdict.DENIED, "proxy dialled directly"
        if peek.name is None:
            return Verdict.DENIED, f"{peek.kind}: no {what} name"
        if not self._name_allowed(sandbox_id, peek.name):
            return Verdict.DENIED, f"{what}: name not allowed"
        if not (
            self._pinned.pinned(sandbox_id, destination, peek.name)
            or self._address_allowed(sandbox_id, destination)
        ):
            return Verdict.DENIED, f"{what}: address not resolved for this name"
        return Verdict.ALLOWED, what

    def _upstream_socket(self) -> socket.socket:
        return self._gateway.socket_in_gateway(socket.AF_INET, socket.SOCK_STREAM)


class _Side(asyncio.Protocol):
    """One direction's reader; writes what it reads to the peer's transport."""

    def __init__(self, on_done: Callable[[], None] | None = None) -> None:
        self.on_done = on_done
        """Called once, when the last of the two sides has closed."""
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.received = 0
        self.eof = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(_HIGH_WATER, _LOW_WATER)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None or peer.transport is None or peer.eof:
            return False  # both directions done (or nobody to tell): close
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.closed:
            if exc is None:
                peer.transport.close()
            else:
                peer.transport.abort()
        if (peer is None or peer.closed) and self.on_done is not None:
            self.on_done()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class _Client(_Side):
    """The sandbox's side: peeks, decides, then splices."""

    def __init__(self, proxy: SniProxy) -> None:
        super().__init__(on_done=self._done)
        self._proxy = proxy
        self._buffer = bytearray()
        self._deciding = False
        self._timer: asyncio.TimerHandle | None = None
        self._sandbox_id: str | None = None
        self._source_port = 0
        self._destination = ("", 0)
        self._entry: ConnectionEntry | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert self.transport is not None
        self._proxy._track(self, True)
        source, self._source_port = transport.get_extra_info("peername")[:2]
        self._sandbox_id = self._proxy._gateway.sandbox_for_address(str(source))
        sock = transport.get_extra_info("socket")
        try:
            self._destination = original_destination(sock)
        except OSError:
            self._sandbox_id = None  # not redirected by the gateway: nothing to serve
        if self._sandbox_id is None:
            self.transport.abort()
            return
        self._timer = asyncio.get_running_loop().call_later(PEEK_TIMEOUT_S, self._peek_timeout)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.peer is not None:
            super().data_received(data)
            return
        self._buffer += data
        self.received += len(data)
        if self._deciding:
            return  # arrived before pause_reading took effect
        peek = server_name(bytes(self._buffer[:MAX_PEEK]))
        if isinstance(peek, NeedMore) and len(self._buffer) < MAX_PEEK:
            return
        if isinstance(peek, NeedMore):
            peek = Peek("unknown", None)
        self._deciding = True
        assert self.transport is not None
        self.transport.pause_reading()
        if self._timer is not None:
            self._timer.cancel()
        asyncio.get_running_loop().create_task(self._connect(peek))

    def eof_received(self) -> bool:
        if self.peer is None:
            return False  # closed before a decision: nothing to relay
        return super().eof_received()

    def _peek_timeout(self) -> None:
        if self.peer is None and not self._deciding:
            self._record(Peek("unknown", None), Verdict.DENIED, "no name before timeout")
            if self.transport is not None:
                self.transport.close()

    async def _connect(self, peek: Peek) -> None:
        assert self._sandbox_id is not None and self.transport is not None
        verdict, reason = self._proxy._decide(self._sandbox_id, self._destination[0], peek)
        if verdict is Verdict.DENIED:
            self._record(peek, verdict, reason)
            if peek.kind == "http":
                self.transport.write(_forbidden(reason))
            self.transport.close()
            return
        upstream = _Side(on_done=self._done)
        try:
            sock = self._proxy._upstream_socket()
            try:
                sock.setblocking(False)
                loop = asyncio.get_running_loop()
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await loop.sock_connect(sock, self._destination)
                await loop.create_connection(lambda: upstream, sock=sock)
            except BaseException:
                sock.close()
                raise
        except (OSError, TimeoutError) as exc:
            self._record(peek, Verdict.ALLOWED, f"{reason}: destination unreachable ({exc})")
            self.transport.close()
            return
        if self.transport.is_closing():  # the sandbox gave up meanwhile
            assert upstream.transport is not None
            upstream.transport.close()
            self._record(peek, Verdict.ALLOWED, reason)
            return
        self._entry = self._record(peek, Verdict.ALLOWED, reason, ended=False)
        self.peer, upstream.peer = upstream, self
        assert upstream.transport is not None
        upstream.transport.write(bytes(self._buffer))
        self._buffer.clear()
        self.transport.resume_reading()

    def _record(
        self, peek: Peek, verdict: Verdict, reason: str, *, ended: bool = True
    ) -> ConnectionEntry | None:
        if self._sandbox_id is None:
            return None
        log_ = self._proxy.connection_log
        now = log_.now()
        entry = ConnectionEntry(
            sandbox_id=self._sandbox_id,
            timestamp=now,
            protocol="tcp",
            destination=self._destination[0],
            port=self._destination[1],
            verdict=verdict,
            reason=reason,
            name=peek.name,
            source_port=self._source_port,
            bytes_sent=self.received if ended else None,
            bytes_received=0 if ended else None,
            ended_at=now if ended else None,
        )
        log_.record(entry)
        return entry

    def _done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._proxy._track(self, False)
        entry, self._entry = self._entry, None
        if entry is not None and self.peer is not None:
            self._proxy.connection_log.record_end(
                FlowEnd(
                    sandbox_id=entry.sandbox_id,
                    protocol=entry.protocol,
                    destination=entry.destination,
                    port=entry.port,
                    source_port=entry.source_port,
                    bytes_sent=self.received,
                    bytes_received=self.peer.received,
                    ended_at=self._proxy.connection_log.now(),
                )
            )


def _forbidden(reason: str) -> bytes:
    body = (f"corral: this sandbox's network policy refuses the connection ({reason}).\n").encode()
    return (
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
