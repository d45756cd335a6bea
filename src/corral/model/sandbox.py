"""What a sandbox is asked to be (`SandboxSpec`) and what the server remembers of it."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.model.limits import LimitOverrides
from corral.model.network import EgressPolicy, SandboxNetwork

__all__ = ["Limits", "SandboxRecord", "SandboxSpec", "SandboxState", "TemplateRef"]


class SandboxState(enum.Enum):
    """Lifecycle state as persisted. Only `RUNNING` sandboxes are visible to clients."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


@dataclass(frozen=True)
class Limits:
    """Resource limits applied to every process of one sandbox."""

    cpu_count: int = 2
    """CPUs worth of time per scheduling period (a CFS quota, not pinned cores)."""
    memory_mb: int = 1024
    """Hard memory limit (swap included where the host accounts it)."""
    pids_max: int = 1024
    """Processes and threads together."""
    disk_mb: int = 10240
    """Size limit of the writable layer (a btrfs qgroup, see `_linux/disk_quota.py`)."""
    open_files: int = 1024
    """RLIMIT_NOFILE of every process (soft and hard)."""


@dataclass(frozen=True)
class TemplateRef:
    """A built template: its read-only layers, bottom first, and its defaults."""

    template_id: str
    layers: tuple[str, ...]
    default_user: str = "user"
    default_workdir: str = "/home/user"
    alias: str | None = None
    limits: LimitOverrides = LimitOverrides()
    """The template's default limits (a recipe's `LIMITS` line); unset ones are the server's."""
    env: Mapping[str, str] = field(default_factory=dict)
    """The template's environment (`ENV`), under each sandbox's own `envVars`."""
    start_command: str | None = None
    """Run by the agent at boot as the default user (a recipe's `START`)."""
    ready_port: int = 0
    """Create returns once this port accepts connections inside the sandbox (0: no wait)."""


@dataclass(frozen=True)
class SandboxSpec:
    """Everything the runtime needs to bring one sandbox up."""

    sandbox_id: str
    template: TemplateRef
    access_token: str
    uid_base: int
    limits: Limits = Limits()
    env_vars: Mapping[str, str] = field(default_factory=dict)
    hostname: str = "sandbox"
    network: SandboxNetwork | None = None
    """None: the sandbox's network namespace has only `lo`."""


@dataclass(frozen=True)
class SandboxRecord:
    """The persisted view of a sandbox (one row of the state store)."""

    sandbox_id: str
    template_id: str
    alias: str | None
    state: SandboxState
    access_token: str
    uid_base: int
    started_at: float
    end_at: float
    limits: Limits
    env_vars: Mapping[str, str]
    metadata: Mapping[str, str]
    agent_pid: int | None = None
    network: EgressPolicy = EgressPolicy()
    """The egress policy as the client asked for it (the operator's rules apply on top)."""
    traffic_access_token: str | None = None
    """Set when created with `network.allowPublicTraffic: false`: preview requests must
    carry it (`E2B-Traffic-Access-Token`); None: preview URLs are open."""
