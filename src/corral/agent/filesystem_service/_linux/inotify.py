"""inotify(7) through ctypes: the three system calls and the event record layout.

Python 3.11 has no inotify binding. The functions are looked up in the symbols already
loaded into the process (`dlopen(NULL)`), so nothing is read from disk: this works after
`pivot_root`, where the host's libc file is no longer visible. Every wrapper raises
`OSError` with errno on failure.
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import NamedTuple

__all__ = [
    "IN_ATTRIB",
    "IN_CLOSE_WRITE",
    "IN_CREATE",
    "IN_DELETE",
    "IN_DELETE_SELF",
    "IN_IGNORED",
    "IN_ISDIR",
    "IN_MODIFY",
    "IN_MOVED_FROM",
    "IN_MOVED_TO",
    "IN_MOVE_SELF",
    "IN_ONLYDIR",
    "IN_Q_OVERFLOW",
    "RawEvent",
    "add_watch",
    "inotify_open",
    "parse_events",
    "remove_watch",
]

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_ISDIR = 0x40000000

_IN_NONBLOCK = os.O_NONBLOCK
_IN_CLOEXEC = os.O_CLOEXEC
_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len

_libc = ctypes.CDLL(None, use_errno=True)
_inotify_init1 = _libc.inotify_init1
_inotify_init1.argtypes = [ctypes.c_int]
_inotify_init1.restype = ctypes.c_int
_inotify_add_watch = _libc.inotify_add_watch
_inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_inotify_add_watch.restype = ctypes.c_int
_inotify_rm_watch = _libc.inotify_rm_watch
_inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
_inotify_rm_watch.restype = ctypes.c_int


class RawEvent(NamedTuple):
    """One `struct inotify_event`; `name` is empty for events on the watched object itself."""

    wd: int
    mask: int
    cookie: int
    name: bytes


def _check(result: int) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def inotify_open() -> int:
    """A new non-blocking, close-on-exec inotify descriptor."""
    return _check(_inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))


def add_watch(fd: int, path: str, mask: int) -> int:
    """Watch `path` (not following a final symlink is up to `mask`); returns the wd."""
    return _check(_inotify_add_watch(fd, os.fsencode(path), mask))


def remove_watch(fd: int, wd: int) -> None:
    _check(_inotify_rm_watch(fd, wd))


def parse_events(buffer: bytes) -> list[RawEvent]:
    """Split what one `read` of the descriptor returned into events."""
    events = []
    offset, end = 0, len(buffer)
    while offset + _HEADER.size <= end:
        wd, mask, cookie, length = _HEADER.unpack_from(buffer, offset)
        offset += _HEADER.size
        name = buffer[offset : offset + length].rstrip(b"\0")
        offset += length
        events.append(RawEvent(wd, mask, cookie, name))
    return events
