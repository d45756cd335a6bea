"""User and group names of file owners, from the sandbox's `/etc/passwd` and `/etc/group`.

`EntryInfo.owner`/`group` are names (the numeric id when no entry exists, §6.2). The files
are re-read only when they change (inode, size or mtime), checked once per request with
`refresh()`, so a `ListDir` of many entries pays one dict lookup per owner.
"""

from __future__ import annotations

import os

__all__ = ["OwnerNames"]

_Stamp = tuple[int, int, int] | None


def _stamp(path: str) -> _Stamp:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _names_by_id(path: str) -> dict[int, str]:
    """id -> name from a passwd- or group-format file; the first entry of an id wins."""
    try:
        with open(path, "rb") as handle:
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return {}
    names: dict[int, str] = {}
    for line in lines:
        parts = line.split(":")
        if len(parts) < 3 or not parts[0] or parts[0].startswith(("#", "+", "-")):
            continue
        try:
            number = int(parts[2])
        except ValueError:
            continue
        names.setdefault(number, parts[0])
    return names


class OwnerNames:
    """Maps uids and gids to names using `<etc_dir>/passwd` and `<etc_dir>/group`."""

    def __init__(self, etc_dir: str = "/etc") -> None:
        self._passwd_path = os.path.join(etc_dir, "passwd")
        self._group_path = os.path.join(etc_dir, "group")
        self._stamps: tuple[_Stamp, _Stamp] | None = None
        self._users: dict[int, str] = {}
        self._groups: dict[int, str] = {}

    def refresh(self) -> None:
        """Re-read the files if they changed since the last call."""
        stamps = (_stamp(self._passwd_path), _stamp(self._group_path))
        if stamps == self._stamps:
            return
        self._users = _names_by_id(self._passwd_path)
        self._groups = _names_by_id(self._group_path)
        self._stamps = stamps

    def user(self, uid: int) -> str:
        name = self._users.get(uid)
        return name if name is not None else str(uid)

    def group(self, gid: int) -> str:
        name = self._groups.get(gid)
        return name if name is not None else str(gid)
