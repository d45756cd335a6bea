"""Start-up configuration the runtime hands to the agent (the envd `/init` equivalent)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["ENVD_VERSION", "AgentConfig"]

# The envd version reported to SDKs; >= 0.6.4 unlocks every SDK feature (protocol doc §9).
ENVD_VERSION = "0.6.13"


@dataclass(frozen=True)
class AgentConfig:
    """Defaults and secrets of one sandbox's agent."""

    access_token: str
    env_vars: Mapping[str, str] = field(default_factory=dict)
    default_user: str = "user"
    default_workdir: str = "/home/user"
    start_command: str = ""
    """The template's start command ("" for none), run at boot as `default_user`."""
    ready_port: int = 0
    """The port the start command listens on once it is ready (0: ready when started)."""

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "env_vars": dict(self.env_vars),
                "default_user": self.default_user,
                "default_workdir": self.default_workdir,
                "start_command": self.start_command,
                "ready_port": self.ready_port,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> AgentConfig:
        raw = json.loads(text)
        return cls(
            access_token=str(raw["access_token"]),
            env_vars={str(k): str(v) for k, v in raw.get("env_vars", {}).items()},
            default_user=str(raw.get("default_user", "user")),
            default_workdir=str(raw.get("default_workdir", "/home/user")),
            start_command=str(raw.get("start_command", "")),
            ready_port=int(raw.get("ready_port", 0)),
        )
