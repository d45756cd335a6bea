"""Connect RPC wire pieces: error codes, the code -> HTTP status table, envelopes, end-of-stream.

Only what the envd protocol uses is here (protocol doc §4): the JSON codec, no compression,
HTTP/1.1. Both ends can use it: the agent to answer, the server or tests to read answers.

Error hierarchy::

    ConnectError     an RPC failed: a Connect `Code` plus a client-safe message
    EnvelopeError    the bytes are not a valid sequence of Connect envelopes (a ValueError)
"""

from __future__ import annotations

import enum
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "FLAG_COMPRESSED",
    "FLAG_END_STREAM",
    "FLAG_MESSAGE",
    "HTTP_STATUS_BY_CODE",
    "STREAM_CONTENT_TYPE",
    "UNARY_CONTENT_TYPE",
    "Code",
    "ConnectError",
    "Envelope",
    "EnvelopeDecoder",
    "EnvelopeError",
    "code_for_http_status",
    "encode_envelope",
    "end_stream_payload",
    "error_from_end_stream",
    "error_from_unary_body",
    "unary_error_body",
]

# Content types (§4.3, §4.4). Streaming responses must carry STREAM_CONTENT_TYPE verbatim.
UNARY_CONTENT_TYPE = "application/json"
STREAM_CONTENT_TYPE = "application/connect+json"

# Envelope flags (§4.4).
FLAG_MESSAGE = 0x00
FLAG_COMPRESSED = 0x01
FLAG_END_STREAM = 0x02

_HEADER = struct.Struct(">BI")
_HEADER_SIZE = _HEADER.size


class Code(enum.Enum):
    """Connect error codes; the value is the wire string."""

    CANCELED = "canceled"
    UNKNOWN = "unknown"
    INVALID_ARGUMENT = "invalid_argument"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    FAILED_PRECONDITION = "failed_precondition"
    ABORTED = "aborted"
    OUT_OF_RANGE = "out_of_range"
    UNIMPLEMENTED = "unimplemented"
    INTERNAL = "internal"
    UNAVAILABLE = "unavailable"
    DATA_LOSS = "data_loss"
    UNAUTHENTICATED = "unauthenticated"


# The standard Connect code -> HTTP status table, used for unary error responses (§4.3).
HTTP_STATUS_BY_CODE: Mapping[Code, int] = {
    Code.CANCELED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}

# How a client maps a non-Connect error status to a code (§4.3, last bullet).
_CODE_BY_HTTP_STATUS: Mapping[int, Code] = {
    400: Code.INVALID_ARGUMENT,
    401: Code.UNAUTHENTICATED,
    403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND,
    409: Code.ALREADY_EXISTS,
    413: Code.RESOURCE_EXHAUSTED,
    429: Code.RESOURCE_EXHAUSTED,
    499: Code.CANCELED,
    500: Code.INTERNAL,
    501: Code.UNIMPLEMENTED,
    502: Code.UNAVAILABLE,
    503: Code.UNAVAILABLE,
    504: Code.DEADLINE_EXCEEDED,
    505: Code.UNIMPLEMENTED,
}

_CODE_BY_NAME: Mapping[str, Code] = {code.value: code for code in Code}


def code_for_http_status(status: int) -> Code:
    """The code a Connect client infers from an HTTP status without a Connect error body."""
    return _CODE_BY_HTTP_STATUS.get(status, Code.UNKNOWN)


class ConnectError(Exception):
    """An RPC failure as the client will see it. `message` is safe to send to clients."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        """The HTTP status of a unary error response carrying this error."""
        return HTTP_STATUS_BY_CODE[self.code]

    def to_wire(self) -> dict[str, str]:
        """The `{"code", "message"}` object used in unary bodies and end-of-stream."""
        return {"code": self.code.value, "message": self.message}


class EnvelopeError(ValueError):
    """Malformed envelope framing (truncated stream, oversized or compressed message)."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One Connect envelope: flags and its (JSON) payload."""

    flags: int
    payload: bytes

    @property
    def is_end_stream(self) -> bool:
        return bool(self.flags & FLAG_END_STREAM)


def encode_envelope(payload: bytes, flags: int = FLAG_MESSAGE) -> bytes:
    """Frame `payload` as one envelope (1 flag byte, 4-byte big-endian length, payload)."""
    return _HEADER.pack(flags, len(payload)) + payload


class EnvelopeDecoder:
    """Incremental envelope parser: feed bytes as they arrive, get complete envelopes back."""

    def __init__(self, max_payload: int) -> None:
        self._buffer = bytearray()
        self._max_payload = max_payload

    def feed(self, data: bytes) -> list[Envelope]:
        """Append `data`; return every envelope it completes (possibly none)."""
        buffer = self._buffer
        buffer += data
        envelopes: list[Envelope] = []
        offset = 0
        end = len(buffer)
        while end - offset >= _HEADER_SIZE:
            flags, length = _HEADER.unpack_from(buffer, offset)
            if flags & FLAG_COMPRESSED:
                raise EnvelopeError("protocol error: compressed message without compression")
            if length > self._max_payload:
                raise EnvelopeError(
                    f"message size {length} is larger than configured max {self._max_payload}"
                )
            start = offset + _HEADER_SIZE
            if end - start < length:
                break
            envelopes.append(Envelope(flags, bytes(buffer[start : start + length])))
            offset = start + length
        if offset:
            del buffer[:offset]
        return envelopes

    @property
    def buffered(self) -> int:
        """Bytes received that do not yet form a complete envelope."""
        return len(self._buffer)

    def finish(self) -> None:
        """Declare the end of input; raises if a partial envelope is left over."""
        if self._buffer:
            raise EnvelopeError("protocol error: incomplete envelope")


def end_stream_payload(
    error: ConnectError | None = None, metadata: Mapping[str, list[str]] | None = None
) -> bytes:
    """The JSON of an end-of-stream envelope: `{}` or `{"error": {...}}` (+ trailers)."""
    if error is None and not metadata:
        return b"{}"
    body: dict[str, object] = {}
    if error is not None:
        body["error"] = error.to_wire()
    if metadata:
        body["metadata"] = {key: list(values) for key, values in metadata.items()}
    return json.dumps(body, separators=(",", ":")).encode()


def unary_error_body(error: ConnectError) -> bytes:
    """The JSON body of a unary error response."""
    return json.dumps(error.to_wire(), separators=(",", ":")).encode()


def _error_from_object(raw: object, fallback: Code) -> ConnectError:
    if not isinstance(raw, dict):
        return ConnectError(fallback, str(raw))
    code_value = raw.get("code")
    message = raw.get("message")
    text = message if isinstance(message, str) else ""
    if isinstance(code_value, str) and code_value in _CODE_BY_NAME:
        return ConnectError(_CODE_BY_NAME[code_value], text)
    if isinstance(code_value, int) and not isinstance(code_value, bool):
        return ConnectError(code_for_http_status(code_value), text)
    return ConnectError(fallback, text)


def error_from_unary_body(status: int, body: bytes) -> ConnectError:
    """Client side of §4.3: the error a Connect client derives from a non-200 response."""
    fallback = code_for_http_status(status)
    try:
        raw = json.loads(body)
    except ValueError:
        return ConnectError(fallback, body.decode("utf-8", "replace"))
    return _error_from_object(raw, fallback)


def error_from_end_stream(payload: bytes) -> ConnectError | None:
    """Client side of §4.4: the error carried by an end-of-stream payload, if any."""
    try:
        raw = json.loads(payload)
    except ValueError as exc:
        raise EnvelopeError("end-of-stream payload is not JSON") from exc
    if not isinstance(raw, dict) or raw.get("error") is None:
        return None
    return _error_from_object(raw["error"], Code.UNKNOWN)
