"""Create a directory and its missing parents, each mode 0755 and owned by the user (§6.3)."""

from __future__ import annotations

import os
import stat

from corral.agent.filesystem_service.os_errors import filesystem_error
from corral.agent.users import User

__all__ = ["DIRECTORY_MODE", "ensure_directory"]

DIRECTORY_MODE = 0o755


def _missing_chain(path: str) -> list[str]:
    """`path` and its ancestors that do not exist yet, outermost first."""
    missing = []
    current = path
    while True:
        try:
            info = os.stat(current)
        except FileNotFoundError:
            missing.append(current)
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise NotADirectoryError(20, "Not a directory", current)
        break
    missing.reverse()
    return missing


def ensure_directory(path: str, user: User) -> None:
    """Make `path` a directory, creating missing parents; raises a `FilesystemError`."""
    try:
        for directory in _missing_chain(path):
            try:
                os.mkdir(directory, DIRECTORY_MODE)
            except FileExistsError:
                if os.path.isdir(directory):
                    continue  # made concurrently: fine
                raise
            os.chown(directory, user.uid, user.gid, follow_symlinks=False)
            os.chmod(directory, DIRECTORY_MODE, follow_symlinks=False)
    except OSError as exc:
        raise filesystem_error(exc, "create directory", exc.filename or path) from exc
