"""Messages of the envd `filesystem.Filesystem` service in ProtoJSON (protocol doc §6, §10.2).

Requests are parsed with `from_wire` (raising `ProtoJsonError`) and written with `to_wire`;
`WatchDir` stream messages are written with `encode_watch_*` (bytes, ready to be framed as
an envelope) and read with `decode_watch_message`. Default values are omitted on the wire
(`size` 0, `mode` 0, empty `metadata`), `symlinkTarget` appears only when set, `size` is an
int64 JSON string and `modifiedTime` an RFC 3339 timestamp with 0, 3, 6 or 9 fraction digits
(what Go's protojson writes).
"""

from __future__ import annotations

import calendar
import enum
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _quote

from corral.protocol.protojson import (
    ProtoJsonError,
    decode_bool,
    decode_enum,
    decode_int64,
    decode_object,
    decode_string,
    decode_string_map,
    decode_uint32,
)
from corral.protocol.protojson import field as get_field

__all__ = [
    "EntryInfo",
    "EventType",
    "FileType",
    "FilesystemEvent",
    "ListDirRequest",
    "MoveRequest",
    "PathRequest",
    "WatchDirRequest",
    "WatchKeepalive",
    "WatchMessage",
    "WatchStart",
    "WatcherRequest",
    "decode_watch_message",
    "encode_watch_event",
    "encode_watch_keepalive",
    "encode_watch_start",
    "encode_entry",
    "encode_list_dir_response",
    "events_response",
    "format_timestamp",
    "parse_timestamp",
]

Wire = dict[str, object]

_NANOS = 1_000_000_000


class FileType(enum.IntEnum):
    """`filesystem.FileType`; member names are the wire names."""

    FILE_TYPE_UNSPECIFIED = 0
    FILE_TYPE_FILE = 1
    FILE_TYPE_DIRECTORY = 2
    FILE_TYPE_SYMLINK = 3


class EventType(enum.IntEnum):
    """`filesystem.EventType`; member names are the wire names."""

    EVENT_TYPE_UNSPECIFIED = 0
    EVENT_TYPE_CREATE = 1
    EVENT_TYPE_WRITE = 2
    EVENT_TYPE_REMOVE = 3
    EVENT_TYPE_RENAME = 4
    EVENT_TYPE_CHMOD = 5


_SECONDS_TEXT: dict[int, str] = {}  # whole seconds -> "YYYY-MM-DDTHH:MM:SS" (a small cache)
_SECONDS_CACHE_SIZE = 4096


def format_timestamp(nanoseconds: int) -> str:
    """Unix nanoseconds -> `google.protobuf.Timestamp` JSON (`2026-01-02T03:04:05.5Z` style,
    with 0, 3, 6 or 9 fraction digits)."""
    seconds, nanos = divmod(nanoseconds, _NANOS)
    text = _SECONDS_TEXT.get(seconds)
    if text is None:
        if len(_SECONDS_TEXT) >= _SECONDS_CACHE_SIZE:
            _SECONDS_TEXT.clear()
        text = _SECONDS_TEXT[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if nanos == 0:
        return text + "Z"
    if nanos % 1_000_000 == 0:
        return f"{text}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{text}.{nanos // 1000:06d}Z"
    return f"{text}.{nanos:09d}Z"


def parse_timestamp(value: object, name: str) -> int:
    """RFC 3339 (UTC `Z` or a numeric offset) -> unix nanoseconds; absent -> 0."""
    if value is None:
        return 0
    if not isinstance(value, str) or len(value) < 20 or value[10] not in "Tt":
        raise ProtoJsonError(f"{name}: expected an RFC 3339 timestamp")
    try:
        base = time.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")
        rest = value[19:]
        nanos = 0
        if rest.startswith("."):
            digits = len(rest) - len(rest[1:].lstrip("0123456789"))
            fraction = rest[1:digits]
            nanos = int(fraction.ljust(9, "0")[:9]) if fraction else 0
            rest = rest[digits:]
        offset = 0
        if rest not in ("Z", "z"):
            sign = 1 if rest[0] == "+" else -1 if rest[0] == "-" else 0
            hours, minutes = rest[1:].split(":")
            if not sign:
                raise ValueError(rest)
            offset = sign * (int(hours) * 3600 + int(minutes) * 60)
    except (ValueError, IndexError) as exc:
        raise ProtoJsonError(f"{name}: expected an RFC 3339 timestamp") from exc
    return (calendar.timegm(base) - offset) * _NANOS + nanos


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """`EntryInfo` (§6.2). `is_symlink` stays false on purpose (envd 0.6.13 behaviour)."""

    name: str
    type: FileType
    path: str
    size: int = 0
    mode: int = 0
    permissions: str = ""
    owner: str = ""
    group: str = ""
    modified_ns: int = 0
    symlink_target: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    is_symlink: bool = False

    def to_json(self) -> str:
        return encode_entry(
            self.name,
            self.type,
            self.path,
            self.size,
            self.mode,
            self.permissions,
            self.owner,
            self.group,
            self.modified_ns,
            self.symlink_target,
            self.metadata,
            self.is_symlink,
        )

    def to_wire(self) -> Wire:
        value: Wire = json.loads(self.to_json())
        return value

    @classmethod
    def from_wire(cls, value: object, name: str = "entry") -> EntryInfo:
        message = decode_object(value, name)
        target = get_field(message, "symlinkTarget", "symlink_target")
        return cls(
            name=decode_string(message.get("name"), f"{name}.name"),
            type=decode_enum(message.get("type"), FileType, f"{name}.type"),
            path=decode_string(message.get("path"), f"{name}.path"),
            size=decode_int64(message.get("size"), f"{name}.size"),
            mode=decode_uint32(message.get("mode"), f"{name}.mode"),
            permissions=decode_string(message.get("permissions"), f"{name}.permissions"),
            owner=decode_string(message.get("owner"), f"{name}.owner"),
            group=decode_string(message.get("group"), f"{name}.group"),
            modified_ns=parse_timestamp(
                get_field(message, "modifiedTime", "modified_time"), f"{name}.modifiedTime"
            ),
            symlink_target=None if target is None else decode_string(target, f"{name}.target"),
            metadata=decode_string_map(message.get("metadata"), f"{name}.metadata"),
            is_symlink=decode_bool(get_field(message, "isSymlink", "is_symlink"), name),
        )


_Attributes = tuple[FileType, int, str, str, str]
_ATTRIBUTE_TEXT: dict[_Attributes, str] = {}  # few distinct combinations per directory
_ATTRIBUTE_CACHE_SIZE = 4096


def _attribute_text(key: _Attributes) -> str:
    """`,"type":…,"mode":…,"permissions":…,"owner":…,"group":…` (defaults left out)."""
    text = _ATTRIBUTE_TEXT.get(key)
    if text is None:
        file_type, mode, permissions, owner, group = key
        parts = []
        if file_type:
            parts.append(f',"type":"{file_type.name}"')
        if mode:
            parts.append(f',"mode":{mode}')
        for json_name, value in (("permissions", permissions), ("owner", owner), ("group", group)):
            if value:
                parts.append(f',"{json_name}":{_quote(value)}')
        if len(_ATTRIBUTE_TEXT) >= _ATTRIBUTE_CACHE_SIZE:
            _ATTRIBUTE_TEXT.clear()
        text = _ATTRIBUTE_TEXT[key] = "".join(parts)
    return text


def encode_entry(
    name: str,
    file_type: FileType,
    path: str,
    size: int,
    mode: int,
    permissions: str,
    owner: str,
    group: str,
    modified_ns: int,
    symlink_target: str | None = None,
    metadata: Mapping[str, str] | None = None,
    is_symlink: bool = False,
) -> str:
    """The ProtoJSON text of one `EntryInfo`, built directly: a `ListDir` of 10,000 entries
    spends most of its time here, so no intermediate dict or dataclass is made, and the
    fields most entries of a directory share are encoded once (key order is free in JSON)."""
    text = (
        f'{{"name":{_quote(name)},"path":{_quote(path)}'
        f"{_attribute_text((file_type, mode, permissions, owner, group))}"
        f',"modifiedTime":"{format_timestamp(modified_ns)}"'
    )
    if size:
        text += f',"size":"{size}"'
    if symlink_target is not None:
        text += f',"symlinkTarget":{_quote(symlink_target)}'
    if metadata:
        text += f',"metadata":{json.dumps(dict(metadata), separators=(",", ":"))}'
    if is_symlink:
        text += ',"isSymlink":true'
    return text + "}"


def encode_list_dir_response(entries: list[str]) -> bytes:
    """`ListDirResponse` from entries encoded with `encode_entry`."""
    if not entries:
        return b"{}"
    return ('{"entries":[' + ",".join(entries) + "]}").encode("ascii")


# --- requests ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PathRequest:
    """`StatRequest`, `MakeDirRequest` and `RemoveRequest`: one `path` field."""

    path: str

    def to_wire(self) -> Wire:
        return {"path": self.path} if self.path else {}

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> PathRequest:
        return cls(decode_string(message.get("path"), "path"))


@dataclass(frozen=True, slots=True)
class MoveRequest:
    source: str
    destination: str

    def to_wire(self) -> Wire:
        return {"source": self.source, "destination": self.destination}

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> MoveRequest:
        return cls(
            decode_string(message.get("source"), "source"),
            decode_string(message.get("destination"), "destination"),
        )


@dataclass(frozen=True, slots=True)
class ListDirRequest:
    path: str
    depth: int = 0

    def to_wire(self) -> Wire:
        wire: Wire = {"path": self.path}
        if self.depth:
            wire["depth"] = self.depth
        return wire

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> ListDirRequest:
        return cls(
            decode_string(message.get("path"), "path"),
            decode_uint32(message.get("depth"), "depth"),
        )


@dataclass(frozen=True, slots=True)
class WatchDirRequest:
    """`WatchDirRequest` and `CreateWatcherRequest` (the same four fields)."""

    path: str
    recursive: bool = False
    include_entry: bool = False
    allow_network_mounts: bool = False

    def to_wire(self) -> Wire:
        wire: Wire = {"path": self.path}
        if self.recursive:
            wire["recursive"] = True
        if self.include_entry:
            wire["includeEntry"] = True
        if self.allow_network_mounts:
            wire["allowNetworkMounts"] = True
        return wire

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> WatchDirRequest:
        return cls(
            path=decode_string(message.get("path"), "path"),
            recursive=decode_bool(message.get("recursive"), "recursive"),
            include_entry=decode_bool(
                get_field(message, "includeEntry", "include_entry"), "includeEntry"
            ),
            allow_network_mounts=decode_bool(
                get_field(message, "allowNetworkMounts", "allow_network_mounts"),
                "allowNetworkMounts",
            ),
        )


@dataclass(frozen=True, slots=True)
class WatcherRequest:
    """`GetWatcherEventsRequest` and `RemoveWatcherRequest`: one `watcherId` field."""

    watcher_id: str

    def to_wire(self) -> Wire:
        return {"watcherId": self.watcher_id}

    @classmethod
    def from_wire(cls, message: Mapping[str, object]) -> WatcherRequest:
        return cls(decode_string(get_field(message, "watcherId", "watcher_id"), "watcherId"))


# --- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FilesystemEvent:
    """`FilesystemEvent`: `name` is relative to the watched directory."""

    name: str
    type: EventType
    entry: EntryInfo | None = None

    def to_wire(self) -> Wire:
        wire: Wire = {"name": self.name, "type": self.type.name}
        if self.entry is not None:
            wire["entry"] = self.entry.to_wire()
        return wire

    @classmethod
    def from_wire(cls, value: object, name: str = "event") -> FilesystemEvent:
        message = decode_object(value, name)
        entry = message.get("entry")
        return cls(
            name=decode_string(message.get("name"), f"{name}.name"),
            type=decode_enum(message.get("type"), EventType, f"{name}.type"),
            entry=None if entry is None else EntryInfo.from_wire(entry, f"{name}.entry"),
        )


def events_response(events: list[FilesystemEvent]) -> Wire:
    """`GetWatcherEventsResponse`."""
    return {"events": [event.to_wire() for event in events]} if events else {}


@dataclass(frozen=True, slots=True)
class WatchStart:
    pass


@dataclass(frozen=True, slots=True)
class WatchKeepalive:
    pass


WatchMessage = WatchStart | FilesystemEvent | WatchKeepalive


def encode_watch_start() -> bytes:
    return b'{"start":{}}'


def encode_watch_keepalive() -> bytes:
    return b'{"keepalive":{}}'


def encode_watch_event(event: FilesystemEvent) -> bytes:
    """The JSON payload of a `WatchDirResponse` carrying `event`."""
    return json.dumps({"filesystem": event.to_wire()}, separators=(",", ":")).encode()


def decode_watch_message(message: Mapping[str, object]) -> WatchMessage:
    """Read one `WatchDirResponse` (a oneof of start, filesystem and keepalive)."""
    if message.get("start") is not None:
        return WatchStart()
    if message.get("filesystem") is not None:
        return FilesystemEvent.from_wire(message["filesystem"], "filesystem")
    if message.get("keepalive") is not None:
        return WatchKeepalive()
    raise ProtoJsonError("event: one of start, filesystem or keepalive is required")
