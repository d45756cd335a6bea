"""`POST /v2/sandboxes` (and the 2.45.x `POST /sandboxes`): create a sandbox -> 201 `Sandbox`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from corral.api.context import orchestrator_of
from corral.api.errors import ApiError
from corral.api.network import network_policy
from corral.api.wire import (
    JsonObject,
    optional_bool,
    optional_int,
    read_json_object,
    render_sandbox,
    required_str,
    string_map,
)
from corral.model import LimitOverrides
from corral.network.policy import parse_create_network
from corral.orchestrator import LIMIT_FIELD_NAMES, CreateSandbox

__all__ = ["create_sandbox", "parse_create"]


def parse_create(body: JsonObject) -> CreateSandbox:
    """`NewSandboxV2` (protocol doc §3.3) -> `CreateSandbox`.

    `network.allowPublicTraffic: false` gives the sandbox a `trafficAccessToken` that its
    preview URLs require (`corral.router.preview`).

    `allow_internet_access` and `network.allowOut/denyOut` are the egress policy
    (`corral.network.policy`). Accepted and ignored: `secure`, the other `network` keys,
    `mcp`, `iam`, `volumeMounts` (no volumes yet). Refused:
    `autoPause: true` and `autoResume.enabled: true` (pausing is not supported yet, and
    silently killing a sandbox that was meant to pause would lose its state).

    Corral extension keys (integers; the E2B SDK never sends them, HTTP clients and
    `corral sandbox` may): `cpuCount`, `memoryMB`, `diskSizeMB`, `pidsMax`, `openFiles`, named
    like the fields of `SandboxDetail`. A value above the server's ceiling is a 400.
    """
    template = required_str(body, "templateID")
    timeout = optional_int(body, "timeout")
    metadata = string_map(body, "metadata")
    env_vars = string_map(body, "envVars")
    optional_bool(body, "secure")
    optional_bool(body, "allow_internet_access")
    if optional_bool(body, "autoPause"):
        raise ApiError(400, "'autoPause' is not supported by this server")
    auto_resume = body.get("autoResume")
    if auto_resume is not None:
        if not isinstance(auto_resume, dict):
            raise ApiError(400, "'autoResume' must be an object")
        if optional_bool(auto_resume, "enabled"):
            raise ApiError(400, "'autoResume' is not supported by this server")
    for name in ("network", "mcp", "iam"):
        if body.get(name) is not None and not isinstance(body[name], dict):
            raise ApiError(400, f"'{name}' must be an object")
    limits = LimitOverrides(
        **{name: optional_int(body, key) for name, key in LIMIT_FIELD_NAMES.items()}
    )
    public = (body.get("network") or {}).get("allowPublicTraffic")
    if public is not None and not isinstance(public, bool):
        raise ApiError(400, "'network.allowPublicTraffic' must be a boolean")
    return CreateSandbox(
        template=template,
        timeout=timeout,
        metadata=metadata,
        env_vars=env_vars,
        limits=limits,
        allow_public_traffic=public is not False,
        network=network_policy(parse_create_network, body),
    )


async def create_sandbox(request: Request) -> Response:
    command = parse_create(await read_json_object(request))
    record = await orchestrator_of(request).create(command)
    return JSONResponse(render_sandbox(record), status_code=201)
