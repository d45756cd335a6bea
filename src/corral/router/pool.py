"""Keep-alive connections to agents' unix sockets, pooled per sandbox.

An idle connection is reused LIFO while it is younger than `idle_timeout` (kept below the
agent's own keep-alive timeout, uvicorn's 5 s, so the agent rarely closes one under us) and
shows no EOF. Every connection in use is registered under its sandbox so `forget()` can
abort them all the moment the sandbox is killed.
"""

from __future__ import annotations

import asyncio
import socket
import time

__all__ = ["AgentConnection", "AgentPool"]

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

    __slots__ = ("idle_since", "reader", "sandbox_id", "writer")

    def __init__(
        self, sandbox_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.sandbox_id = sandbox_id
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
        self._idle: dict[str, list[AgentConnection]] = {}
        self._active: dict[str, set[AgentConnection]] = {}

    async def acquire(self, sandbox_id: str, socket_path: str) -> tuple[AgentConnection, bool]:
        """A connection to the agent and whether it was reused. Raises `OSError`."""
        idle = self._idle.get(sandbox_id)
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if conn.usable(now, self._idle_timeout):
                    self._active.setdefault(sandbox_id, set()).add(conn)
                    return conn, True
                conn.abort()
        reader, writer = await asyncio.open_unix_connection(socket_path, limit=_READ_LIMIT)
        _widen_send_buffer(writer)
        conn = AgentConnection(sandbox_id, reader, writer)
        self._active.setdefault(sandbox_id, set()).add(conn)
        return conn, False

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
        idle = self._idle.setdefault(conn.sandbox_id, [])
        if len(idle) >= self._max_idle:
            conn.abort()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def forget(self, sandbox_id: str) -> None:
        """Abort every connection of the sandbox (it was killed or expired)."""
        for conn in self._idle.pop(sandbox_id, ()):
            conn.abort()
        for conn in self._active.pop(sandbox_id, set()):
            conn.abort()

    def close(self) -> None:
        for sandbox_id in list(self._idle.keys() | self._active.keys()):
            self.forget(sandbox_id)

    def active_count(self, sandbox_id: str) -> int:
        return len(self._active.get(sandbox_id, ()))

    def idle_count(self, sandbox_id: str) -> int:
        return len(self._idle.get(sandbox_id, ()))
