"""The `filesystem.Filesystem` RPCs of a standalone agent, spoken raw over its socket.

The agent runs as root on the host with a private passwd (`user` = uid 4242, HOME in a temp
dir), so ownership is checkable; every path the tests touch is under that temp dir.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.protocol.connect import (
    Code,
    ConnectError,
    EnvelopeDecoder,
    encode_envelope,
    error_from_end_stream,
    error_from_unary_body,
)
from corral.protocol.filesystem_messages import (
    FilesystemEvent,
    WatchKeepalive,
    WatchMessage,
    WatchStart,
    decode_watch_message,
)

from .harness import AgentClient, AgentProcess

UID = 4242


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fs-home")


@pytest.fixture(scope="module")
def fs_agent(tmp_path_factory: pytest.TempPathFactory, home: Path) -> Iterator[AgentProcess]:
    workdir = tmp_path_factory.mktemp("fs-agent")
    etc = workdir / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(f"root:x:0:0::/root:/bin/sh\nuser:x:{UID}:{UID}::{home}:/bin/sh\n")
    (etc / "group").write_text(f"root:x:0:\nuser:x:{UID}:\n")
    agent = AgentProcess(workdir, default_user="user", default_workdir=str(home), etc_dir=str(etc))
    yield agent
    assert agent.stop() == []
    assert "Traceback" not in agent.stderr(), agent.stderr()


@pytest.fixture
def client(fs_agent: AgentProcess) -> AgentClient:
    return fs_agent.client


@pytest.fixture
def base(home: Path, request: pytest.FixtureRequest) -> Path:
    path = home / request.node.name[:40]
    path.mkdir()
    return path


def call(client: AgentClient, method: str, body: dict[str, Any], **headers: str) -> Any:
    hdrs = client.headers(**headers)
    hdrs["content-type"] = "application/json"
    response = client.http.post(
        f"/filesystem.Filesystem/{method}", content=json.dumps(body), headers=hdrs
    )
    if response.status_code != 200:
        raise error_from_unary_body(response.status_code, response.content)
    return response.json()


def code_of(client: AgentClient, method: str, body: dict[str, Any], **headers: str) -> Code:
    with pytest.raises(ConnectError) as info:
        call(client, method, body, **headers)
    return info.value.code


# --- Stat, paths, users -------------------------------------------------------------------------


def test_stat_resolves_relative_paths_under_home(client: AgentClient, base: Path) -> None:
    (base / "f").write_text("hello")
    os.chown(base / "f", UID, UID)
    entry = call(client, "Stat", {"path": f"{base.name}/f"})["entry"]
    assert entry["path"] == str(base / "f") and entry["name"] == "f"
    assert (entry["size"], entry["owner"], entry["group"]) == ("5", "user", "user")
    assert call(client, "Stat", {"path": f"~/{base.name}/../{base.name}/f"})["entry"] == entry
    assert call(client, "Stat", {})["entry"]["path"] == str(base.parent)  # the default workdir
    assert code_of(client, "Stat", {"path": "missing"}) == Code.NOT_FOUND
    assert code_of(client, "Stat", {"path": "a\0b"}) == Code.INVALID_ARGUMENT
    assert code_of(client, "Stat", {"path": 5}) == Code.INVALID_ARGUMENT
    assert code_of(client, "Stat", {"path": "f"}, user="nobody-xyz") == Code.UNAUTHENTICATED
    as_root = call(client, "Stat", {"path": "."}, user="root")["entry"]
    assert as_root["path"] == "/root" or as_root["name"]  # root's HOME (may not exist here)


def test_stat_reports_metadata_xattrs(client: AgentClient, base: Path) -> None:
    path = base / "tagged"
    path.write_text("")
    try:
        os.setxattr(path, "user.e2b.owner", b"me")
        os.setxattr(path, "user.other", b"hidden")
    except OSError:
        pytest.skip("no user xattrs on this filesystem")
    entry = call(client, "Stat", {"path": str(path)})["entry"]
    assert entry["metadata"] == {"owner": "me"}
    assert "size" not in entry  # default values are omitted


# --- MakeDir ----------------------------------------------------------------------------------


def test_make_dir_owns_every_created_directory(client: AgentClient, base: Path) -> None:
    entry = call(client, "MakeDir", {"path": str(base / "a/b")})["entry"]
    assert entry["type"] == "FILE_TYPE_DIRECTORY" and entry["owner"] == "user"
    for directory in (base / "a", base / "a/b"):
        info = os.stat(directory)
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (UID, UID, 0o755)
    assert code_of(client, "MakeDir", {"path": str(base / "a/b")}) == Code.ALREADY_EXISTS
    (base / "file").write_text("")
    assert code_of(client, "MakeDir", {"path": str(base / "file")}) == Code.INVALID_ARGUMENT
    assert code_of(client, "MakeDir", {"path": str(base / "file/x")}) == Code.INVALID_ARGUMENT
    call(client, "MakeDir", {"path": str(base / "r")}, user="root")
    assert os.stat(base / "r").st_uid == 0


# --- ListDir ----------------------------------------------------------------------------------


def test_list_dir_order_depth_and_symlinks(client: AgentClient, base: Path) -> None:
    for name in ("b/y", "b/x/deep", "a"):
        (base / name).mkdir(parents=True)
    (base / "B.txt").write_text("1")
    (base / "a/z").write_text("")
    os.symlink(base / "b", base / "c-link")
    os.symlink(base, base.parent / f"{base.name}-alias")
    listing = call(client, "ListDir", {"path": str(base), "depth": 2})["entries"]
    assert [e["path"][len(str(base)) + 1 :] for e in listing] == [
        "B.txt",
        "a",
        "a/z",
        "b",
        "b/x",
        "b/y",
        "c-link",  # never followed
    ]
    assert listing[-1]["type"] == "FILE_TYPE_DIRECTORY"
    assert listing[-1]["symlinkTarget"] == str(base / "b")
    shallow = call(client, "ListDir", {"path": str(base)})["entries"]  # depth 0 -> 1
    assert [e["name"] for e in shallow] == ["B.txt", "a", "b", "c-link"]
    via_alias = call(client, "ListDir", {"path": f"{base}-alias", "depth": 1})["entries"]
    assert via_alias[0]["path"] == f"{base}-alias/B.txt"
    # `..` is resolved lexically, before the filesystem is asked (like Go's filepath.Clean)
    assert call(client, "ListDir", {"path": str(base / "a/z/..")})["entries"][0]["name"] == "z"
    (base / "empty").mkdir()
    assert call(client, "ListDir", {"path": str(base / "empty")}) == {}
    assert code_of(client, "ListDir", {"path": str(base / "nope")}) == Code.NOT_FOUND
    assert code_of(client, "ListDir", {"path": str(base / "B.txt")}) == Code.INVALID_ARGUMENT


def test_list_dir_sorts_names_by_their_bytes(client: AgentClient, base: Path) -> None:
    names = [b"\xff", "\U0001f600".encode(), "\u00e9".encode(), b"a", b"Z", b"_"]
    for name in names:
        open(os.path.join(os.fsencode(base), name), "wb").close()
    listed = call(client, "ListDir", {"path": str(base)})["entries"]
    assert [os.fsencode(e["name"]) for e in listed] == sorted(names)
    assert call(client, "Stat", {"path": str(base / "\u00e9")})["entry"]["name"] == "\u00e9"


def test_list_dir_of_ten_thousand_entries_is_complete(client: AgentClient, base: Path) -> None:
    for index in range(10_000):
        (base / f"f{index:05d}").touch()
    entries = call(client, "ListDir", {"path": str(base)})["entries"]
    assert [e["name"] for e in entries] == [f"f{index:05d}" for index in range(10_000)]


# --- Move and Remove ----------------------------------------------------------------------------


def test_move_creates_parents_and_replaces_files(client: AgentClient, base: Path) -> None:
    (base / "src").write_text("new")
    (base / "old").write_text("old")
    entry = call(client, "Move", {"source": str(base / "src"), "destination": str(base / "p/q")})
    assert entry["entry"]["path"] == str(base / "p/q") and entry["entry"]["size"] == "3"
    assert os.stat(base / "p").st_uid == UID
    call(client, "Move", {"source": str(base / "p/q"), "destination": str(base / "old")})
    assert (base / "old").read_text() == "new"
    missing = {"source": str(base / "gone"), "destination": str(base / "x")}
    assert code_of(client, "Move", missing) == Code.NOT_FOUND
    (base / "full").mkdir()
    (base / "full/f").write_text("")
    (base / "dir").mkdir()
    into_full = {"source": str(base / "dir"), "destination": str(base / "full")}
    assert code_of(client, "Move", into_full) == Code.ALREADY_EXISTS


def test_remove_is_recursive_and_never_follows_links(client: AgentClient, base: Path) -> None:
    (base / "keep").mkdir()
    (base / "keep/precious").write_text("")
    (base / "tree/deep").mkdir(parents=True)
    os.symlink(base / "keep", base / "tree/link")
    os.symlink(base / "keep", base / "link")
    assert call(client, "Remove", {"path": str(base / "link")}) == {}
    assert call(client, "Remove", {"path": str(base / "tree")}) == {}
    assert call(client, "Remove", {"path": str(base / "tree")}) == {}  # missing: fine
    assert sorted(os.listdir(base)) == ["keep"]
    assert (base / "keep/precious").exists()


# --- watchers -----------------------------------------------------------------------------------


class WatchReader:
    """Reads a `WatchDir` response stream message by message."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.error: ConnectError | None = None
        self.ended = False
        self._decoder = EnvelopeDecoder(1 << 20)
        self._chunks = response.iter_raw()
        self._queue: list[Any] = []

    def next(self) -> WatchMessage | None:
        while not self._queue:
            try:
                self._queue.extend(self._decoder.feed(next(self._chunks)))
            except StopIteration:
                return None
        envelope = self._queue.pop(0)
        if envelope.is_end_stream:
            self.ended = True
            self.error = error_from_end_stream(envelope.payload)
            return None
        return decode_watch_message(json.loads(envelope.payload))

    def events(self, count: int) -> list[FilesystemEvent]:
        found: list[FilesystemEvent] = []
        while len(found) < count:
            message = self.next()
            assert message is not None, (found, self.error)
            if isinstance(message, FilesystemEvent):
                found.append(message)
        return found


def watch(client: AgentClient, body: dict[str, Any], **headers: str) -> Any:
    payload = encode_envelope(json.dumps(body).encode())
    return client.open_stream("/filesystem.Filesystem/WatchDir", [payload], **headers)


def pairs(events: list[FilesystemEvent]) -> list[tuple[str, str]]:
    return [(e.name, e.type.name.removeprefix("EVENT_TYPE_")) for e in events]


def test_watch_dir_streams_fsnotify_events(client: AgentClient, base: Path) -> None:
    for response in watch(client, {"path": str(base)}):
        assert response.headers["content-type"] == "application/connect+json"
        reader = WatchReader(response)
        assert reader.next() == WatchStart()
        with open(base / "f", "w") as handle:  # create, then write
            handle.write("x")
        os.chown(base / "f", UID, UID)
        os.rename(base / "f", base / "g")
        (base / "g").unlink()
        (base / "d").mkdir()
        (base / "d/inner").write_text("not reported: not recursive")
        os.rmdir(base / "nothing") if (base / "nothing").exists() else None
        assert pairs(reader.events(7)) == [
            ("f", "CREATE"),
            ("f", "WRITE"),
            ("f", "CHMOD"),
            ("f", "RENAME"),
            ("g", "CREATE"),
            ("g", "REMOVE"),
            ("d", "CREATE"),
        ]
        os.chmod(base, 0o700)
        assert pairs(reader.events(1)) == [(".", "CHMOD")]


def test_recursive_watch_follows_the_tree(client: AgentClient, base: Path) -> None:
    (base / "old/deeper").mkdir(parents=True)
    for response in watch(client, {"path": str(base), "recursive": True, "includeEntry": True}):
        reader = WatchReader(response)
        assert reader.next() == WatchStart()
        (base / "old/deeper/a").write_text("")
        created = reader.events(1)[0]
        assert pairs([created]) == [("old/deeper/a", "CREATE")]
        assert created.entry is not None and created.entry.path == str(base / "old/deeper/a")
        (base / "new").mkdir()
        assert pairs(reader.events(1)) == [("new", "CREATE")]
        (base / "new/b").mkdir()  # watched once the CREATE of `new` was read
        assert pairs(reader.events(1)) == [("new/b", "CREATE")]
        os.rename(base / "new", base / "renamed")
        assert pairs(reader.events(2)) == [("new", "RENAME"), ("renamed", "CREATE")]
        (base / "renamed/b/c").write_text("")
        event = reader.events(1)[0]
        assert pairs([event]) == [("renamed/b/c", "CREATE")]
        os.unlink(base / "renamed/b/c")
        removed = reader.events(1)[0]
        assert pairs([removed]) == [("renamed/b/c", "REMOVE")] and removed.entry is None


def test_watch_dir_errors_keepalives_and_deadline(client: AgentClient, base: Path) -> None:
    (base / "file").write_text("")
    for body, code in (
        ({"path": str(base / "missing")}, Code.NOT_FOUND),
        ({"path": str(base / "file")}, Code.INVALID_ARGUMENT),
    ):
        for response in watch(client, body):
            reader = WatchReader(response)
            assert reader.next() is None and reader.error is not None
            assert reader.error.code == code
    options = {"connect_timeout_ms": "600", "keepalive_ping_interval": "0.1"}
    for response in watch(client, {"path": str(base)}, **options):
        reader = WatchReader(response)
        messages = []
        while (message := reader.next()) is not None:
            messages.append(message)
        assert messages[0] == WatchStart()
        assert any(isinstance(m, WatchKeepalive) for m in messages)
        assert reader.error is not None and reader.error.code == Code.DEADLINE_EXCEEDED


def test_polled_watchers(client: AgentClient, base: Path) -> None:
    watcher = call(client, "CreateWatcher", {"path": str(base), "includeEntry": True})
    watcher_id = watcher["watcherId"]
    assert call(client, "GetWatcherEvents", watcher) == {}
    (base / "f").write_text("x")
    os.chmod(base / "f", 0o600)
    deadline = time.monotonic() + 5
    events: list[Any] = []
    while len(events) < 3 and time.monotonic() < deadline:
        events += call(client, "GetWatcherEvents", {"watcherId": watcher_id}).get("events", [])
    assert [(e["name"], e["type"]) for e in events] == [
        ("f", "EVENT_TYPE_CREATE"),
        ("f", "EVENT_TYPE_WRITE"),
        ("f", "EVENT_TYPE_CHMOD"),
    ]
    assert events[2]["entry"]["mode"] == 0o600
    assert call(client, "GetWatcherEvents", watcher) == {}  # cleared
    assert call(client, "RemoveWatcher", watcher) == {}
    assert code_of(client, "GetWatcherEvents", watcher) == Code.NOT_FOUND
    assert code_of(client, "RemoveWatcher", watcher) == Code.NOT_FOUND
    missing = {"path": str(base / "missing")}
    assert code_of(client, "CreateWatcher", missing) == Code.NOT_FOUND


def test_watchers_release_their_descriptors(fs_agent: AgentProcess, base: Path) -> None:
    client = fs_agent.client

    def inotify_fds() -> int:
        fd_dir = f"/proc/{fs_agent.process.pid}/fd"
        count = 0
        for fd in os.listdir(fd_dir):
            try:
                count += os.readlink(f"{fd_dir}/{fd}") == "anon_inode:inotify"
            except FileNotFoundError:
                pass  # closed meanwhile
        return count

    before = inotify_fds()
    watcher = call(client, "CreateWatcher", {"path": str(base), "recursive": True})
    for response in watch(client, {"path": str(base)}):
        reader = WatchReader(response)  # kept: collecting it would close the stream
        assert reader.next() == WatchStart()
        assert inotify_fds() == before + 2
    call(client, "RemoveWatcher", watcher)
    deadline = time.monotonic() + 5
    while inotify_fds() != before and time.monotonic() < deadline:
        time.sleep(0.02)  # the stream's watch closes once the agent sees the disconnect
    assert inotify_fds() == before
