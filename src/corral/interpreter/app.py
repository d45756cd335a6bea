"""The HTTP routes of port 49999 (§8): they translate JSON to registry calls and back.

| route | does |
|---|---|
| `POST /execute` | runs code; streams NDJSON lines (`execute_endpoint`, a raw ASGI app) |
| `POST /contexts` | new context `{"language"?, "cwd"?}` |
| `GET /contexts` | every context, oldest first |
| `DELETE /contexts/{id}` | shut the kernel down |
| `POST /contexts/{id}/restart` | new kernel, same id, state lost |
| `GET /health` | `OK` |

Errors before streaming are plain text with the status of §8: 400 for a body that is not
a JSON object or has wrong types, both `context_id` and `language`, an unknown language,
bad `env_vars` or a missing `cwd`; 404 `Context <id> not found`; 500 when a kernel cannot
be started. No token is checked here: the SDK sends `X-Access-Token` only on `/execute`,
and the router in front enforces the traffic token of private sandboxes.

`POST /execute` is a raw ASGI endpoint rather than a `StreamingResponse` because it must
notice a client that goes away while the kernel is silent (Starlette would only see it at
the next write): a task waits for `http.disconnect` and abandons the execution, which
interrupts the kernel. After `KEEPALIVE_AFTER` seconds without a line it sends a
`keepalive` line.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from corral.interpreter.context import Context
from corral.interpreter.env_code import InvalidEnvVarsError, check_env_vars
from corral.interpreter.execution import Execution
from corral.interpreter.kernel import KernelStartError
from corral.interpreter.languages import UnsupportedLanguageError
from corral.interpreter.outputs import KEEPALIVE
from corral.interpreter.registry import ContextNotFoundError, ContextRegistry, InvalidCwdError

__all__ = ["KEEPALIVE_AFTER", "BadRequestError", "create_app"]

KEEPALIVE_AFTER = 5.0
"""Seconds of silence after which `/execute` sends a keepalive line."""

_NDJSON = [(b"content-type", b"application/x-ndjson"), (b"cache-control", b"no-store")]


class BadRequestError(ValueError):
    """A request body the server cannot use; the message is sent as the 400 body."""


def create_app(registry: ContextRegistry) -> Starlette:
    """The Starlette application serving `registry`."""
    routes = [
        Route("/execute", _ExecuteEndpoint(registry), methods=["POST"]),
        Route("/contexts", _endpoint(registry, _create_context), methods=["POST"]),
        Route("/contexts", _endpoint(registry, _list_contexts), methods=["GET"]),
        Route("/contexts/{context_id}", _endpoint(registry, _delete_context), methods=["DELETE"]),
        Route(
            "/contexts/{context_id}/restart",
            _endpoint(registry, _restart_context),
            methods=["POST"],
        ),
        Route("/health", _health, methods=["GET", "HEAD"]),
    ]
    return Starlette(routes=routes)


Handler = Callable[[ContextRegistry, Request], Awaitable[Response]]


def _endpoint(
    registry: ContextRegistry, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(registry, request)
        except _REQUEST_ERRORS as exc:
            return _error_response(exc)

    return endpoint


_REQUEST_ERRORS = (
    ContextNotFoundError,
    BadRequestError,
    InvalidCwdError,
    InvalidEnvVarsError,
    UnsupportedLanguageError,
    KernelStartError,
)
"""What a request can fail with before anything streams (see `_error_response`)."""


def _error_response(exc: Exception) -> Response:
    """The plain-text answer of §8 to a request error: 404, 500 or 400."""
    if isinstance(exc, ContextNotFoundError):
        status = 404
    elif isinstance(exc, KernelStartError):
        status = 500
    else:
        status = 400
    return PlainTextResponse(str(exc), status_code=status)


async def _health(request: Request) -> Response:
    return PlainTextResponse("OK")


async def _create_context(registry: ContextRegistry, request: Request) -> Response:
    body = await _json_object(request)
    language = _optional_str(body, "language")
    cwd = _optional_str(body, "cwd")
    context = await registry.create(language, cwd)
    return JSONResponse(context.to_json())


async def _list_contexts(registry: ContextRegistry, request: Request) -> Response:
    return JSONResponse([context.to_json() for context in registry.list()])


async def _delete_context(registry: ContextRegistry, request: Request) -> Response:
    await registry.delete(request.path_params["context_id"])
    return JSONResponse(None)


async def _restart_context(registry: ContextRegistry, request: Request) -> Response:
    await registry.restart(request.path_params["context_id"])
    return JSONResponse(None)


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequestError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object")
    return body


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequestError(f"{key!r} must be a string or null")
    return value


class _ExecuteEndpoint:
    """`POST /execute` as an ASGI app (see the module docstring)."""

    def __init__(self, registry: ContextRegistry) -> None:
        self._registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            execution = await self._prepare(request)
        except _REQUEST_ERRORS as exc:
            await _error_response(exc)(scope, receive, send)
            return
        execution.start()
        watcher = asyncio.ensure_future(_abandon_on_disconnect(receive, execution))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _NDJSON})
            await _stream(execution, send)
        finally:
            watcher.cancel()
            execution.abandon()

    async def _prepare(self, request: Request) -> Execution:
        body = await _json_object(request)
        code = body.get("code")
        if not isinstance(code, str):
            raise BadRequestError("'code' must be a string")
        context_id = _optional_str(body, "context_id")
        language = _optional_str(body, "language")
        if context_id and language:
            raise BadRequestError("Only one of context_id or language can be provided")
        context: Context
        if context_id:
            context = self._registry.get(context_id)
        else:
            context = await self._registry.default_for(language)
        env_vars = check_env_vars(body.get("env_vars"), context.kernel.kernel_name)
        return Execution(context, code, env_vars)


async def _stream(execution: Execution, send: Send) -> None:
    """Send the execution's lines as they come (batched), with keepalives in silences."""
    lines = execution.lines
    while True:
        try:
            async with asyncio.timeout(KEEPALIVE_AFTER):
                line = await lines.get()
        except TimeoutError:
            await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})
            continue
        if line is None:
            break
        chunk = [line]
        ended = False
        while not lines.empty():
            more = lines.get_nowait()
            if more is None:
                ended = True
                break
            chunk.append(more)
        await send({"type": "http.response.body", "body": b"".join(chunk), "more_body": True})
        if ended:
            break
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _abandon_on_disconnect(receive: Receive, execution: Execution) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            execution.abandon()
            return
