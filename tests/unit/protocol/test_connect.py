"""Connect wire pieces: code table, envelopes, end-of-stream, client-side error reading."""

from __future__ import annotations

import json

import pytest

from corral.protocol.connect import (
    FLAG_END_STREAM,
    HTTP_STATUS_BY_CODE,
    Code,
    ConnectError,
    Envelope,
    EnvelopeDecoder,
    EnvelopeError,
    code_for_http_status,
    encode_envelope,
    end_stream_payload,
    error_from_end_stream,
    error_from_unary_body,
    unary_error_body,
)


def test_code_table_is_the_standard_one() -> None:
    assert {code.value: status for code, status in HTTP_STATUS_BY_CODE.items()} == {
        "canceled": 499,
        "unknown": 500,
        "invalid_argument": 400,
        "deadline_exceeded": 504,
        "not_found": 404,
        "already_exists": 409,
        "permission_denied": 403,
        "resource_exhausted": 429,
        "failed_precondition": 400,
        "aborted": 409,
        "out_of_range": 400,
        "unimplemented": 501,
        "internal": 500,
        "unavailable": 503,
        "data_loss": 500,
        "unauthenticated": 401,
    }


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, Code.INVALID_ARGUMENT),
        (401, Code.UNAUTHENTICATED),
        (403, Code.PERMISSION_DENIED),
        (404, Code.NOT_FOUND),
        (409, Code.ALREADY_EXISTS),
        (413, Code.RESOURCE_EXHAUSTED),
        (429, Code.RESOURCE_EXHAUSTED),
        (499, Code.CANCELED),
        (500, Code.INTERNAL),
        (501, Code.UNIMPLEMENTED),
        (505, Code.UNIMPLEMENTED),
        (502, Code.UNAVAILABLE),
        (503, Code.UNAVAILABLE),
        (504, Code.DEADLINE_EXCEEDED),
        (418, Code.UNKNOWN),
    ],
)
def test_code_for_http_status(status: int, code: Code) -> None:
    assert code_for_http_status(status) is code


def test_envelope_round_trip_byte_by_byte() -> None:
    blob = encode_envelope(b'{"a":1}') + encode_envelope(b"", 0) + encode_envelope(b"{}", 2)
    assert blob[:5] == b"\x00\x00\x00\x00\x07"
    decoder = EnvelopeDecoder(1024)
    seen: list[Envelope] = []
    for index in range(len(blob)):
        seen += decoder.feed(blob[index : index + 1])
    assert seen == [Envelope(0, b'{"a":1}'), Envelope(0, b""), Envelope(2, b"{}")]
    assert seen[2].is_end_stream and not seen[0].is_end_stream
    decoder.finish()


def test_envelope_errors() -> None:
    with pytest.raises(EnvelopeError, match="larger than"):
        EnvelopeDecoder(4).feed(encode_envelope(b"12345"))
    with pytest.raises(EnvelopeError, match="compressed"):
        EnvelopeDecoder(100).feed(encode_envelope(b"x", 1))
    decoder = EnvelopeDecoder(100)
    assert decoder.feed(encode_envelope(b"abc")[:-1]) == []
    assert decoder.buffered == 7
    with pytest.raises(EnvelopeError, match="incomplete"):
        decoder.finish()


def test_end_stream_and_unary_error_bodies() -> None:
    assert end_stream_payload() == b"{}"
    error = ConnectError(Code.NOT_FOUND, "process with pid 4 not found")
    assert json.loads(end_stream_payload(error)) == {
        "error": {"code": "not_found", "message": "process with pid 4 not found"}
    }
    assert json.loads(end_stream_payload(None, {"k": ["v"]})) == {"metadata": {"k": ["v"]}}
    assert json.loads(unary_error_body(error)) == error.to_wire()
    assert error.http_status == 404
    assert str(error) == "not_found: process with pid 4 not found"


def test_client_side_error_reading() -> None:
    assert error_from_unary_body(404, b'{"code":"not_found","message":"m"}').code is Code.NOT_FOUND
    routed = error_from_unary_body(
        502, b'{"sandboxId":"x","message":"The sandbox was not found","code":502}'
    )
    assert routed.code is Code.UNAVAILABLE and "was not found" in routed.message
    assert error_from_unary_body(401, b'{"code":401,"message":"no"}').code is Code.UNAUTHENTICATED
    text = error_from_unary_body(500, b"plain text")
    assert text.code is Code.INTERNAL and text.message == "plain text"
    assert error_from_end_stream(b"{}") is None
    got = error_from_end_stream(b'{"error":{"code":"unavailable","message":"gone"}}')
    assert got is not None and got.code is Code.UNAVAILABLE and got.message == "gone"
    with pytest.raises(EnvelopeError):
        error_from_end_stream(b"not json")
    assert FLAG_END_STREAM == 2
