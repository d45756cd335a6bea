"""`GET /sandboxes/{id}/connections?limit=&verdict=` (Corral extension): the egress log.

-> 200 JSON array, oldest first, of the newest `limit` (default 100, at most 10000)
connection attempts of the sandbox, each
`{"timestamp": RFC 3339, "timestampUnix": float, "protocol": str, "destination": str,
"port": int | null, "name": str | null, "verdict": "allowed" | "denied", "reason": str,
"sourcePort": int | null, "bytesSent": int | null, "bytesReceived": int | null,
"endedAt": RFC 3339 | null}`. `protocol` is `tcp`, `udp`, `icmp`, ... for connections
(firewall and SNI/Host proxy) and `dns` for queries to the sandbox's resolver; bytes are
null until the connection ended. `verdict=allowed|denied` keeps only those. Entries stay
queryable for a while after the sandbox is gone; 404 when the id is neither running nor
has entries kept.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from corral.api.context import orchestrator_of
from corral.api.errors import ApiError
from corral.api.wire import JsonObject, rfc3339
from corral.store import CONNECTIONS_PER_SANDBOX, ConnectionEntry, Verdict

__all__ = ["get_sandbox_connections", "render_connection"]

_DEFAULT_LIMIT = 100


def render_connection(entry: ConnectionEntry) -> JsonObject:
    return {
        "timestamp": rfc3339(entry.timestamp),
        "timestampUnix": entry.timestamp,
        "protocol": entry.protocol,
        "destination": entry.destination,
        "port": entry.port,
        "name": entry.name,
        "verdict": entry.verdict.value,
        "reason": entry.reason,
        "sourcePort": entry.source_port,
        "bytesSent": entry.bytes_sent,
        "bytesReceived": entry.bytes_received,
        "endedAt": None if entry.ended_at is None else rfc3339(entry.ended_at),
    }


async def get_sandbox_connections(request: Request) -> Response:
    sandbox_id = request.path_params["sandbox_id"]
    limit = _limit(request.query_params.get("limit"))
    verdict = _verdict(request.query_params.get("verdict"))
    orchestrator = orchestrator_of(request)
    entries = orchestrator.connection_log.entries(sandbox_id, limit, verdict)
    if not entries:
        orchestrator.get(sandbox_id)  # raises SandboxNotFound (404) for an unknown id
    return JSONResponse([render_connection(e) for e in entries])


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return _DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= CONNECTIONS_PER_SANDBOX:
        raise ApiError(400, f"'limit' must be a whole number from 1 to {CONNECTIONS_PER_SANDBOX}")
    return limit


def _verdict(raw: str | None) -> Verdict | None:
    if raw is None or raw == "":
        return None
    try:
        return Verdict(raw)
    except ValueError:
        raise ApiError(400, "'verdict' must be 'allowed' or 'denied'") from None
