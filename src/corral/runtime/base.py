"""The `Runtime` protocol every isolation backend implements."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from corral.model import SandboxSpec

__all__ = [
    "LauncherUnavailable",
    "LiveSandbox",
    "RunDirTooLong",
    "Runtime",
    "RuntimeError_",
    "SandboxStartError",
    "UsageSample",
    "check_run_dir",
]


class RuntimeError_(Exception):
    """Base of runtime errors. `str(exc)` is safe to show to clients."""


class SandboxStartError(RuntimeError_):
    """The sandbox could not be started; the backend has already removed what it made."""


class LauncherUnavailable(RuntimeError_):
    """The privileged launcher is not running; no sandbox can be created or stopped."""


class RunDirTooLong(RuntimeError_):
    """Agent socket paths under the run dir would exceed the kernel's unix socket limit."""


# sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107
_SOCKET_SUFFIX = "/sandboxes/" + "x" * 20 + "/agent.sock"


def check_run_dir(run_dir: Path) -> None:
    """Refuse a run dir whose agent socket paths (`<run_dir>/sandboxes/<id>/agent.sock`)
    cannot be bound: unix socket paths are limited to 107 bytes."""
    longest = len(os.fsencode(os.path.abspath(run_dir))) + len(_SOCKET_SUFFIX)
    if longest > _MAX_SOCKET_PATH:
        raise RunDirTooLong(
            f"run dir {str(run_dir)!r} is too long for agent sockets ({longest} > "
            f"{_MAX_SOCKET_PATH} bytes); use a shorter --run-dir, e.g. /run/corral"
        )


@dataclass(frozen=True)
class LiveSandbox:
    """A sandbox that exists on the host right now."""

    sandbox_id: str
    agent_socket: str
    init_pid: int


@dataclass(frozen=True)
class UsageSample:
    """What one sandbox uses right now, read from the host (cgroups and its disk).

    Counters (`cpu_usage_ns`, `oom_kills`, `pids_max_hits`, `throttled_*`) are cumulative
    since the sandbox started; the rest are current levels. Memory and disk are in bytes;
    `memory_used` excludes the page cache (`memory_cache`). A limit of 0 means unknown.
    """

    cpu_usage_ns: int
    memory_used: int
    memory_cache: int
    memory_limit: int
    disk_used: int
    disk_limit: int
    oom_kills: int
    """Processes killed by the out-of-memory killer because of the memory limit."""
    pids_max_hits: int
    """Forks refused because the sandbox reached its process limit."""
    throttled_periods: int
    """Scheduler periods in which the sandbox used up its CPU quota and had to wait."""
    throttled_ns: int
    """Total time the sandbox's processes waited because of the CPU quota."""


class Runtime(Protocol):
    """Makes and destroys isolation boundaries with an agent inside.

    `start` returns once the agent accepts connections on `agent_socket`.
    Every method is idempotent where that makes sense: `stop` of an unknown id is a no-op.
    """

    name: str

    async def open(self) -> None:
        """Start helpers (e.g. the launcher) and make host-wide preparations."""

    async def close(self) -> None:
        """Stop helpers. Does not stop sandboxes: call `stop` for each first."""

    async def start(self, spec: SandboxSpec) -> LiveSandbox:
        """Create the sandbox of `spec` and start its agent."""

    async def stop(self, sandbox_id: str) -> None:
        """Kill every process of the sandbox and remove its mounts, cgroups and files."""

    async def live(self) -> list[LiveSandbox]:
        """Sandboxes found on the host (used to re-adopt them after a server crash)."""

    async def sweep(self, keep: set[str]) -> list[str]:
        """Remove every leftover not in `keep`; return the ids removed."""

    async def usage(self, sandbox_id: str) -> UsageSample | None:
        """Resource use and limit-hit counters of a running sandbox; None if it is gone."""

    def on_exit(self, listener: Callable[[str], None]) -> None:
        """Call `listener(sandbox_id)` when a started or found sandbox dies by itself
        (its init exited); not for sandboxes ended by `stop`."""
