"""The resource limits of a new sandbox: request over template over server defaults.

Each limit is taken from the first source that sets it:

1. the create request (Corral extension keys of `POST /v2/sandboxes`: `cpuCount`,
   `memoryMB`, `diskSizeMB`, `pidsMax`, `openFiles`; the E2B SDK sends none of them);
2. the template (a recipe's `LIMITS` line, kept in its manifest);
3. the server's defaults (`corral serve --limits`).

A requested value outside [`LIMIT_FLOORS`, the server's ceiling] is refused
(`InvalidArgument` naming the field and the bound). A template's value is a default, not a
demand, so it is clamped into the same range instead: a template built for a bigger server
still starts here. Pure functions; no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from corral.model import LimitOverrides, Limits
from corral.orchestrator.errors import InvalidArgument

__all__ = [
    "DEFAULT_CEILINGS",
    "LIMIT_FIELD_NAMES",
    "LIMIT_FLOORS",
    "LimitPolicy",
    "resolve_limits",
]

LIMIT_FIELD_NAMES: dict[str, str] = {
    "cpu_count": "cpuCount",
    "memory_mb": "memoryMB",
    "disk_mb": "diskSizeMB",
    "pids_max": "pidsMax",
    "open_files": "openFiles",
}
"""`Limits` field -> the create-request (and SandboxDetail) key that names it."""

LIMIT_FLOORS = Limits(cpu_count=1, memory_mb=64, pids_max=32, disk_mb=64, open_files=256)
"""The least any sandbox gets: below these its agent (pid 1, which holds a socket and three
pipes per running process) and a login shell cannot work reliably."""

DEFAULT_CEILINGS = Limits(
    cpu_count=8, memory_mb=8192, pids_max=8192, disk_mb=51200, open_files=16384
)
"""The most a request may ask for unless `corral serve --max-limits` says otherwise.
`open_files` stays at or below the usual hard RLIMIT_NOFILE of a root service (the
launcher can raise it further only with CAP_SYS_RESOURCE)."""


@dataclass(frozen=True)
class LimitPolicy:
    """The server's defaults and ceilings. Raises `ValueError` if a default is out of range."""

    defaults: Limits = Limits()
    ceilings: Limits = DEFAULT_CEILINGS

    @classmethod
    def from_overrides(cls, defaults: LimitOverrides, ceilings: LimitOverrides) -> LimitPolicy:
        """Built-in defaults and ceilings with some replaced (`corral serve --limits` and
        `--max-limits`). A built-in default above a lowered ceiling drops to that ceiling."""
        maxima = replace(DEFAULT_CEILINGS, **dict(ceilings.items()))
        lowered = {
            name: min(value, getattr(maxima, name)) for name, value in asdict(Limits()).items()
        }
        return cls(defaults=Limits(**{**lowered, **dict(defaults.items())}), ceilings=maxima)

    def __post_init__(self) -> None:
        for name, floor, ceiling, default in _ranges(self):
            if ceiling < floor:
                raise ValueError(f"the ceiling of {name} ({ceiling}) is below its minimum {floor}")
            if not floor <= default <= ceiling:
                raise ValueError(f"the default {name} ({default}) is outside [{floor}, {ceiling}]")


def resolve_limits(
    requested: LimitOverrides, template: LimitOverrides, policy: LimitPolicy
) -> Limits:
    """The limits of a new sandbox (see the module docstring)."""
    for name, value in requested.items():
        floor, ceiling = getattr(LIMIT_FLOORS, name), getattr(policy.ceilings, name)
        if value > ceiling:
            raise InvalidArgument(
                f"'{LIMIT_FIELD_NAMES[name]}' is {value}; this server allows at most {ceiling}"
            )
        if value < floor:
            raise InvalidArgument(
                f"'{LIMIT_FIELD_NAMES[name]}' is {value}; it must be at least {floor}"
            )
    clamped = {
        name: min(max(value, getattr(LIMIT_FLOORS, name)), getattr(policy.ceilings, name))
        for name, value in template.items()
    }
    return Limits(**{**asdict(policy.defaults), **clamped, **dict(requested.items())})


def _ranges(policy: LimitPolicy) -> list[tuple[str, int, int, int]]:
    return [
        (
            item.name,
            getattr(LIMIT_FLOORS, item.name),
            getattr(policy.ceilings, item.name),
            getattr(policy.defaults, item.name),
        )
        for item in fields(Limits)
    ]
