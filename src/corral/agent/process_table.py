"""Every process the agent started, and the reaper that collects their exit statuses.

The agent is pid 1 of its pid namespace: it must reap every child, including orphans
re-parented to it. On SIGCHLD `reap_children` calls `waitpid(-1, WNOHANG)` until nothing is
left, hands statuses of known processes to them and silently drops the others. Nothing
else ever waits (no `Popen`, no asyncio child watcher, no threads).

Ended processes stay findable by `Connect` for `retain_seconds`, so a late attach still
gets `start` + `end` (protocol doc §5.6); `List` and the other RPCs see running ones only.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

from corral.agent.errors import ProcessNotFound
from corral.agent.managed_process import ManagedProcess
from corral.protocol.process_messages import ProcessSelector

__all__ = ["RETAIN_SECONDS", "ProcessTable"]

RETAIN_SECONDS = 5.0


class ProcessTable:
    """Processes by pid, plus the SIGCHLD reaper."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, retain_seconds: float = RETAIN_SECONDS
    ) -> None:
        self._loop = loop
        self._retain_seconds = retain_seconds
        self._by_pid: dict[int, ManagedProcess] = {}
        self._exit_watchers: dict[int, Callable[[int], None]] = {}

    def watch_exit(self, pid: int, on_exit: Callable[[int], None]) -> None:
        """Call `on_exit(wait status)` when `pid` (a child that is no `ManagedProcess`) ends."""
        self._exit_watchers[pid] = on_exit

    def add(self, process: ManagedProcess) -> None:
        self._by_pid[process.pid] = process

    def process_ended(self, process: ManagedProcess) -> None:
        """Called by a process after its `end` event: forget it after the retention time."""
        self._loop.call_later(self._retain_seconds, self._forget, process)

    def _forget(self, process: ManagedProcess) -> None:
        if self._by_pid.get(process.pid) is process:
            del self._by_pid[process.pid]

    def _find(self, selector: ProcessSelector, *, include_ended: bool) -> ManagedProcess:
        if selector.pid is not None:
            process = self._by_pid.get(selector.pid)
            if process is not None and (include_ended or process.running):
                return process
        else:
            for process in self._by_pid.values():
                if process.tag == selector.tag and (include_ended or process.running):
                    return process
        raise ProcessNotFound(selector.describe())

    def find_running(self, selector: ProcessSelector) -> ManagedProcess:
        """A process that has not exited yet; raises `ProcessNotFound`."""
        return self._find(selector, include_ended=False)

    def find_attachable(self, selector: ProcessSelector) -> ManagedProcess:
        """A running process or one that ended moments ago; raises `ProcessNotFound`."""
        return self._find(selector, include_ended=True)

    def running(self) -> list[ManagedProcess]:
        return [process for process in self._by_pid.values() if process.running]

    def reap_children(self) -> None:
        """SIGCHLD handler: collect every exited child without blocking."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            process = self._by_pid.get(pid)
            if process is not None:
                process.on_reaped(status)
            watcher = self._exit_watchers.pop(pid, None)
            if watcher is not None:
                watcher(status)

    def kill_all(self) -> None:
        """Agent shutdown: SIGKILL every process and the process groups of all it knows.

        Groups of processes that ended within the retention time are included, so their
        orphans (`cmd &`) die too when the agent runs without a pid namespace. Their ids
        cannot have been reused yet: a pid stays allocated while its group has members.
        """
        for process in list(self._by_pid.values()):
            process.send_signal(signal.SIGKILL)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
