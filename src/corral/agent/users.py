"""OS users of the sandbox, read from `/etc/passwd` and `/etc/group` by hand.

The agent may run with a glibc whose NSS modules are not on the sandbox's filesystem, so the
`pwd`/`grp` modules are not used. The files are re-read only when they change (inode, size
or mtime), so users added inside the sandbox (`useradd`) are seen by the next request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from corral.agent.errors import UnknownUser

__all__ = ["User", "UserDatabase"]


@dataclass(frozen=True, slots=True)
class User:
    """A passwd entry plus the user's groups (primary first, then supplementary)."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str
    groups: tuple[int, ...]


# Used when the image has no passwd entry for root: root always exists for the kernel.
_FALLBACK_ROOT = User(name="root", uid=0, gid=0, home="/root", shell="/bin/sh", groups=(0,))

_Stamp = tuple[int, int, int] | None


def _stamp(path: str) -> _Stamp:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError:
        return []
    return raw.decode("utf-8", "replace").splitlines()


def _parse_passwd(lines: list[str]) -> dict[str, tuple[int, int, str, str]]:
    """name -> (uid, gid, home, shell); the first entry of a name wins, like getpwnam."""
    entries: dict[str, tuple[int, int, str, str]] = {}
    for line in lines:
        if not line or line.startswith(("#", "+", "-")):
            continue
        parts = line.split(":")
        if len(parts) < 7 or not parts[0] or parts[0] in entries:
            continue
        try:
            uid, gid = int(parts[2]), int(parts[3])
        except ValueError:
            continue
        entries[parts[0]] = (uid, gid, parts[5], parts[6])
    return entries


def _parse_group_members(lines: list[str]) -> dict[str, list[int]]:
    """user name -> gids of the groups that list the user as a member."""
    members: dict[str, list[int]] = {}
    for line in lines:
        if not line or line.startswith(("#", "+", "-")):
            continue
        parts = line.split(":")
        if len(parts) < 4:
            continue
        try:
            gid = int(parts[2])
        except ValueError:
            continue
        for member in parts[3].split(","):
            member = member.strip()
            if member:
                members.setdefault(member, []).append(gid)
    return members


class UserDatabase:
    """Looks users up in `<etc_dir>/passwd` and `<etc_dir>/group`."""

    def __init__(self, etc_dir: str = "/etc") -> None:
        self._passwd_path = os.path.join(etc_dir, "passwd")
        self._group_path = os.path.join(etc_dir, "group")
        self._stamps: tuple[_Stamp, _Stamp] | None = None
        self._passwd: dict[str, tuple[int, int, str, str]] = {}
        self._members: dict[str, list[int]] = {}

    def lookup(self, name: str) -> User:
        """The user called `name`; raises `UnknownUser`."""
        self._refresh()
        entry = self._passwd.get(name)
        if entry is None:
            if name == "root":
                return _FALLBACK_ROOT
            raise UnknownUser(name)
        uid, gid, home, shell = entry
        groups = [gid]
        for extra in self._members.get(name, ()):
            if extra not in groups:
                groups.append(extra)
        return User(name=name, uid=uid, gid=gid, home=home, shell=shell, groups=tuple(groups))

    def _refresh(self) -> None:
        stamps = (_stamp(self._passwd_path), _stamp(self._group_path))
        if stamps == self._stamps:
            return
        self._passwd = _parse_passwd(_read_lines(self._passwd_path))
        self._members = _parse_group_members(_read_lines(self._group_path))
        self._stamps = stamps
