"""Raw Linux system calls Python 3.11 does not expose, through ctypes (x86_64).

This module and its siblings under `_linux/` are the only places where `ctypes` is allowed
(`tests/unit/test_style.py` checks it). Every wrapper raises `OSError` with errno on failure.
"""

from __future__ import annotations

import ctypes
import os

__all__ = [
    "AT_EMPTY_PATH",
    "AT_RECURSIVE",
    "CLONE_NEWCGROUP",
    "CLONE_NEWIPC",
    "CLONE_NEWNET",
    "CLONE_NEWNS",
    "CLONE_NEWPID",
    "CLONE_NEWUSER",
    "CLONE_NEWUTS",
    "MNT_DETACH",
    "MOUNT_ATTR_IDMAP",
    "MOUNT_ATTR_NODEV",
    "MOUNT_ATTR_NOSUID",
    "MOUNT_ATTR_RDONLY",
    "MOVE_MOUNT_F_EMPTY_PATH",
    "MS_BIND",
    "MS_NODEV",
    "MS_NOEXEC",
    "MS_NOSUID",
    "MS_PRIVATE",
    "MS_RDONLY",
    "MS_REC",
    "MS_REMOUNT",
    "OPEN_TREE_CLOEXEC",
    "OPEN_TREE_CLONE",
    "PR_SET_CHILD_SUBREAPER",
    "PR_SET_PDEATHSIG",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "pivot_root",
    "prctl",
    "set_seccomp_filter",
    "setns",
    "umount2",
    "unshare",
]

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18

MNT_DETACH = 0x2

AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_FDCWD = -100

OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_IDMAP = 0x100000

PR_SET_PDEATHSIG = 1
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
PR_SET_CHILD_SUBREAPER = 36

_NR_PIVOT_ROOT = 155
_NR_SETNS = 308
_NR_OPEN_TREE = 428
_NR_MOVE_MOUNT = 429
_NR_MOUNT_SETATTR = 442

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    """mount(2)."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def umount2(target: str, flags: int) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def unshare(flags: int) -> None:
    """unshare(2)."""
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int) -> None:
    """setns(2)."""
    _check(_libc.syscall(_NR_SETNS, ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2)."""
    _check(_libc.syscall(_NR_PIVOT_ROOT, _b(new_root), _b(put_old)), "pivot_root")


def open_tree(path: str, flags: int, dirfd: int = AT_FDCWD) -> int:
    """open_tree(2): a file descriptor for (a detached clone of) the mount at `path`."""
    return _check(
        _libc.syscall(_NR_OPEN_TREE, ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags)),
        f"open_tree {path}",
    )


def mount_setattr(fd: int, attr_set: int, userns_fd: int = 0, flags: int = AT_EMPTY_PATH) -> None:
    """mount_setattr(2) on the mount referred to by `fd` (idmapping with `userns_fd`)."""
    attr = _MountAttr(attr_set=attr_set, attr_clr=0, propagation=0, userns_fd=userns_fd)
    _check(
        _libc.syscall(
            _NR_MOUNT_SETATTR,
            ctypes.c_int(fd),
            b"",
            ctypes.c_uint(flags),
            ctypes.byref(attr),
            ctypes.c_size_t(ctypes.sizeof(attr)),
        ),
        "mount_setattr",
    )


def move_mount(from_fd: int, to_path: str) -> None:
    """move_mount(2) of the detached mount `from_fd` onto `to_path`."""
    _check(
        _libc.syscall(
            _NR_MOVE_MOUNT,
            ctypes.c_int(from_fd),
            b"",
            ctypes.c_int(AT_FDCWD),
            _b(to_path),
            ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
        ),
        f"move_mount {to_path}",
    )


def prctl(option: int, arg2: int = 0) -> None:
    """prctl(2) with one argument."""
    _check(_libc.prctl(option, arg2, 0, 0, 0), "prctl")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def set_seccomp_filter(program: bytes) -> None:
    """Install a compiled classic-BPF seccomp program (8-byte `sock_filter` records).

    Without no_new_privs this needs CAP_SYS_ADMIN in the caller's user namespace.
    """
    if not program or len(program) % 8:
        raise ValueError("a seccomp program is a non-empty sequence of 8-byte instructions")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    _check(
        _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog), 0, 0),
        "prctl(PR_SET_SECCOMP)",
    )
