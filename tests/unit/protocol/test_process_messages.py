"""`process.Process` messages: parsing requests, encoding events, round trips."""

from __future__ import annotations

import json

import pytest

from corral.protocol.process_messages import (
    CloseStdinRequest,
    ConnectRequest,
    DataEvent,
    EndEvent,
    InputStream,
    KeepaliveEvent,
    ListResponse,
    OutputStream,
    ProcessConfig,
    ProcessInfo,
    ProcessInput,
    ProcessSelector,
    PtySize,
    SendInputRequest,
    SendSignalRequest,
    Signal,
    StartEvent,
    StartRequest,
    StreamInputData,
    StreamInputKeepalive,
    StreamInputStart,
    UpdateRequest,
    decode_event,
    decode_stream_input,
    encode_event,
)
from corral.protocol.protojson import ProtoJsonError


def test_sdk_start_requests_parse() -> None:
    command = StartRequest.from_wire(
        {
            "process": {
                "cmd": "/bin/bash",
                "args": ["-l", "-c", "echo hi"],
                "envs": {"X": "y"},
                "cwd": "/tmp",
            },
            "stdin": False,
        }
    )
    assert command == StartRequest(
        ProcessConfig("/bin/bash", ("-l", "-c", "echo hi"), {"X": "y"}, "/tmp"), stdin=False
    )
    pty = StartRequest.from_wire(
        {
            "process": {"cmd": "/bin/bash", "args": ["-i", "-l"]},
            "pty": {"size": {"cols": 80, "rows": 24}},
        }
    )
    assert pty.pty == PtySize(cols=80, rows=24) and pty.stdin is None
    assert StartRequest.from_wire({"process": {"cmd": "x"}, "pty": {}}).pty == PtySize(0, 0)


@pytest.mark.parametrize(
    "message",
    [
        StartRequest(
            ProcessConfig("/bin/sh", ("-c", "x"), {"A": "1"}, "~"), PtySize(3, 4), "t", True
        ),
        StartRequest(ProcessConfig("/bin/true")),
        ConnectRequest(ProcessSelector(pid=5)),
        ConnectRequest(ProcessSelector(tag="t")),
        SendInputRequest(ProcessSelector(pid=5), ProcessInput(InputStream.STDIN, b"\x00\xff")),
        SendInputRequest(ProcessSelector(pid=5), ProcessInput(InputStream.PTY, b"ls\n")),
        CloseStdinRequest(ProcessSelector(pid=1)),
        SendSignalRequest(ProcessSelector(pid=1), Signal.SIGNAL_SIGKILL),
        UpdateRequest(ProcessSelector(pid=1), PtySize(100, 30)),
        UpdateRequest(ProcessSelector(pid=1)),
    ],
)
def test_requests_round_trip(message: object) -> None:
    wire = json.loads(json.dumps(message.to_wire()))  # type: ignore[attr-defined]
    assert type(message).from_wire(wire) == message  # type: ignore[attr-defined]


def test_signal_names_and_numbers() -> None:
    sent = SendSignalRequest.from_wire({"process": {"pid": 42}, "signal": "SIGNAL_SIGKILL"})
    assert sent.signal is Signal.SIGNAL_SIGKILL and int(sent.signal) == 9
    assert (
        SendSignalRequest.from_wire({"process": {"pid": 1}, "signal": 15}).signal
        is Signal.SIGNAL_SIGTERM
    )
    assert (
        SendSignalRequest(ProcessSelector(pid=1), Signal.SIGNAL_SIGTERM).to_wire()["signal"]
        == "SIGNAL_SIGTERM"
    )
    with pytest.raises(ProtoJsonError):
        SendSignalRequest.from_wire({"process": {"pid": 1}, "signal": "SIGNAL_SIGSTOP"})


def test_selector_needs_pid_or_tag() -> None:
    with pytest.raises(ProtoJsonError, match="pid or a tag"):
        ConnectRequest.from_wire({"process": {}})
    assert ProcessSelector(pid=3).describe() == "pid 3"
    assert ProcessSelector(tag="x").describe() == "tag 'x'"


def test_stream_input_messages() -> None:
    assert decode_stream_input({"start": {"process": {"pid": 42}}}) == StreamInputStart(
        ProcessSelector(pid=42)
    )
    assert decode_stream_input({"data": {"input": {"stdin": "YQ=="}}}) == StreamInputData(
        ProcessInput(InputStream.STDIN, b"a")
    )
    assert decode_stream_input({"keepalive": {}}) == StreamInputKeepalive()
    with pytest.raises(ProtoJsonError):
        decode_stream_input({})
    for message in (
        StreamInputStart(ProcessSelector(pid=1)),
        StreamInputKeepalive(),
        StreamInputData(ProcessInput(InputStream.PTY, b"x")),
    ):
        assert decode_stream_input(message.to_wire()) == message
    assert ProcessInput.from_wire({}) == ProcessInput(None)
    assert ProcessInput(None).to_wire() == {}


def test_event_encoding_is_exact() -> None:
    assert encode_event(StartEvent(42)) == b'{"event":{"start":{"pid":42}}}'
    assert (
        encode_event(DataEvent(OutputStream.STDOUT, b"hi\n"))
        == b'{"event":{"data":{"stdout":"aGkK"}}}'
    )
    assert encode_event(DataEvent(OutputStream.PTY, b"")) == b'{"event":{"data":{"pty":""}}}'
    assert encode_event(KeepaliveEvent()) == b'{"event":{"keepalive":{}}}'
    assert encode_event(EndEvent(0, True, "exit status 0")) == (
        b'{"event":{"end":{"exited":true,"status":"exit status 0"}}}'
    )
    assert json.loads(encode_event(EndEvent(-1, False, "signal: killed", "signal: killed"))) == {
        "event": {"end": {"exitCode": -1, "status": "signal: killed", "error": "signal: killed"}}
    }


@pytest.mark.parametrize(
    "event",
    [
        StartEvent(7),
        DataEvent(OutputStream.STDERR, bytes(range(256))),
        KeepaliveEvent(),
        EndEvent(3, True, "exit status 3", "exit status 3"),
        EndEvent(0, True, "exit status 0"),
    ],
)
def test_events_round_trip(event: object) -> None:
    assert decode_event(json.loads(encode_event(event))) == event  # type: ignore[arg-type]


def test_decode_event_accepts_proto_names() -> None:
    assert decode_event({"event": {"end": {"exit_code": 2, "exited": True}}}) == EndEvent(
        2, True, ""
    )
    with pytest.raises(ProtoJsonError):
        decode_event({"event": {}})


def test_list_response() -> None:
    info = ProcessInfo(ProcessConfig("/bin/bash", ("-c", "x"), {}, None), 9, "tag")
    wire = ListResponse((info,)).to_wire()
    assert wire == {
        "processes": [{"config": {"cmd": "/bin/bash", "args": ["-c", "x"]}, "pid": 9, "tag": "tag"}]
    }
    assert ListResponse.from_wire(wire) == ListResponse((info,))
    assert ListResponse().to_wire() == {}
