"""`GET /sandboxes/{id}` -> 200 `SandboxDetail` or 404."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from corral.api.context import orchestrator_of
from corral.api.wire import render_detail

__all__ = ["get_sandbox"]


async def get_sandbox(request: Request) -> Response:
    record = orchestrator_of(request).get(request.path_params["sandbox_id"])
    return JSONResponse(render_detail(record))
