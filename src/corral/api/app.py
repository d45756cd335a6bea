"""Assembles the control-plane Starlette app around one `Orchestrator`."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api.auth import ApiKeyAuth
from corral.api.connect import connect_sandbox
from corral.api.connections import get_sandbox_connections
from corral.api.create import create_sandbox
from corral.api.detail import get_sandbox
from corral.api.errors import (
    ApiError,
    CatchAllErrors,
    api_error_handler,
    http_exception_handler,
    orchestrator_error_handler,
)
from corral.api.events import get_sandbox_events
from corral.api.kill import kill_sandbox
from corral.api.listing import list_sandboxes, list_sandboxes_v1
from corral.api.metrics import get_sandbox_metrics, get_sandboxes_metrics
from corral.api.network import update_network
from corral.api.timeout import set_sandbox_timeout
from corral.orchestrator import Orchestrator, OrchestratorError

__all__ = ["build_control_plane"]


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


ROUTES = [
    Route("/v2/sandboxes", create_sandbox, methods=["POST"]),
    Route("/v2/sandboxes", list_sandboxes, methods=["GET"]),
    Route("/sandboxes", create_sandbox, methods=["POST"]),
    Route("/sandboxes", list_sandboxes_v1, methods=["GET"]),
    Route("/v2/sandboxes/{sandbox_id}/connect", connect_sandbox, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/connect", connect_sandbox, methods=["POST"]),
    Route("/sandboxes/metrics", get_sandboxes_metrics, methods=["GET"]),  # before {sandbox_id}
    Route("/sandboxes/{sandbox_id}", get_sandbox, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}/metrics", get_sandbox_metrics, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}/events", get_sandbox_events, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}/connections", get_sandbox_connections, methods=["GET"]),
    Route("/sandboxes/{sandbox_id}", kill_sandbox, methods=["DELETE"]),
    Route("/sandboxes/{sandbox_id}/timeout", set_sandbox_timeout, methods=["POST"]),
    Route("/sandboxes/{sandbox_id}/network", update_network, methods=["PUT"]),
    Route("/health", health, methods=["GET"]),
]


class _HealthWithoutKey:
    """Lets `GET /health` through without an API key (liveness probes carry none)."""

    def __init__(self, app: ASGIApp, guarded: ASGIApp) -> None:
        self._open = app
        self._guarded = guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/health":
            await self._open(scope, receive, send)
        else:
            await self._guarded(scope, receive, send)


def build_control_plane(orchestrator: Orchestrator, api_keys: Iterable[str] = ()) -> ASGIApp:
    """The control-plane ASGI app. `api_keys` empty: any non-empty `X-API-KEY` is accepted."""
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(CatchAllErrors)],
        exception_handlers={
            HTTPException: http_exception_handler,
            ApiError: api_error_handler,
            OrchestratorError: orchestrator_error_handler,
        },
    )
    app.router.redirect_slashes = False
    app.state.orchestrator = orchestrator
    return _HealthWithoutKey(app, ApiKeyAuth(app, api_keys))
