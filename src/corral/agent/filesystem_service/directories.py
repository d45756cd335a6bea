"""Create a directory and its missing parents for an RPC (§6.3), with Connect-mapped errors."""

from __future__ import annotations

from corral.agent.filesystem_service.os_errors import filesystem_error
from corral.agent.user_paths import make_directories
from corral.agent.users import User

__all__ = ["ensure_directory"]


def ensure_directory(path: str, user: User) -> None:
    """Make `path` a directory owned by `user`, creating missing parents (0755); raises a
    `FilesystemError`."""
    try:
        make_directories(path, user)
    except OSError as exc:
        raise filesystem_error(exc, "create directory", exc.filename or path) from exc
