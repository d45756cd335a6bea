"""What every `process.Process` RPC handler needs: the shared state of one agent."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from corral.agent.process_table import ProcessTable
from corral.agent.users import UserDatabase
from corral.protocol.agent_config import AgentConfig

__all__ = ["ProcessService"]


@dataclass(frozen=True, slots=True)
class ProcessService:
    """The agent's configuration, users and process table, shared by the RPC handlers."""

    loop: asyncio.AbstractEventLoop
    config: AgentConfig
    users: UserDatabase
    table: ProcessTable
