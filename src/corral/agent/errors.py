"""Errors of the agent's own layer (users, processes, input, files). `str(exc)` is client-safe.

The RPC boundary (`corral.agent.connect_server`) turns them into Connect errors; the code of
each class is noted below::

    AgentError                 base of everything the agent raises on purpose
    ├── UnknownUser            no passwd entry for the requested user        -> unauthenticated
    ├── BadAuthorization       `Authorization` is not `Basic base64("<user>:")` -> unauthenticated
    ├── ProcessNotFound        no process matches the selector               -> not_found
    ├── InvalidWorkdir         the requested cwd does not exist              -> invalid_argument
    ├── InvalidProcessRequest  the request cannot be run as given            -> invalid_argument
    ├── SpawnFailed            fork/exec of the process failed               -> internal
    ├── InputUnavailable       the input cannot go to this process (no stdin pipe, closed,
    │                          PTY vs pipe mismatch, process ended)          -> failed_precondition
    └── FilesystemError        base of the filesystem service's errors
        ├── PathNotFound       the path (or a watcher id) does not exist      -> not_found
        ├── PathExists         the path already exists                        -> already_exists
        ├── InvalidPath        wrong kind of file for the call, or a refused
        │                      network mount                                  -> invalid_argument
        ├── PathPermissionDenied  the kernel refused the operation            -> permission_denied
        ├── FilesystemExhausted   no space, quota or inotify watches left     -> resource_exhausted
        └── FilesystemFailed   any other OS error                             -> internal
"""

from __future__ import annotations

__all__ = [
    "AgentError",
    "BadAuthorization",
    "FilesystemError",
    "FilesystemExhausted",
    "FilesystemFailed",
    "InputUnavailable",
    "InvalidProcessRequest",
    "InvalidPath",
    "InvalidWorkdir",
    "PathExists",
    "PathNotFound",
    "PathPermissionDenied",
    "ProcessNotFound",
    "SpawnFailed",
    "UnknownUser",
]


class AgentError(Exception):
    """Base of the agent's errors; the message is safe to show to clients."""


class UnknownUser(AgentError):
    def __init__(self, name: str) -> None:
        super().__init__(f"invalid username: '{name}'")
        self.name = name


class BadAuthorization(AgentError):
    """The `Authorization` header cannot be read as Basic credentials."""


class ProcessNotFound(AgentError):
    def __init__(self, description: str) -> None:
        super().__init__(f"process with {description} not found")


class InvalidWorkdir(AgentError):
    def __init__(self, path: str) -> None:
        super().__init__(f"cwd '{path}' does not exist")
        self.path = path


class InvalidProcessRequest(AgentError):
    """The process cannot be started as requested (e.g. a NUL byte in an argument)."""


class SpawnFailed(AgentError):
    """fork/exec failed (missing executable, permission denied, out of resources)."""


class InputUnavailable(AgentError):
    """Input cannot be delivered to this process in the way it was sent."""


class FilesystemError(AgentError):
    """Base of the filesystem service's errors."""


class PathNotFound(FilesystemError):
    """The path (or the watcher id) does not exist."""


class PathExists(FilesystemError):
    """The path already exists."""


class InvalidPath(FilesystemError):
    """The path is the wrong kind of file for the call (or a refused network mount)."""


class PathPermissionDenied(FilesystemError):
    """The kernel refused the operation (EACCES, EPERM, EROFS)."""


class FilesystemExhausted(FilesystemError):
    """No space, quota or inotify resources left."""


class FilesystemFailed(FilesystemError):
    """Any other OS error."""
