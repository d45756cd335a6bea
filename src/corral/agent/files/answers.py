"""The JSON error answer of `/files` (protocol doc §7.2): `{"code": <int>, "message": …}`."""

from __future__ import annotations

import json

from corral.agent.files.errors import FilesError
from corral.agent.http_server import Response

__all__ = ["send_error"]

_JSON_UTF8 = "application/json; charset=utf-8"


def send_error(response: Response, exc: FilesError) -> None:
    body = json.dumps({"code": exc.status, "message": str(exc)}, separators=(",", ":"))
    headers = {"allow": "GET, POST"} if exc.status == 405 else None
    response.send(exc.status, body.encode(), _JSON_UTF8, headers)
