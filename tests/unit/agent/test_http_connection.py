"""`HttpConnection` in-process with scripted applications (no agent subprocess)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from corral.agent.http_server import (
    IGNORE_BODY,
    HttpConnection,
    RequestHandler,
    RequestHead,
    Response,
)


class _Recorder:
    def __init__(self, response: Response) -> None:
        self.response = response
        self.body = b""
        self.ended = False
        self.disconnected = False

    def on_body(self, data: bytes) -> None:
        self.body += data

    def on_body_end(self) -> None:
        self.ended = True
        if not self.response.started:
            self.response.send(200, b"echo:" + self.body, "text/plain")

    def on_disconnect(self) -> None:
        self.disconnected = True


class _App:
    def __init__(self, route: Callable[[RequestHead, Response], RequestHandler]) -> None:
        self.route = route

    def open_request(self, head: RequestHead, response: Response) -> RequestHandler:
        return self.route(head, response)


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    servers: list[asyncio.AbstractServer] = []

    async def start(
        route: Callable[[RequestHead, Response], RequestHandler],
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        path = str(tmp_path / f"s{len(servers)}.sock")
        app = _App(route)
        loop = asyncio.get_running_loop()
        servers.append(await loop.create_unix_server(lambda: HttpConnection(app), path))
        return await asyncio.open_unix_connection(path)

    yield start
    for server in servers:
        server.close()


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout=5)


async def test_handler_exception_gives_500_and_close(serve: Callable[..., object]) -> None:
    def route(head: RequestHead, response: Response) -> RequestHandler:
        raise RuntimeError("bug")

    reader, writer = await serve(route)  # type: ignore[misc]
    writer.write(b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n")
    data = await _read_all(reader)
    assert data.startswith(b"HTTP/1.1 500 ")
    assert b"connection: close" in data
    writer.close()


async def test_pipelined_request_waits_for_streaming_response(serve: Callable[..., object]) -> None:
    streams: list[Response] = []

    def route(head: RequestHead, response: Response) -> RequestHandler:
        if head.path == "/stream":
            response.start_stream(200, "application/x-test")
            streams.append(response)
            return IGNORE_BODY
        return _Recorder(response)

    reader, writer = await serve(route)  # type: ignore[misc]
    writer.write(
        b"GET /stream HTTP/1.1\r\nhost: a\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET /last HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    )
    await asyncio.sleep(0.05)
    assert len(streams) == 1  # the second request is not opened before the first ends
    streams[0].write(b"one")
    streams[0].end_stream(b"two")
    data = await _read_all(reader)
    assert re.findall(rb"HTTP/1\.1 (\d+) ", data) == [b"200", b"200", b"200"]
    first, rest = data.split(b"0\r\n\r\n", 1)
    assert first.endswith(b"3\r\none\r\n3\r\ntwo\r\n")
    assert b"echo:abcde" in rest and rest.endswith(b"echo:")
    writer.close()


async def test_early_answer_drains_the_rest_of_the_body(serve: Callable[..., object]) -> None:
    recorders: list[_Recorder] = []

    def route(head: RequestHead, response: Response) -> RequestHandler:
        if head.path == "/reject":
            response.send(413, b"too big", "text/plain")
            return IGNORE_BODY
        recorder = _Recorder(response)
        recorders.append(recorder)
        return recorder

    reader, writer = await serve(route)  # type: ignore[misc]
    writer.write(b"POST /reject HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\n\r\n12345")
    head = await asyncio.wait_for(reader.readuntil(b"too big"), timeout=5)
    assert head.startswith(b"HTTP/1.1 413 ")
    writer.write(b"67890POST /ok HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\nhi")
    answer = await asyncio.wait_for(reader.readuntil(b"echo:hi"), timeout=5)
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert recorders[0].body == b"hi"
    writer.close()


async def test_disconnect_reaches_the_active_handler(serve: Callable[..., object]) -> None:
    recorders: list[_Recorder] = []

    def route(head: RequestHead, response: Response) -> RequestHandler:
        recorder = _Recorder(response)
        recorders.append(recorder)
        return recorder

    _, writer = await serve(route)  # type: ignore[misc]
    writer.write(b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\npartial")
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.close()
    await asyncio.sleep(0.05)
    assert recorders[0].body == b"partial"
    assert recorders[0].disconnected and not recorders[0].ended
    assert recorders[0].response.closed
