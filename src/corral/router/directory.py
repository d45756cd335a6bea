"""What the router needs to know about sandboxes (implemented by the orchestrator)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

__all__ = ["RoutableSandbox", "SandboxDirectory"]


class RoutableSandbox(Protocol):
    """A running sandbox as the data plane sees it."""

    @property
    def sandbox_id(self) -> str: ...

    @property
    def agent_socket(self) -> str:
        """Path of the unix socket on which the sandbox's agent (envd) listens."""

    @property
    def access_token(self) -> str:
        """The envd access token; also the key of the sandbox's signed file URLs."""

    @property
    def traffic_access_token(self) -> str | None:
        """Required on preview requests (`allowPublicTraffic: false`); None: open."""


class SandboxDirectory(Protocol):
    """Lookup of running sandboxes. Must be O(1) per id: it is called on every request."""

    def find_route(self, sandbox_id: str) -> RoutableSandbox | None: ...

    def routes(self) -> Iterable[RoutableSandbox]: ...
