"""Where a path of an RPC request points (protocol doc §6.1): `resolve_user_path`, where an
empty path is the sandbox's default workdir, plus the `InvalidPath` the RPCs answer for a
path the kernel cannot take."""

from __future__ import annotations

from corral.agent.errors import InvalidPath
from corral.agent.user_paths import resolve_user_path
from corral.agent.users import User

__all__ = ["resolve_path"]


def resolve_path(requested: str, user: User, default_workdir: str) -> str:
    """The absolute, normalised path `requested` names for `user`; raises `InvalidPath`."""
    if "\0" in requested:
        raise InvalidPath("path must not contain a NUL byte")
    return resolve_user_path(requested, user, default_workdir)
