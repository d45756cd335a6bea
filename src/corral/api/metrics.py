"""Sandbox metrics (protocol doc §3.2, §3.7): the usage samples the orchestrator keeps.

* `GET /sandboxes/{id}/metrics?start=&end=` (unix seconds, both optional) -> 200 array of
  `SandboxMetric`, oldest first; 404 for an id that is not running.
* `GET /sandboxes/metrics?sandbox_ids=a,b` -> 200 `{"sandboxes": {"<id>": SandboxMetric}}`
  with the newest sample of each running sandbox named (unknown ids are left out).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from corral.api.context import orchestrator_of
from corral.api.errors import ApiError
from corral.api.wire import JsonObject, rfc3339
from corral.orchestrator.telemetry import SandboxMetric

__all__ = ["get_sandbox_metrics", "get_sandboxes_metrics", "render_metric"]

_MAX_IDS = 100


def render_metric(metric: SandboxMetric) -> JsonObject:
    """A `SandboxMetric` body (every key required by the SDK)."""
    return {
        "timestamp": rfc3339(metric.timestamp),
        "timestampUnix": int(metric.timestamp),
        "cpuCount": metric.cpu_count,
        "cpuUsedPct": metric.cpu_used_pct,
        "memUsed": metric.mem_used,
        "memTotal": metric.mem_total,
        "memCache": metric.mem_cache,
        "diskUsed": metric.disk_used,
        "diskTotal": metric.disk_total,
    }


async def get_sandbox_metrics(request: Request) -> Response:
    start = _unix_seconds(request, "start")
    end = _unix_seconds(request, "end")
    if start is not None and end is not None and start > end:
        raise ApiError(400, f"'start' ({start}) is after 'end' ({end})")
    telemetry = orchestrator_of(request).telemetry
    metrics = await telemetry.metrics(request.path_params["sandbox_id"], start, end)
    return JSONResponse([render_metric(m) for m in metrics])


async def get_sandboxes_metrics(request: Request) -> Response:
    raw = request.query_params.get("sandbox_ids", "")
    ids = list(dict.fromkeys(i.strip() for i in raw.split(",") if i.strip()))
    if not ids:
        raise ApiError(400, "'sandbox_ids' is required: a comma-separated list of sandbox ids")
    if len(ids) > _MAX_IDS:
        raise ApiError(400, f"'sandbox_ids' names {len(ids)} sandboxes; at most {_MAX_IDS}")
    latest = await orchestrator_of(request).telemetry.latest(ids)
    return JSONResponse({"sandboxes": {i: render_metric(m) for i, m in latest.items()}})


def _unix_seconds(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"'{name}' must be a unix time in whole seconds") from None
