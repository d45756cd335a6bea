"""`sbx.files` metadata calls and watchers through the official `e2b` SDK, sync and async.

Covers Stat (`exists`, `get_info`), MakeDir, Move (`rename`), ListDir (`list`: depth and
order), Remove, WatchDir (async) and the polled watchers (sync), with the types, modes,
owners, symlink handling and event sequences of protocol doc §6. Files are created with
`commands.run` (uploads are another issue's). The escape tests at the end try `..` and
symlinks through every filesystem RPC and need a real isolation boundary.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from e2b import (
    AsyncSandbox,
    FileType,
    InvalidArgumentException,
    NotFoundException,
    SandboxException,
)
from e2b.sandbox.filesystem.watch_handle import FilesystemEventType

# They rely on the base template (user `user`, HOME /home/user) and several act as the
# sandbox's root on system paths: never on the host, so not with the fake runtime.
pytestmark = [pytest.mark.usefixtures("corral_server"), pytest.mark.requires_isolation]

HOME = "/home/user"


def fresh_dir(sbx: Any, *setup: str) -> str:
    """A new empty directory under HOME (owned by `user`), after running `setup` in it."""
    path = f"{HOME}/fs-{uuid.uuid4().hex[:10]}"
    script = " && ".join([f"mkdir -p {path}", f"cd {path}", *setup])
    sbx.commands.run(script)
    return path


def stat_line(sbx: Any, path: str, user: str = "user") -> str:
    """`owner:group octal-mode type` as the sandbox itself sees `path`."""
    return str(sbx.commands.run(f"stat -c '%U:%G %a %F' '{path}'", user=user).stdout.strip())


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# --- Stat -------------------------------------------------------------------------------------


def test_get_info_of_a_file_matches_the_sandbox(shared_sandbox: Any) -> None:
    base = fresh_dir(shared_sandbox, "printf hello > f.txt")
    before = datetime.datetime.now(datetime.UTC)
    info = shared_sandbox.files.get_info(f"{base}/f.txt")
    assert info.name == "f.txt"
    assert info.path == f"{base}/f.txt"
    assert info.type == FileType.FILE
    assert info.size == 5
    assert info.mode == 0o644
    assert info.permissions == "-rw-r--r--"
    assert (info.owner, info.group) == ("user", "user")
    assert info.symlink_target is None
    assert abs((before - info.modified_time).total_seconds()) < 120
    assert shared_sandbox.files.exists(f"{base}/f.txt") is True
    assert shared_sandbox.files.exists(f"{base}/missing") is False
    with pytest.raises(NotFoundException):
        shared_sandbox.files.get_info(f"{base}/missing")


def test_get_info_of_directories_and_root_owned_files(shared_sandbox: Any) -> None:
    info = shared_sandbox.files.get_info(HOME)
    assert (info.type, info.mode, info.permissions) == (FileType.DIR, 0o755, "drwxr-xr-x")
    assert info.name == "user" and info.owner == "user"
    tmp = shared_sandbox.files.get_info("/tmp")
    assert tmp.permissions == "dtrwxrwxrwx" and tmp.mode == 0o777  # Go's FileMode string
    passwd = shared_sandbox.files.get_info("/etc/passwd")
    assert (passwd.owner, passwd.group, passwd.type) == ("root", "root", FileType.FILE)


def test_symlinks_report_their_target(shared_sandbox: Any) -> None:
    base = fresh_dir(
        shared_sandbox,
        "printf abc > target",
        "chmod 600 target",
        "mkdir dir",
        "ln -s target to-file",
        "ln -s dir to-dir",
        "ln -s nowhere dangling",
    )
    to_file = shared_sandbox.files.get_info(f"{base}/to-file")
    assert to_file.type == FileType.FILE  # the target's type (envd 0.6.13, isSymlink absent)
    assert to_file.symlink_target == f"{base}/target"
    assert to_file.permissions == "Lrwxrwxrwx"
    assert to_file.mode == 0o600  # the target's permission bits
    assert to_file.size == len("target")  # lstat size: the link itself
    to_dir = shared_sandbox.files.get_info(f"{base}/to-dir")
    assert to_dir.type == FileType.DIR and to_dir.symlink_target == f"{base}/dir"
    dangling = shared_sandbox.files.get_info(f"{base}/dangling")
    assert dangling.symlink_target == f"{base}/nowhere"
    assert dangling.type not in (FileType.FILE, FileType.DIR)
    # the SDK drops entries of unknown type from listings
    names = [entry.name for entry in shared_sandbox.files.list(base)]
    assert names == ["dir", "target", "to-dir", "to-file"]


# --- MakeDir ----------------------------------------------------------------------------------


def test_make_dir_creates_parents_owned_by_the_user(shared_sandbox: Any) -> None:
    base = fresh_dir(shared_sandbox)
    assert shared_sandbox.files.make_dir(f"{base}/a/b/c") is True
    for path in (f"{base}/a", f"{base}/a/b", f"{base}/a/b/c"):
        assert stat_line(shared_sandbox, path) == "user:user 755 directory"
    assert shared_sandbox.files.make_dir(f"{base}/a/b/c") is False  # already_exists
    shared_sandbox.commands.run(f"touch {base}/file")
    with pytest.raises(InvalidArgumentException):
        shared_sandbox.files.make_dir(f"{base}/file")
    with pytest.raises(InvalidArgumentException):
        shared_sandbox.files.make_dir(f"{base}/file/below")


def test_make_dir_as_root_and_relative_paths(shared_sandbox: Any) -> None:
    name = f"rel-{uuid.uuid4().hex[:8]}"
    assert shared_sandbox.files.make_dir(f"{name}/x") is True  # relative: under HOME
    assert stat_line(shared_sandbox, f"{HOME}/{name}/x") == "user:user 755 directory"
    assert shared_sandbox.files.make_dir(f"~/{name}/y") is True
    assert shared_sandbox.files.exists(f"{HOME}/{name}/y")
    assert shared_sandbox.files.make_dir(f"/tmp/{name}/z", user="root") is True
    assert stat_line(shared_sandbox, f"/tmp/{name}/z", user="root") == "root:root 755 directory"
    shared_sandbox.commands.run(f"rm -rf {HOME}/{name}")


# --- ListDir ----------------------------------------------------------------------------------


LAYOUT = (
    "touch file1.txt",
    "mkdir -p subdir1/subdir1_1 subdir1/subdir1_2 subdir2/subdir2_1 subdir2/subdir2_2",
    "touch subdir1/subdir1_1/deep.txt",
)


def test_list_is_depth_first_in_lexical_order(shared_sandbox: Any) -> None:
    base = fresh_dir(shared_sandbox, *LAYOUT)
    depth1 = [e.name for e in shared_sandbox.files.list(base)]
    assert depth1 == ["file1.txt", "subdir1", "subdir2"]
    depth2 = [e.path[len(base) + 1 :] for e in shared_sandbox.files.list(base, depth=2)]
    assert depth2 == [
        "file1.txt",
        "subdir1",
        "subdir1/subdir1_1",
        "subdir1/subdir1_2",
        "subdir2",
        "subdir2/subdir2_1",
        "subdir2/subdir2_2",
    ]
    depth3 = [e.path[len(base) + 1 :] for e in shared_sandbox.files.list(base, depth=3)]
    assert depth3[:3] == ["file1.txt", "subdir1", "subdir1/subdir1_1"]
    assert depth3[3] == "subdir1/subdir1_1/deep.txt"
    entry = shared_sandbox.files.list(base)[0]
    assert (entry.type, entry.owner, entry.mode) == (FileType.FILE, "user", 0o644)


def test_list_sorts_by_bytes_and_never_follows_symlinks(shared_sandbox: Any) -> None:
    base = fresh_dir(shared_sandbox, "touch B a _ Z", "mkdir real", "touch real/inside")
    alias = f"{HOME}/l-{base[-10:]}"
    shared_sandbox.commands.run(f"ln -s {base}/real {base}/link && ln -s {base} {alias}")
    names = [e.path[len(base) + 1 :] for e in shared_sandbox.files.list(base, depth=2)]
    assert names == ["B", "Z", "_", "a", "link", "real", "real/inside"]
    # a symlink as the listed path itself is resolved, and paths stay under the request
    via_link = shared_sandbox.files.list(alias)
    assert via_link[0].path == f"{alias}/B"


def test_list_errors(shared_sandbox: Any) -> None:
    base = fresh_dir(shared_sandbox, "touch file")
    with pytest.raises(NotFoundException):
        shared_sandbox.files.list(f"{base}/missing")
    with pytest.raises(InvalidArgumentException):
        shared_sandbox.files.list(f"{base}/file")
    with pytest.raises(InvalidArgumentException):
        shared_sandbox.files.list(base, depth=0)  # the SDK refuses depth < 1 itself


# --- Move and Remove ----------------------------------------------------------------------------


def test_rename_moves_and_creates_destination_parents(shared_sandbox: Any) -> None:
    base = fresh_dir(shared_sandbox, "printf 12 > src", "mkdir tree", "touch tree/leaf")
    info = shared_sandbox.files.rename(f"{base}/src", f"{base}/new/parent/dst")
    assert (info.name, info.path, info.size, info.type) == (
        "dst",
        f"{base}/new/parent/dst",
        2,
        FileType.FILE,
    )
    assert stat_line(shared_sandbox, f"{base}/new/parent") == "user:user 755 directory"
    assert not shared_sandbox.files.exists(f"{base}/src")
    moved = shared_sandbox.files.rename(f"{base}/tree", f"{base}/tree2")
    assert moved.type == FileType.DIR
    assert shared_sandbox.files.exists(f"{base}/tree2/leaf")
    with pytest.raises(NotFoundException):
        shared_sandbox.files.rename(f"{base}/missing", f"{base}/x")


def test_rename_of_a_template_directory_works_across_overlay_layers(shared_sandbox: Any) -> None:
    """A directory of a lower layer cannot be renamed on this overlay (EXDEV): it is copied."""
    target = f"/opt/moved-{uuid.uuid4().hex[:8]}"
    shared_sandbox.commands.run("mkdir -p /opt/ && cp -a /etc/apt /opt/apt-copy", user="root")
    info = shared_sandbox.files.rename("/etc/apt", target, user="root")
    try:
        assert info.type == FileType.DIR
        assert not shared_sandbox.files.exists("/etc/apt")
        listing = shared_sandbox.commands.run(f"cd {target} && find . | sort", user="root")
        expected = shared_sandbox.commands.run("cd /opt/apt-copy && find . | sort", user="root")
        assert listing.stdout == expected.stdout
    finally:
        shared_sandbox.files.rename(target, "/etc/apt", user="root")


def test_remove_is_recursive_and_ignores_missing_paths(shared_sandbox: Any) -> None:
    base = fresh_dir(shared_sandbox, "mkdir -p d/e/f", "touch d/e/f/g file", "mkdir keep")
    shared_sandbox.commands.run(f"touch {base}/keep/precious && ln -s {base}/keep {base}/link")
    shared_sandbox.files.remove(f"{base}/link")  # the link, not what it points to
    assert shared_sandbox.files.exists(f"{base}/keep/precious")
    shared_sandbox.files.remove(f"{base}/d")
    shared_sandbox.files.remove(f"{base}/file")
    assert [e.name for e in shared_sandbox.files.list(base)] == ["keep"]
    shared_sandbox.files.remove(f"{base}/never-existed")  # no error


# --- watchers (sync SDK: CreateWatcher / GetWatcherEvents / RemoveWatcher) ----------------------


def _collect(handle: Any, count: int) -> list[Any]:
    events: list[Any] = []

    def enough() -> bool:
        events.extend(handle.get_new_events())
        return len(events) >= count

    wait_for(enough)
    time.sleep(0.2)
    events.extend(handle.get_new_events())  # anything beyond `count` would show here
    return events


def test_sync_watch_reports_create_chmod_write_remove_rename(shared_sandbox: Any) -> None:
    base = fresh_dir(shared_sandbox)
    handle = shared_sandbox.files.watch_dir(base)
    try:
        # the upload sequence of envd: create, change ownership (CHMOD), write
        shared_sandbox.commands.run(f"cd {base} && : > f && chmod 644 f && printf hi >> f")
        events = _collect(handle, 3)
        assert [(e.name, e.type) for e in events] == [
            ("f", FilesystemEventType.CREATE),
            ("f", FilesystemEventType.CHMOD),
            ("f", FilesystemEventType.WRITE),
        ]
        shared_sandbox.commands.run(f"cd {base} && mv f g && rm g")
        events = _collect(handle, 3)
        assert [(e.name, e.type) for e in events] == [
            ("f", FilesystemEventType.RENAME),
            ("g", FilesystemEventType.CREATE),
            ("g", FilesystemEventType.REMOVE),
        ]
    finally:
        handle.stop()
    with pytest.raises(SandboxException):
        handle.get_new_events()


def test_sdk_write_of_a_new_file_is_exactly_create_chmod_write(shared_sandbox: Any) -> None:
    """§6.3: clients count these events (the upload path is `/files`, this is the watcher)."""
    base = fresh_dir(shared_sandbox)
    handle = shared_sandbox.files.watch_dir(base)
    try:
        shared_sandbox.files.write(f"{base}/new.txt", "hello")
        events = _collect(handle, 3)
        assert [(e.name, e.type) for e in events] == [
            ("new.txt", FilesystemEventType.CREATE),
            ("new.txt", FilesystemEventType.CHMOD),
            ("new.txt", FilesystemEventType.WRITE),
        ]
    finally:
        handle.stop()


def test_sync_recursive_watch_follows_new_subdirectories(shared_sandbox: Any) -> None:
    base = fresh_dir(shared_sandbox, "mkdir -p old/deeper")
    flat = shared_sandbox.files.watch_dir(base)
    deep = shared_sandbox.files.watch_dir(base, recursive=True)
    try:
        shared_sandbox.commands.run(f"cd {base} && touch old/deeper/a")
        shared_sandbox.commands.run(f"cd {base} && mkdir new")
        wait_for(lambda: shared_sandbox.files.exists(f"{base}/new"))
        time.sleep(0.2)  # the watch on `new` is added when its CREATE is read
        shared_sandbox.commands.run(f"cd {base} && printf x > new/b")
        names = {(e.name, e.type) for e in _collect(deep, 4)}
        assert ("old/deeper/a", FilesystemEventType.CREATE) in names
        assert ("new", FilesystemEventType.CREATE) in names
        assert ("new/b", FilesystemEventType.CREATE) in names
        assert ("new/b", FilesystemEventType.WRITE) in names
        assert {(e.name, e.type) for e in flat.get_new_events()} == {
            ("new", FilesystemEventType.CREATE)
        }
    finally:
        flat.stop()
        deep.stop()


def test_watch_errors(shared_sandbox: Any) -> None:
    base = fresh_dir(shared_sandbox, "touch file")
    with pytest.raises(NotFoundException):
        shared_sandbox.files.watch_dir(f"{base}/missing")
    with pytest.raises(InvalidArgumentException):
        shared_sandbox.files.watch_dir(f"{base}/file")


def test_sync_watch_with_entries(shared_sandbox: Any) -> None:
    base = fresh_dir(shared_sandbox)
    handle = shared_sandbox.files.watch_dir(base, include_entry=True)
    try:
        shared_sandbox.commands.run(f"printf abc > {base}/e && rm -f {base}/none")
        events = _collect(handle, 2)
        create = events[0]
        assert create.type == FilesystemEventType.CREATE
        assert create.entry is not None and create.entry.path == f"{base}/e"
        assert create.entry.owner == "user"
    finally:
        handle.stop()


# --- async SDK --------------------------------------------------------------------------------


@pytest.fixture
def async_sandbox(corral_server: Any) -> Iterator[Callable[[], Any]]:
    made: list[Any] = []

    async def make() -> Any:
        sbx = await AsyncSandbox.create(timeout=120)
        made.append(sbx)
        return sbx

    yield make
    for sbx in made:
        try:
            asyncio.run(sbx.kill())
        except Exception:
            pass


async def test_async_metadata_calls(async_sandbox: Callable[[], Any]) -> None:
    sbx = await async_sandbox()
    base = f"{HOME}/async-{uuid.uuid4().hex[:8]}"
    assert await sbx.files.make_dir(f"{base}/sub/deeper") is True
    assert await sbx.files.make_dir(f"{base}/sub") is False
    await sbx.commands.run(f"printf 1234 > {base}/sub/file")
    info = await sbx.files.get_info(f"{base}/sub/file")
    assert (info.size, info.owner, info.mode, info.type) == (4, "user", 0o644, FileType.FILE)
    assert await sbx.files.exists(f"{base}/sub/file")
    listing = [e.path[len(base) + 1 :] for e in await sbx.files.list(base, depth=3)]
    assert listing == ["sub", "sub/deeper", "sub/file"]
    moved = await sbx.files.rename(f"{base}/sub/file", f"{base}/other/file")
    assert moved.path == f"{base}/other/file"
    await sbx.files.remove(f"{base}/sub")
    assert not await sbx.files.exists(f"{base}/sub")
    with pytest.raises(NotFoundException):
        await sbx.files.get_info(f"{base}/sub")
    with pytest.raises(InvalidArgumentException):
        await sbx.files.list(f"{base}/other/file")


async def test_async_watch_dir_streams_events(async_sandbox: Callable[[], Any]) -> None:
    sbx = await async_sandbox()
    base = f"{HOME}/awatch-{uuid.uuid4().hex[:8]}"
    await sbx.files.make_dir(f"{base}/sub")
    events: list[Any] = []
    exits: list[Any] = []
    handle = await sbx.files.watch_dir(
        base, on_event=events.append, on_exit=exits.append, recursive=True, include_entry=True
    )
    await sbx.commands.run(f"cd {base} && : > f && chmod 644 f && printf hi >> f")
    await sbx.commands.run(f"cd {base} && printf x > sub/deep && rm f")
    for _ in range(200):
        if len(events) >= 6:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    await handle.stop()
    assert [(e.name, e.type) for e in events] == [
        ("f", FilesystemEventType.CREATE),
        ("f", FilesystemEventType.CHMOD),
        ("f", FilesystemEventType.WRITE),
        ("sub/deep", FilesystemEventType.CREATE),
        ("sub/deep", FilesystemEventType.WRITE),
        ("f", FilesystemEventType.REMOVE),
    ]
    assert events[0].entry is not None and events[0].entry.name == "f"
    assert events[-1].entry is None  # no entry for REMOVE
    with pytest.raises(NotFoundException):
        await sbx.files.watch_dir(f"{base}/missing", on_event=events.append)


# --- escapes: `..` and symlinks through every RPC ------------------------------------------------


@pytest.fixture
def host_marker() -> Iterator[str]:
    """A host directory holding a file: nothing in a sandbox may see or touch either."""
    directory = tempfile.mkdtemp(prefix="corral-h1-host-")
    with open(os.path.join(directory, "secret"), "w") as handle:
        handle.write("host only\n")
    try:
        yield directory
    finally:
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


def test_dotdot_stays_inside_the_sandbox(shared_sandbox: Any, host_marker: str) -> None:
    up = "../" * 12
    secret = f"{host_marker}/secret"
    files = shared_sandbox.files
    # Stat / ListDir: `..` past the root is the sandbox's root
    assert files.exists(f"{up}{secret[1:]}") is False
    assert files.exists(f"/{up}{secret[1:]}") is False
    root_names = sorted(e.name for e in files.list(up))
    assert root_names == sorted(e.name for e in files.list("/"))
    hostname = files.get_info(f"{up}etc/hostname")
    inside = shared_sandbox.commands.run("stat -c %s /etc/hostname").stdout.strip()
    assert hostname.path == "/etc/hostname" and str(hostname.size) == inside
    with pytest.raises(NotFoundException):
        files.list(f"{up}{host_marker[1:]}")
    # MakeDir / Move / Remove / watchers never reach the host
    assert files.make_dir(f"{up}{host_marker[1:]}/made") is True
    assert not os.path.exists(f"{host_marker}/made")
    with pytest.raises(NotFoundException):
        files.rename(f"{up}{secret[1:]}", f"{HOME}/stolen")
    files.rename(f"{up}{host_marker[1:]}/made", f"{up}{host_marker[1:]}/renamed")
    assert not os.path.exists(f"{host_marker}/renamed")
    files.remove(f"{up}{secret[1:]}")
    files.remove(f"{up}{host_marker[1:]}")
    assert os.path.exists(secret)
    with pytest.raises(NotFoundException):
        files.watch_dir(f"{up}{host_marker[1:]}")


def test_symlinks_resolve_inside_the_sandbox(shared_sandbox: Any, host_marker: str) -> None:
    base = fresh_dir(
        shared_sandbox,
        "ln -s /etc/shadow shadow",
        f"ln -s {host_marker} hostdir",
        f"ln -s {host_marker}/secret hostfile",
        "ln -s ../../../../../../../etc dots",
    )
    files = shared_sandbox.files
    # Make the sandbox's /etc/shadow differ in size from the host's, then look through a link.
    host_size = os.stat("/etc/shadow").st_size
    grow = "printf '#h1\\n' >> /etc/shadow"
    shared_sandbox.commands.run(grow, user="root")
    inside = shared_sandbox.commands.run("stat -c '%s %a' /etc/shadow", user="root").stdout
    if int(inside.split()[0]) == host_size:
        shared_sandbox.commands.run(grow, user="root")
    size, mode = shared_sandbox.commands.run(
        "stat -c '%s %a' /etc/shadow", user="root"
    ).stdout.split()
    shadow = files.get_info(f"{base}/shadow")
    assert shadow.symlink_target == "/etc/shadow" and shadow.type == FileType.FILE
    assert shadow.mode == int(mode, 8)  # the target's bits, as the sandbox sees them
    direct = files.get_info(f"{base}/../../../../../etc/shadow")
    assert direct.size == int(size) != host_size
    # Stat / ListDir / WatchDir / CreateWatcher through links to host paths: dangling
    assert files.get_info(f"{base}/hostfile").type not in (FileType.FILE, FileType.DIR)
    assert files.exists(f"{base}/hostfile") is True  # the link itself
    assert files.exists(f"{base}/hostdir/secret") is False
    with pytest.raises(NotFoundException):
        files.list(f"{base}/hostdir")
    with pytest.raises(NotFoundException):
        files.watch_dir(f"{base}/hostdir")
    # MakeDir / Move / Remove through them stay in the sandbox
    assert files.make_dir(f"{base}/hostdir/made") is False  # like `mkdir -p`: a dangling link
    with pytest.raises(NotFoundException):
        files.rename(f"{base}/hostdir/secret", f"{base}/stolen")
    files.remove(f"{base}/hostdir/secret")
    files.remove(f"{base}/hostfile")
    assert os.path.exists(f"{host_marker}/secret")
    assert files.make_dir(f"{host_marker}/made") is True  # that path inside the sandbox
    assert files.list(f"{base}/hostdir")[0].name == "made"  # the link now resolves there
    assert os.listdir(host_marker) == ["secret"]
    files.rename(f"{base}/hostdir/made", f"{base}/hostdir/moved")
    assert os.listdir(host_marker) == ["secret"]
    files.remove(host_marker)  # the sandbox's copy of that path
    assert os.path.isdir(host_marker)
    # a relative link climbing out of the root ends at the sandbox's /etc
    assert files.get_info(f"{base}/dots").symlink_target == "/etc"
    assert {e.name for e in files.list(f"{base}/dots")} >= {"passwd", "hostname"}
