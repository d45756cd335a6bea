"""`POST /sandboxes/{id}/timeout` `{"timeout": s}`: `endAt = now + s` -> 204 or 404."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from corral.api.context import orchestrator_of
from corral.api.wire import read_json_object, required_int

__all__ = ["set_sandbox_timeout"]


async def set_sandbox_timeout(request: Request) -> Response:
    timeout = required_int(await read_json_object(request), "timeout")
    orchestrator_of(request).set_timeout(request.path_params["sandbox_id"], timeout)
    return Response(status_code=204)
