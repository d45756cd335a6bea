"""`DnsUpstream`: forwards an allowed query to the operator's resolvers (`--dns-upstream`).

UDP queries share one socket per address family, made inside the gateway's network namespace
(so they leave through the gateway's uplink); each forwarded query gets a fresh random
message id, answers are matched by id and by the server's address, and the client's id is
put back. TCP (for clients that asked over TCP, e.g. after a truncated answer) opens one
connection per query. Servers are tried in order; each gets `timeout` seconds.

Errors: `UpstreamError` (no server answered; the resolver answers SERVFAIL).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import secrets
import socket
import struct
from collections.abc import Callable, Sequence

__all__ = ["DnsUpstream", "SocketFactory", "UpstreamError"]

SocketFactory = Callable[[int, int], socket.socket]
"""(family, type) → a new socket in the namespace the upstream is reached from."""

_MAX_MESSAGE = 65535


class UpstreamError(Exception):
    """No upstream resolver answered the query."""


_Pending = dict[tuple[int, int], tuple[tuple[str, int], "asyncio.Future[bytes]"]]
"""(family, message id) → (the server that may answer, the waiting future)."""


class _Answers(asyncio.DatagramProtocol):
    def __init__(self, pending: _Pending, family: int) -> None:
        self._pending = pending
        self._family = family

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(data) < 12:
            return
        (message_id,) = struct.unpack_from("!H", data)
        waiting = self._pending.get((self._family, message_id))
        if waiting is None or waiting[1].done():
            return
        server, future = waiting
        if (str(ipaddress.ip_address(str(addr[0]))), addr[1]) == server:
            future.set_result(data)


class DnsUpstream:
    """Forwards raw DNS messages to `servers` ((address, port), tried in order)."""

    def __init__(
        self,
        servers: Sequence[tuple[str, int]],
        make_socket: SocketFactory,
        *,
        timeout: float = 2.0,
    ) -> None:
        self._servers = [(str(ipaddress.ip_address(host)), port) for host, port in servers]
        self._make_socket = make_socket
        self._timeout = timeout
        self._pending: _Pending = {}
        self._transports: dict[int, asyncio.DatagramTransport] = {}

    async def query_udp(self, query: bytes) -> bytes:
        """The first answer over UDP; raises `UpstreamError`."""
        loop = asyncio.get_running_loop()
        for host, port in self._servers:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            transport = await self._transport(family)
            message_id = self._free_id(family)
            future: asyncio.Future[bytes] = loop.create_future()
            self._pending[(family, message_id)] = ((host, port), future)
            try:
                transport.sendto(struct.pack("!H", message_id) + query[2:], (host, port))
                answer = await asyncio.wait_for(future, self._timeout)
            except (TimeoutError, OSError):
                continue
            finally:
                del self._pending[(family, message_id)]
            return query[:2] + answer[2:]
        raise UpstreamError(f"no upstream resolver answered ({self._describe()})")

    async def query_tcp(self, query: bytes) -> bytes:
        """The first answer over TCP; raises `UpstreamError`."""
        loop = asyncio.get_running_loop()
        for host, port in self._servers:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                sock = self._make_socket(family, socket.SOCK_STREAM)
            except OSError:
                continue
            try:
                sock.setblocking(False)
                async with asyncio.timeout(self._timeout):
                    await loop.sock_connect(sock, (host, port))
                    await loop.sock_sendall(sock, struct.pack("!H", len(query)) + query)
                    (length,) = struct.unpack("!H", await _receive(loop, sock, 2))
                    answer = await _receive(loop, sock, length)
            except (TimeoutError, OSError, EOFError):
                continue
            finally:
                sock.close()
            if len(answer) >= 12:
                return query[:2] + answer[2:]
        raise UpstreamError(f"no upstream resolver answered over TCP ({self._describe()})")

    def close(self) -> None:
        for transport in self._transports.values():
            transport.close()
        self._transports.clear()
        for _, future in self._pending.values():
            future.cancel()

    async def _transport(self, family: int) -> asyncio.DatagramTransport:
        transport = self._transports.get(family)
        if transport is None:
            sock = self._make_socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            answers = _Answers(self._pending, family)
            with contextlib.ExitStack() as on_error:
                on_error.callback(sock.close)
                transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: answers, sock=sock
                )
                on_error.pop_all()
            self._transports[family] = transport
        return transport

    def _free_id(self, family: int) -> int:
        while True:
            message_id = secrets.randbelow(1 << 16)
            if (family, message_id) not in self._pending:
                return message_id

    def _describe(self) -> str:
        if not self._servers:
            return "none is configured: start the server with --dns-upstream"
        return ", ".join(f"{host} port {port}" for host, port in self._servers)


async def _receive(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = await loop.sock_recv(sock, min(size - len(data), _MAX_MESSAGE))
        if not chunk:
            raise EOFError("the upstream resolver closed the connection")
        data += chunk
    return bytes(data)
