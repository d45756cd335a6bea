"""Where a requested path points (protocol doc §6.1).

Absolute paths are taken as they are, a leading `~` is the user's HOME, other relative paths
are under HOME, and an empty path means the sandbox's default workdir (else HOME). The
result is normalised (`..`, `.` and repeated slashes removed) but symlinks are not
resolved: entries report the path as requested. Nothing here can leave the sandbox: the
agent runs inside its mount namespace after `pivot_root`, where `/..` is `/` and every
symlink resolves against the sandbox's own root.
"""

from __future__ import annotations

import os

from corral.agent.errors import InvalidPath
from corral.agent.users import User

__all__ = ["resolve_path"]


def resolve_path(requested: str, user: User, default_workdir: str) -> str:
    """The absolute, normalised path `requested` names for `user`."""
    if "\0" in requested:
        raise InvalidPath("path must not contain a NUL byte")
    path = requested or default_workdir or user.home
    if path == "~":
        path = user.home
    elif path.startswith("~/"):
        path = user.home + path[1:]
    if not path.startswith("/"):
        path = os.path.join(user.home or "/", path)
    path = os.path.normpath(path)
    # POSIX lets normpath keep a leading "//"; it means "/" on Linux.
    return "/" + path.lstrip("/")
