"""Filtering, ordering and paging of running sandboxes (pure functions).

The page token is opaque to clients: URL-safe base64 of `"<started_at>__<sandbox_id>"` of the
last item returned; the next page starts strictly after that position in the chosen order,
so sandboxes created or killed between pages neither repeat nor shift the window.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable

from corral.model import SandboxRecord
from corral.orchestrator.commands import SandboxPage, SandboxQuery
from corral.orchestrator.errors import InvalidArgument

__all__ = ["decode_page_token", "encode_page_token", "select_page"]

_Position = tuple[float, str]


def encode_page_token(record: SandboxRecord) -> str:
    raw = f"{record.started_at!r}__{record.sandbox_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_page_token(token: str) -> _Position:
    try:
        started_at, sandbox_id = base64.urlsafe_b64decode(token.encode()).decode().split("__")
        return float(started_at), sandbox_id
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise InvalidArgument("'nextToken' is not a token returned by this server") from exc


def select_page(records: Iterable[SandboxRecord], query: SandboxQuery) -> SandboxPage:
    """Apply `query`'s filter, order, cursor and limit to `records`."""
    if "running" not in query.states:
        return SandboxPage(items=(), next_token=None)
    matching = [r for r in records if _matches(r, query)]
    descending = query.order == "desc"
    matching.sort(key=_position, reverse=descending)
    if query.next_token is not None:
        after = decode_page_token(query.next_token)
        if descending:
            matching = [r for r in matching if _position(r) < after]
        else:
            matching = [r for r in matching if _position(r) > after]
    if query.limit is None or len(matching) <= query.limit:
        return SandboxPage(items=tuple(matching), next_token=None)
    page = tuple(matching[: query.limit])
    return SandboxPage(items=page, next_token=encode_page_token(page[-1]))


def _position(record: SandboxRecord) -> _Position:
    return (record.started_at, record.sandbox_id)


def _micros(timestamp: float) -> int:
    """Whole microseconds, the resolution start times are rendered with (and so come back in)."""
    return round(timestamp * 1_000_000)


def _matches(record: SandboxRecord, query: SandboxQuery) -> bool:
    if query.template is not None and query.template not in (record.template_id, record.alias):
        return False
    if query.started_after is not None and _micros(record.started_at) < _micros(
        query.started_after
    ):
        return False
    return all(record.metadata.get(k) == v for k, v in query.metadata.items())
