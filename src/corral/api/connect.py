"""`POST /v2/sandboxes/{id}/connect` (and `/sandboxes/{id}/connect`): extend -> 200 `Sandbox`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from corral.api.context import orchestrator_of
from corral.api.wire import optional_bool, optional_int, read_json_object, render_sandbox

__all__ = ["connect_sandbox"]


async def connect_sandbox(request: Request) -> Response:
    body = await read_json_object(request, empty_ok=True)
    timeout = optional_int(body, "timeout")
    optional_bool(body, "memory")  # resume mode; nothing is ever paused here
    record = orchestrator_of(request).connect(request.path_params["sandbox_id"], timeout)
    return JSONResponse(render_sandbox(record), status_code=200)
