"""A minimal HTTP/1.1 server: asyncio `Protocol` + `httptools` (llhttp) parser.

Why not uvicorn: the agent is forked per sandbox and sits on the hot path of every command.
A raw protocol answers a request straight from the parser callbacks, with no ASGI scope
dicts, receive/send coroutines or task per request (a `Start` costs one `transport.write`
after the fork/exec), and it keeps the agent's import graph closed: uvicorn resolves its
protocol classes and logging config by name at start-up, i.e. lazily, which cannot work
after `pivot_root` hides the Python installation. httptools is the parser uvicorn itself
would use; chunked request bodies, keep-alive and pipelining are handled here.

Model: one `_Exchange` per request. The application gets the request head as soon as the
headers are parsed (`Application.open_request`) and a `Response` to answer on, then the body
as it arrives (`RequestHandler.on_body`/`on_body_end`), or `on_disconnect` if the client
goes away. Requests on one connection are answered in order; a response may be sent before
its body has fully arrived (the rest is drained). Writing is flow-controlled: `Response`
reports transport pause/resume through `on_flow`, and `pause_input` stops reading. A
`Content-Length` body can instead come straight from a file (`Response.send_file`): the kernel
copies it to the socket (sendfile), no bytes pass through Python.

Upgrades (`CONNECT`, or `Upgrade:` headers): the parser stops after such a request's head.
If the application called `Response.take_over` for it, the raw transport and the bytes read
past the head go to that callback and this connection lets go of them; otherwise the
request is refused with 400 (or, if it was already answered, the connection is closed).
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import httptools

__all__ = [
    "IGNORE_BODY",
    "Application",
    "HttpConnection",
    "RequestHandler",
    "RequestHead",
    "Response",
]

_log = logging.getLogger("corral.agent")

# Body bytes of not-yet-active (pipelined) requests buffered before reading is paused.
_PIPELINE_BUFFER_LIMIT = 1024 * 1024
_PIPELINE_DEPTH_LIMIT = 16

_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
    for status in http.HTTPStatus
}
_STATUS_LINES[499] = b"HTTP/1.1 499 Client Closed Request\r\n"
_NO_BODY_STATUSES = frozenset({204, 304})


@dataclass(frozen=True, slots=True)
class RequestHead:
    """Request line and headers. Header names are lowercase; repeats are joined by ", "."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    keep_alive: bool

    def header(self, name: str) -> str | None:
        """A header by lowercase name."""
        return self.headers.get(name)


class RequestHandler(Protocol):
    """Receives one request's body and its client's disconnect."""

    def on_body(self, data: bytes) -> None: ...

    def on_body_end(self) -> None: ...

    def on_disconnect(self) -> None: ...


class Application(Protocol):
    def open_request(self, head: RequestHead, response: Response) -> RequestHandler:
        """Start handling a request whose headers just arrived."""


class _Exchange:
    __slots__ = ("head", "handler", "response", "early_body", "body_done")

    def __init__(self, head: RequestHead) -> None:
        self.head = head
        self.handler: RequestHandler | None = None
        self.response: Response | None = None
        self.early_body: bytearray | None = None
        self.body_done = False


class Response:
    """The answer to one request: either `send` once, or `start_stream`/`write`/`end_stream`.

    Writes after the client went away are dropped silently (`closed` tells).
    """

    __slots__ = ("_connection", "_exchange", "_state", "_pending_head", "on_flow", "takeover")

    _NEW, _STREAMING, _DONE = 0, 1, 2

    def __init__(self, connection: HttpConnection, exchange: _Exchange) -> None:
        self._connection = connection
        self._exchange = exchange
        self._state = self._NEW
        self._pending_head = b""
        # Called with True when the transport's write buffer is full, False when drained.
        self.on_flow: Callable[[bool], None] | None = None
        self.takeover: Callable[[asyncio.Transport, bytes], None] | None = None

    @property
    def started(self) -> bool:
        return self._state != self._NEW

    @property
    def finished(self) -> bool:
        return self._state == self._DONE

    @property
    def closed(self) -> bool:
        """Finished, or the client is gone."""
        return self._state == self._DONE or self._connection.lost

    @property
    def write_paused(self) -> bool:
        return self._connection.write_paused

    def _head(
        self,
        status: int,
        content_type: str | None,
        headers: Mapping[str, str] | None,
        framing: bytes,
    ) -> bytes:
        """Status line and header lines (`framing`: the body's length or chunking header),
        without the blank line that ends the head."""
        line = _STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode()
        head = line
        if content_type is not None:
            head += b"content-type: " + content_type.encode("latin-1") + b"\r\n"
        if headers:
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
        head += framing
        if not self._exchange.head.keep_alive:
            head += b"connection: close\r\n"
        return head

    def send(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """A complete response with `content-length`."""
        if self._state != self._NEW:
            raise RuntimeError("response already started")
        framing = b""
        if status not in _NO_BODY_STATUSES:
            framing = b"content-length: %d\r\n" % len(body)
        else:
            body = b""
        self._state = self._DONE
        head = self._head(status, content_type, headers, framing)
        self._connection.write(head + b"\r\n" + body)
        self._connection.response_finished(self._exchange)

    def send_json(self, status: int, value: object) -> None:
        """`send` with a compact JSON body."""
        body = json.dumps(value, separators=(",", ":")).encode()
        self.send(status, body, "application/json")

    def start_stream(
        self, status: int, content_type: str, headers: Mapping[str, str] | None = None
    ) -> None:
        """Begin a chunked response; the head goes out with the first chunk."""
        if self._state != self._NEW:
            raise RuntimeError("response already started")
        self._state = self._STREAMING
        chunked = b"transfer-encoding: chunked\r\n"
        self._pending_head = self._head(status, content_type, headers, chunked) + b"\r\n"

    def send_file(
        self,
        status: int,
        content_type: str,
        fd: int,
        size: int,
        headers: Mapping[str, str] | None = None,
    ) -> Coroutine[None, None, bool]:
        """A `content-length: size` response whose body is the first `size` bytes of the
        regular file open at `fd` (which stays the caller's to close).

        The head is written now; awaiting the result sends the body with sendfile, then
        finishes the response and returns True. If fewer than `size` bytes could be sent
        (the file shrank, the client went away) the connection is aborted instead, so the
        client sees a failed response rather than a short body, and the result is False.
        """
        if self._state != self._NEW:
            raise RuntimeError("response already started")
        self._state = self._STREAMING
        framing = b"content-length: %d\r\n" % size
        self._connection.write(self._head(status, content_type, headers, framing) + b"\r\n")
        return self._send_file_body(fd, size)

    async def _send_file_body(self, fd: int, size: int) -> bool:
        sent = 0
        if size:
            with open(fd, "rb", buffering=0, closefd=False) as file:
                sent = await self._connection.sendfile(file, size)
        if sent < size:
            self.abort()
            return False
        self._state = self._DONE
        self._connection.response_finished(self._exchange)
        return True

    def write(self, data: bytes) -> None:
        """One chunk of a streaming response."""
        if self._state != self._STREAMING or not data:
            return
        chunk = b"%x\r\n" % len(data) + data + b"\r\n"
        if self._pending_head:
            chunk = self._pending_head + chunk
            self._pending_head = b""
        self._connection.write(chunk)

    def end_stream(self, last: bytes = b"") -> None:
        """Write `last` (if any) and the terminating chunk."""
        if self._state != self._STREAMING:
            return
        tail = b"%x\r\n" % len(last) + last + b"\r\n0\r\n\r\n" if last else b"0\r\n\r\n"
        self._connection.write(self._pending_head + tail)
        self._pending_head = b""
        self._state = self._DONE
        self._connection.response_finished(self._exchange)

    def abort(self) -> None:
        """Drop the connection mid-stream: the client sees a truncated, failed response."""
        self._state = self._DONE
        self._connection.abort()

    def take_over(self, callback: Callable[[asyncio.Transport, bytes], None]) -> None:
        """Claim the raw connection of this upgrade request (`CONNECT`, `Upgrade:`).

        Once the head is parsed, `callback(transport, rest)` gets the transport (reading
        paused) and the bytes that followed the head; the callback answers on it itself.
        """
        self.takeover = callback

    def pause_input(self) -> None:
        """Stop reading from the client (backpressure on a request body)."""
        self._connection.set_input_paused("handler", True)

    def resume_input(self) -> None:
        self._connection.set_input_paused("handler", False)


class _IgnoreBody:
    """Handler for a request answered before (or without) reading its body."""

    def on_body(self, data: bytes) -> None:
        pass

    def on_body_end(self) -> None:
        pass

    def on_disconnect(self) -> None:
        pass


IGNORE_BODY: RequestHandler = _IgnoreBody()


class HttpConnection(asyncio.Protocol):
    """One client connection."""

    def __init__(self, app: Application) -> None:
        self._app = app
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[_Exchange] = deque()
        self._parsing: _Exchange | None = None
        self._url = b""
        self._headers: dict[str, str] = {}
        self._input_pauses: set[str] = set()
        self._close_after_response = False
        self.lost = False
        self.write_paused = False

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade(data[upgrade.args[0] :])
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if cause is not None and not isinstance(cause, httptools.HttpParserError):
                _log.error("request handler failed", exc_info=cause)
                self._reject(500, "internal error")
            else:
                self._reject(400, "malformed HTTP request")

    def eof_received(self) -> bool:
        return False  # the client closed its side: close ours (a disconnect)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        queue, self._queue = self._queue, deque()
        for exchange in queue:
            if exchange.handler is not None:
                exchange.handler.on_disconnect()

    def pause_writing(self) -> None:
        self.write_paused = True
        self._notify_flow(True)

    def resume_writing(self) -> None:
        self.write_paused = False
        self._notify_flow(False)

    def _notify_flow(self, paused: bool) -> None:
        if self._queue:
            response = self._queue[0].response
            if response is not None and response.on_flow is not None:
                response.on_flow(paused)

    # --- httptools callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self._headers.get(key)
        self._headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        url = self._url.decode("latin-1")
        path, _, query = url.partition("?")
        head = RequestHead(
            method=self._parser.get_method().decode("latin-1"),
            path=path,
            query=query,
            headers=self._headers,
            keep_alive=bool(self._parser.should_keep_alive()) and not self._close_after_response,
        )
        exchange = _Exchange(head)
        self._parsing = exchange
        self._queue.append(exchange)
        if len(self._queue) == 1:
            self._activate(exchange)
        elif len(self._queue) > _PIPELINE_DEPTH_LIMIT:
            self.set_input_paused("pipeline", True)

    def on_body(self, body: bytes) -> None:
        exchange = self._parsing
        if exchange is None:
            return
        if exchange.handler is not None:
            exchange.handler.on_body(body)
            return
        if exchange.early_body is None:
            exchange.early_body = bytearray()
        exchange.early_body += body
        if len(exchange.early_body) > _PIPELINE_BUFFER_LIMIT:
            self.set_input_paused("pipeline", True)

    def on_message_complete(self) -> None:
        exchange = self._parsing
        self._parsing = None
        if exchange is None:
            return
        exchange.body_done = True
        if exchange.handler is not None:
            exchange.handler.on_body_end()
        self._maybe_retire(exchange)

    # --- exchanges ----------------------------------------------------------------------------

    def _activate(self, exchange: _Exchange) -> None:
        if exchange.head.header("expect") == "100-continue" and not exchange.body_done:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        exchange.response = Response(self, exchange)
        exchange.handler = self._app.open_request(exchange.head, exchange.response)
        if exchange.early_body:
            body, exchange.early_body = bytes(exchange.early_body), None
            exchange.handler.on_body(body)
        if exchange.body_done:
            exchange.handler.on_body_end()
        self._maybe_retire(exchange)

    def _maybe_retire(self, exchange: _Exchange) -> None:
        if not self._queue or self._queue[0] is not exchange:
            return
        if not exchange.body_done or exchange.response is None or not exchange.response.finished:
            return
        self._queue.popleft()
        if self._close_after_response:
            return
        self.set_input_paused("pipeline", False)
        if self._queue:
            self._activate(self._queue[0])

    def response_finished(self, exchange: _Exchange) -> None:
        """Called by `Response` after its last bytes were written."""
        if not exchange.head.keep_alive:
            self._close_after_response = True
            if self._transport is not None:
                self._transport.close()
            return
        if exchange.handler is None:
            return  # answered from inside open_request: _activate retires it
        self._maybe_retire(exchange)

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self.lost:
            self._transport.write(data)

    async def sendfile(self, file: BinaryIO, count: int) -> int:
        """Send `count` bytes of `file` from offset 0; returns how many went (fewer at
        EOF, 0 if the connection is gone or broke)."""
        if self._transport is None or self.lost:
            return 0
        try:
            return await asyncio.get_running_loop().sendfile(self._transport, file, 0, count)
        except (OSError, RuntimeError):
            return 0  # the client went away, or the transport is closing

    def abort(self) -> None:
        if self._transport is not None and not self.lost:
            self._close_after_response = True
            self._transport.abort()

    def set_input_paused(self, reason: str, paused: bool) -> None:
        """Pause reading while any reason holds (handler backpressure, pipelining)."""
        if self._transport is None or self.lost:
            return
        was_paused = bool(self._input_pauses)
        if paused:
            self._input_pauses.add(reason)
        else:
            self._input_pauses.discard(reason)
        if bool(self._input_pauses) != was_paused:
            if self._input_pauses:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()

    def _upgrade(self, rest: bytes) -> None:
        """The parser stopped after an upgrade request's head: hand over or refuse."""
        transport = self._transport
        if transport is None or self.lost:
            return
        exchange = self._queue[0] if len(self._queue) == 1 else None
        response = None if exchange is None else exchange.response
        if response is None or response.takeover is None:
            if not self._queue:  # already answered (e.g. 401): nothing more can follow
                self._close_after_response = True
                transport.close()
            else:
                self._reject(400, "protocol upgrades are not supported")
            return
        transport.pause_reading()
        self._transport = None  # the connection is not ours any more
        self._queue.clear()
        response.takeover(transport, rest)

    def _reject(self, status: int, message: str) -> None:
        """Answer a request we cannot parse and close the connection."""
        if self._transport is None or self.lost:
            return
        active = self._queue[0].response if self._queue else None
        if active is None or not active.started:
            body = json.dumps({"code": status, "message": message}).encode()
            self.write(
                _STATUS_LINES[status]
                + b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body)
                + b"connection: close\r\n\r\n"
                + body
            )
        self._close_after_response = True
        self._transport.close()
