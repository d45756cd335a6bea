"""E2B JSON <-> typed values: body field readers (400 naming the field) and renderers.

Renderers follow protocol doc §3.4 (`Sandbox`) and §3.5 (`SandboxDetail`, `ListedSandbox`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from corral.api.errors import ApiError
from corral.model import SandboxRecord
from corral.protocol import ENVD_VERSION

__all__ = [
    "CLIENT_ID",
    "MAX_BODY_BYTES",
    "JsonObject",
    "optional_bool",
    "optional_int",
    "read_json_object",
    "render_detail",
    "render_listed",
    "render_sandbox",
    "required_int",
    "required_str",
    "rfc3339",
    "string_map",
]

CLIENT_ID = "corral"

JsonObject = dict[str, Any]


# Control-plane bodies are small (envVars and metadata are capped at 64 KiB each): anything
# larger is refused while it streams in, so a huge body never sits in the server's memory.
MAX_BODY_BYTES = 1024 * 1024


async def read_json_object(request: Request, *, empty_ok: bool = False) -> JsonObject:
    """The request body as a JSON object; an empty body is `{}` when `empty_ok`."""
    raw = await _read_bounded(request)
    if not raw.strip():
        if empty_ok:
            return {}
        raise ApiError(400, "request body is required (a JSON object)")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    return body


def required_str(body: JsonObject, name: str) -> str:
    value = body.get(name)
    if value is None:
        raise ApiError(400, f"'{name}' is required")
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"'{name}' must be a non-empty string")
    return value


def optional_int(body: JsonObject, name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"'{name}' must be an integer")
    return value


def required_int(body: JsonObject, name: str) -> int:
    value = optional_int(body, name)
    if value is None:
        raise ApiError(400, f"'{name}' is required")
    return value


def optional_bool(body: JsonObject, name: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise ApiError(400, f"'{name}' must be a boolean")
    return value


def string_map(body: JsonObject, name: str) -> dict[str, str]:
    """An object of string -> string; absent or null is `{}`."""
    value = body.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"'{name}' must be an object of strings")
    for key, item in value.items():
        if not isinstance(item, str):
            raise ApiError(400, f"'{name}.{key}' must be a string")
    return value


def rfc3339(timestamp: float) -> str:
    """`2026-01-02T03:04:05.123456Z`."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def render_sandbox(record: SandboxRecord) -> JsonObject:
    """The `Sandbox` body of create and connect."""
    body: JsonObject = {
        "templateID": record.template_id,
        "sandboxID": record.sandbox_id,
        "clientID": CLIENT_ID,
        "envdVersion": ENVD_VERSION,
        "envdAccessToken": record.access_token,
        "trafficAccessToken": record.traffic_access_token,
        "domain": None,
    }
    if record.alias is not None:
        body["alias"] = record.alias
    return body


def render_listed(record: SandboxRecord) -> JsonObject:
    """A `ListedSandbox` (list items)."""
    body: JsonObject = {
        "templateID": record.template_id,
        "sandboxID": record.sandbox_id,
        "clientID": CLIENT_ID,
        "startedAt": rfc3339(record.started_at),
        "endAt": rfc3339(record.end_at),
        "envdVersion": ENVD_VERSION,
        "cpuCount": record.limits.cpu_count,
        "memoryMB": record.limits.memory_mb,
        "diskSizeMB": record.limits.disk_mb,
        "state": "running",
        "metadata": dict(record.metadata),
    }
    if record.alias is not None:
        body["alias"] = record.alias
    return body


def render_detail(record: SandboxRecord) -> JsonObject:
    """The `SandboxDetail` of `GET /sandboxes/{id}`."""
    body = render_listed(record)
    body["envdAccessToken"] = record.access_token
    body["domain"] = None
    body["lifecycle"] = {"autoResume": False, "onTimeout": "kill"}
    return body


async def _read_bounded(request: Request) -> bytes:
    too_large = ApiError(413, f"request body is larger than {MAX_BODY_BYTES} bytes")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
