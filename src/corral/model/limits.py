"""Partial resource limits (`LimitOverrides`) and their `key=value` text form.

A sandbox's `Limits` are resolved from three partial sources (see
`corral.orchestrator.limits`): the create request, the template, and the server's defaults.
The text form is shared by a recipe's `LIMITS` line and `corral serve --limits/--max-limits`::

    cpu=1 memory=512 disk=2048 pids=512 nofile=1024

Units: `cpu` in whole CPUs (a CFS quota), `memory` and `disk` in MiB, `pids` and `nofile`
in counts. Separators may be spaces or commas. Parsing is pure and raises `ValueError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

__all__ = ["LIMIT_KEYS", "LimitOverrides", "parse_limit_overrides"]

LIMIT_KEYS: dict[str, str] = {
    "cpu": "cpu_count",
    "memory": "memory_mb",
    "disk": "disk_mb",
    "pids": "pids_max",
    "nofile": "open_files",
}
"""Text key -> field name of `Limits` / `LimitOverrides`."""


@dataclass(frozen=True)
class LimitOverrides:
    """Some of a sandbox's limits; None leaves a limit to the next source."""

    cpu_count: int | None = None
    memory_mb: int | None = None
    pids_max: int | None = None
    disk_mb: int | None = None
    open_files: int | None = None

    def items(self) -> Iterator[tuple[str, int]]:
        """(field name, value) of every limit that is set."""
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None:
                yield item.name, value

    def over(self, below: LimitOverrides) -> LimitOverrides:
        """These values where set, else those of `below`."""
        return LimitOverrides(**{**dict(below.items()), **dict(self.items())})

    def to_text(self) -> str:
        """The `key=value` form `parse_limit_overrides` reads back."""
        names = {name: key for key, name in LIMIT_KEYS.items()}
        return " ".join(f"{names[name]}={value}" for name, value in self.items())


def parse_limit_overrides(text: str) -> LimitOverrides:
    """`"cpu=1 memory=512"` -> `LimitOverrides(cpu_count=1, memory_mb=512)`.

    Every value is a positive integer; unknown or repeated keys are errors.
    """
    values: dict[str, int] = {}
    for word in text.replace(",", " ").split():
        key, sep, raw = word.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {word!r}")
        name = LIMIT_KEYS.get(key)
        if name is None:
            raise ValueError(f"unknown limit {key!r} (known: {', '.join(LIMIT_KEYS)})")
        if name in values:
            raise ValueError(f"limit {key!r} is given twice")
        if not raw.isdigit() or int(raw) <= 0:
            raise ValueError(f"limit {key!r} must be a positive integer, got {raw!r}")
        values[name] = int(raw)
    return LimitOverrides(**values)
