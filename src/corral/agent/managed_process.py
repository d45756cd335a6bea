"""One started process: its output pump, attached event streams, input, signals and end.

Life of a process (protocol doc §5.4-§5.5)::

    running ──(SIGCHLD reaped)──> exited ──(outputs at EOF, or grace elapsed)──> ended
                                                            └─> retained briefly for Connect

* Output is read from the pipes (or PTY master) by the event loop and broadcast, as the same
  encoded event, to every attached stream; nobody attached -> it is read and dropped.
* If any attached stream's transport is full, reading pauses (backpressure to the process)
  until it drains, so memory stays bounded whatever the process writes.
* The `end` event goes out once the process was reaped *and* its outputs reached EOF. An
  orphaned grandchild keeping the pipes open cannot hold it back longer than
  `OUTPUT_GRACE_SECONDS` after the exit.
* Detaching a stream (client disconnect) never touches the process.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import Protocol

from corral.agent.errors import InputUnavailable
from corral.agent.exit_status import end_event_for_status
from corral.agent.input_writer import InputWriter
from corral.agent.spawn import SpawnedChild, set_window_size
from corral.protocol.process_messages import (
    DataEvent,
    EndEvent,
    InputStream,
    OutputStream,
    ProcessConfig,
    ProcessInfo,
    ProcessInput,
    PtySize,
    StartEvent,
    encode_event,
)

__all__ = ["OUTPUT_GRACE_SECONDS", "EventSink", "ManagedProcess"]

# Longest wait for output EOF after the process itself exited (orphans holding the pipes).
OUTPUT_GRACE_SECONDS = 0.2
# Largest chunk per data event (protocol doc §5.5).
_PIPE_CHUNK = 32 * 1024
_PTY_CHUNK = 16 * 1024


class EventSink(Protocol):
    """A stream attached to a process (one `Start` or `Connect` call)."""

    def send_event(self, payload: bytes) -> None:
        """Send one encoded `ProcessEvent` message."""

    def finish(self, end_payload: bytes) -> None:
        """Send the encoded `end` event, the last one, and complete the stream."""


class ManagedProcess:
    """A process started by the agent, from `Start` until it is forgotten."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        child: SpawnedChild,
        config: ProcessConfig,
        tag: str | None,
        on_ended: Callable[[ManagedProcess], None],
    ) -> None:
        self._loop = loop
        self._pty_fd = child.pty_fd
        self.pid = child.pid
        self.config = config
        self.tag = tag
        self.is_pty = child.pty_fd is not None
        self._on_ended = on_ended
        self._sinks: list[EventSink] = []
        self._paused_sinks: set[int] = set()
        self._reading = False
        self._outputs: dict[int, OutputStream] = {}
        if child.pty_fd is not None:
            self._outputs[child.pty_fd] = OutputStream.PTY
            self._input: InputWriter | None = InputWriter(loop, child.pty_fd, owns_fd=False)
        else:
            assert child.stdout_fd is not None and child.stderr_fd is not None
            self._outputs[child.stdout_fd] = OutputStream.STDOUT
            self._outputs[child.stderr_fd] = OutputStream.STDERR
            self._input = (
                None if child.stdin_fd is None else InputWriter(loop, child.stdin_fd, owns_fd=True)
            )
        self._chunk = _PTY_CHUNK if self.is_pty else _PIPE_CHUNK
        self._end: EndEvent | None = None
        self._ended = False
        self._lifetime_timer: asyncio.TimerHandle | None = None
        self._grace_timer: asyncio.TimerHandle | None = None
        self._start_reading()

    # --- state --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Not yet reaped: signals, input and resizes still apply."""
        return self._end is None

    @property
    def ended(self) -> bool:
        """The `end` event was sent; only a late `Connect` can still see this process."""
        return self._ended

    def info(self) -> ProcessInfo:
        return ProcessInfo(config=self.config, pid=self.pid, tag=self.tag)

    # --- streams ------------------------------------------------------------------------

    def attach(self, sink: EventSink) -> None:
        """Send `start` to `sink` and stream live events to it (just `end` if ended)."""
        sink.send_event(encode_event(StartEvent(self.pid)))
        if self._ended:
            assert self._end is not None
            sink.finish(encode_event(self._end))
            return
        self._sinks.append(sink)

    def detach(self, sink: EventSink) -> None:
        """Stop sending to `sink` (its client went away). The process is not affected."""
        if sink in self._sinks:
            self._sinks.remove(sink)
        self.set_sink_paused(sink, False)

    def set_sink_paused(self, sink: EventSink, paused: bool) -> None:
        """Flow control from a stream: while any stream is full, output is not read."""
        key = id(sink)
        if paused and sink in self._sinks:
            self._paused_sinks.add(key)
            self._stop_reading()
        elif key in self._paused_sinks:
            self._paused_sinks.discard(key)
            if not self._paused_sinks:
                self._start_reading()

    # --- input, signals, resize -----------------------------------------------------------

    def write_input(self, data: ProcessInput) -> asyncio.Future[None] | None:
        """Write stdin or PTY input in order; a future if it could not all be written now."""
        if data.stream is None:
            return None
        if data.stream is InputStream.PTY and not self.is_pty:
            raise InputUnavailable("tty not assigned to process")
        if data.stream is InputStream.STDIN and self.is_pty:
            raise InputUnavailable("process has a tty: send input as pty data")
        if self._input is None or self._input.closed or not self.running:
            raise InputUnavailable("stdin not enabled or closed")
        return self._input.write(data.data)

    def close_stdin(self) -> None:
        """Deliver EOF on stdin once queued input is written. Idempotent."""
        if self.is_pty:
            raise InputUnavailable("cannot close stdin of a tty process: send Ctrl-D instead")
        if self._input is not None:
            self._input.close_when_flushed()

    def send_signal(self, signum: int) -> None:
        """Signal the process and its process group (its job)."""
        if not self.running:
            return
        # The pid cannot be reused before we reap it, so this reaches the right process.
        for deliver in (os.kill, os.killpg):
            try:
                deliver(self.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def kill_after(self, seconds: float) -> None:
        """Bound the process's lifetime (`Connect-Timeout-Ms` of its `Start`)."""
        self._lifetime_timer = self._loop.call_later(seconds, self.send_signal, signal.SIGKILL)

    def resize(self, size: PtySize) -> None:
        if self._pty_fd is None or not self.running:
            raise InputUnavailable("tty not assigned to process")
        try:
            set_window_size(self._pty_fd, size)
        except OSError as exc:
            raise InputUnavailable(f"failed to resize tty: {exc.strerror}") from exc

    # --- exit -----------------------------------------------------------------------------

    def on_reaped(self, wait_status: int) -> None:
        """The reaper collected our exit status."""
        if self._end is not None:
            return
        self._end = end_event_for_status(wait_status)
        if self._lifetime_timer is not None:
            self._lifetime_timer.cancel()
            self._lifetime_timer = None
        if self._input is not None and not self.is_pty:
            self._input.abort("process has exited")
        if not self._outputs:
            self._finish()
        else:
            self._grace_timer = self._loop.call_later(OUTPUT_GRACE_SECONDS, self._grace_over)

    def _grace_over(self) -> None:
        self._grace_timer = None
        if self._ended:
            return
        if self._paused_sinks:  # a slow reader: keep the output, check again later
            self._grace_timer = self._loop.call_later(OUTPUT_GRACE_SECONDS, self._grace_over)
            return
        for fd in list(self._outputs):
            self._read_once(fd)  # what is already buffered still goes out
        for fd in list(self._outputs):
            self._close_output(fd)
        self._finish()

    def _finish(self) -> None:
        if self._ended:
            return
        self._ended = True
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        for fd in list(self._outputs):
            self._close_output(fd)
        if self._input is not None:
            self._input.abort("process has exited")
            self._input = None
        if self._pty_fd is not None:
            try:
                os.close(self._pty_fd)
            except OSError:
                pass
            self._pty_fd = None
        assert self._end is not None
        payload = encode_event(self._end)
        sinks, self._sinks = self._sinks, []
        self._paused_sinks.clear()
        for sink in sinks:
            sink.finish(payload)
        self._on_ended(self)

    # --- output pump ------------------------------------------------------------------------

    def _start_reading(self) -> None:
        if self._reading or self._paused_sinks:
            return
        for fd in self._outputs:
            self._loop.add_reader(fd, self._read_once, fd)
        self._reading = True

    def _stop_reading(self) -> None:
        if not self._reading:
            return
        for fd in self._outputs:
            self._loop.remove_reader(fd)
        self._reading = False

    def _read_once(self, fd: int) -> None:
        try:
            data = os.read(fd, self._chunk)
        except BlockingIOError:
            return
        except OSError:  # EIO: the PTY slave is closed everywhere
            data = b""
        if not data:
            self._close_output(fd)
            if self._end is not None and not self._outputs:
                self._finish()
            return
        if self._sinks:
            payload = encode_event(DataEvent(self._outputs[fd], data))
            for sink in list(self._sinks):
                sink.send_event(payload)

    def _close_output(self, fd: int) -> None:
        if self._outputs.pop(fd, None) is None:
            return
        if self._reading:
            self._loop.remove_reader(fd)
        if fd != self._pty_fd:  # the PTY master also carries input: closed at the end
            try:
                os.close(fd)
            except OSError:
                pass
