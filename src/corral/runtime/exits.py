"""Notice when a sandbox's init (its agent) exits by itself, through pidfds.

A sandbox whose pid 1 is gone is dead (the kernel kills the rest of its pid namespace), so
the server must forget it at once rather than at its deadline. A pidfd works for any
process, not only our children, so sandboxes re-adopted after a server restart (whose
parent is no longer this server's launcher) are watched the same way.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

__all__ = ["ExitListener", "ExitWatcher"]

log = logging.getLogger(__name__)

ExitListener = Callable[[str], None]


class ExitWatcher:
    """Calls the listener with a sandbox id when the watched pid of that sandbox exits."""

    def __init__(self) -> None:
        self._pidfds: dict[str, int] = {}
        self._listener: ExitListener | None = None

    def set_listener(self, listener: ExitListener) -> None:
        self._listener = listener

    def watch(self, sandbox_id: str, pid: int) -> None:
        """Watch `pid` for `sandbox_id` (replacing an earlier watch). Call on the loop."""
        self.unwatch(sandbox_id)
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            asyncio.get_running_loop().call_soon(self._exited, sandbox_id, None)
            return
        self._pidfds[sandbox_id] = pidfd
        asyncio.get_running_loop().add_reader(pidfd, self._exited, sandbox_id, pidfd)

    def unwatch(self, sandbox_id: str) -> None:
        """Stop watching (before a deliberate stop, so it is not reported as an exit)."""
        pidfd = self._pidfds.pop(sandbox_id, None)
        if pidfd is not None:
            asyncio.get_running_loop().remove_reader(pidfd)
            os.close(pidfd)

    def close(self) -> None:
        for sandbox_id in list(self._pidfds):
            self.unwatch(sandbox_id)

    def _exited(self, sandbox_id: str, pidfd: int | None) -> None:
        if pidfd is not None:
            if self._pidfds.get(sandbox_id) != pidfd:
                return
            self.unwatch(sandbox_id)
        if self._listener is None:
            return
        try:
            self._listener(sandbox_id)
        except Exception:
            log.exception("exit listener failed for sandbox %s", sandbox_id)
