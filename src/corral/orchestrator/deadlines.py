"""One scheduler for every sandbox deadline, on the event loop's own timer heap.

Each sandbox has at most one pending `loop.call_at` handle; moving a deadline cancels the old
handle. Deadlines are wall-clock (`clock()`, by default `time.time()`, as persisted in
`end_at`) and converted to the loop's monotonic clock when armed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["DeadlineScheduler"]


class DeadlineScheduler:
    """Calls `on_expired(sandbox_id)` on the loop once a sandbox's deadline has passed."""

    def __init__(
        self, on_expired: Callable[[str], None], clock: Callable[[], float] = time.time
    ) -> None:
        self._on_expired = on_expired
        self._clock = clock
        self._handles: dict[str, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._handles)

    def set(self, sandbox_id: str, end_at: float) -> None:
        """Arm (or move) the deadline of `sandbox_id` to wall-clock time `end_at`."""
        self.cancel(sandbox_id)
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, end_at - self._clock())
        self._handles[sandbox_id] = loop.call_at(when, self._fire, sandbox_id)

    def cancel(self, sandbox_id: str) -> None:
        handle = self._handles.pop(sandbox_id, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()

    def _fire(self, sandbox_id: str) -> None:
        self._handles.pop(sandbox_id, None)
        self._on_expired(sandbox_id)
