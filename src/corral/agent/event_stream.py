"""A `Start`/`Connect` stream attached to a process: events, keepalives, flow control.

Keepalives (protocol doc §4.6, `corral.agent.keepalive`): a `{"event":{"keepalive":{}}}`
whenever nothing else was sent for `Keepalive-Ping-Interval` seconds.
"""

from __future__ import annotations

import asyncio

from corral.agent.connect_server import ServerStream
from corral.agent.keepalive import KeptAliveStream
from corral.agent.managed_process import ManagedProcess
from corral.protocol.process_messages import KeepaliveEvent, encode_event

__all__ = ["ProcessEventStream"]

_KEEPALIVE_PAYLOAD = encode_event(KeepaliveEvent())


class ProcessEventStream:
    """Forwards one process's events to one server stream (an `EventSink`)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, stream: ServerStream, keepalive_interval: float
    ) -> None:
        self._stream = stream
        self._out = KeptAliveStream(loop, stream, keepalive_interval, _KEEPALIVE_PAYLOAD)
        self._process: ManagedProcess | None = None

    def follow(self, process: ManagedProcess) -> None:
        """Attach to `process`: `start`, then live events until `end`."""
        self._process = process
        self._stream.on_abandoned = self._abandoned
        self._stream.on_flow = self._flow
        process.attach(self)
        if not self._stream.closed:
            self._out.start_keepalives()

    # EventSink
    def send_event(self, payload: bytes) -> None:
        self._out.send(payload)

    def finish(self, end_payload: bytes) -> None:
        self._out.stop_keepalives()
        self._stream.close(last_message=end_payload)

    def _abandoned(self) -> None:
        """The client went away (or the stream deadline passed): the process lives on."""
        self._out.stop_keepalives()
        if self._process is not None:
            self._process.detach(self)

    def _flow(self, paused: bool) -> None:
        if self._process is not None:
            self._process.set_sink_paused(self, paused)
