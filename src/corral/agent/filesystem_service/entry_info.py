"""`EntryInfo` of one path, the way envd describes it (protocol doc §6.2).

* `size`, `permissions`, owner and `modifiedTime` come from `lstat`; `permissions` is Go's
  `FileMode.String()` (`-rw-r--r--`, `drwxr-xr-x`, `Lrwxrwxrwx`, `dtrwxrwxrwx` for /tmp);
* a symlink reports its target's type and permission bits (`FILE_TYPE_UNSPECIFIED` and 0
  when dangling) and `symlinkTarget`, the fully resolved absolute path;
* `type` is FILE or DIRECTORY; devices, pipes and sockets are `FILE_TYPE_UNSPECIFIED`;
* `metadata` holds the `user.e2b.*` extended attributes, prefix stripped.
"""

from __future__ import annotations

import os
import stat

from corral.agent.filesystem_service.os_errors import filesystem_error
from corral.agent.users import UserDatabase
from corral.protocol.filesystem_messages import EntryInfo, FileType, encode_entry

__all__ = ["describe", "describe_json", "describe_path", "permissions_string"]

_METADATA_PREFIX = "user.e2b."

# Go's FileMode type letters in the order FileMode.String() writes them.
_TYPE_LETTERS: tuple[tuple[int, str], ...] = (
    (stat.S_IFDIR, "d"),
    (stat.S_IFLNK, "L"),
    (stat.S_IFBLK, "D"),
    (stat.S_IFCHR, "D"),
    (stat.S_IFIFO, "p"),
    (stat.S_IFSOCK, "S"),
)
_RWX = tuple(
    "".join(letter if bits & (0o400 >> index) else "-" for index, letter in enumerate("rwxrwxrwx"))
    for bits in range(0o1000)
)


def permissions_string(mode: int) -> str:
    """Go's `FileMode.String()` for an `st_mode`."""
    kind = stat.S_IFMT(mode)
    prefix = ""
    for file_type, letter in _TYPE_LETTERS:
        if kind == file_type:
            prefix = letter
            break
    if mode & stat.S_ISUID:
        prefix += "u"
    if mode & stat.S_ISGID:
        prefix += "g"
    if kind == stat.S_IFCHR:
        prefix += "c"
    if mode & stat.S_ISVTX:
        prefix += "t"
    return (prefix or "-") + _RWX[mode & 0o777]


_PERMISSIONS: dict[int, str] = {}  # st_mode -> permissions_string(st_mode); few distinct modes


def _file_type(mode: int) -> FileType:
    if stat.S_ISREG(mode):
        return FileType.FILE_TYPE_FILE
    if stat.S_ISDIR(mode):
        return FileType.FILE_TYPE_DIRECTORY
    return FileType.FILE_TYPE_UNSPECIFIED


def _metadata(path: str) -> dict[str, str] | None:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return None
    if not names:
        return None
    metadata = {}
    for name in names:
        if name.startswith(_METADATA_PREFIX):
            try:
                value = os.getxattr(path, name, follow_symlinks=False)
            except OSError:
                continue
            metadata[name[len(_METADATA_PREFIX) :]] = value.decode("utf-8", "replace")
    return metadata


_Fields = tuple[str, FileType, str, int, int, str, str, str, int, str | None, dict[str, str] | None]


def _fields(path: str, name: str, info: os.stat_result, users: UserDatabase) -> _Fields:
    """The `EntryInfo` fields, in declaration order, of `path` whose `lstat` is `info`."""
    mode = info.st_mode
    permissions = _PERMISSIONS.get(mode)
    if permissions is None:
        permissions = _PERMISSIONS[mode] = permissions_string(mode)
    target: str | None = None
    metadata: dict[str, str] | None = None
    if stat.S_ISLNK(mode):
        target = os.path.realpath(path)
        try:
            target_mode = os.stat(path).st_mode
        except (OSError, ValueError):
            file_type, permission_bits = FileType.FILE_TYPE_UNSPECIFIED, 0
        else:
            file_type, permission_bits = _file_type(target_mode), target_mode & 0o777
    else:
        file_type, permission_bits = _file_type(mode), mode & 0o777
        metadata = _metadata(path)
    return (
        name,
        file_type,
        path,
        info.st_size,
        permission_bits,
        permissions,
        users.user_name(info.st_uid),
        users.group_name(info.st_gid),
        info.st_mtime_ns,
        target,
        metadata,
    )


def describe(path: str, name: str, info: os.stat_result, users: UserDatabase) -> EntryInfo:
    """The entry for `path` (shown as given) whose `lstat` result is `info`."""
    fields = _fields(path, name, info, users)
    return EntryInfo(*fields[:10], metadata=fields[10] or {})


def describe_json(path: str, name: str, info: os.stat_result, users: UserDatabase) -> str:
    """`describe(...).to_json()` without the intermediate object (the `ListDir` hot path)."""
    return encode_entry(*_fields(path, name, info, users))


def describe_path(path: str, users: UserDatabase) -> EntryInfo:
    """`lstat` and describe `path`; raises a `FilesystemError`."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise filesystem_error(exc, "stat", path) from exc
    return describe(path, os.path.basename(path) or path, info, users)
