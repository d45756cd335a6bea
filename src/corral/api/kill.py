"""`DELETE /sandboxes/{id}` -> 204, or 404 if no such running sandbox."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from corral.api.context import orchestrator_of

__all__ = ["kill_sandbox"]


async def kill_sandbox(request: Request) -> Response:
    await orchestrator_of(request).kill(request.path_params["sandbox_id"])
    return Response(status_code=204)
