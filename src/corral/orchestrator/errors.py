"""Errors of the orchestrator. `str(exc)` is the client-safe message; causes are chained.

Hierarchy::

    OrchestratorError          base; never carries an HTTP status (the API maps it)
    ├── SandboxNotFound        no running sandbox has that id (unknown, killed or expired)
    ├── TemplateNotFound       the template catalog has no such name, alias or id
    ├── InvalidArgument        a command's value is out of bounds (timeout, metadata size, ...)
    ├── CapacityExceeded       the server runs as many sandboxes as it is allowed to
    ├── SandboxStartFailed     the runtime could not bring the sandbox up (broken, not closed)
    └── ShuttingDown           the server is stopping and accepts no new sandboxes
"""

from __future__ import annotations

__all__ = [
    "CapacityExceeded",
    "InvalidArgument",
    "OrchestratorError",
    "SandboxNotFound",
    "SandboxStartFailed",
    "ShuttingDown",
    "TemplateNotFound",
]


class OrchestratorError(Exception):
    """Base of orchestrator errors; the message is safe to show to clients."""


class SandboxNotFound(OrchestratorError):
    def __init__(self, sandbox_id: str) -> None:
        super().__init__(f"sandbox '{sandbox_id}' not found")
        self.sandbox_id = sandbox_id


class TemplateNotFound(OrchestratorError):
    def __init__(self, name: str) -> None:
        super().__init__(f"template '{name}' not found")
        self.name = name


class InvalidArgument(OrchestratorError):
    """A value is well-typed but not acceptable; the message names the field."""


class CapacityExceeded(OrchestratorError):
    """No uid slot is free: the server already runs `max_sandboxes` sandboxes."""


class SandboxStartFailed(OrchestratorError):
    """The runtime failed to start the sandbox; nothing of it is left behind."""


class ShuttingDown(OrchestratorError):
    """The server is shutting down."""
