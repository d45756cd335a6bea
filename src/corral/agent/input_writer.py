"""Ordered, non-blocking writes of stdin/PTY input into a process.

A write that fits into the pipe (or PTY) buffer completes at once and costs no allocation;
the rest is queued and flushed when the fd becomes writable, in order, with a future per
queued write so callers (SendInput, StreamInput) can answer only once their bytes are in.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque

from corral.agent.errors import InputUnavailable

__all__ = ["InputWriter"]


class InputWriter:
    """Writes to a non-blocking fd without ever blocking the event loop.

    With `owns_fd` the writer closes the fd on `close_when_flushed`/`abort` (a stdin pipe);
    otherwise the fd belongs to someone else (a PTY master also used for reading).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, *, owns_fd: bool) -> None:
        self._loop = loop
        self._fd = fd
        self._owns_fd = owns_fd
        self._pending: deque[tuple[memoryview, asyncio.Future[None]]] = deque()
        self._watching = False
        self._close_requested = False
        self._closed = False

    @property
    def closed(self) -> bool:
        """No more input is accepted (closed, close requested, or aborted)."""
        return self._closed or self._close_requested

    @property
    def backlog(self) -> int:
        """Bytes accepted but not yet written."""
        return sum(len(view) for view, _ in self._pending)

    def write(self, data: bytes) -> asyncio.Future[None] | None:
        """Queue `data`; returns None if it was all written now, else a future for it."""
        if self.closed:
            raise InputUnavailable("stdin not enabled or closed")
        view = memoryview(data)
        if not self._pending:
            try:
                written = os.write(self._fd, view) if view else 0
            except BlockingIOError:
                written = 0
            except OSError as exc:
                raise InputUnavailable(f"failed to write input: {exc.strerror}") from exc
            view = view[written:]
            if not view:
                return None
        future: asyncio.Future[None] = self._loop.create_future()
        self._pending.append((view, future))
        self._watch()
        return future

    def close_when_flushed(self) -> None:
        """Close the fd once every queued byte is written (EOF for the reader)."""
        if self.closed:
            return
        self._close_requested = True
        if not self._pending:
            self._close()

    def abort(self, reason: str) -> None:
        """Stop writing: queued writes fail with `InputUnavailable(reason)`."""
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                future.set_exception(InputUnavailable(reason))
        self._close()

    def _watch(self) -> None:
        if not self._watching:
            self._loop.add_writer(self._fd, self._on_writable)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_writer(self._fd)
            self._watching = False

    def _on_writable(self) -> None:
        while self._pending:
            view, future = self._pending[0]
            try:
                written = os.write(self._fd, view)
            except BlockingIOError:
                return
            except OSError as exc:
                self.abort(f"failed to write input: {exc.strerror}")
                return
            if written < len(view):
                self._pending[0] = (view[written:], future)
                return
            self._pending.popleft()
            if not future.done():
                future.set_result(None)
        self._unwatch()
        if self._close_requested:
            self._close()

    def _close(self) -> None:
        if self._closed:
            return
        self._unwatch()
        self._closed = True
        if self._owns_fd:
            try:
                os.close(self._fd)
            except OSError:
                pass
