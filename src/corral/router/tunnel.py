"""Open a byte tunnel through a sandbox's agent to a TCP port inside the sandbox.

The agent's side is `corral.agent.tunnel`: on its unix socket the router sends
`CONNECT 127.0.0.1:<port> HTTP/1.1` with the envd access token; `200` means the agent is
connected to the port and copies bytes from now on; `502` means nothing accepts
connections there. Whatever follows the `200` head belongs to the service in the sandbox.
"""

from __future__ import annotations

import asyncio

__all__ = ["PortNotOpen", "TunnelRefused", "open_tunnel"]

_READ_LIMIT = 1 << 20
_HEAD_LIMIT = 16 * 1024


class TunnelRefused(OSError):
    """The agent answered the `CONNECT` with an error (or not at all)."""


class PortNotOpen(TunnelRefused):
    """Nothing accepts connections on the port inside the sandbox."""


async def open_tunnel(
    socket_path: str, port: int, access_token: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Streams connected to `127.0.0.1:port` inside the sandbox. Raises `OSError`."""
    reader, writer = await asyncio.open_unix_connection(socket_path, limit=_READ_LIMIT)
    try:
        writer.write(
            b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nhost: 127.0.0.1:%d\r\nx-access-token: %b\r\n\r\n"
            % (port, port, access_token.encode())
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            raise TunnelRefused("the agent closed the connection without answering") from exc
        except asyncio.LimitOverrunError as exc:
            raise TunnelRefused("the agent sent an oversized answer") from exc
        if len(head) > _HEAD_LIMIT or not head.startswith(b"HTTP/1.1 "):
            raise TunnelRefused("the agent sent a malformed answer")
        status = head[9:12]
        if status == b"200":
            return reader, writer
        if status == b"502":
            raise PortNotOpen(f"nothing accepts connections on port {port}")
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        raise TunnelRefused(f"the agent refused the tunnel: {line}")
    except BaseException:
        writer.transport.abort()
        raise
