"""`GET /sandboxes/{id}` -> 200 `SandboxDetail` or 404."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from corral.api.context import orchestrator_of
from corral.api.wire import render_detail
from corral.network.policy import render_network

__all__ = ["get_sandbox"]


async def get_sandbox(request: Request) -> Response:
    orchestrator = orchestrator_of(request)
    record = orchestrator.get(request.path_params["sandbox_id"])
    body = render_detail(record)
    body.update(render_network(record.network, orchestrator.settings.network))
    return JSONResponse(body)
