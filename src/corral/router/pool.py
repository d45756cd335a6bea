"""Keep-alive connections to agents' unix sockets, pooled per sandbox and port.

Port `ENVD` means the agent itself; any other port a tunnel through the agent to that port
inside the sandbox (preview URLs, `router.tunnel`), opened by the `opener` the caller
passes. An idle connection is reused LIFO while it is younger than `idle_timeout` (kept
below the agent's own keep-alive timeout, uvicorn's 5 s, so the agent rarely closes one
under us) and shows no EOF. Every connection in use is registered under its sandbox so
`forget()` can abort them all the moment the sandbox is killed.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

__all__ = ["ENVD", "AgentConnection", "AgentPool", "Opener"]

ENVD = 0
"""The pseudo-port of connections to the agent itself."""

Opener = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

_READ_LIMIT = 1 << 20
# Request bodies towards the agent (uploads): a 1 MiB socket buffer and write high-water
# mark let the server move a body in a few large steps instead of many 200 KiB ones (the
# default unix socket buffer), which halves context switches between server and agent.
_SEND_BUFFER = 1 << 20


def _widen_send_buffer(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SEND_BUFFER)
    writer.transport.set_write_buffer_limits(high=_SEND_BUFFER)


class AgentConnection:
    """One HTTP/1.1 connection to a sandbox's agent."""

    __slots__ = ("idle_since", "port", "reader", "sandbox_id", "writer")

    def __init__(
        self,
        sandbox_id: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        port: int = ENVD,
    ) -> None:
        self.sandbox_id = sandbox_id
        self.port = port
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def abort(self) -> None:
        """Drop the connection at once (no graceful close); pending reads see EOF."""
        self.writer.transport.abort()

    def usable(self, now: float, idle_timeout: float) -> bool:
        return (
            now - self.idle_since < idle_timeout
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )


class AgentPool:
    """Idle and active agent connections, keyed by sandbox id."""

    def __init__(self, max_idle_per_sandbox: int = 32, idle_timeout: float = 4.0) -> None:
        self._max_idle = max_idle_per_sandbox
        self._idle_timeout = idle_timeout
        self._idle: dict[tuple[str, int], list[AgentConnection]] = {}
        self._active: dict[str, set[AgentConnection]] = {}

    async def acquire(
        self, sandbox_id: str, socket_path: str, port: int = ENVD, opener: Opener | None = None
    ) -> tuple[AgentConnection, bool]:
        """A connection to the agent (or, with `opener`, a tunnel to `port`) and whether it
        was reused. Raises `OSError`."""
        idle = self._idle.get((sandbox_id, port))
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if conn.usable(now, self._idle_timeout):
                    self._active.setdefault(sandbox_id, set()).add(conn)
                    return conn, True
                conn.abort()
        if opener is None:
            reader, writer = await asyncio.open_unix_connection(socket_path, limit=_READ_LIMIT)
        else:
            reader, writer = await opener()
        _widen_send_buffer(writer)
        conn = self.register(sandbox_id, reader, writer, port)
        return conn, False

    def register(
        self,
        sandbox_id: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        port: int = ENVD,
    ) -> AgentConnection:
        """Track a connection opened elsewhere as active (aborted by `forget`)."""
        conn = AgentConnection(sandbox_id, reader, writer, port)
        self._active.setdefault(sandbox_id, set()).add(conn)
        return conn

    def release(self, conn: AgentConnection, reusable: bool) -> None:
        """Return `conn` after a request; it is closed unless `reusable`."""
        active = self._active.get(conn.sandbox_id)
        if active is not None:
            active.discard(conn)
            if not active:
                del self._active[conn.sandbox_id]
        elif reusable:
            reusable = False  # the sandbox was forgotten while the request ran
        if not reusable or conn.writer.is_closing():
            conn.abort()
            return
        idle = self._idle.setdefault((conn.sandbox_id, conn.port), [])
        if len(idle) >= self._max_idle:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def forget(self, sandbox_id: str) -> None:
        """Abort every connection of the sandbox (it was killed or expired)."""
        for key in [key for key in self._idle if key[0] == sandbox_id]:
            for conn in self._idle.pop(key):
                conn.abort()
        for conn in self._active.pop(sandbox_id, set()):
            conn.abort()

    def close(self) -> None:
        for sandbox_id in {key[0] for key in self._idle} | self._active.keys():
            self.forget(sandbox_id)

    def active_count(self, sandbox_id: str) -> int:
        return len(self._active.get(sandbox_id, ()))

    def idle_count(self, sandbox_id: str, port: int = ENVD) -> int:
        return len(self._idle.get((sandbox_id, port), ()))
