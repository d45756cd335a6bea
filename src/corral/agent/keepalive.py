"""Keepalives of a server stream (protocol doc §4.6), for process and watch streams alike.

A keepalive message goes out whenever nothing else was sent for `Keepalive-Ping-Interval`
seconds, and none while the client's window is full. One timer per stream, re-armed
lazily: sending a message only records the time, so busy streams pay nothing for keepalives.
"""

from __future__ import annotations

import asyncio

from corral.agent.connect_server import ServerStream

__all__ = ["KeptAliveStream"]


class KeptAliveStream:
    """The sending side of one server stream, plus a `keepalive` message while it is idle."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        stream: ServerStream,
        interval: float,
        keepalive: bytes,
    ) -> None:
        self._loop = loop
        self._stream = stream
        self._interval = interval
        self._keepalive = keepalive
        self._last_sent = loop.time()
        self._timer: asyncio.TimerHandle | None = None

    def start_keepalives(self) -> None:
        """Arm the timer (after the stream's first message, or right away)."""
        self._timer = self._loop.call_later(self._interval, self._due)

    def send(self, payload: bytes) -> None:
        """Send one message now (the caller respects `write_paused`)."""
        self._stream.send(payload)
        self._last_sent = self._loop.time()

    def stop_keepalives(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _due(self) -> None:
        self._timer = None
        if self._stream.closed:
            return
        idle = self._loop.time() - self._last_sent
        if idle >= self._interval * 0.99:
            if not self._stream.write_paused:
                self.send(self._keepalive)
            delay = self._interval
        else:
            delay = self._interval - idle
        self._timer = self._loop.call_later(delay, self._due)
