"""A tiny stand-in for the sandbox agent: an ASGI app served by uvicorn on a unix socket.

Routes: GET /health -> 204; POST /echo -> streams the request body back chunk by chunk;
GET /stream?n=K -> K chunks "chunk-i\\n" then end; GET /forever -> a chunk every 10 ms until
the connection drops; GET /sized?n=N[&cut=K][&close=1] -> `Content-Length: N`, bytes
`i % 251` sent in 64 KiB pieces (only K of them with `cut`: the connection drops; `close`
adds `Connection: close`); anything else -> 200 JSON describing the request (method, path,
query, headers).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs

import uvicorn

Scope = dict[str, Any]


async def stand_in_agent(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/health":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/echo":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if body or not more:
                await send({"type": "http.response.body", "body": body, "more_body": more})
            if not more:
                return
    elif path == "/stream":
        count = int(parse_qs(scope["query_string"].decode()).get("n", ["3"])[0])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(count):
            await send(
                {"type": "http.response.body", "body": f"chunk-{i}\n".encode(), "more_body": True}
            )
        await send({"type": "http.response.body", "body": b""})
    elif path == "/sized":
        query = parse_qs(scope["query_string"].decode())
        size = int(query["n"][0])
        cut = int(query.get("cut", [str(size)])[0])
        headers = [(b"content-length", str(size).encode())]
        if "close" in query:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = sized_body(cut)
        for start in range(0, cut, 65536):
            piece = body[start : start + 65536]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            await asyncio.sleep(0)
        if cut == size:
            await send({"type": "http.response.body", "body": b""})
    elif path == "/forever":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        i = 0
        while True:
            await send(
                {"type": "http.response.body", "body": f"tick-{i}\n".encode(), "more_body": True}
            )
            i += 1
            await asyncio.sleep(0.01)
    else:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        payload = json.dumps(
            {
                "method": scope["method"],
                "path": path,
                "query": scope["query_string"].decode(),
                "headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                "body": body.decode("latin-1"),
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


def sized_body(size: int) -> bytes:
    """The body of `/sized?n=size`."""
    return bytes(i % 251 for i in range(size))


@asynccontextmanager
async def serve_asgi(app: Any, **config: Any) -> AsyncIterator[uvicorn.Server]:
    """Serve `app` with uvicorn in the running loop (`uds=` or `host=`/`port=`).

    Starts and stops without uvicorn's 0.1 s polling so tests stay fast: shutdown closes
    the listeners and every connection and cancels request tasks at once.
    """
    settings = uvicorn.Config(
        app, log_level="critical", lifespan="off", http="httptools", access_log=False, **config
    )
    settings.load()
    server = uvicorn.Server(settings)
    server.lifespan = settings.lifespan_class(settings)
    await server.startup()
    try:
        yield server
    finally:
        for listener in server.servers:
            listener.close()
        for connection in list(server.server_state.connections):
            connection.shutdown()
        for task in list(server.server_state.tasks):
            task.cancel()
        for listener in server.servers:
            await listener.wait_closed()


@asynccontextmanager
async def serve_stand_in_agent(socket_path: str) -> AsyncIterator[uvicorn.Server]:
    """Serve the stand-in on `socket_path` in the running loop for the duration."""
    async with serve_asgi(stand_in_agent, uds=socket_path) as server:
        yield server
