"""`GET /v2/sandboxes` (paged, `X-Next-Token`) and the v1 `GET /sandboxes` (one page).

Query parameters (protocol doc §3.6): `metadata` (triple-encoded), `state` (comma list of
`running`/`paused`), `order` (`asc`/`desc`), `startedAfter` (ISO 8601), `template`,
`limit` (1-100, default 100), `nextToken`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from corral.api.context import orchestrator_of
from corral.api.errors import ApiError
from corral.api.metadata_filter import decode_metadata_filter
from corral.api.wire import render_listed
from corral.orchestrator import SandboxQuery

__all__ = ["list_sandboxes", "list_sandboxes_v1", "parse_query"]

MAX_PAGE = 100
_STATES = frozenset({"running", "paused"})


def parse_query(params: QueryParams, *, paged: bool) -> SandboxQuery:
    metadata = decode_metadata_filter(params.get("metadata", ""))
    states = _STATES
    if params.get("state"):
        states = frozenset(s.strip() for s in params["state"].split(",") if s.strip())
        unknown = states - _STATES
        if unknown:
            raise ApiError(400, f"'state' has unknown value(s) {sorted(unknown)}")
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "'order' must be 'asc' or 'desc'")
    direction: Literal["asc", "desc"] = "asc" if order == "asc" else "desc"
    started_after = _parse_time(params["startedAfter"]) if params.get("startedAfter") else None
    limit: int | None = None
    if paged:
        limit = MAX_PAGE
        if params.get("limit"):
            try:
                limit = int(params["limit"])
            except ValueError as exc:
                raise ApiError(400, "'limit' must be an integer") from exc
            if not 1 <= limit <= MAX_PAGE:
                raise ApiError(400, f"'limit' must be between 1 and {MAX_PAGE}")
    return SandboxQuery(
        metadata=metadata,
        states=states,
        template=params.get("template") or None,
        started_after=started_after,
        order=direction,
        limit=limit,
        next_token=(params.get("nextToken") or None) if paged else None,
    )


def _parse_time(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ApiError(400, "'startedAfter' must be an ISO 8601 datetime") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


async def list_sandboxes(request: Request) -> Response:
    page = orchestrator_of(request).list(parse_query(request.query_params, paged=True))
    headers = {"X-Next-Token": page.next_token} if page.next_token else None
    return JSONResponse([render_listed(r) for r in page.items], headers=headers)


async def list_sandboxes_v1(request: Request) -> Response:
    page = orchestrator_of(request).list(parse_query(request.query_params, paged=False))
    return JSONResponse([render_listed(r) for r in page.items])
