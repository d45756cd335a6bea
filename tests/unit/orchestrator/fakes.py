"""Test doubles for the orchestrator's collaborators: an in-memory runtime and catalog."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from corral.model import SandboxSpec, TemplateRef
from corral.orchestrator import TemplateNotFound
from corral.runtime import LiveSandbox, SandboxStartError, UsageSample


@dataclass
class MemoryRuntime:
    """A `Runtime` that only records calls; `fail_next_start` makes `start` fail once."""

    name: str = "memory"
    running: dict[str, LiveSandbox] = field(default_factory=dict)
    specs: dict[str, SandboxSpec] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    swept_keep: list[set[str]] = field(default_factory=list)
    leftovers: set[str] = field(default_factory=set)
    fail_next_start: Exception | None = None
    fail_stop: bool = False
    opened: bool = False
    closed: bool = False
    next_pid: int = 1000
    exit_listener: Callable[[str], None] | None = None
    usages: dict[str, UsageSample] = field(default_factory=dict)
    """What `usage` reports per running sandbox (all zero when absent)."""

    def on_exit(self, listener: Callable[[str], None]) -> None:
        self.exit_listener = listener

    def die(self, sandbox_id: str) -> None:
        """Simulate a sandbox whose init exited by itself."""
        self.running.pop(sandbox_id, None)
        assert self.exit_listener is not None
        self.exit_listener(sandbox_id)

    async def open(self) -> None:
        self.opened = True

    async def close(self) -> None:
        self.closed = True

    async def start(self, spec: SandboxSpec) -> LiveSandbox:
        if self.fail_next_start is not None:
            exc, self.fail_next_start = self.fail_next_start, None
            raise exc
        self.next_pid += 1
        live = LiveSandbox(spec.sandbox_id, f"/nonexistent/{spec.sandbox_id}.sock", self.next_pid)
        self.running[spec.sandbox_id] = live
        self.specs[spec.sandbox_id] = spec
        self.started.append(spec.sandbox_id)
        return live

    async def stop(self, sandbox_id: str) -> None:
        if self.fail_stop:
            raise SandboxStartError("stop failed (test)")
        self.running.pop(sandbox_id, None)
        self.stopped.append(sandbox_id)

    async def usage(self, sandbox_id: str) -> UsageSample | None:
        if sandbox_id not in self.running:
            return None
        return self.usages.get(sandbox_id, UsageSample(0, 0, 0, 0, 0, 0, 0, 0, 0, 0))

    async def live(self) -> list[LiveSandbox]:
        return list(self.running.values())

    async def sweep(self, keep: set[str]) -> list[str]:
        self.swept_keep.append(set(keep))
        removed = sorted(self.leftovers - keep)
        self.leftovers -= set(removed)
        return removed


class StaticTemplates:
    """A catalog knowing `base` (alias `base`, id `base-id`) and `code-interpreter-v1`."""

    def __init__(self) -> None:
        self.refs = {
            "base": TemplateRef(template_id="base-id", layers=("/l/1",), alias="base"),
            "code-interpreter-v1": TemplateRef(
                template_id="code-interpreter-v1", layers=("/l/1", "/l/2"), alias=None
            ),
        }

    def load(self, name: str) -> TemplateRef:
        for ref in self.refs.values():
            if name in (ref.template_id, ref.alias):
                return ref
        raise TemplateNotFound(name)
