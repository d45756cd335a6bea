"""User namespaces for sandboxes, one per uid range, made ahead of time by the launcher.

A user namespace is only a mapping (sandbox uid 0..65535 -> host uid base..base+65535) plus
the ownership of the namespaces created inside it. Making one needs a fresh process (a process
can enter a new user namespace only once), which costs a fork; so the launcher keeps a handle
on one namespace per uid range and reuses it for each sandbox that gets that range. A range is
only given to a new sandbox after every process of the previous one is dead (the orchestrator
releases a uid slot only after the runtime confirmed the stop), so no two live sandboxes ever
share a namespace. Keyrings, the one per-namespace state that could outlive a sandbox, are
denied by the seccomp policy.
"""

from __future__ import annotations

import os

from corral.runtime._linux import syscalls as sc

__all__ = ["UID_RANGE", "UserNamespaces", "make_user_namespace"]

UID_RANGE = 65536


def make_user_namespace(uid_base: int) -> int:
    """A handle (fd) on a new user namespace mapping 0..65535 to uid_base.. on the host."""
    ready_r, ready_w = os.pipe()
    done_r, done_w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(ready_r)
            os.close(done_w)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(ready_w, b"x")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b"x":
            raise OSError("the user namespace helper died before unsharing")
        mapping = f"0 {uid_base} {UID_RANGE}\n".encode()
        for name in ("uid_map", "gid_map"):
            fd = os.open(f"/proc/{child}/{name}", os.O_WRONLY)
            try:
                os.write(fd, mapping)
            finally:
                os.close(fd)
        return os.open(f"/proc/{child}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(done_w)  # the helper exits; the launcher reaps it with its other children


class UserNamespaces:
    """Handles on user namespaces by uid base, made on first use and kept."""

    def __init__(self) -> None:
        self._by_base: dict[int, int] = {}

    def get(self, uid_base: int) -> int:
        fd = self._by_base.get(uid_base)
        if fd is None:
            fd = self._by_base[uid_base] = make_user_namespace(uid_base)
        return fd
