"""Paths as a sandbox user names and creates them, for `/files` and the filesystem RPCs.

`resolve_user_path` (protocol doc §6.1): absolute paths are taken as they are, `~` and `~/…`
are the user's HOME, other relative paths are under HOME, and an empty path is the given
default (else HOME). The result is absolute and normalised lexically (`..`, `.` and
repeated slashes removed); symlinks are not resolved, so entries report the path as
requested. Nothing here can leave the sandbox: the agent runs inside its mount namespace
after `pivot_root`, where `/..` is `/` and every symlink resolves against the sandbox's root.

`make_directories` (§6.3): a directory and its missing parents, each mode 0755 and owned by
the user, as envd makes them (mkdir, then chown: a watcher sees CREATE, CHMOD).

Neither validates nor translates errors: each caller refuses what it must (NUL bytes, over
long paths) and turns an `OSError` into its own errors (HTTP statuses for `/files`, Connect
codes for the RPCs).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat

from corral.agent.users import User

__all__ = ["DIRECTORY_MODE", "make_directories", "resolve_user_path"]

DIRECTORY_MODE = 0o755


def resolve_user_path(requested: str, user: User, empty: str = "") -> str:
    """The absolute, normalised path `requested` names for `user`; `empty` stands for ""."""
    path = requested or empty or user.home
    if path == "~" or path.startswith("~/"):
        path = user.home + path[1:]
    if not path.startswith("/"):
        path = posixpath.join(user.home or "/", path)
    # POSIX lets normpath keep a leading "//"; it means "/" on Linux.
    return "/" + posixpath.normpath(path).lstrip("/")


def _missing_chain(path: str) -> list[str]:
    """`path` and its ancestors that do not exist yet, outermost first; raises
    `NotADirectoryError` naming the first existing one that is not a directory."""
    missing = []
    current = path
    while True:
        try:
            info = os.stat(current)
        except FileNotFoundError:
            missing.append(current)
            parent = posixpath.dirname(current)
            if parent == current:
                break
            current = parent
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", current)
        break
    missing.reverse()
    return missing


def make_directories(path: str, user: User) -> None:
    """Make `path` a directory, creating missing parents; raises `OSError` (its `filename`
    names the path that failed)."""
    for directory in _missing_chain(path):
        try:
            os.mkdir(directory, DIRECTORY_MODE)
        except FileExistsError:
            if os.path.isdir(directory):
                continue  # made concurrently: fine
            raise
        os.chown(directory, user.uid, user.gid, follow_symlinks=False)
        # Only an unusual umask leaves other bits; an extra chmod would be an extra event.
        if stat.S_IMODE(os.lstat(directory).st_mode) != DIRECTORY_MODE:
            os.chmod(directory, DIRECTORY_MODE, follow_symlinks=False)
