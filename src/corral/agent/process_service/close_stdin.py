"""`process.Process/CloseStdin` (unary): EOF on stdin after queued input; idempotent."""

from __future__ import annotations

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.process_service.context import ProcessService
from corral.protocol.process_messages import CloseStdinRequest

__all__ = ["close_stdin_method"]


def close_stdin_method(service: ProcessService) -> UnaryMethod:
    def close_stdin(ctx: CallContext, message: Wire) -> Wire:
        request = CloseStdinRequest.from_wire(message)
        service.table.find_running(request.process).close_stdin()
        return {}

    return UnaryMethod(close_stdin)
