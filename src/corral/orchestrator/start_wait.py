"""Wait until a new sandbox's start command is ready (the agent's `GET /ready`).

A template with a `START` command and a `READY` port (the code interpreter's port-49999
server) is not handed to the client before that port accepts connections: create asks the
agent once, over its unix socket, and the agent answers when the port is open or says why it
never will be (the command exited; the end of its log is in the message).
"""

from __future__ import annotations

import asyncio
import json

__all__ = ["StartCommandNotReady", "wait_for_start_command"]


class StartCommandNotReady(Exception):
    """The template's start command did not become ready; the message says why."""


async def wait_for_start_command(agent_socket: str, access_token: str, timeout: float) -> None:
    """Return once the sandbox's start command is ready; raise `StartCommandNotReady`."""
    request = (
        f"GET /ready?timeout={timeout:g} HTTP/1.1\r\nHost: agent\r\n"
        f"X-Access-Token: {access_token}\r\nConnection: close\r\n\r\n"
    ).encode()
    try:
        async with asyncio.timeout(timeout + 5):
            reader, writer = await asyncio.open_unix_connection(agent_socket)
            try:
                writer.write(request)
                answer = await reader.read()  # the agent closes after its short answer
            finally:
                writer.close()
    except TimeoutError:
        raise StartCommandNotReady(f"no answer from the agent within {timeout + 5:g} s") from None
    except OSError as exc:
        raise StartCommandNotReady(f"cannot ask the agent: {exc}") from exc
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) >= 2 and status_line[1] == b"200":
        return
    try:
        message = str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        message = (status_line[1] if len(status_line) >= 2 else b"no status").decode(
            errors="replace"
        )
    raise StartCommandNotReady(message)
