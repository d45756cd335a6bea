"""A context: one kernel with its language, working directory and execution lock (§8.2)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from corral.interpreter.kernel import Kernel

__all__ = ["Context"]


@dataclass
class Context:
    """What `/contexts` lists; its id is its kernel's id."""

    id: str
    language: str
    cwd: str
    kernel: Kernel
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held by the execution that runs in this context (executions are serialised)."""

    def to_json(self) -> dict[str, str]:
        """The wire form: `{"id", "language", "cwd"}`."""
        return {"id": self.id, "language": self.language, "cwd": self.cwd}
