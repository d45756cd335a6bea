"""`DataPlaneRouter`: the ASGI app in front of everything (protocol doc §2).

Requests with `E2b-Sandbox-Id`, or with a preview Host `{port}-{sandboxId}.{domain}`
(`router.preview`), go to that sandbox: port 49983 to its agent, any other port through a
tunnel to that port inside it (after the traffic access token check); signed `/files`
links without either go to the sandbox whose access token reproduces the signature;
everything else goes to the `fallback` app (the control plane). WebSocket upgrades never
reach this ASGI app: `router.websocket` takes them over below the HTTP server.
"""

from __future__ import annotations

import functools
import logging

from corral.router.asgi import ASGIApp, Receive, Scope, Send
from corral.router.directory import RoutableSandbox, SandboxDirectory
from corral.router.pool import ENVD, AgentPool, Opener
from corral.router.preview import TRAFFIC_TOKEN_HEADER, parse_preview_host, traffic_allowed
from corral.router.proxy import (
    AgentUnavailable,
    Outcome,
    RequestBody,
    build_request_head,
    exchange,
)
from corral.router.responses import (
    send_json,
    send_port_not_open,
    send_sandbox_not_found,
    send_traffic_forbidden,
)
from corral.router.signed_urls import match_signed_request, parse_signed_request
from corral.router.tunnel import open_tunnel

__all__ = ["DEFAULT_DOMAIN", "ENVD_PORT", "DataPlaneRouter", "Target"]

log = logging.getLogger("corral.router")

ENVD_PORT = 49983
DEFAULT_DOMAIN = "corral.localhost"
_PREVIEW_DROP = frozenset({TRAFFIC_TOKEN_HEADER})


class Target:
    """Where a data-plane request goes: a sandbox id, a port, the traffic token presented."""

    __slots__ = ("port", "sandbox_id", "traffic_token")

    def __init__(self, sandbox_id: str, port: int | None, traffic_token: bytes | None) -> None:
        self.sandbox_id = sandbox_id
        self.port = port
        """None: the `E2b-Sandbox-Port` header was not a port number."""
        self.traffic_token = traffic_token


class DataPlaneRouter:
    """Routes data-plane requests to agents; hands every other request to `fallback`."""

    def __init__(
        self,
        directory: SandboxDirectory,
        fallback: ASGIApp,
        pool: AgentPool | None = None,
        domain: str = DEFAULT_DOMAIN,
    ) -> None:
        self._directory = directory
        self._fallback = fallback
        self._pool = pool or AgentPool()
        self._domain = domain.strip(".").lower().encode("idna")

    @property
    def pool(self) -> AgentPool:
        return self._pool

    @property
    def directory(self) -> SandboxDirectory:
        return self._directory

    def target_of(self, headers: list[tuple[bytes, bytes]]) -> Target | None:
        """The sandbox port a request is for (E2B headers first, then the Host), or None."""
        sandbox_header: bytes | None = None
        port: bytes | None = None
        host: bytes | None = None
        traffic: bytes | None = None
        for name, value in headers:
            if name == b"e2b-sandbox-id":
                sandbox_header = value
            elif name == b"e2b-sandbox-port":
                port = value.strip()
            elif name == b"host":
                host = value
            elif name == TRAFFIC_TOKEN_HEADER:
                traffic = value
        if sandbox_header is not None:
            sandbox_id = sandbox_header.decode("latin-1").strip()
            if port is None:
                return Target(sandbox_id, ENVD_PORT, traffic)
            number = int(port) if port.isdigit() and len(port) <= 5 else 0
            return Target(sandbox_id, number if 0 < number < 65536 else None, traffic)
        if host is not None and self._domain:
            preview = parse_preview_host(host, self._domain)
            if preview is not None:
                return Target(preview[1], preview[0], traffic)
        return None

    def forget_sandbox(self, sandbox_id: str) -> None:
        """The sandbox is gone: abort its open streams and drop its idle connections."""
        self._pool.forget(sandbox_id)

    def close(self) -> None:
        self._pool.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._fallback(scope, receive, send)
            return
        target = self.target_of(scope["headers"])
        if target is None:
            if scope["path"] == "/files" and b"signature" in scope["query_string"]:
                await self._route_signed(scope, receive, send)
            else:
                await self._fallback(scope, receive, send)
            return
        sandbox_id = target.sandbox_id
        sandbox = self._directory.find_route(sandbox_id)
        if sandbox is None:
            await send_sandbox_not_found(send, sandbox_id)
        elif target.port == ENVD_PORT:
            await self._forward(sandbox, scope, receive, send)
        elif target.port is None:
            await send_port_not_open(send, sandbox_id)
        elif not traffic_allowed(sandbox.traffic_access_token, target.traffic_token):
            await send_traffic_forbidden(send, sandbox_id)
        else:
            await self._forward(sandbox, scope, receive, send, target.port)

    def tunnel_opener(self, sandbox: RoutableSandbox, port: int) -> Opener:
        """Opens a tunnel through `sandbox`'s agent to `port` inside it."""
        return functools.partial(open_tunnel, sandbox.agent_socket, port, sandbox.access_token)

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
        self,
        sandbox: RoutableSandbox,
        scope: Scope,
        receive: Receive,
        send: Send,
        port: int = ENVD_PORT,
    ) -> None:
        body = await RequestBody.start(scope, receive)
        if body is None:
            return  # the client left before sending its body
        sandbox_id = sandbox.sandbox_id
        if port == ENVD_PORT:
            head = build_request_head(scope, body)
            pool_port, opener = ENVD, None
        else:
            head = build_request_head(scope, body, _PREVIEW_DROP)
            pool_port, opener = port, self.tunnel_opener(sandbox, port)
        replayable = not body.more
        for attempt in range(2):
            try:
                conn, reused = await self._pool.acquire(
                    sandbox_id, sandbox.agent_socket, pool_port, opener
                )
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
