"""The polled watchers of `CreateWatcher`/`GetWatcherEvents`/`RemoveWatcher` (§6.3).

The sync SDK cannot hold a stream open, so it creates a watcher, polls its events and
removes it. A watcher lives until `RemoveWatcher` or until the agent stops; its events
wait in memory until the next poll, at most `MAX_PENDING_EVENTS` of them (the oldest are
dropped beyond that, so a forgotten watcher cannot exhaust the sandbox's memory).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable

from corral.agent.errors import PathNotFound
from corral.agent.filesystem_service.directory_watch import DirectoryWatch, EventListener
from corral.protocol.filesystem_messages import FilesystemEvent

__all__ = ["MAX_PENDING_EVENTS", "WatcherRegistry"]

MAX_PENDING_EVENTS = 100_000


class _Watcher:
    def __init__(self) -> None:
        self.events: deque[FilesystemEvent] = deque(maxlen=MAX_PENDING_EVENTS)
        self.watch: DirectoryWatch | None = None

    def record(self, events: list[FilesystemEvent]) -> None:
        self.events.extend(events)


class WatcherRegistry:
    """Watcher id -> its watch and pending events."""

    def __init__(self) -> None:
        self._watchers: dict[str, _Watcher] = {}

    def create(self, start: Callable[[EventListener], DirectoryWatch]) -> str:
        """Start a watch with `start(listener)` and return the new watcher's id."""
        watcher = _Watcher()
        watcher.watch = start(watcher.record)
        watcher_id = os.urandom(10).hex()
        self._watchers[watcher_id] = watcher
        return watcher_id

    def take_events(self, watcher_id: str) -> list[FilesystemEvent]:
        """Every event since the previous call; raises `PathNotFound` for an unknown id."""
        watcher = self._find(watcher_id)
        events = list(watcher.events)
        watcher.events.clear()
        return events

    def remove(self, watcher_id: str) -> None:
        watcher = self._find(watcher_id)
        del self._watchers[watcher_id]
        if watcher.watch is not None:
            watcher.watch.close()

    def close_all(self) -> None:
        for watcher_id in list(self._watchers):
            self.remove(watcher_id)

    def _find(self, watcher_id: str) -> _Watcher:
        watcher = self._watchers.get(watcher_id)
        if watcher is None:
            raise PathNotFound(f"watcher with id '{watcher_id}' not found")
        return watcher
