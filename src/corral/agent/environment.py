"""Environment and working directory of a started process (protocol doc §5.3).

Environment = `PATH`, `HOME`, `USER`, `LOGNAME`, then the sandbox-wide variables, then the
request's `envs` (later wins). Nothing of the agent's own environment is inherited.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from corral.agent.errors import InvalidWorkdir
from corral.agent.users import User

__all__ = ["DEFAULT_PATH", "compose_environment", "resolve_workdir"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def compose_environment(
    user: User, sandbox_env: Mapping[str, str], request_env: Mapping[str, str]
) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOME": user.home, "USER": user.name, "LOGNAME": user.name}
    env.update(sandbox_env)
    env.update(request_env)
    return env


def _expand(path: str, home: str) -> str:
    if path == "~":
        return home
    if path.startswith("~/"):
        path = home + path[1:]
    elif not path.startswith("/"):
        path = os.path.join(home, path)
    return os.path.normpath(path)


def resolve_workdir(requested: str | None, user: User, default_workdir: str) -> str:
    """The directory to start in; raises `InvalidWorkdir` for a missing requested cwd.

    A requested cwd may be absolute, `~`-prefixed, or relative to the user's HOME. Without
    one: the sandbox's default workdir if it exists, else HOME (else `/`).
    """
    if requested:
        path = _expand(requested, user.home)
        if not os.path.isdir(path):
            raise InvalidWorkdir(path)
        return path
    for candidate in (default_workdir, user.home):
        if candidate and os.path.isdir(candidate):
            return candidate
    return "/"
