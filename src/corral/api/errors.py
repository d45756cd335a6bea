"""HTTP errors of the control plane: every non-2xx answer is `{"code": int, "message": str}`.

Hierarchy::

    ApiError                  an HTTP status plus a client-safe message (raised by routes)

Orchestrator errors are mapped here, in one table, to statuses; `HTTPException`s raised by
the framework itself (unknown route 404, wrong method 405) get the same JSON shape; any
other exception becomes a 500 whose body never contains a traceback.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corral.orchestrator import (
    CapacityExceeded,
    InvalidArgument,
    OrchestratorError,
    SandboxNotFound,
    SandboxStartFailed,
    ShuttingDown,
    TemplateNotFound,
)

__all__ = [
    "ApiError",
    "CatchAllErrors",
    "error_response",
    "http_exception_handler",
    "orchestrator_error_handler",
]

log = logging.getLogger("corral.api")

_STATUS_OF: tuple[tuple[type[OrchestratorError], int], ...] = (
    (SandboxNotFound, 404),
    (TemplateNotFound, 404),
    (InvalidArgument, 400),
    (CapacityExceeded, 429),
    (ShuttingDown, 503),
    (SandboxStartFailed, 500),
)


class ApiError(Exception):
    """Raised by routes for bad requests; `message` is shown to the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"code": status, "message": message}, status_code=status, headers=headers)


async def api_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message)


async def orchestrator_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OrchestratorError)
    for kind, status in _STATUS_OF:
        if isinstance(exc, kind):
            return error_response(status, str(exc))
    log.error("unmapped orchestrator error: %r", exc)
    return error_response(500, str(exc))


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "not found", 405: "method not allowed"}.get(exc.status_code, exc.detail)
    if exc.status_code == 404:
        message = f"no route for {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    return error_response(exc.status_code, message, dict(exc.headers or {}))


class CatchAllErrors:
    """Outermost layer: an unexpected exception becomes a JSON 500 (details go to the log)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self._app(scope, receive, tracking_send)
        except Exception:
            log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, "internal server error")
            await response(scope, receive, send)
