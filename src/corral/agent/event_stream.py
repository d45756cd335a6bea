"""A `Start`/`Connect` stream attached to a process: events, keepalives, flow control.

Keepalives (protocol doc §4.6): a `{"event":{"keepalive":{}}}` whenever nothing else was
sent for `Keepalive-Ping-Interval` seconds. One timer per stream, re-armed lazily: sending
an event only records the time, so busy streams pay nothing for keepalives.
"""

from __future__ import annotations

import asyncio

from corral.agent.connect_server import ServerStream
from corral.agent.managed_process import ManagedProcess
from corral.protocol.process_messages import KeepaliveEvent, encode_event

__all__ = ["ProcessEventStream"]

_KEEPALIVE_PAYLOAD = encode_event(KeepaliveEvent())


class ProcessEventStream:
    """Forwards one process's events to one server stream (an `EventSink`)."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, stream: ServerStream, keepalive_interval: float
    ) -> None:
        self._loop = loop
        self._stream = stream
        self._interval = keepalive_interval
        self._last_sent = loop.time()
        self._timer: asyncio.TimerHandle | None = None
        self._process: ManagedProcess | None = None

    def follow(self, process: ManagedProcess) -> None:
        """Attach to `process`: `start`, then live events until `end`."""
        self._process = process
        self._stream.on_abandoned = self._abandoned
        self._stream.on_flow = self._flow
        process.attach(self)
        if not self._stream.closed:
            self._timer = self._loop.call_later(self._interval, self._keepalive_due)

    # EventSink
    def send_event(self, payload: bytes) -> None:
        self._stream.send(payload)
        self._last_sent = self._loop.time()

    def finish(self, end_payload: bytes) -> None:
        self._cancel_timer()
        self._stream.close(last_message=end_payload)

    def _abandoned(self) -> None:
        """The client went away (or the stream deadline passed): the process lives on."""
        self._cancel_timer()
        if self._process is not None:
            self._process.detach(self)

    def _flow(self, paused: bool) -> None:
        if self._process is not None:
            self._process.set_sink_paused(self, paused)

    def _keepalive_due(self) -> None:
        self._timer = None
        if self._stream.closed:
            return
        idle = self._loop.time() - self._last_sent
        if idle >= self._interval * 0.99:
            if not self._stream.write_paused:
                self.send_event(_KEEPALIVE_PAYLOAD)
            delay = self._interval
        else:
            delay = self._interval - idle
        self._timer = self._loop.call_later(delay, self._keepalive_due)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
