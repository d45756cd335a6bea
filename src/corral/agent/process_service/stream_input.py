"""`process.Process/StreamInput` (client-stream): `start`, then `data`... in order, then EOF.

Input is written in arrival order; while a write waits for the pipe to drain, reading of
the request body pauses (backpressure to the client). The answer (`{}`) goes out after the
client's EOF once everything was written.
"""

from __future__ import annotations

import asyncio

from corral.agent.connect_server import (
    CallContext,
    ClientStreamCall,
    ClientStreamConsumer,
    ClientStreamMethod,
    Wire,
    connect_error_for,
)
from corral.agent.managed_process import ManagedProcess
from corral.agent.process_service.context import ProcessService
from corral.protocol.connect import Code, ConnectError
from corral.protocol.process_messages import (
    StreamInputData,
    StreamInputStart,
    decode_stream_input,
)

__all__ = ["stream_input_method"]


class _InputFeeder:
    """Consumer of one StreamInput call."""

    def __init__(self, service: ProcessService, call: ClientStreamCall) -> None:
        self._service = service
        self._call = call
        self._process: ManagedProcess | None = None
        self._pending: asyncio.Future[None] | None = None
        self._ended = False

    def on_message(self, message: Wire) -> None:
        event = decode_stream_input(message)
        if isinstance(event, StreamInputStart):
            if self._process is None:
                self._process = self._service.table.find_running(event.process)
            return
        if isinstance(event, StreamInputData):
            if self._process is None:
                raise ConnectError(Code.INVALID_ARGUMENT, "first message must be a start event")
            pending = self._process.write_input(event.input)
            if pending is not None:
                self._wait_for(pending)

    def _wait_for(self, pending: asyncio.Future[None]) -> None:
        self._pending = pending
        self._call.pause_input()
        pending.add_done_callback(self._written)

    def _written(self, pending: asyncio.Future[None]) -> None:
        if pending is not self._pending:
            return
        self._pending = None
        if pending.cancelled() or self._call.done:
            return
        error = pending.exception()
        if error is not None:
            self._call.fail(connect_error_for(error))
        elif self._ended:
            self._call.reply({})
        self._call.resume_input()

    def on_end(self) -> None:
        if self._process is None:
            raise ConnectError(Code.INVALID_ARGUMENT, "first message must be a start event")
        self._ended = True
        if self._pending is None:
            self._call.reply({})

    def on_disconnect(self) -> None:
        self._pending = None


def stream_input_method(service: ProcessService) -> ClientStreamMethod:
    def stream_input(ctx: CallContext, call: ClientStreamCall) -> ClientStreamConsumer:
        return _InputFeeder(service, call)

    return ClientStreamMethod(stream_input)
