"""Turn an `OSError` of a file operation into the filesystem error a client gets (§6.3)."""

from __future__ import annotations

import errno

from corral.agent.errors import (
    FilesystemError,
    FilesystemExhausted,
    FilesystemFailed,
    InvalidPath,
    PathExists,
    PathNotFound,
    PathPermissionDenied,
)

__all__ = ["filesystem_error"]

_EXHAUSTED = {errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE, errno.ENOMEM}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}
_INVALID = {errno.ENOTDIR, errno.EISDIR, errno.EINVAL, errno.ELOOP, errno.ENAMETOOLONG}


def filesystem_error(exc: OSError, action: str, path: str) -> FilesystemError:
    """The client-facing error for `exc`, raised while doing `action` (e.g. "stat") on `path`."""
    code = exc.errno
    reason = exc.strerror or str(exc)
    if code == errno.ENOENT:
        return PathNotFound(f"path '{path}' does not exist")
    if code in (errno.EEXIST, errno.ENOTEMPTY):
        return PathExists(f"cannot {action} '{path}': {reason}")
    if code in _INVALID:
        return InvalidPath(f"cannot {action} '{path}': {reason}")
    if code in _DENIED:
        return PathPermissionDenied(f"cannot {action} '{path}': {reason}")
    if code in _EXHAUSTED:
        return FilesystemExhausted(f"cannot {action} '{path}': {reason}")
    return FilesystemFailed(f"cannot {action} '{path}': {reason}")
