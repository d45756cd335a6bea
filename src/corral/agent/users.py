"""OS users and groups of the sandbox, read from `/etc/passwd` and `/etc/group` by hand.

The agent may run with a glibc whose NSS modules are not on the sandbox's filesystem, so the
`pwd`/`grp` modules are not used. The files are re-read only when they change (inode, size
or mtime), so users added inside the sandbox (`useradd`) are seen by the next request. One
`UserDatabase` answers both questions the agent asks: who a requested user is (`lookup`)
and what the names of a file's owner and group are (`user_name`/`group_name`, §6.2).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field

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


def _entries(path: str) -> Iterator[tuple[list[str], int]]:
    """The fields and numeric id (third field) of each entry of a passwd- or group-format
    file; comments, NIS lines (`+`/`-`) and lines without a name or a numeric id are skipped."""
    try:
        with open(path, "rb") as handle:
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return
    for line in lines:
        parts = line.split(":")
        if len(parts) < 3 or not parts[0] or parts[0].startswith(("#", "+", "-")):
            continue
        try:
            number = int(parts[2])
        except ValueError:
            continue
        yield parts, number


@dataclass(frozen=True, slots=True)
class _Tables:
    """What one reading of the two files says; replaced whole, never changed."""

    # name -> (uid, gid, home, shell); the first entry of a name wins, like getpwnam.
    passwd: dict[str, tuple[int, int, str, str]] = field(default_factory=dict)
    # user name -> gids of the groups that list the user as a member.
    members: dict[str, list[int]] = field(default_factory=dict)
    # id -> name; the first entry of an id wins, like getpwuid/getgrgid.
    user_names: dict[int, str] = field(default_factory=dict)
    group_names: dict[int, str] = field(default_factory=dict)


def _read_tables(passwd_path: str, group_path: str) -> _Tables:
    tables = _Tables()
    for parts, uid in _entries(passwd_path):
        tables.user_names.setdefault(uid, parts[0])
        if len(parts) < 7 or parts[0] in tables.passwd:
            continue
        try:
            gid = int(parts[3])
        except ValueError:
            continue
        tables.passwd[parts[0]] = (uid, gid, parts[5], parts[6])
    for parts, gid in _entries(group_path):
        tables.group_names.setdefault(gid, parts[0])
        if len(parts) < 4:
            continue
        for member in parts[3].split(","):
            member = member.strip()
            if member:
                tables.members.setdefault(member, []).append(gid)
    return tables


class UserDatabase:
    """Looks users up in `<etc_dir>/passwd` and `<etc_dir>/group`."""

    def __init__(self, etc_dir: str = "/etc") -> None:
        self._passwd_path = os.path.join(etc_dir, "passwd")
        self._group_path = os.path.join(etc_dir, "group")
        self._stamps: tuple[_Stamp, _Stamp] | None = None
        self._tables = _Tables()

    def refresh(self) -> None:
        """Re-read the files if they changed since the last call (`lookup` calls it)."""
        stamps = (_stamp(self._passwd_path), _stamp(self._group_path))
        if stamps == self._stamps:
            return
        self._tables = _read_tables(self._passwd_path, self._group_path)
        self._stamps = stamps

    def lookup(self, name: str) -> User:
        """The user called `name`; raises `UnknownUser`."""
        self.refresh()
        tables = self._tables
        entry = tables.passwd.get(name)
        if entry is None:
            if name == "root":
                return _FALLBACK_ROOT
            raise UnknownUser(name)
        uid, gid, home, shell = entry
        groups = [gid]
        for extra in tables.members.get(name, ()):
            if extra not in groups:
                groups.append(extra)
        return User(name=name, uid=uid, gid=gid, home=home, shell=shell, groups=tuple(groups))

    def user_name(self, uid: int) -> str:
        """The name of user `uid` as of the last refresh, else the number as text."""
        name = self._tables.user_names.get(uid)
        return name if name is not None else str(uid)

    def group_name(self, gid: int) -> str:
        """The name of group `gid` as of the last refresh, else the number as text."""
        name = self._tables.group_names.get(gid)
        return name if name is not None else str(gid)
