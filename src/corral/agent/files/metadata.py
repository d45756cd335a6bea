"""File metadata: `X-Metadata-<Key>` upload headers ↔ `user.e2b.<key>` xattrs (§6.2, §7.4).

Keys are lowercased (the HTTP server already lowercases header names). Keys and values are
printable ASCII, a key at most 246 bytes (the xattr name limit of 255 minus the prefix), all
keys and values together at most 4096 bytes. An upload replaces a file's metadata entirely:
`user.e2b.*` attributes that are not in the new map are removed.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Mapping

from corral.agent.files.errors import BadFileRequest, FileOperationFailed

__all__ = ["XATTR_PREFIX", "apply_metadata", "metadata_from_headers"]

XATTR_PREFIX = "user.e2b."
_HEADER_PREFIX = "x-metadata-"
_MAX_KEY_BYTES = 255 - len(XATTR_PREFIX)
_MAX_TOTAL_BYTES = 4096
_KEY = re.compile(r"[\x21-\x7e]+")
_VALUE = re.compile(r"[\x20-\x7e]*")


def metadata_from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The metadata map of an upload; raises `BadFileRequest` when a limit is broken."""
    metadata: dict[str, str] = {}
    total = 0
    for name, value in headers.items():
        if not name.startswith(_HEADER_PREFIX):
            continue
        key = name[len(_HEADER_PREFIX) :]
        if not _KEY.fullmatch(key):
            raise BadFileRequest(f"invalid metadata key '{key}': printable ASCII, non-empty")
        if len(key) > _MAX_KEY_BYTES:
            raise BadFileRequest(f"invalid metadata key '{key}': longer than 246 bytes")
        if not _VALUE.fullmatch(value):
            raise BadFileRequest(f"invalid metadata value of '{key}': printable ASCII only")
        total += len(key) + len(value)
        metadata[key] = value
    if total > _MAX_TOTAL_BYTES:
        raise BadFileRequest(f"metadata too large: {total} bytes, at most {_MAX_TOTAL_BYTES}")
    return metadata


def apply_metadata(fd: int, path: str, metadata: Mapping[str, str]) -> None:
    """Make `metadata` the file's whole `user.e2b.*` set."""
    try:
        names = os.listxattr(fd)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP) and not metadata:
            return  # nothing to clear, nothing to store
        raise _xattr_error(exc, path) from exc
    try:
        for name in names:
            if name.startswith(XATTR_PREFIX) and name[len(XATTR_PREFIX) :] not in metadata:
                os.removexattr(fd, name)
        for key, value in metadata.items():
            os.setxattr(fd, XATTR_PREFIX + key, value.encode("ascii"))
    except OSError as exc:
        raise _xattr_error(exc, path) from exc


def _xattr_error(exc: OSError, path: str) -> FileOperationFailed:
    return FileOperationFailed(f"cannot store metadata on '{path}': {exc.strerror or exc}")
