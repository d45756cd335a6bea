"""`GET /sandboxes/{id}/events` (Corral extension): the limits a sandbox hit.

-> 200 JSON array, oldest first, of
`{"timestamp": RFC 3339, "timestampUnix": int, "kind": str, "detail": str, "count": int}`
where `kind` is `oom_kill`, `pids_max`, `cpu_throttled` or `disk_full` and `count` is how
much the kernel's counter grew since the previous sample. Events stay queryable for a
while after the sandbox is gone; 404 when the id is neither running nor has events kept.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from corral.api.context import orchestrator_of
from corral.api.wire import JsonObject, rfc3339
from corral.orchestrator.telemetry import LimitEvent

__all__ = ["get_sandbox_events", "render_event"]


def render_event(event: LimitEvent) -> JsonObject:
    return {
        "timestamp": rfc3339(event.timestamp),
        "timestampUnix": int(event.timestamp),
        "kind": event.kind.value,
        "detail": event.detail,
        "count": event.count,
    }


async def get_sandbox_events(request: Request) -> Response:
    events = orchestrator_of(request).telemetry.events(request.path_params["sandbox_id"])
    return JSONResponse([render_event(e) for e in events])
