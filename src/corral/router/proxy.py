"""Forward one ASGI HTTP request to an agent connection and stream the answer back.

Only the request line and headers are rebuilt; bodies are streamed in both directions as
they arrive (chunked client bodies are re-chunked, `Content-Length` bodies are passed
through). The agent's response is parsed with `httptools` just enough to find the status,
headers and message boundaries; once the head of a `Content-Length` response is parsed, the
rest of its body is relayed as read, without the parser (a file download is one). Each read
from the agent becomes one ASGI body message.

Outcomes (`Outcome`): the exchange finished and the connection may be reused; or the agent
went away before answering (`AgentUnavailable`, the caller answers 502 or retries a
replayable request on a fresh connection); or it went away mid-response, in which case the
client connection is aborted (the ASGI call returns without finishing the body, so the
server closes it without the final chunk).
"""

from __future__ import annotations

import asyncio
import enum
import logging

import httptools

from corral.router.asgi import Message, Receive, Scope, Send
from corral.router.pool import AgentConnection

__all__ = ["AgentUnavailable", "Outcome", "RequestBody", "build_request_head", "exchange"]

log = logging.getLogger("corral.router")

_READ_SIZE = 256 * 1024
_DROP_REQUEST_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"expect",
    }
)
# `date` and `server`: the HTTP server in front (uvicorn) adds its own.
_DROP_RESPONSE_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"trailer",
        b"date",
        b"server",
    }
)
_LAST_CHUNK = b"0\r\n\r\n"


class AgentUnavailable(Exception):
    """The agent closed or reset the connection before a response head arrived."""


class Outcome(enum.Enum):
    REUSABLE = "reusable"
    """Response complete, request fully sent, agent keeps the connection open."""
    DONE = "done"
    """Response complete (or client gone) but the connection must not be reused."""
    ABORTED = "aborted"
    """The agent connection broke mid-response; the client connection must be aborted."""


class RequestBody:
    """How the client's body is framed towards the agent, plus what was read so far."""

    __slots__ = ("chunked", "first", "more")

    def __init__(self, chunked: bool, first: bytes, more: bool) -> None:
        self.chunked = chunked
        self.first = first
        """Bytes already read from the client, framed for the agent."""
        self.more = more
        """Whether the client has more body to stream after `first`."""

    @classmethod
    async def start(cls, scope: Scope, receive: Receive) -> RequestBody | None:
        """Read the first body message. None if the client disconnected meanwhile."""
        chunked = False
        length = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True
        if not chunked and length in (b"", b"0"):
            return cls(chunked=False, first=b"", more=False)
        message = await receive()
        if message["type"] != "http.request":
            return None
        more = bool(message.get("more_body", False))
        body = _frame(message.get("body", b""), chunked)
        if chunked and not more:
            body += _LAST_CHUNK
        return cls(chunked=chunked, first=body, more=more)


def build_request_head(
    scope: Scope, body: RequestBody, drop: frozenset[bytes] = frozenset()
) -> bytes:
    """Request line and headers for the agent, without hop-by-hop headers (nor `drop`)."""
    target = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    if query:
        target = target + b"?" + query
    parts = [scope["method"].encode(), b" ", target, b" HTTP/1.1\r\n"]
    for name, value in scope["headers"]:
        if name not in _DROP_REQUEST_HEADERS and name not in drop:
            parts += (name, b": ", value, b"\r\n")
    if body.chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def _frame(chunk: bytes, chunked: bool) -> bytes:
    if not chunked or not chunk:
        return chunk
    return b"%x\r\n%b\r\n" % (len(chunk), chunk)


class _Response:
    """httptools callbacks: collect what the last `feed_data` produced."""

    __slots__ = (
        "body",
        "chunked",
        "complete",
        "framed",
        "headers",
        "headers_done",
        "keep_alive",
        "length",
        "parser",
        "received",
    )

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.body: list[bytes] = []
        self.complete = False
        self.keep_alive = False
        """Read with the head: llhttp forgets it once it resets for the next message."""
        self.framed = False
        """Content-Length or chunked: else the body ends when the connection does."""
        self.length: int | None = None
        """The `Content-Length` header (llhttp has checked it); ignored if `chunked`."""
        self.chunked = False
        self.received = 0
        """Body bytes the parser has produced so far."""
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or name == b"transfer-encoding":
            self.framed = True
        if name == b"content-length" and not self.headers_done:  # not a trailer
            self.length = int(value)
        elif name == b"transfer-encoding":
            self.chunked = True
        if name not in _DROP_RESPONSE_HEADERS:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.keep_alive = bool(self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.received += len(body)

    def on_message_complete(self) -> None:
        self.complete = True


class _Flags:
    __slots__ = ("client_gone", "request_sent")

    def __init__(self, request_sent: bool) -> None:
        self.client_gone = False
        self.request_sent = request_sent


async def exchange(
    conn: AgentConnection,
    head: bytes,
    body: RequestBody,
    scope: Scope,
    receive: Receive,
    send: Send,
) -> Outcome:
    """Send the request on `conn` and stream the response to `send`.

    Raises `AgentUnavailable` if the agent answers nothing at all (nothing was sent to the
    client yet, so the caller may still answer or retry).
    """
    conn.writer.write(head + body.first if body.first else head)
    flags = _Flags(request_sent=not body.more)
    helper: asyncio.Task[None] | None = None
    if body.more:
        helper = asyncio.get_running_loop().create_task(
            _pump_body(conn, body.chunked, receive, flags)
        )
    response = _Response()
    parser = response.parser
    started = False
    head_only = scope["method"] == "HEAD"
    try:
        while True:
            try:
                data = await conn.reader.read(_READ_SIZE)
            except OSError:
                data = b""
            if not data:
                if flags.client_gone:
                    return Outcome.DONE
                if not started:
                    raise AgentUnavailable("the agent closed the connection without answering")
                if response.framed or response.complete:
                    return Outcome.ABORTED
                # A body delimited by the end of the connection (a service behind a
                # preview URL may answer so; the agent never does): it is complete.
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return Outcome.DONE
            try:
                parser.feed_data(data)
            except httptools.HttpParserError:
                if not started:
                    raise AgentUnavailable("the agent sent a malformed response") from None
                return Outcome.ABORTED
            if not started:
                if not response.headers_done:
                    continue
                await send(
                    {
                        "type": "http.response.start",
                        "status": parser.get_status_code(),
                        "headers": response.headers,
                    }
                )
                started = True
                if head_only:
                    response.complete = True
                    response.body.clear()
                if helper is None and not response.complete:
                    helper = asyncio.get_running_loop().create_task(
                        _watch_disconnect(conn, receive, flags)
                    )
            if response.body or response.complete:
                chunk = response.body[0] if len(response.body) == 1 else b"".join(response.body)
                response.body.clear()
                await send(
                    {
                        "type": "http.response.body",
                        "body": chunk,
                        "more_body": not response.complete,
                    }
                )
            if response.complete:
                reusable = flags.request_sent and not head_only and response.keep_alive
                return Outcome.REUSABLE if reusable else Outcome.DONE
            if started and response.length is not None and not response.chunked:
                rest = response.length - response.received
                return await _relay_fixed(conn, rest, response.keep_alive, send, flags)
    finally:
        if helper is not None:
            helper.cancel()


async def _relay_fixed(
    conn: AgentConnection, rest: int, keep_alive: bool, send: Send, flags: _Flags
) -> Outcome:
    """Relay the last `rest` bytes of a `Content-Length` body as they are read.

    Reads never ask for more than `rest`, so nothing past the body is consumed.
    """
    reader = conn.reader
    while rest:
        try:
            data = await reader.read(min(rest, _READ_SIZE))
        except OSError:
            data = b""
        if not data:
            return Outcome.DONE if flags.client_gone else Outcome.ABORTED
        rest -= len(data)
        await send({"type": "http.response.body", "body": data, "more_body": rest > 0})
    return Outcome.REUSABLE if flags.request_sent and keep_alive else Outcome.DONE


async def _pump_body(conn: AgentConnection, chunked: bool, receive: Receive, flags: _Flags) -> None:
    """Stream the rest of the client's body to the agent, then watch for disconnect."""
    writer = conn.writer
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            flags.client_gone = True
            conn.abort()
            return
        chunk = message.get("body", b"")
        if chunk:
            writer.write(_frame(chunk, chunked))
        if not message.get("more_body", False):
            break
        try:
            await writer.drain()
        except OSError:
            return  # the agent went away; the response side reports it
    if chunked:
        writer.write(_LAST_CHUNK)
    flags.request_sent = True
    await _watch_disconnect(conn, receive, flags)


async def _watch_disconnect(conn: AgentConnection, receive: Receive, flags: _Flags) -> None:
    """Abort the agent connection when the client goes away (a stream nobody reads)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            flags.client_gone = True
            conn.abort()
            return
