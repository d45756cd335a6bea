"""What every `filesystem.Filesystem` RPC handler needs: the shared state of one agent."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from corral.agent.auth import requested_username
from corral.agent.connect_server import CallContext
from corral.agent.filesystem_service.paths import resolve_path
from corral.agent.filesystem_service.watchers import WatcherRegistry
from corral.agent.users import User, UserDatabase
from corral.protocol.agent_config import AgentConfig

__all__ = ["FilesystemService"]


@dataclass(frozen=True, slots=True)
class FilesystemService:
    """The agent's configuration, users (and owner names) and polled watchers."""

    loop: asyncio.AbstractEventLoop
    config: AgentConfig
    users: UserDatabase
    watchers: WatcherRegistry

    def caller(self, ctx: CallContext) -> User:
        """The user selected by Basic auth (§5.1); the lookup also refreshes the owner names."""
        name = requested_username(ctx.head.header("authorization"), self.config.default_user)
        return self.users.lookup(name)

    def resolve(self, requested: str, user: User) -> str:
        return resolve_path(requested, user, self.config.default_workdir)

    def close(self) -> None:
        """Stop every polled watcher (the agent is shutting down)."""
        self.watchers.close_all()
