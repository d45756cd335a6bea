"""stdin: `SendInput`, `StreamInput` (client streaming), `CloseStdin` and their errors."""

from __future__ import annotations

import hashlib
import json

import pytest

from corral.protocol.connect import Code, ConnectError, encode_envelope
from corral.protocol.process_messages import StartEvent

from .harness import AgentClient, b64, bash


def _start(client: AgentClient, script: str, **extra: object):  # type: ignore[no-untyped-def]
    manager = client.stream("Start", bash(script, **extra))
    reader = manager.__enter__()
    pid = reader.read_until(lambda e: isinstance(e, StartEvent)).pid
    return manager, reader, pid


def test_send_input_and_close_stdin(client: AgentClient) -> None:
    # `sleep` keeps the process alive after EOF so the repeated CloseStdin finds it
    manager, reader, pid = _start(client, "cat; sleep 0.5")
    try:
        assert (
            client.unary("SendInput", {"process": {"pid": pid}, "input": {"stdin": b64("hello\n")}})
            == {}
        )
        client.unary("SendInput", {"process": {"pid": pid}, "input": {"stdin": b64("world\n")}})
        assert client.unary("CloseStdin", {"process": {"pid": pid}}) == {}
        assert client.unary("CloseStdin", {"process": {"pid": pid}}) == {}  # idempotent
        result = reader.read_all()
    finally:
        manager.__exit__(None, None, None)
    assert result.stdout == "hello\nworld\n"
    assert result.end.exit_code == 0


def test_large_send_input_waits_for_the_pipe(client: AgentClient) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB: far more than a pipe buffer
    manager, reader, pid = _start(client, "sha256sum | cut -d' ' -f1")
    try:
        client.unary("SendInput", {"process": {"pid": pid}, "input": {"stdin": b64(data)}})
        client.unary("CloseStdin", {"process": {"pid": pid}})
        result = reader.read_all()
    finally:
        manager.__exit__(None, None, None)
    assert result.stdout.strip() == hashlib.sha256(data).hexdigest()


def test_stream_input_in_order_then_reply_after_eof(client: AgentClient) -> None:
    manager, reader, pid = _start(client, "cat")
    try:
        messages = [{"start": {"process": {"pid": pid}}}]
        messages += [{"data": {"input": {"stdin": b64(f"{i},")}}} for i in range(200)]
        messages.insert(50, {"keepalive": {}})
        result = client.stream_input(messages)
        assert result.status == 200
        assert result.content_type == "application/connect+json"
        assert result.error is None and result.ended_cleanly
        client.unary("CloseStdin", {"process": {"pid": pid}})
        output = reader.read_all().stdout
    finally:
        manager.__exit__(None, None, None)
    assert output == "".join(f"{i}," for i in range(200))


def test_stream_input_split_envelopes_and_backpressure(client: AgentClient) -> None:
    """Envelopes cut at arbitrary points across chunks, several MiB into a slow reader."""
    manager, reader, pid = _start(client, "sleep 0.3; sha256sum | cut -d' ' -f1")
    payload = bytes(range(256)) * 1024
    try:
        blob = encode_envelope(json.dumps({"start": {"process": {"pid": pid}}}).encode())
        for _ in range(12):
            blob += encode_envelope(
                json.dumps({"data": {"input": {"stdin": b64(payload)}}}).encode()
            )
        pieces = [blob[i : i + 7919] for i in range(0, len(blob), 7919)]
        headers = client.headers()
        headers["content-type"] = "application/connect+json"
        response = client.http.post(
            "/process.Process/StreamInput", content=iter(pieces), headers=headers
        )
        assert response.status_code == 200
        assert response.content.endswith(b"\x02\x00\x00\x00\x02{}")
        client.unary("CloseStdin", {"process": {"pid": pid}})
        result = reader.read_all()
    finally:
        manager.__exit__(None, None, None)
    assert result.stdout.strip() == hashlib.sha256(payload * 12).hexdigest()


def test_stream_input_unknown_pid(client: AgentClient) -> None:
    result = client.stream_input(
        [{"start": {"process": {"pid": 3999999}}}, {"data": {"input": {"stdin": "eA=="}}}]
    )
    assert result.status == 200
    assert result.error == result.error and result.error is not None
    assert result.error.code is Code.NOT_FOUND


def test_stream_input_must_start_with_start(client: AgentClient) -> None:
    result = client.stream_input([{"data": {"input": {"stdin": "eA=="}}}])
    assert result.error is not None and result.error.code is Code.INVALID_ARGUMENT


def test_send_input_unknown_pid(client: AgentClient) -> None:
    with pytest.raises(ConnectError) as info:
        client.unary("SendInput", {"process": {"pid": 3999999}, "input": {"stdin": "eA=="}})
    assert info.value.code is Code.NOT_FOUND
    assert info.value.message == "process with pid 3999999 not found"
    response = client.unary_raw("SendInput", {"process": {"pid": 3999999}})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("start_extra", "input_body", "case"),
    [
        ({"stdin": False}, {"stdin": "eA=="}, "stdin disabled"),
        ({}, {"pty": "eA=="}, "pty input to a pipe process"),
    ],
)
def test_input_misuse_is_failed_precondition(
    client: AgentClient, start_extra: dict[str, object], input_body: dict[str, str], case: str
) -> None:
    manager, reader, pid = _start(client, "sleep 5", **start_extra)
    try:
        with pytest.raises(ConnectError) as info:
            client.unary("SendInput", {"process": {"pid": pid}, "input": input_body})
        assert info.value.code is Code.FAILED_PRECONDITION, case
        client.unary("SendSignal", {"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"})
        reader.read_all()
    finally:
        manager.__exit__(None, None, None)


def test_input_after_close_stdin_is_an_error(client: AgentClient) -> None:
    manager, reader, pid = _start(client, "sleep 5")
    try:
        client.unary("CloseStdin", {"process": {"pid": pid}})
        with pytest.raises(ConnectError) as info:
            client.unary("SendInput", {"process": {"pid": pid}, "input": {"stdin": "eA=="}})
        assert info.value.code is Code.FAILED_PRECONDITION
        assert "stdin not enabled or closed" in info.value.message
        client.unary("SendSignal", {"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"})
        reader.read_all()
    finally:
        manager.__exit__(None, None, None)


def test_close_stdin_without_pipe_is_fine(client: AgentClient) -> None:
    manager, reader, pid = _start(client, "sleep 5", stdin=False)
    try:
        assert client.unary("CloseStdin", {"process": {"pid": pid}}) == {}
        client.unary("SendSignal", {"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"})
        reader.read_all()
    finally:
        manager.__exit__(None, None, None)
