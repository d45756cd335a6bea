"""Run the agent's request path a few times in the process that will fork sandboxes.

The launcher forks every sandbox's agent from itself. Whatever the first requests of a fresh
agent would do once — CPython specializing the bytecode of the hot path, building lazy
state (the set of ignored signals, parser objects, codec lookups) — is then already done in
the parent and shared copy-on-write, instead of being paid (in latency and in private
memory) by every sandbox. The launcher calls `warm_up()` once before its first fork.

It serves a throwaway agent on a temporary unix socket and sends it `/health`, `List` and
`Start` of `/bin/true` (as the caller and, when it is root, as `nobody` to exercise the
identity switch), so it starts a few short host processes of its own.
"""

from __future__ import annotations

import asyncio
import base64
import os
import pwd
import socket
import tempfile

from corral.agent.server import run
from corral.protocol.agent_config import AgentConfig
from corral.protocol.connect import encode_envelope

__all__ = ["warm_up"]

_TOKEN = "warm-up"
_START = b'{"process":{"cmd":"/bin/true"},"stdin":false}'


def warm_up(rounds: int = 10) -> None:
    """Drive `rounds` of requests through an in-process agent, then stop it."""
    with tempfile.TemporaryDirectory(prefix="corral-warm-up-") as workdir:
        path = os.path.join(workdir, "agent.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(16)
        me = pwd.getpwuid(os.getuid()).pw_name
        config = AgentConfig(access_token=_TOKEN, default_user=me, default_workdir=workdir)
        users = [me] + (["nobody"] if os.getuid() == 0 and _exists("nobody") else [])
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(_drive(listener, config, path, users, rounds))
        finally:
            loop.close()
            listener.close()


async def _drive(
    listener: socket.socket, config: AgentConfig, path: str, users: list[str], rounds: int
) -> None:
    stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    agent = asyncio.create_task(run(listener, config, "/etc", stop))
    try:
        reader, writer = await asyncio.open_unix_connection(path)
        for _ in range(rounds):
            await _exchange(reader, writer, "GET", "/health", {}, b"")
            await _exchange(reader, writer, "POST", "/process.Process/List", _unary(), b"{}")
            for user in users:
                await _exchange(
                    reader,
                    writer,
                    "POST",
                    "/process.Process/Start",
                    _streaming(user),
                    encode_envelope(_START),
                )
        writer.close()
    finally:
        stop.set_result(None)
        await agent


def _unary() -> dict[str, str]:
    return {"content-type": "application/json", "x-access-token": _TOKEN}


def _streaming(user: str) -> dict[str, str]:
    basic = base64.b64encode(f"{user}:".encode()).decode()
    return {
        "content-type": "application/connect+json",
        "x-access-token": _TOKEN,
        "authorization": f"Basic {basic}",
        "connect-protocol-version": "1",
    }


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    """Send one request and read its whole answer (chunked or sized)."""
    head = [f"{method} {target} HTTP/1.1", "host: agent", f"content-length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await reader.readline()  # status line
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return
    while size := int((await reader.readline()).strip() or b"0", 16):
        await reader.readexactly(size + 2)  # chunk and its CRLF
    await reader.readline()


def _exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True
