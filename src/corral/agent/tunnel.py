"""`CONNECT 127.0.0.1:<port>`: a byte tunnel to a TCP port inside the sandbox (preview URLs).

The router opens a connection to the agent's unix socket, sends

    CONNECT 127.0.0.1:<port> HTTP/1.1
    X-Access-Token: <envd access token>

and the agent connects to `127.0.0.1:<port>` (then `[::1]:<port>` if IPv4 is refused) in the
sandbox's own network namespace. On success it answers `200 Connection Established` with no
body and from then on copies bytes both ways; otherwise it answers 502 JSON and closes. Only
loopback targets are accepted: the tunnel reaches what the sandbox itself serves, nothing
else. Only the router reaches the agent's socket (it is bound on the host, outside the
sandbox's mount namespace), and the token is checked like on every other envd path.

The copy is two `asyncio.Protocol`s wired to each other's transports: each read is written
straight to the other side, and a side whose write buffer fills pauses reading on the
other (flow control both ways). A half-close is passed on (`write_eof`); the tunnel closes
when both directions have ended or either side is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging

from corral.agent.http_server import IGNORE_BODY, RequestHandler, RequestHead, Response

__all__ = ["TUNNEL_ESTABLISHED", "open_tunnel", "tunnel_port"]

_log = logging.getLogger("corral.agent")

TUNNEL_ESTABLISHED = b"HTTP/1.1 200 Connection Established\r\n\r\n"
_CONNECT_TIMEOUT = 10.0
_TARGETS = (("127.0.0.1", "127.0.0.1"), ("localhost", "127.0.0.1"), ("[::1]", "::1"))


def tunnel_port(target: str) -> int | None:
    """The port of a `CONNECT` target `127.0.0.1:<port>` (or `localhost:`, `[::1]:`)."""
    host, sep, port = target.rpartition(":")
    if not sep or host not in {name for name, _ in _TARGETS}:
        return None
    if not port.isascii() or not port.isdigit() or len(port) > 5:
        return None
    number = int(port)
    return number if 0 < number < 65536 else None


def open_tunnel(head: RequestHead, response: Response) -> RequestHandler:
    """Answer a `CONNECT` request (the access token was already checked)."""
    port = tunnel_port(head.path)
    if port is None:
        body = {"code": 400, "message": "CONNECT target must be 127.0.0.1:<port>"}
        response.send_json(400, body)
        return IGNORE_BODY
    response.take_over(lambda transport, rest: _start(transport, rest, port))
    return IGNORE_BODY


# Connect attempts in flight (the loop keeps only weak references to tasks).
_pending: set[asyncio.Task[None]] = set()


def _start(client: asyncio.Transport, rest: bytes, port: int) -> None:
    task = asyncio.get_running_loop().create_task(_connect(client, rest, port))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _connect(client: asyncio.Transport, rest: bytes, port: int) -> None:
    loop = asyncio.get_running_loop()
    inner = _End()
    error: OSError | None = None
    for address in ("127.0.0.1", "::1"):
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: inner, address, port), _CONNECT_TIMEOUT
            )
            break
        except (OSError, TimeoutError) as exc:
            error = exc if isinstance(exc, OSError) else OSError(f"timed out: {exc}")
    else:
        _log.debug("tunnel to port %d: %s", port, error)
        if not client.is_closing():
            body = json.dumps(
                {"code": 502, "message": f"nothing accepts connections on port {port}"}
            ).encode()
            client.write(
                b"HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%b" % (len(body), body)
            )
            client.close()
        return
    if client.is_closing():
        inner.close()
        return
    outer = _End()
    client.set_protocol(outer)
    outer.connection_made(client)
    client.write(TUNNEL_ESTABLISHED)
    if rest:
        inner.write(rest)
    _End.link(outer, inner)
    client.resume_reading()


class _End(asyncio.Protocol):
    """One side of the tunnel: what arrives here is written to the other side."""

    __slots__ = ("_eof", "_held", "_peer", "_transport")

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._peer: _End | None = None
        self._held = bytearray()
        self._eof = False

    @staticmethod
    def link(a: _End, b: _End) -> None:
        a._peer, b._peer = b, a
        for end in (a, b):
            if end._held:
                held, end._held = bytes(end._held), bytearray()
                end._peer.write(held)  # type: ignore[union-attr]
                if end._transport is not None:
                    end._transport.resume_reading()
            if end._eof:
                end._pass_eof()

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        peer = self._peer
        if peer is None:  # not linked yet: hold it
            self._held += data
            if self._transport is not None:
                self._transport.pause_reading()
            return
        peer.write(data)

    def eof_received(self) -> bool:
        self._eof = True
        if self._peer is not None:
            self._pass_eof()
        return True  # keep the other direction open until the peer ends too

    def _pass_eof(self) -> None:
        peer = self._peer
        assert peer is not None
        transport = peer._transport
        if transport is None or transport.is_closing():
            return
        if peer._eof or not transport.can_write_eof():
            transport.close()
            self.close()
        else:
            transport.write_eof()

    def connection_lost(self, exc: Exception | None) -> None:
        peer = self._peer
        if peer is not None and peer._transport is not None:
            if exc is None:
                peer._transport.close()  # after flushing what is buffered
            else:
                peer._transport.abort()

    def pause_writing(self) -> None:
        peer = self._peer
        if peer is not None and peer._transport is not None:
            peer._transport.pause_reading()

    def resume_writing(self) -> None:
        peer = self._peer
        if peer is not None and peer._transport is not None:
            peer._transport.resume_reading()
