"""`filesystem.Filesystem` messages: ProtoJSON shapes, defaults, timestamps, round trips."""

from __future__ import annotations

import json

import pytest

from corral.protocol.filesystem_messages import (
    EntryInfo,
    EventType,
    FilesystemEvent,
    FileType,
    ListDirRequest,
    MoveRequest,
    PathRequest,
    WatchDirRequest,
    WatcherRequest,
    WatchKeepalive,
    WatchStart,
    decode_watch_message,
    encode_entry,
    encode_list_dir_response,
    encode_watch_event,
    encode_watch_keepalive,
    encode_watch_start,
    events_response,
    format_timestamp,
    parse_timestamp,
)
from corral.protocol.protojson import ProtoJsonError

SECOND = 1_000_000_000


@pytest.mark.parametrize(
    ("nanoseconds", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1767323045 * SECOND, "2026-01-02T03:04:05Z"),
        (1767323045 * SECOND + 500_000_000, "2026-01-02T03:04:05.500Z"),
        (1767323045 * SECOND + 123_456_000, "2026-01-02T03:04:05.123456Z"),
        (1767323045 * SECOND + 123_456_789, "2026-01-02T03:04:05.123456789Z"),
    ],
)
def test_timestamps_use_go_fraction_widths(nanoseconds: int, text: str) -> None:
    assert format_timestamp(nanoseconds) == text
    assert parse_timestamp(text, "t") == nanoseconds


def test_timestamp_parsing_accepts_offsets_and_rejects_garbage() -> None:
    assert parse_timestamp("2026-01-02T05:04:05.5+02:00", "t") == parse_timestamp(
        "2026-01-02T03:04:05.500Z", "t"
    )
    assert parse_timestamp(None, "t") == 0
    for bad in ("yesterday", "2026-01-02 03:04:05Z", 5, "2026-01-02T03:04:05X"):
        with pytest.raises(ProtoJsonError):
            parse_timestamp(bad, "t")


def test_entry_info_omits_defaults_and_writes_int64_as_string() -> None:
    entry = EntryInfo(
        name="f",
        type=FileType.FILE_TYPE_FILE,
        path="/home/user/f",
        size=5,
        mode=0o644,
        permissions="-rw-r--r--",
        owner="user",
        group="user",
        modified_ns=SECOND,
    )
    assert entry.to_wire() == {
        "name": "f",
        "path": "/home/user/f",
        "type": "FILE_TYPE_FILE",
        "size": "5",
        "mode": 420,
        "permissions": "-rw-r--r--",
        "owner": "user",
        "group": "user",
        "modifiedTime": "1970-01-01T00:00:01Z",
    }
    dangling = EntryInfo("l", FileType.FILE_TYPE_UNSPECIFIED, "/l", symlink_target="/x")
    wire = dangling.to_wire()
    assert "type" not in wire and "size" not in wire and "mode" not in wire
    assert wire["symlinkTarget"] == "/x" and "isSymlink" not in wire
    assert EntryInfo.from_wire(json.loads(json.dumps(wire))) == dangling


def test_entry_info_round_trip_with_metadata_and_proto_names() -> None:
    entry = EntryInfo(
        "d", FileType.FILE_TYPE_DIRECTORY, "/d", 4096, 0o755, "drwxr-xr-x", "a", "b", 7,
        "/t", {"owner": "me"},
    )  # fmt: skip
    assert EntryInfo.from_wire(entry.to_wire()) == entry
    proto_names = {"name": "x", "type": 2, "modified_time": "1970-01-01T00:00:00Z", "size": 3}
    parsed = EntryInfo.from_wire(proto_names)
    assert (parsed.type, parsed.size) == (FileType.FILE_TYPE_DIRECTORY, 3)
    with pytest.raises(ProtoJsonError):
        EntryInfo.from_wire({"type": "FILE_TYPE_BOGUS"})


def test_requests_parse_both_field_name_styles() -> None:
    assert PathRequest.from_wire({}) == PathRequest("")
    assert PathRequest.from_wire({"path": "/x"}).to_wire() == {"path": "/x"}
    assert MoveRequest.from_wire({"source": "a", "destination": "b"}) == MoveRequest("a", "b")
    assert ListDirRequest.from_wire({"path": "p", "depth": "3"}) == ListDirRequest("p", 3)
    assert ListDirRequest("p", 0).to_wire() == {"path": "p"}
    full = WatchDirRequest("p", recursive=True, include_entry=True, allow_network_mounts=True)
    assert WatchDirRequest.from_wire(full.to_wire()) == full
    assert (
        WatchDirRequest.from_wire(
            {"path": "p", "include_entry": True, "allow_network_mounts": True, "recursive": True}
        )
        == full
    )
    assert WatcherRequest.from_wire({"watcher_id": "w"}) == WatcherRequest("w")
    assert WatcherRequest("w").to_wire() == {"watcherId": "w"}
    with pytest.raises(ProtoJsonError):
        ListDirRequest.from_wire({"depth": -1})
    with pytest.raises(ProtoJsonError):
        WatchDirRequest.from_wire({"recursive": "yes"})


def test_watch_stream_messages() -> None:
    event = FilesystemEvent("sub/f", EventType.EVENT_TYPE_CHMOD)
    assert json.loads(encode_watch_event(event)) == {
        "filesystem": {"name": "sub/f", "type": "EVENT_TYPE_CHMOD"}
    }
    for payload, expected in (
        (encode_watch_start(), WatchStart()),
        (encode_watch_keepalive(), WatchKeepalive()),
        (encode_watch_event(event), event),
    ):
        assert decode_watch_message(json.loads(payload)) == expected
    with pytest.raises(ProtoJsonError):
        decode_watch_message({})


def test_list_dir_response_is_json_text_of_the_entries() -> None:
    assert encode_list_dir_response([]) == b"{}"
    first = EntryInfo('a\u00e9"', FileType.FILE_TYPE_FILE, '/x/a\u00e9"', 1, 0o600)
    second = EntryInfo("b", FileType.FILE_TYPE_DIRECTORY, "/x/b", metadata={"k": "v"})
    body = encode_list_dir_response([first.to_json(), second.to_json()])
    assert json.loads(body) == {"entries": [first.to_wire(), second.to_wire()]}
    assert json.loads(body)["entries"][0]["name"] == 'a\u00e9"'
    assert encode_entry("n", FileType.FILE_TYPE_UNSPECIFIED, "/n", 0, 0, "", "", "", 0) == (
        '{"name":"n","path":"/n","modifiedTime":"1970-01-01T00:00:00Z"}'
    )


def test_responses_are_empty_messages_when_empty() -> None:
    assert events_response([]) == {}
    event = FilesystemEvent("f", EventType.EVENT_TYPE_CREATE, EntryInfo("f", FileType(1), "/f"))
    assert events_response([event])["events"] == [event.to_wire()]
    assert FilesystemEvent.from_wire(event.to_wire()) == event
