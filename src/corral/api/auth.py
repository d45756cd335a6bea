"""API-key check of the control plane (`X-API-KEY`, protocol doc §3.1).

A key is always required (the SDK always sends one). With `accepted_keys` empty any
non-empty key is accepted; otherwise the key must be one of them (constant-time compare).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from corral.api.errors import error_response

__all__ = ["ApiKeyAuth"]


class ApiKeyAuth:
    """ASGI middleware answering 401 JSON for a missing or unknown `X-API-KEY`."""

    def __init__(self, app: ASGIApp, accepted_keys: Iterable[str] = ()) -> None:
        self._app = app
        self._keys = tuple(key.encode() for key in accepted_keys if key)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == b"x-api-key"), b"")
        if not given:
            response = error_response(401, "missing X-API-KEY header")
        elif self._keys and not any(hmac.compare_digest(given, key) for key in self._keys):
            response = error_response(401, "invalid API key")
        else:
            await self._app(scope, receive, send)
            return
        await response(scope, receive, send)
