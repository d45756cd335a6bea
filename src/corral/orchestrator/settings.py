"""Tunables of the orchestrator (bounds, defaults, capacity)."""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.network.policy import OperatorNetworkSettings
from corral.orchestrator.limits import LimitPolicy

__all__ = ["OrchestratorSettings"]


@dataclass(frozen=True)
class OrchestratorSettings:
    """Policy knobs. Every bound is enforced by the orchestrator, whatever the caller."""

    default_timeout: int = 300
    """Seconds a sandbox lives when create/connect give no timeout (E2B default)."""
    max_timeout: int = 24 * 3600
    """Upper bound for any timeout a client asks for."""
    min_timeout: float = 1
    """Lower bound for any timeout (the API only passes whole seconds; tests go lower)."""
    max_sandboxes: int = 1000
    """Concurrent sandboxes; each takes one uid slot. pid_max (32768) is the real ceiling."""
    limits: LimitPolicy = field(default_factory=LimitPolicy)
    """Default and maximum resource limits of a sandbox (see `orchestrator.limits`)."""
    network: OperatorNetworkSettings = field(default_factory=OperatorNetworkSettings)
    """Egress default and ceiling of every sandbox (used when a gateway is given)."""
    metrics_interval: float = 5.0
    """Seconds between two usage samples of each sandbox (metrics and limit events)."""
    start_command_timeout: float = 60.0
    """How long create waits for a template's start command to listen on its ready port."""
    max_map_entries: int = 128
    """Entries in `metadata` or `envVars`."""
    max_key_bytes: int = 256
    """UTF-8 size of one `metadata` / `envVars` key."""
    max_value_bytes: int = 16 * 1024
    """UTF-8 size of one `metadata` / `envVars` value."""
    max_map_bytes: int = 64 * 1024
    """UTF-8 size of all keys and values of one map together."""
