"""An inotify watch of one directory (optionally its whole tree), reported as envd events.

Translation follows fsnotify, which envd uses (§6.3): IN_CREATE/IN_MOVED_TO -> CREATE,
IN_MOVED_FROM/IN_MOVE_SELF -> RENAME, IN_ATTRIB -> CHMOD, IN_MODIFY -> WRITE,
IN_DELETE/IN_DELETE_SELF -> REMOVE; one raw event with several bits becomes several events
in that order. Names are relative to the watched directory (`sub/file.txt`); an event on
the watched directory itself is named `.`.

Recursive watches add a watch per subdirectory at start and for every directory created in
or moved into the tree later (its subdirectories too); a directory moved away loses the
watches of its whole subtree. Events of a subdirectory about itself are dropped: its
parent's watch reports them already. Files created in a new subdirectory before its watch
is added are not reported, and a kernel queue overflow (IN_Q_OVERFLOW) loses events, both
as with envd. The descriptor is non-blocking and read from the event loop; nothing here
blocks or uses threads.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from corral.agent.errors import FilesystemError
from corral.agent.filesystem_service._linux import inotify
from corral.agent.filesystem_service.entry_info import describe_path
from corral.agent.filesystem_service.os_errors import filesystem_error
from corral.agent.users import UserDatabase
from corral.protocol.filesystem_messages import EntryInfo, EventType, FilesystemEvent

__all__ = ["DirectoryWatch", "EventListener"]

EventListener = Callable[[list[FilesystemEvent]], None]

_MASK = (
    inotify.IN_CREATE
    | inotify.IN_MOVED_TO
    | inotify.IN_MOVED_FROM
    | inotify.IN_MOVE_SELF
    | inotify.IN_ATTRIB
    | inotify.IN_MODIFY
    | inotify.IN_DELETE
    | inotify.IN_DELETE_SELF
)
_SUBDIRECTORY_MASK = _MASK | inotify.IN_ONLYDIR
# envd's order for one notification carrying several operations.
_OPERATIONS: tuple[tuple[int, EventType], ...] = (
    (inotify.IN_CREATE | inotify.IN_MOVED_TO, EventType.EVENT_TYPE_CREATE),
    (inotify.IN_MOVED_FROM | inotify.IN_MOVE_SELF, EventType.EVENT_TYPE_RENAME),
    (inotify.IN_ATTRIB, EventType.EVENT_TYPE_CHMOD),
    (inotify.IN_MODIFY, EventType.EVENT_TYPE_WRITE),
    (inotify.IN_DELETE | inotify.IN_DELETE_SELF, EventType.EVENT_TYPE_REMOVE),
)
_WITH_ENTRY = frozenset(
    {EventType.EVENT_TYPE_CREATE, EventType.EVENT_TYPE_WRITE, EventType.EVENT_TYPE_CHMOD}
)
_READ_SIZE = 64 * 1024


class DirectoryWatch:
    """Watches `path` (absolute, as requested) and hands batches of events to a listener."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        path: str,
        *,
        recursive: bool,
        include_entry: bool,
        users: UserDatabase,
        listener: EventListener,
    ) -> None:
        self._loop = loop
        self._path = path
        self._recursive = recursive
        self._include_entry = include_entry
        self._users = users
        self._listener = listener
        self._fd = -1
        self._root_wd = -1
        self._relative_by_wd: dict[int, str] = {}

    def start(self) -> None:
        """Open the descriptor and add the watches; raises a `FilesystemError`."""
        try:
            self._fd = inotify.inotify_open()
            self._root_wd = inotify.add_watch(self._fd, self._path, _MASK)
            self._relative_by_wd[self._root_wd] = ""
            if self._recursive:
                self._watch_subdirectories(self._path, "")
        except OSError as exc:
            self.close()
            raise filesystem_error(exc, "watch", self._path) from exc
        self._loop.add_reader(self._fd, self._readable)

    def close(self) -> None:
        """Stop watching; idempotent."""
        if self._fd < 0:
            return
        self._loop.remove_reader(self._fd)
        os.close(self._fd)
        self._fd = -1
        self._relative_by_wd.clear()

    # --- watches ------------------------------------------------------------------------------

    def _watch_subdirectories(self, directory: str, relative: str) -> None:
        """Add watches for every directory below `directory` (not following symlinks)."""
        pending = [(directory, relative)]
        while pending:
            current, current_relative = pending.pop()
            try:
                with os.scandir(current) as scan:
                    children = [c for c in scan if c.is_dir(follow_symlinks=False)]
            except (FileNotFoundError, NotADirectoryError):
                continue
            for child in children:
                child_relative = f"{current_relative}/{child.name}".lstrip("/")
                if self._add_subdirectory(child.path, child_relative):
                    pending.append((child.path, child_relative))

    def _add_subdirectory(self, path: str, relative: str) -> bool:
        try:
            wd = inotify.add_watch(self._fd, path, _SUBDIRECTORY_MASK)
        except (FileNotFoundError, NotADirectoryError):
            return False  # gone again, or replaced by a file
        self._relative_by_wd[wd] = relative
        return True

    def _forget_subtree(self, relative: str) -> None:
        prefix = relative + "/"
        for wd, known in list(self._relative_by_wd.items()):
            if wd != self._root_wd and (known == relative or known.startswith(prefix)):
                del self._relative_by_wd[wd]
                try:
                    inotify.remove_watch(self._fd, wd)
                except OSError:
                    pass  # the kernel dropped it already

    # --- events -------------------------------------------------------------------------------

    def _readable(self) -> None:
        try:
            data = os.read(self._fd, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        events: list[FilesystemEvent] = []
        for raw in inotify.parse_events(data):
            self._translate(raw, events)
        if events:
            self._listener(events)

    def _translate(self, raw: inotify.RawEvent, events: list[FilesystemEvent]) -> None:
        directory = self._relative_by_wd.get(raw.wd)
        if directory is None or raw.mask & (inotify.IN_IGNORED | inotify.IN_Q_OVERFLOW):
            if raw.mask & inotify.IN_IGNORED:
                self._relative_by_wd.pop(raw.wd, None)
            return
        if not raw.name:
            if raw.wd != self._root_wd:
                return  # the parent directory's watch reports this event
            relative = "."
        else:
            name = os.fsdecode(raw.name)
            relative = f"{directory}/{name}" if directory else name
        if self._recursive and raw.name and raw.mask & inotify.IN_ISDIR:
            if raw.mask & inotify.IN_MOVED_FROM:
                self._forget_subtree(relative)
            elif raw.mask & (inotify.IN_CREATE | inotify.IN_MOVED_TO):
                self._follow_new_directory(relative)
        for bits, event_type in _OPERATIONS:
            if raw.mask & bits:
                entry = self._entry(relative, event_type)
                events.append(FilesystemEvent(relative, event_type, entry))

    def _follow_new_directory(self, relative: str) -> None:
        full = f"{self._path.rstrip('/')}/{relative}"
        try:
            if self._add_subdirectory(full, relative):
                self._watch_subdirectories(full, relative)
        except OSError:
            pass  # out of watches: the rest of the tree is still reported

    def _entry(self, relative: str, event_type: EventType) -> EntryInfo | None:
        if not self._include_entry or event_type not in _WITH_ENTRY:
            return None
        path = self._path if relative == "." else f"{self._path.rstrip('/')}/{relative}"
        try:
            return describe_path(path, self._users)
        except FilesystemError:
            return None
