"""Connect RPC over the agent's HTTP server: unary, server-streaming and client-streaming calls.

This is the boundary between the wire and the agent's services (protocol doc §4):
* it checks method and content type, parses `Connect-Timeout-Ms` and
  `Keepalive-Ping-Interval`, decodes JSON bodies and envelopes;
* handlers receive decoded JSON objects and answer with JSON objects or encoded messages;
* it converts errors: `ConnectError` goes out as is, `ProtoJsonError` (bad message) becomes
  `invalid_argument`, each `AgentError` gets the code of `_CODE_BY_ERROR`, anything else is
  logged and becomes `internal`.
Unary errors are non-200 JSON bodies; streaming errors are always HTTP 200 with the error in
the end-of-stream envelope.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from corral.agent.errors import (
    AgentError,
    BadAuthorization,
    FilesystemExhausted,
    InputUnavailable,
    InvalidPath,
    InvalidProcessRequest,
    InvalidWorkdir,
    PathExists,
    PathNotFound,
    PathPermissionDenied,
    ProcessNotFound,
    SpawnFailed,
    UnknownUser,
)
from corral.agent.http_server import IGNORE_BODY, RequestHandler, RequestHead, Response
from corral.protocol.connect import (
    FLAG_END_STREAM,
    FLAG_MESSAGE,
    STREAM_CONTENT_TYPE,
    UNARY_CONTENT_TYPE,
    Code,
    ConnectError,
    EnvelopeDecoder,
    EnvelopeError,
    encode_envelope,
    end_stream_payload,
    unary_error_body,
)
from corral.protocol.protojson import ProtoJsonError

__all__ = [
    "DEFAULT_KEEPALIVE_SECONDS",
    "MAX_MESSAGE_BYTES",
    "CallContext",
    "ClientStreamCall",
    "ClientStreamConsumer",
    "ClientStreamMethod",
    "Method",
    "ServerStream",
    "ServerStreamMethod",
    "UnaryMethod",
    "Wire",
    "connect_error_for",
    "open_call",
    "reject_unknown_procedure",
]

_log = logging.getLogger("corral.agent")

Wire = Mapping[str, object]

# Largest accepted request message (unary body or one envelope).
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
# envd's keepalive interval when the client sends no `Keepalive-Ping-Interval`.
DEFAULT_KEEPALIVE_SECONDS = 90.0
_MAX_TIMEOUT_DIGITS = 10

_CODE_BY_ERROR: tuple[tuple[type[AgentError], Code], ...] = (
    (UnknownUser, Code.UNAUTHENTICATED),
    (BadAuthorization, Code.UNAUTHENTICATED),
    (ProcessNotFound, Code.NOT_FOUND),
    (InvalidWorkdir, Code.INVALID_ARGUMENT),
    (InvalidProcessRequest, Code.INVALID_ARGUMENT),
    (SpawnFailed, Code.INTERNAL),
    (InputUnavailable, Code.FAILED_PRECONDITION),
    (PathNotFound, Code.NOT_FOUND),
    (PathExists, Code.ALREADY_EXISTS),
    (InvalidPath, Code.INVALID_ARGUMENT),
    (PathPermissionDenied, Code.PERMISSION_DENIED),
    (FilesystemExhausted, Code.RESOURCE_EXHAUSTED),
)


def connect_error_for(exc: BaseException) -> ConnectError:
    """The Connect error a client gets for `exc` (logged when it is unexpected)."""
    if isinstance(exc, ConnectError):
        return exc
    if isinstance(exc, ProtoJsonError):
        return ConnectError(Code.INVALID_ARGUMENT, f"invalid request: {exc}")
    if isinstance(exc, EnvelopeError):
        return ConnectError(Code.INVALID_ARGUMENT, str(exc))
    if isinstance(exc, AgentError):
        for error_type, code in _CODE_BY_ERROR:
            if isinstance(exc, error_type):
                return ConnectError(code, str(exc))
        return ConnectError(Code.INTERNAL, str(exc))
    _log.error("RPC handler failed", exc_info=exc)
    return ConnectError(Code.INTERNAL, "internal error")


@dataclass(frozen=True, slots=True)
class CallContext:
    """Per-call metadata: the request head and the Connect timing headers."""

    head: RequestHead
    timeout: float | None  # seconds from `Connect-Timeout-Ms`; None = absent or 0
    keepalive_interval: float  # seconds from `Keepalive-Ping-Interval`


# A unary handler answers a JSON object, or `bytes` already encoded as one (large answers
# such as `ListDir` encode themselves faster than a generic `json.dumps` of nested dicts).
UnaryHandler = Callable[[CallContext, Wire], Wire | bytes | Awaitable[Wire]]


class ServerStream:
    """The response side of a server-streaming call."""

    def __init__(self, loop: asyncio.AbstractEventLoop, response: Response) -> None:
        self._loop = loop
        self._response = response
        self._closed = False
        self._deadline: asyncio.TimerHandle | None = None
        # Called once if the stream ends without `close` (client gone, deadline).
        self.on_abandoned: Callable[[], None] | None = None
        response.on_flow = self._on_flow
        # Called with True/False as the client's connection fills up and drains.
        self.on_flow: Callable[[bool], None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def write_paused(self) -> bool:
        return self._response.write_paused

    def _ensure_started(self) -> None:
        if not self._response.started:
            self._response.start_stream(200, STREAM_CONTENT_TYPE)

    def send(self, payload: bytes) -> None:
        """One message envelope with `payload` (a JSON message)."""
        if self._closed:
            return
        self._ensure_started()
        self._response.write(encode_envelope(payload))

    def close(self, error: ConnectError | None = None, last_message: bytes | None = None) -> None:
        """Send `last_message` if given, the end-of-stream envelope (`{}` or the error),
        and end the body, in one write."""
        if self._closed:
            return
        self._closed = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._ensure_started()
        tail = encode_envelope(end_stream_payload(error), FLAG_END_STREAM)
        if last_message is not None:
            tail = encode_envelope(last_message) + tail
        self._response.end_stream(tail)

    def close_after(self, seconds: float, error: ConnectError) -> None:
        """End the stream with `error` after `seconds` unless it ended before."""
        self._deadline = self._loop.call_later(seconds, self._expire, error)

    def _expire(self, error: ConnectError) -> None:
        self._deadline = None
        if self._closed:
            return
        self.close(error)
        self._abandon()

    def client_gone(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._abandon()

    def _abandon(self) -> None:
        callback, self.on_abandoned = self.on_abandoned, None
        if callback is not None:
            callback()

    def _on_flow(self, paused: bool) -> None:
        if self.on_flow is not None and not self._closed:
            self.on_flow(paused)


ServerStreamHandler = Callable[[CallContext, Wire, ServerStream], None]


class ClientStreamCall:
    """The response side of a client-streaming call, as seen by its consumer."""

    def __init__(self, response: Response) -> None:
        self._response = response
        self.done = False

    def reply(self, message: Wire) -> None:
        """Answer with one message and end-of-stream `{}`."""
        if self.done:
            return
        self.done = True
        self._response.start_stream(200, STREAM_CONTENT_TYPE)
        payload = json.dumps(message, separators=(",", ":")).encode()
        self._response.end_stream(
            encode_envelope(payload) + encode_envelope(end_stream_payload(), FLAG_END_STREAM)
        )

    def fail(self, error: ConnectError) -> None:
        """Answer with an end-of-stream error; the rest of the request body is ignored."""
        if self.done:
            return
        self.done = True
        self._response.start_stream(200, STREAM_CONTENT_TYPE)
        self._response.end_stream(encode_envelope(end_stream_payload(error), FLAG_END_STREAM))

    def pause_input(self) -> None:
        self._response.pause_input()

    def resume_input(self) -> None:
        self._response.resume_input()


class ClientStreamConsumer(Protocol):
    """Receives the messages of a client-streaming call."""

    def on_message(self, message: Wire) -> None: ...

    def on_end(self) -> None: ...

    def on_disconnect(self) -> None: ...


ClientStreamHandler = Callable[[CallContext, ClientStreamCall], ClientStreamConsumer]


@dataclass(frozen=True, slots=True)
class UnaryMethod:
    handler: UnaryHandler


@dataclass(frozen=True, slots=True)
class ServerStreamMethod:
    handler: ServerStreamHandler


@dataclass(frozen=True, slots=True)
class ClientStreamMethod:
    handler: ClientStreamHandler


Method = UnaryMethod | ServerStreamMethod | ClientStreamMethod


# --- request parsing ---------------------------------------------------------------------------


def _media_type(head: RequestHead) -> str:
    return (head.header("content-type") or "").partition(";")[0].strip().lower()


def _parse_timeout(head: RequestHead) -> float | None:
    raw = head.header("connect-timeout-ms")
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > _MAX_TIMEOUT_DIGITS:
        raise ConnectError(Code.INVALID_ARGUMENT, f"protocol error: invalid timeout {raw!r}")
    milliseconds = int(raw)
    return milliseconds / 1000 if milliseconds else None


def _parse_keepalive(head: RequestHead) -> float:
    raw = head.header("keepalive-ping-interval")
    if raw is None:
        return DEFAULT_KEEPALIVE_SECONDS
    try:
        seconds = float(raw.strip())
    except ValueError:
        return DEFAULT_KEEPALIVE_SECONDS
    return seconds if seconds > 0 else DEFAULT_KEEPALIVE_SECONDS


def _decode_json_object(payload: bytes) -> Wire:
    if not payload.strip():
        return {}
    try:
        value = json.loads(payload)
    except ValueError as exc:
        raise ConnectError(Code.INVALID_ARGUMENT, f"invalid JSON message: {exc}") from exc
    if not isinstance(value, dict):
        raise ConnectError(Code.INVALID_ARGUMENT, "invalid JSON message: expected an object")
    return value


def _send_unary_error(response: Response, error: ConnectError) -> None:
    if not response.started and not response.closed:
        response.send(error.http_status, unary_error_body(error), UNARY_CONTENT_TYPE)


def _send_stream_error(response: Response, error: ConnectError) -> None:
    if not response.started and not response.closed:
        response.start_stream(200, STREAM_CONTENT_TYPE)
        response.end_stream(encode_envelope(end_stream_payload(error), FLAG_END_STREAM))


# --- call kinds --------------------------------------------------------------------------------


class _UnaryCall:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ctx: CallContext,
        response: Response,
        handler: UnaryHandler,
    ) -> None:
        self._loop = loop
        self._ctx = ctx
        self._response = response
        self._handler = handler
        self._body = bytearray()
        self._failed = False
        self._task: asyncio.Task[None] | None = None  # referenced so it is not collected

    def on_body(self, data: bytes) -> None:
        if self._failed:
            return
        self._body += data
        if len(self._body) > MAX_MESSAGE_BYTES:
            self._failed = True
            self._body = bytearray()
            _send_unary_error(
                self._response,
                ConnectError(Code.RESOURCE_EXHAUSTED, "request message is too large"),
            )

    def on_body_end(self) -> None:
        if self._failed:
            return
        try:
            result = self._handler(self._ctx, _decode_json_object(bytes(self._body)))
        except Exception as exc:
            _send_unary_error(self._response, connect_error_for(exc))
            return
        if isinstance(result, bytes):
            if not self._response.closed:
                self._response.send(200, result, UNARY_CONTENT_TYPE)
        elif isinstance(result, Mapping):
            self._reply(result)
        else:
            self._task = self._loop.create_task(self._await_reply(result))

    async def _await_reply(self, pending: Awaitable[Wire]) -> None:
        try:
            result = await pending
        except Exception as exc:
            _send_unary_error(self._response, connect_error_for(exc))
            return
        self._reply(result)

    def _reply(self, result: Wire) -> None:
        if not self._response.closed:
            body = json.dumps(result, separators=(",", ":")).encode()
            self._response.send(200, body, UNARY_CONTENT_TYPE)

    def on_disconnect(self) -> None:
        pass


class _ServerStreamCall:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ctx: CallContext,
        response: Response,
        handler: ServerStreamHandler,
    ) -> None:
        self._loop = loop
        self._ctx = ctx
        self._response = response
        self._handler = handler
        self._decoder = EnvelopeDecoder(MAX_MESSAGE_BYTES)
        self._messages: list[bytes] = []
        self._stream: ServerStream | None = None
        self._failed = False

    def on_body(self, data: bytes) -> None:
        if self._failed:
            return
        try:
            envelopes = self._decoder.feed(data)
        except EnvelopeError as exc:
            self._fail(connect_error_for(exc))
            return
        self._messages.extend(e.payload for e in envelopes if e.flags == FLAG_MESSAGE)
        if len(self._messages) > 1:
            self._fail(self._message_count_error())

    def _message_count_error(self) -> ConnectError:
        return ConnectError(
            Code.INVALID_ARGUMENT,
            f"protocol error: expected one request message, got {len(self._messages)}",
        )

    def on_body_end(self) -> None:
        if self._failed:
            return
        try:
            self._decoder.finish()
            if len(self._messages) != 1:
                raise self._message_count_error()
            message = _decode_json_object(self._messages[0])
        except (ConnectError, EnvelopeError) as exc:
            self._fail(connect_error_for(exc))
            return
        self._messages = []
        stream = ServerStream(self._loop, self._response)
        self._stream = stream
        try:
            self._handler(self._ctx, message, stream)
        except Exception as exc:
            stream.close(connect_error_for(exc))

    def _fail(self, error: ConnectError) -> None:
        self._failed = True
        self._messages = []
        _send_stream_error(self._response, error)

    def on_disconnect(self) -> None:
        if self._stream is not None:
            self._stream.client_gone()


class _ClientStreamCall:
    def __init__(self, ctx: CallContext, response: Response, handler: ClientStreamHandler) -> None:
        self._call = ClientStreamCall(response)
        self._decoder = EnvelopeDecoder(MAX_MESSAGE_BYTES)
        self._consumer: ClientStreamConsumer | None = None
        try:
            self._consumer = handler(ctx, self._call)
        except Exception as exc:
            self._call.fail(connect_error_for(exc))

    def on_body(self, data: bytes) -> None:
        if self._call.done or self._consumer is None:
            return
        try:
            envelopes = self._decoder.feed(data)
            for envelope in envelopes:
                if envelope.is_end_stream:
                    continue
                self._consumer.on_message(_decode_json_object(envelope.payload))
                if self._call.done:
                    return
        except Exception as exc:
            self._call.fail(connect_error_for(exc))

    def on_body_end(self) -> None:
        if self._call.done or self._consumer is None:
            return
        try:
            self._decoder.finish()
            self._consumer.on_end()
        except Exception as exc:
            self._call.fail(connect_error_for(exc))

    def on_disconnect(self) -> None:
        if self._consumer is not None and not self._call.done:
            self._call.done = True
            self._consumer.on_disconnect()


def open_call(
    loop: asyncio.AbstractEventLoop, head: RequestHead, response: Response, method: Method
) -> RequestHandler:
    """Start a Connect call of `method` for this request."""
    streaming = not isinstance(method, UnaryMethod)
    if head.method != "POST":
        response.send(405, b"", None, {"allow": "POST"})
        return IGNORE_BODY
    expected = STREAM_CONTENT_TYPE if streaming else UNARY_CONTENT_TYPE
    if _media_type(head) != expected:
        response.send(415, b"", None, {"accept-post": expected})
        return IGNORE_BODY
    try:
        ctx = CallContext(head, _parse_timeout(head), _parse_keepalive(head))
    except ConnectError as exc:
        (_send_stream_error if streaming else _send_unary_error)(response, exc)
        return IGNORE_BODY
    if isinstance(method, UnaryMethod):
        return _UnaryCall(loop, ctx, response, method.handler)
    if isinstance(method, ServerStreamMethod):
        return _ServerStreamCall(loop, ctx, response, method.handler)
    return _ClientStreamCall(ctx, response, method.handler)


def reject_unknown_procedure(head: RequestHead, response: Response) -> RequestHandler:
    """`unimplemented` for an RPC path the agent does not serve (yet)."""
    error = ConnectError(Code.UNIMPLEMENTED, f"{head.path.lstrip('/')} is not implemented")
    if _media_type(head).startswith("application/connect+"):
        _send_stream_error(response, error)
    else:
        _send_unary_error(response, error)
    return IGNORE_BODY
