"""`DataPlaneRouter`: the ASGI app in front of everything (protocol doc §2).

Requests with `E2b-Sandbox-Id` go to that sandbox; signed `/files` links without it go to
the sandbox whose access token reproduces the signature; everything else goes to the
`fallback` app (the control plane).
"""

from __future__ import annotations

import logging

from corral.router.asgi import ASGIApp, Receive, Scope, Send
from corral.router.directory import RoutableSandbox, SandboxDirectory
from corral.router.pool import AgentPool
from corral.router.proxy import (
    AgentUnavailable,
    Outcome,
    RequestBody,
    build_request_head,
    exchange,
)
from corral.router.responses import send_json, send_port_not_open, send_sandbox_not_found
from corral.router.signed_urls import match_signed_request, parse_signed_request

__all__ = ["ENVD_PORT", "DataPlaneRouter"]

log = logging.getLogger("corral.router")

ENVD_PORT = 49983
_ENVD_PORT_BYTES = str(ENVD_PORT).encode()


class DataPlaneRouter:
    """Routes data-plane requests to agents; hands every other request to `fallback`."""

    def __init__(
        self, directory: SandboxDirectory, fallback: ASGIApp, pool: AgentPool | None = None
    ) -> None:
        self._directory = directory
        self._fallback = fallback
        self._pool = pool or AgentPool()

    @property
    def pool(self) -> AgentPool:
        return self._pool

    def forget_sandbox(self, sandbox_id: str) -> None:
        """The sandbox is gone: abort its open streams and drop its idle connections."""
        self._pool.forget(sandbox_id)

    def close(self) -> None:
        self._pool.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._fallback(scope, receive, send)
            return
        sandbox_header: bytes | None = None
        port = _ENVD_PORT_BYTES
        for name, value in scope["headers"]:
            if name == b"e2b-sandbox-id":
                sandbox_header = value
            elif name == b"e2b-sandbox-port":
                port = value.strip()
        if sandbox_header is None:
            if scope["path"] == "/files" and b"signature" in scope["query_string"]:
                await self._route_signed(scope, receive, send)
            else:
                await self._fallback(scope, receive, send)
            return
        sandbox_id = sandbox_header.decode("latin-1").strip()
        sandbox = self._directory.find_route(sandbox_id)
        if sandbox is None:
            await send_sandbox_not_found(send, sandbox_id)
        elif port != _ENVD_PORT_BYTES:
            await send_port_not_open(send, sandbox_id)  # TCP relay to other ports: not yet
        else:
            await self._forward(sandbox, scope, receive, send)

    async def _route_signed(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = parse_signed_request(scope["method"], scope["query_string"])
        sandbox = None
        if request is not None:
            sandbox = match_signed_request(request, self._directory.routes())
        if sandbox is None:
            await send_json(send, 401, {"code": 401, "message": "invalid signature"})
            return
        await self._forward(sandbox, scope, receive, send)

    async def _forward(
        self, sandbox: RoutableSandbox, scope: Scope, receive: Receive, send: Send
    ) -> None:
        body = await RequestBody.start(scope, receive)
        if body is None:
            return  # the client left before sending its body
        head = build_request_head(scope, body)
        sandbox_id = sandbox.sandbox_id
        replayable = not body.more
        for attempt in range(2):
            try:
                conn, reused = await self._pool.acquire(sandbox_id, sandbox.agent_socket)
            except OSError as exc:
                log.debug("sandbox %s: cannot reach agent: %s", sandbox_id, exc)
                await self._answer_unreachable(send, sandbox_id)
                return
            outcome = Outcome.DONE
            try:
                outcome = await exchange(conn, head, body, scope, receive, send)
            except AgentUnavailable as exc:
                if reused and replayable and attempt == 0:
                    continue  # a stale keep-alive connection; replay on a fresh one
                log.debug("sandbox %s: %s", sandbox_id, exc)
                await self._answer_unreachable(send, sandbox_id)
                return
            finally:
                self._pool.release(conn, reusable=outcome is Outcome.REUSABLE)
            if outcome is Outcome.ABORTED:
                log.warning(
                    "sandbox %s: agent connection lost mid-response; aborting the client "
                    "connection",
                    sandbox_id,
                )
            return

    async def _answer_unreachable(self, send: Send, sandbox_id: str) -> None:
        if self._directory.find_route(sandbox_id) is None:
            await send_sandbox_not_found(send, sandbox_id)
        else:
            await send_port_not_open(send, sandbox_id)
