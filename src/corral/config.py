"""Server configuration: defaults, environment variable names, and one frozen `ServerConfig`.

Directories (each overridable by a CLI flag or its environment variable):

| setting       | default                     | environment            |
|---------------|-----------------------------|------------------------|
| state dir     | /var/lib/corral             | CORRAL_STATE_DIR       |
| templates dir | /var/lib/corral/templates   | CORRAL_TEMPLATES_DIR   |
| run dir       | /run/corral                 | CORRAL_RUN_DIR         |

The SQLite database is `<state_dir>/corral.db`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from corral.model import LimitOverrides
from corral.network.policy import OperatorNetworkSettings

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_RUN_DIR",
    "DEFAULT_STATE_DIR",
    "DEFAULT_TEMPLATES_DIR",
    "ENV_API_KEYS",
    "ENV_RUN_DIR",
    "ENV_STATE_DIR",
    "ENV_TEMPLATES_DIR",
    "RUNTIME_NAMES",
    "ServerConfig",
    "parse_api_keys",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFAULT_STATE_DIR = Path("/var/lib/corral")
DEFAULT_TEMPLATES_DIR = Path("/var/lib/corral/templates")
DEFAULT_RUN_DIR = Path("/run/corral")

ENV_STATE_DIR = "CORRAL_STATE_DIR"
ENV_TEMPLATES_DIR = "CORRAL_TEMPLATES_DIR"
ENV_RUN_DIR = "CORRAL_RUN_DIR"
ENV_API_KEYS = "CORRAL_API_KEYS"

RUNTIME_NAMES = ("namespaces", "fake")


@dataclass(frozen=True)
class ServerConfig:
    """Everything `corral serve` needs to know."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    runtime: str = "namespaces"
    """`namespaces` (real isolation) or `fake` (no isolation; tests and development)."""
    state_dir: Path = DEFAULT_STATE_DIR
    templates_dir: Path = DEFAULT_TEMPLATES_DIR
    run_dir: Path = DEFAULT_RUN_DIR
    api_keys: tuple[str, ...] = ()
    """Accepted `X-API-KEY` values; empty: any non-empty key is accepted."""
    default_timeout: int = 300
    max_timeout: int = 24 * 3600
    """The ceiling of every sandbox's wall-clock timeout (create, connect, set_timeout)."""
    max_sandboxes: int = 1000
    limits: LimitOverrides = LimitOverrides()
    """Default resource limits replacing the built-in ones (`--limits`)."""
    max_limits: LimitOverrides = LimitOverrides()
    """Ceilings of requested limits replacing the built-in ones (`--max-limits`)."""
    disk_pool_mb: int = 0
    network: OperatorNetworkSettings = field(default_factory=OperatorNetworkSettings)
    """Sandbox networking (namespaces runtime only): the gateway, egress default and ceiling."""
    """Size of a new disk pool image (all writable layers together); 0: half the free space."""
    domain: str = "corral.localhost"
    """Preview URLs are `{port}-{sandboxId}.<domain>` (Host-header routing); "" turns them off."""

    @property
    def database_path(self) -> Path:
        return self.state_dir / "corral.db"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = "[::1]" if host == "::" else host
        return f"http://{host}:{self.port}"


def parse_api_keys(values: Iterable[str]) -> tuple[str, ...]:
    """Repeated and/or comma-separated keys -> unique, non-empty keys in order."""
    keys: list[str] = []
    for value in values:
        for key in value.split(","):
            key = key.strip()
            if key and key not in keys:
                keys.append(key)
    return tuple(keys)
