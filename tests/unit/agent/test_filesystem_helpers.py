"""Pure pieces of the filesystem service: paths, mode strings, network mounts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from corral.agent.errors import InvalidPath
from corral.agent.filesystem_service._linux import inotify
from corral.agent.filesystem_service.entry_info import permissions_string
from corral.agent.filesystem_service.network_mounts import is_network_mount
from corral.agent.filesystem_service.paths import resolve_path
from corral.agent.users import User

USER = User(name="user", uid=1000, gid=1000, home="/home/user", shell="/bin/sh", groups=(1000,))


@pytest.mark.parametrize(
    ("requested", "resolved"),
    [
        ("/etc/passwd", "/etc/passwd"),
        ("file.txt", "/home/user/file.txt"),
        ("a/../b/./c/", "/home/user/b/c"),
        ("~", "/home/user"),
        ("~/x", "/home/user/x"),
        ("", "/work"),
        ("../../../../etc", "/etc"),
        ("/../../..", "/"),
        ("//double//slash", "/double/slash"),
        ("~user/x", "/home/user/~user/x"),  # only `~` and `~/` are expanded
    ],
)
def test_resolve_path(requested: str, resolved: str) -> None:
    assert resolve_path(requested, USER, "/work") == resolved


def test_resolve_path_without_workdir_and_with_nul() -> None:
    assert resolve_path("", USER, "") == "/home/user"
    with pytest.raises(InvalidPath):
        resolve_path("a\0b", USER, "/work")


@pytest.mark.parametrize(
    ("mode", "text"),
    [
        (stat.S_IFREG | 0o644, "-rw-r--r--"),
        (stat.S_IFDIR | 0o755, "drwxr-xr-x"),
        (stat.S_IFLNK | 0o777, "Lrwxrwxrwx"),
        (stat.S_IFDIR | stat.S_ISVTX | 0o777, "dtrwxrwxrwx"),
        (stat.S_IFREG | stat.S_ISUID | 0o755, "urwxr-xr-x"),
        (stat.S_IFREG | stat.S_ISGID | 0o755, "grwxr-xr-x"),
        (stat.S_IFCHR | 0o666, "Dcrw-rw-rw-"),
        (stat.S_IFBLK | 0o660, "Drw-rw----"),
        (stat.S_IFIFO | 0o600, "prw-------"),
        (stat.S_IFSOCK | 0o777, "Srwxrwxrwx"),
        (stat.S_IFREG, "----------"),
    ],
)
def test_permissions_string_is_go_file_mode_string(mode: int, text: str) -> None:
    assert permissions_string(mode) == text


def _mountinfo(tmp_path: Path, *mounts: tuple[str, str]) -> str:
    lines = [
        f"{index} 1 0:{index} / {point} rw,relatime shared:1 - {fs_type} src rw"
        for index, (point, fs_type) in enumerate(mounts, start=20)
    ]
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_network_mounts_are_found_by_the_longest_mount_point(tmp_path: Path) -> None:
    info = _mountinfo(
        tmp_path,
        ("/", "overlay"),
        ("/mnt/nfs", "nfs4"),
        ("/mnt/nfs/local", "ext4"),
        ("/mnt/fuse\\040dir", "fuse.sshfs"),
        ("/mnt/smb", "cifs"),
    )
    assert not is_network_mount("/home/user", info)
    assert is_network_mount("/mnt/nfs", info)
    assert is_network_mount("/mnt/nfs/a/b", info)
    assert not is_network_mount("/mnt/nfs/local/x", info)
    assert not is_network_mount("/mnt/nfsother", info)
    assert is_network_mount("/mnt/fuse dir/x", info)
    assert is_network_mount("/mnt/smb", info)
    assert not is_network_mount("/x", str(tmp_path / "missing"))


def test_inotify_reports_raw_events(tmp_path: Path) -> None:
    fd = inotify.inotify_open()
    try:
        wd = inotify.add_watch(fd, str(tmp_path), inotify.IN_CREATE | inotify.IN_MODIFY)
        (tmp_path / "new").write_bytes(b"x")
        events = inotify.parse_events(os.read(fd, 4096))
        assert [(e.wd, e.mask, e.name) for e in events] == [
            (wd, inotify.IN_CREATE, b"new"),
            (wd, inotify.IN_MODIFY, b"new"),
        ]
        inotify.remove_watch(fd, wd)
        with pytest.raises(BlockingIOError):
            os.read(fd, 4096)  # only IN_IGNORED would be left; read it, then nothing
            os.read(fd, 4096)
        with pytest.raises(FileNotFoundError):
            inotify.add_watch(fd, str(tmp_path / "missing"), inotify.IN_CREATE)
    finally:
        os.close(fd)
