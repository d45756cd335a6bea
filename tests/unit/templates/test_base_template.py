"""The built `base` template (as `scripts/setup.sh` builds it): what SDK users rely on.

Reads the layers on disk; never builds. Paths are looked up through the layer stack the way
overlayfs would (topmost layer first, whiteouts hide lower files, symlinks followed).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from corral.model import TemplateRef

pytestmark = pytest.mark.uses_built_base


def _whiteout(path: Path) -> bool:
    info = os.lstat(path)
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _find(ref: TemplateRef, path: str, *, follow: bool = True) -> Path | None:
    """The on-disk file that `path` names in the merged template, or None."""
    for _ in range(16):
        relative = path.lstrip("/")
        for layer in reversed(ref.layers):
            candidate = Path(layer) / relative
            if os.path.lexists(candidate):
                if _whiteout(candidate):
                    return None
                break
        else:
            return None
        if not (follow and candidate.is_symlink()):
            return candidate
        target = os.readlink(candidate)
        path = target if target.startswith("/") else os.path.join(os.path.dirname(path), target)
    raise AssertionError(f"symlink loop at {path}")


def test_layers_are_dirs_with_recorded_packages(built_base: TemplateRef) -> None:
    assert built_base.template_id == "base"
    assert (built_base.default_user, built_base.default_workdir) == ("user", "/home/user")
    assert all(Path(layer).is_dir() for layer in built_base.layers)
    bottom = Path(built_base.layers[0])
    info = json.loads(bottom.with_name(f"{bottom.name}.json").read_text())
    assert info["parent"] is None
    assert {"python3", "git", "curl", "sudo", "procps", "attr", "ncurses-bin"} <= set(
        info["packages"]
    )


def test_user_1000_with_home_and_bash(built_base: TemplateRef) -> None:
    passwd = _find(built_base, "/etc/passwd")
    assert passwd is not None
    entries = {line.split(":")[0]: line.split(":") for line in passwd.read_text().splitlines()}
    assert entries["user"][2:4] == ["1000", "1000"]
    assert entries["user"][5:7] == ["/home/user", "/bin/bash"]
    assert entries["root"][2] == "0"
    group = _find(built_base, "/etc/group")
    assert group is not None and "user:x:1000:" in group.read_text()


def test_home_is_owned_by_the_user_on_disk(built_base: TemplateRef) -> None:
    home = _find(built_base, "/home/user")
    assert home is not None and home.is_dir()
    info = os.lstat(home)
    assert (info.st_uid, info.st_gid) == (1000, 1000)
    profile = _find(built_base, "/home/user/.profile")
    assert profile is not None and os.lstat(profile).st_uid == 1000


def test_passwordless_sudo(built_base: TemplateRef) -> None:
    sudoers = _find(built_base, "/etc/sudoers.d/user")
    assert sudoers is not None
    info = os.lstat(sudoers)
    assert stat.S_IMODE(info.st_mode) == 0o440 and info.st_uid == 0
    assert "user ALL=(ALL:ALL) NOPASSWD: ALL" in sudoers.read_text()


@pytest.mark.parametrize(
    "path",
    [
        "/usr/bin/python3",
        "/usr/bin/tput",
        "/usr/bin/setfattr",
        "/usr/bin/curl",
        "/usr/bin/git",
        "/usr/bin/ps",
        "/usr/bin/sudo",
        "/bin/bash",
        "/bin/sh",
        "/usr/bin/env",
        "/usr/bin/sleep",
    ],
)
def test_tools_exist_and_are_executable(built_base: TemplateRef, path: str) -> None:
    found = _find(built_base, path)
    assert found is not None, f"{path} missing from the base template"
    assert found.is_file() and os.lstat(found).st_mode & 0o111


def test_identity_files(built_base: TemplateRef) -> None:
    hostname = _find(built_base, "/etc/hostname")
    assert hostname is not None and hostname.read_text() == "sandbox\n"
    hosts = _find(built_base, "/etc/hosts")
    assert hosts is not None and "127.0.0.1 localhost" in hosts.read_text()
    resolv = _find(built_base, "/etc/resolv.conf", follow=False)
    assert resolv is not None and resolv.is_file() and not resolv.is_symlink()
    assert resolv.stat().st_size == 0
    tmp = _find(built_base, "/tmp")
    assert tmp is not None and stat.S_IMODE(os.lstat(tmp).st_mode) == 0o1777


def test_apt_caches_are_clean(built_base: TemplateRef) -> None:
    lists = _find(built_base, "/var/lib/apt/lists")
    assert lists is not None
    assert {entry.name for entry in lists.iterdir()} <= {"partial", "lock"}
    archives = _find(built_base, "/var/cache/apt/archives")
    assert archives is not None
    assert not list(archives.glob("*.deb"))
    assert _find(built_base, "/var/cache/apt/pkgcache.bin") is None
