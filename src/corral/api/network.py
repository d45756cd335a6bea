"""`PUT /sandboxes/{id}/network` -> 204: replace a running sandbox's egress policy live."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from corral.api.context import orchestrator_of
from corral.api.errors import ApiError
from corral.api.wire import JsonObject, read_json_object
from corral.model import EgressPolicy
from corral.network.policy import PolicyError, parse_network_update

__all__ = ["network_policy", "update_network"]


def network_policy(parse: Callable[[JsonObject], EgressPolicy], body: JsonObject) -> EgressPolicy:
    """`parse(body)`, a malformed key being a 400 that names it."""
    try:
        return parse(body)
    except PolicyError as exc:
        raise ApiError(400, str(exc)) from None


async def update_network(request: Request) -> Response:
    """`SandboxNetworkUpdateConfig` (protocol doc §3.7); in force when the 204 is sent."""
    policy = network_policy(parse_network_update, await read_json_object(request))
    await orchestrator_of(request).set_network(request.path_params["sandbox_id"], policy)
    return Response(status_code=204)
