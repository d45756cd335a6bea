"""WebSocket upgrades to preview URLs: the raw connection spliced through a tunnel.

uvicorn hands every `Upgrade: websocket` request to its `ws` protocol class before any ASGI
app sees it; `corral serve` installs `upgrade_protocol(...)` there. The protocol reads the
request head uvicorn replays to it, routes it like `DataPlaneRouter` (E2B headers or a
preview Host, then the traffic access token), opens a tunnel through the agent to the
port (`router.tunnel`), sends the head on and from then on copies bytes both ways: the
service in the sandbox answers the handshake itself, frames and extensions pass untouched.
Refusals are JSON answers, then the connection is closed: unknown sandbox 502 "was not
found", nothing on the port 502 "port is not open", token missing 403, and 404 for an
upgrade that is not for a preview port (the control plane and envd have no WebSockets).

Copying: two loops, each `read` → `write` → `drain` (flow control both ways). The client's
EOF is passed on as a half-close; the end of the sandbox side (service or agent gone, the
sandbox killed: the tunnel is registered in the pool so `forget` aborts it) ends both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from corral.router.preview import TRAFFIC_TOKEN_HEADER, traffic_allowed
from corral.router.responses import (
    PORT_NOT_OPEN,
    SANDBOX_NOT_FOUND,
    TRAFFIC_FORBIDDEN,
    error_response_bytes,
)
from corral.router.router import ENVD_PORT, DataPlaneRouter
from corral.router.tunnel import open_tunnel

__all__ = ["UpgradeProtocol", "upgrade_protocol"]

log = logging.getLogger("corral.router")

_READ_LIMIT = 64 * 1024
_CHUNK = 256 * 1024


def upgrade_protocol(router_of: Callable[[], DataPlaneRouter | None]) -> type[UpgradeProtocol]:
    """The `ws` protocol class for uvicorn, bound to the router `router_of()` returns."""

    class BoundUpgradeProtocol(UpgradeProtocol):
        _router_of = staticmethod(router_of)

    return BoundUpgradeProtocol


class UpgradeProtocol(asyncio.StreamReaderProtocol):
    """One upgraded client connection (constructed by uvicorn; see the module docstring)."""

    _router_of: Callable[[], DataPlaneRouter | None] = staticmethod(lambda: None)

    def __init__(self, config: Any = None, server_state: Any = None, app_state: Any = None) -> None:
        self._reader = asyncio.StreamReader(limit=_READ_LIMIT)
        super().__init__(self._reader)
        self._connections: set[Any] | None = getattr(server_state, "connections", None)
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if self._connections is not None:
            self._connections.add(self)
        self._task = asyncio.get_running_loop().create_task(self._run(transport))

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._connections is not None:
            self._connections.discard(self)

    def shutdown(self) -> None:
        """uvicorn's graceful shutdown: close the connection."""
        if self._transport is not None:
            self._transport.close()

    async def _run(self, transport: asyncio.Transport) -> None:
        reader = self._reader
        writer = asyncio.StreamWriter(transport, self, reader, asyncio.get_running_loop())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            transport.close()
            return
        try:
            await self._route(head, reader, writer)
        except Exception:
            log.exception("WebSocket relay failed")
        finally:
            transport.close()

    async def _route(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        request_line, _, header_block = head.partition(b"\r\n")
        headers = []
        for line in header_block.split(b"\r\n"):
            name, sep, value = line.partition(b":")
            if sep:
                headers.append((name.strip().lower(), value.strip()))
        router = type(self)._router_of()
        target = None if router is None else router.target_of(headers)
        if router is None or target is None or target.port in (ENVD_PORT, None):
            body = {"code": 404, "message": "WebSocket upgrades are served on preview URLs only"}
            writer.write(error_response_bytes(404, "Not Found", body))
            return
        sandbox_id = target.sandbox_id
        sandbox = router.directory.find_route(sandbox_id)
        if sandbox is None:
            body = {"sandboxId": sandbox_id, "message": SANDBOX_NOT_FOUND, "code": 502}
            writer.write(error_response_bytes(502, "Bad Gateway", body))
            return
        if not traffic_allowed(sandbox.traffic_access_token, target.traffic_token):
            body = {"sandboxId": sandbox_id, "message": TRAFFIC_FORBIDDEN, "code": 403}
            writer.write(error_response_bytes(403, "Forbidden", body))
            return
        port = target.port
        assert port is not None
        try:
            inner_reader, inner_writer = await open_tunnel(
                sandbox.agent_socket, port, sandbox.access_token
            )
        except OSError as exc:
            log.debug("sandbox %s: no tunnel to port %d: %s", sandbox_id, port, exc)
            gone = router.directory.find_route(sandbox_id) is None
            message = SANDBOX_NOT_FOUND if gone else PORT_NOT_OPEN
            body = {"sandboxId": sandbox_id, "message": message, "code": 502}
            writer.write(error_response_bytes(502, "Bad Gateway", body))
            return
        conn = router.pool.register(sandbox_id, inner_reader, inner_writer, port)
        try:
            forwarded = [request_line]
            forwarded += [
                name + b": " + value for name, value in headers if name != TRAFFIC_TOKEN_HEADER
            ]
            inner_writer.write(b"\r\n".join(forwarded) + b"\r\n\r\n")
            await _splice(reader, writer, inner_reader, inner_writer)
        finally:
            router.pool.release(conn, reusable=False)


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    while data := await source.read(_CHUNK):
        sink.write(data)
        await sink.drain()
    if not sink.is_closing() and sink.can_write_eof():
        sink.write_eof()


async def _splice(
    client_reader: asyncio.StreamReader,
    client_writer: asyncio.StreamWriter,
    inner_reader: asyncio.StreamReader,
    inner_writer: asyncio.StreamWriter,
) -> None:
    up = asyncio.ensure_future(_pump(client_reader, inner_writer))
    down = asyncio.ensure_future(_pump(inner_reader, client_writer))
    try:
        done, _ = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        if up in done and up.exception() is None and down not in done:
            await asyncio.wait({down})  # the client half-closed: the answer may still come
    finally:
        for task in (up, down):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, ConnectionError):
                await task
        with contextlib.suppress(OSError):
            await client_writer.drain()
