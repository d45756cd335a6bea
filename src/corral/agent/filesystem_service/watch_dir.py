"""`filesystem.Filesystem/WatchDir` (server-stream): live events of a directory (tree).

The stream opens with `{"start":{}}` (the async SDK waits for it), then carries one
`{"filesystem":{...}}` message per event and a `{"keepalive":{}}` whenever nothing was sent
for `Keepalive-Ping-Interval` seconds (§4.6, `corral.agent.keepalive`). `Connect-Timeout-Ms`
bounds the stream (`deadline_exceeded`). The watch ends with the stream: client gone or
deadline. While the client does not read, at most `MAX_BACKLOG` events wait in the agent
(the oldest are dropped), so a stalled client cannot make pid 1 of the sandbox run out of
memory.
"""

from __future__ import annotations

import asyncio
from collections import deque

from corral.agent.connect_server import CallContext, ServerStream, ServerStreamMethod, Wire
from corral.agent.filesystem_service.context import FilesystemService
from corral.agent.filesystem_service.directory_watch import DirectoryWatch
from corral.agent.filesystem_service.start_watch import start_watch
from corral.agent.keepalive import KeptAliveStream
from corral.protocol.connect import Code, ConnectError
from corral.protocol.filesystem_messages import (
    FilesystemEvent,
    WatchDirRequest,
    encode_watch_event,
    encode_watch_keepalive,
    encode_watch_start,
)

__all__ = ["MAX_BACKLOG", "watch_dir_method"]

MAX_BACKLOG = 10_000

_KEEPALIVE = encode_watch_keepalive()


class _WatchStream:
    """Forwards a watch's events to one server stream, with keepalives."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, stream: ServerStream, keepalive_interval: float
    ) -> None:
        self._stream = stream
        self._out = KeptAliveStream(loop, stream, keepalive_interval, _KEEPALIVE)
        self._backlog: deque[bytes] = deque(maxlen=MAX_BACKLOG)
        self.watch: DirectoryWatch | None = None

    def begin(self, watch: DirectoryWatch) -> None:
        self.watch = watch
        self._stream.on_abandoned = self._abandoned
        self._stream.on_flow = self._flow
        self._out.send(encode_watch_start())
        self._out.start_keepalives()

    def deliver(self, events: list[FilesystemEvent]) -> None:
        for event in events:
            self._backlog.append(encode_watch_event(event))
        self._flush()

    def _flush(self) -> None:
        while self._backlog and not self._stream.write_paused:
            self._out.send(self._backlog.popleft())

    def _flow(self, paused: bool) -> None:
        if not paused:
            self._flush()

    def _abandoned(self) -> None:
        """The client went away or the deadline passed: stop watching."""
        self._out.stop_keepalives()
        if self.watch is not None:
            self.watch.close()


def watch_dir_method(service: FilesystemService) -> ServerStreamMethod:
    def watch_dir(ctx: CallContext, message: Wire, stream: ServerStream) -> None:
        request = WatchDirRequest.from_wire(message)
        user = service.caller(ctx)
        path = service.resolve(request.path, user)
        forwarder = _WatchStream(service.loop, stream, ctx.keepalive_interval)
        watch = start_watch(service.loop, path, request, service.users, forwarder.deliver)
        if ctx.timeout is not None:
            stream.close_after(
                ctx.timeout, ConnectError(Code.DEADLINE_EXCEEDED, "watch deadline exceeded")
            )
        forwarder.begin(watch)

    return ServerStreamMethod(watch_dir)
