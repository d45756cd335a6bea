"""Errors of `/files`, each with the HTTP status it is answered with (protocol doc §7.2).

`str(exc)` is the client-safe message of the JSON body `{"code", "message"}`::

    FilesError(AgentError)      base; `.status` is the HTTP status
    ├── BadFileRequest          400: bad path, directory, bad metadata, bad gzip or multipart
    ├── FileAccessDenied        401: token, signature, expiry or unknown user
    ├── FileNotFound            404: the file to download does not exist
    ├── MethodNotAllowed        405: neither GET nor POST
    ├── NotAcceptable           406: the client accepts no encoding we can send
    ├── FileOperationFailed     500: an unexpected OS error (its strerror is shown)
    └── NotEnoughSpace          507: ENOSPC / EDQUOT while writing
"""

from __future__ import annotations

import errno

from corral.agent.errors import AgentError

__all__ = [
    "BadFileRequest",
    "FileAccessDenied",
    "FileNotFound",
    "FileOperationFailed",
    "FilesError",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotEnoughSpace",
    "from_os_error",
]


class FilesError(AgentError):
    status = 500


class BadFileRequest(FilesError):
    status = 400


class FileAccessDenied(FilesError):
    status = 401


class FileNotFound(FilesError):
    status = 404


class MethodNotAllowed(FilesError):
    status = 405


class NotAcceptable(FilesError):
    status = 406


class FileOperationFailed(FilesError):
    status = 500


class NotEnoughSpace(FilesError):
    status = 507

    def __init__(self) -> None:
        super().__init__("not enough disk space available")


def from_os_error(exc: OSError, path: str) -> FilesError:
    """The `/files` error for an OS error on `path` (a sandbox path, safe to show)."""
    code = exc.errno
    reason = exc.strerror or str(exc)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return NotEnoughSpace()
    if code == errno.ENOENT:
        return FileNotFound(f"path '{path}' does not exist")
    if code == errno.EISDIR:
        return BadFileRequest(f"path '{path}' is a directory")
    if code == errno.ENOTDIR:
        return BadFileRequest(f"path '{path}': a parent is not a directory")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP):
        return BadFileRequest(f"path '{path}': {reason}")
    return FileOperationFailed(f"path '{path}': {reason}")
