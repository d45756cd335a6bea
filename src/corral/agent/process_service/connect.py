"""`process.Process/Connect` (server-stream): attach to a running or just-ended process.

`Connect-Timeout-Ms` bounds only this stream (it ends with `deadline_exceeded`); the process
is never affected by the stream ending.
"""

from __future__ import annotations

from corral.agent.connect_server import CallContext, ServerStream, ServerStreamMethod, Wire
from corral.agent.event_stream import ProcessEventStream
from corral.agent.process_service.context import ProcessService
from corral.protocol.connect import Code, ConnectError
from corral.protocol.process_messages import ConnectRequest

__all__ = ["connect_method"]


def connect_method(service: ProcessService) -> ServerStreamMethod:
    def connect(ctx: CallContext, message: Wire, stream: ServerStream) -> None:
        request = ConnectRequest.from_wire(message)
        process = service.table.find_attachable(request.process)
        if ctx.timeout is not None:
            stream.close_after(
                ctx.timeout, ConnectError(Code.DEADLINE_EXCEEDED, "stream deadline exceeded")
            )
        ProcessEventStream(service.loop, stream, ctx.keepalive_interval).follow(process)

    return ServerStreamMethod(connect)
