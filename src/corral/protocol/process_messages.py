"""Messages of the envd `process.Process` service in ProtoJSON (protocol doc §5, §10.1).

Requests are parsed with `from_wire` (raising `ProtoJsonError`) and written with `to_wire`;
events of the `Start`/`Connect` streams are written with `encode_event` (bytes, ready to be
framed as an envelope) and read with `decode_event`. Default values are omitted on the wire
(`exitCode` 0 is absent from a successful end event), optional fields appear when set.
"""

from __future__ import annotations

import base64
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.protocol.protojson import (
    ProtoJsonError,
    decode_bool,
    decode_bytes,
    decode_enum,
    decode_int32,
    decode_object,
    decode_string,
    decode_string_list,
    decode_string_map,
    decode_uint32,
    encode_bytes,
)
from corral.protocol.protojson import field as get_field

__all__ = [
    "CloseStdinRequest",
    "ConnectRequest",
    "DataEvent",
    "EndEvent",
    "InputStream",
    "KeepaliveEvent",
    "ListResponse",
    "OutputStream",
    "ProcessConfig",
    "ProcessEvent",
    "ProcessInfo",
    "ProcessInput",
    "ProcessSelector",
    "PtySize",
    "SendInputRequest",
    "SendSignalRequest",
    "Signal",
    "StartEvent",
    "StartRequest",
    "StreamInputData",
    "StreamInputKeepalive",
    "StreamInputMessage",
    "StreamInputStart",
    "UpdateRequest",
    "decode_event",
    "decode_stream_input",
    "encode_event",
]

Wire = dict[str, object]


class Signal(enum.IntEnum):
    """`process.Signal`; member names are the wire names."""

    SIGNAL_UNSPECIFIED = 0
    SIGNAL_SIGTERM = 15
    SIGNAL_SIGKILL = 9


class OutputStream(enum.Enum):
    """Which `DataEvent.output` member carries a chunk; the value is the JSON key."""

    STDOUT = "stdout"
    STDERR = "stderr"
    PTY = "pty"


class InputStream(enum.Enum):
    """Which `ProcessInput.input` member carries input; the value is the JSON key."""

    STDIN = "stdin"
    PTY = "pty"


@dataclass(frozen=True, slots=True)
class PtySize:
    """`PTY.Size`: terminal size in character cells."""

    cols: int
    rows: int

    def to_wire(self) -> Wire:
        return {"size": {"cols": self.cols, "rows": self.rows}}

    @classmethod
    def from_wire(cls, value: object, name: str) -> PtySize:
        """Read a `PTY` message (`{"size": {...}}`)."""
        size = decode_object(get_field(decode_object(value, name), "size"), f"{name}.size")
        return cls(
            cols=decode_uint32(size.get("cols"), f"{name}.size.cols"),
            rows=decode_uint32(size.get("rows"), f"{name}.size.rows"),
        )


@dataclass(frozen=True, slots=True)
class ProcessConfig:
    """`ProcessConfig`: what to run; echoed back by `List`."""

    cmd: str
    args: tuple[str, ...] = ()
    envs: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"cmd": self.cmd}
        if self.args:
            wire["args"] = list(self.args)
        if self.envs:
            wire["envs"] = dict(self.envs)
        if self.cwd is not None:
            wire["cwd"] = self.cwd
        return wire

    @classmethod
    def from_wire(cls, value: object, name: str = "process") -> ProcessConfig:
        message = decode_object(value, name)
        cwd = message.get("cwd")
        return cls(
            cmd=decode_string(message.get("cmd"), f"{name}.cmd"),
            args=decode_string_list(message.get("args"), f"{name}.args"),
            envs=decode_string_map(message.get("envs"), f"{name}.envs"),
            cwd=None if cwd is None else decode_string(cwd, f"{name}.cwd"),
        )


@dataclass(frozen=True, slots=True)
class ProcessSelector:
    """`ProcessSelector`: a process by pid or by tag (exactly one is set)."""

    pid: int | None = None
    tag: str | None = None

    def to_wire(self) -> Wire:
        if self.pid is not None:
            return {"pid": self.pid}
        if self.tag is not None:
            return {"tag": self.tag}
        return {}

    def describe(self) -> str:
        """`pid N` or `tag 'x'`, as used in error messages."""
        return f"pid {self.pid}" if self.pid is not None else f"tag '{self.tag}'"

    @classmethod
    def from_wire(cls, value: object, name: str = "process") -> ProcessSelector:
        message = decode_object(value, name)
        pid, tag = message.get("pid"), message.get("tag")
        if pid is not None:
            return cls(pid=decode_uint32(pid, f"{name}.pid"))
        if tag is not None:
            return cls(tag=decode_string(tag, f"{name}.tag"))
        raise ProtoJsonError(f"{name}: a pid or a tag is required")


@dataclass(frozen=True, slots=True)
class StartRequest:
    """`StartRequest`. `pty` set means a PTY process; `stdin` None means true."""

    process: ProcessConfig
    pty: PtySize | None = None
    tag: str | None = None
    stdin: bool | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"process": self.process.to_wire()}
        if self.pty is not None:
            wire["pty"] = self.pty.to_wire()
        if self.tag is not None:
            wire["tag"] = self.tag
        if self.stdin is not None:
            wire["stdin"] = self.stdin
        return wire

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> StartRequest:
        pty, tag, stdin = message.get("pty"), message.get("tag"), message.get("stdin")
        return cls(
            process=ProcessConfig.from_wire(message.get("process")),
            pty=None if pty is None else PtySize.from_wire(pty, "pty"),
            tag=None if tag is None else decode_string(tag, "tag"),
            stdin=None if stdin is None else decode_bool(stdin, "stdin"),
        )


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    process: ProcessSelector

    def to_wire(self) -> Wire:
        return {"process": self.process.to_wire()}

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> ConnectRequest:
        return cls(ProcessSelector.from_wire(message.get("process")))


@dataclass(frozen=True, slots=True)
class ProcessInput:
    """`ProcessInput`: bytes for stdin or for the PTY; `stream` None when neither is set."""

    stream: InputStream | None
    data: bytes = b""

    def to_wire(self) -> Wire:
        return {} if self.stream is None else {self.stream.value: encode_bytes(self.data)}

    @classmethod
    def from_wire(cls, value: object, name: str = "input") -> ProcessInput:
        message = decode_object(value, name)
        for stream in InputStream:
            raw = message.get(stream.value)
            if raw is not None:
                return cls(stream, decode_bytes(raw, f"{name}.{stream.value}"))
        return cls(None)


@dataclass(frozen=True, slots=True)
class SendInputRequest:
    process: ProcessSelector
    input: ProcessInput

    def to_wire(self) -> Wire:
        return {"process": self.process.to_wire(), "input": self.input.to_wire()}

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> SendInputRequest:
        return cls(
            ProcessSelector.from_wire(message.get("process")),
            ProcessInput.from_wire(message.get("input")),
        )


@dataclass(frozen=True, slots=True)
class StreamInputStart:
    """First message of a `StreamInput` call: which process to feed."""

    process: ProcessSelector

    def to_wire(self) -> Wire:
        return {"start": {"process": self.process.to_wire()}}


@dataclass(frozen=True, slots=True)
class StreamInputData:
    input: ProcessInput

    def to_wire(self) -> Wire:
        return {"data": {"input": self.input.to_wire()}}


@dataclass(frozen=True, slots=True)
class StreamInputKeepalive:
    def to_wire(self) -> Wire:
        return {"keepalive": {}}


StreamInputMessage = StreamInputStart | StreamInputData | StreamInputKeepalive


def decode_stream_input(message: Mapping[str, object]) -> StreamInputMessage:
    """One `StreamInputRequest` (a oneof of start, data and keepalive)."""
    if message.get("start") is not None:
        start = decode_object(message["start"], "start")
        return StreamInputStart(ProcessSelector.from_wire(start.get("process"), "start.process"))
    if message.get("data") is not None:
        data = decode_object(message["data"], "data")
        return StreamInputData(ProcessInput.from_wire(data.get("input"), "data.input"))
    if message.get("keepalive") is not None:
        return StreamInputKeepalive()
    raise ProtoJsonError("event: one of start, data or keepalive is required")


@dataclass(frozen=True, slots=True)
class CloseStdinRequest:
    process: ProcessSelector

    def to_wire(self) -> Wire:
        return {"process": self.process.to_wire()}

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> CloseStdinRequest:
        return cls(ProcessSelector.from_wire(message.get("process")))


@dataclass(frozen=True, slots=True)
class SendSignalRequest:
    process: ProcessSelector
    signal: Signal

    def to_wire(self) -> Wire:
        return {"process": self.process.to_wire(), "signal": self.signal.name}

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> SendSignalRequest:
        return cls(
            ProcessSelector.from_wire(message.get("process")),
            decode_enum(message.get("signal"), Signal, "signal"),
        )


@dataclass(frozen=True, slots=True)
class UpdateRequest:
    """`UpdateRequest`: `pty` None means nothing to change."""

    process: ProcessSelector
    pty: PtySize | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"process": self.process.to_wire()}
        if self.pty is not None:
            wire["pty"] = self.pty.to_wire()
        return wire

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> UpdateRequest:
        pty = message.get("pty")
        return cls(
            ProcessSelector.from_wire(message.get("process")),
            None if pty is None else PtySize.from_wire(pty, "pty"),
        )


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One entry of `ListResponse`."""

    config: ProcessConfig
    pid: int
    tag: str | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"config": self.config.to_wire(), "pid": self.pid}
        if self.tag is not None:
            wire["tag"] = self.tag
        return wire


@dataclass(frozen=True, slots=True)
class ListResponse:
    processes: tuple[ProcessInfo, ...] = ()

    def to_wire(self) -> Wire:
        return {"processes": [info.to_wire() for info in self.processes]} if self.processes else {}

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> ListResponse:
        raw = message.get("processes") or []
        if not isinstance(raw, list):
            raise ProtoJsonError("processes: expected a list")
        infos = []
        for index, item in enumerate(raw):
            entry = decode_object(item, f"processes[{index}]")
            tag = entry.get("tag")
            infos.append(
                ProcessInfo(
                    config=ProcessConfig.from_wire(entry.get("config"), "config"),
                    pid=decode_uint32(entry.get("pid"), "pid"),
                    tag=None if tag is None else decode_string(tag, "tag"),
                )
            )
        return cls(tuple(infos))


# --- events of the Start / Connect streams --------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartEvent:
    pid: int


@dataclass(frozen=True, slots=True)
class DataEvent:
    stream: OutputStream
    data: bytes


@dataclass(frozen=True, slots=True)
class EndEvent:
    """How a process ended (§5.5): `exited` is false when a signal ended it."""

    exit_code: int
    exited: bool
    status: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class KeepaliveEvent:
    pass


ProcessEvent = StartEvent | DataEvent | EndEvent | KeepaliveEvent

_DATA_PREFIX = {
    stream: b'{"event":{"data":{"' + stream.value.encode() + b'":"' for stream in OutputStream
}
_DATA_SUFFIX = b'"}}}'
_KEEPALIVE = b'{"event":{"keepalive":{}}}'


def encode_event(event: ProcessEvent) -> bytes:
    """The JSON payload of a `StartResponse`/`ConnectResponse` carrying `event`."""
    if isinstance(event, DataEvent):
        # base64 needs no JSON escaping: build the hot-path message without json.dumps.
        return _DATA_PREFIX[event.stream] + base64.b64encode(event.data) + _DATA_SUFFIX
    if isinstance(event, StartEvent):
        return b'{"event":{"start":{"pid":%d}}}' % event.pid
    if isinstance(event, KeepaliveEvent):
        return _KEEPALIVE
    end: Wire = {}
    if event.exit_code:
        end["exitCode"] = event.exit_code
    if event.exited:
        end["exited"] = True
    if event.status:
        end["status"] = event.status
    if event.error is not None:
        end["error"] = event.error
    return json.dumps({"event": {"end": end}}, separators=(",", ":")).encode()


def decode_event(message: Mapping[str, object]) -> ProcessEvent:
    """Read one `StartResponse`/`ConnectResponse` message."""
    event = decode_object(message.get("event"), "event")
    if event.get("start") is not None:
        start = decode_object(event["start"], "event.start")
        return StartEvent(decode_uint32(start.get("pid"), "event.start.pid"))
    if event.get("data") is not None:
        data = decode_object(event["data"], "event.data")
        for stream in OutputStream:
            if data.get(stream.value) is not None:
                return DataEvent(stream, decode_bytes(data[stream.value], f"data.{stream.value}"))
        raise ProtoJsonError("event.data: no output member is set")
    if event.get("end") is not None:
        end = decode_object(event["end"], "event.end")
        error = end.get("error")
        return EndEvent(
            exit_code=decode_int32(get_field(end, "exitCode", "exit_code"), "event.end.exitCode"),
            exited=decode_bool(end.get("exited"), "event.end.exited"),
            status=decode_string(end.get("status"), "event.end.status"),
            error=None if error is None else decode_string(error, "event.end.error"),
        )
    if event.get("keepalive") is not None:
        return KeepaliveEvent()
    raise ProtoJsonError("event: one of start, data, end or keepalive is required")
