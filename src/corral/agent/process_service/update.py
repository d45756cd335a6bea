"""`process.Process/Update` (unary): resize a PTY (TIOCSWINSZ; the job gets SIGWINCH)."""

from __future__ import annotations

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.process_service.context import ProcessService
from corral.protocol.process_messages import UpdateRequest

__all__ = ["update_method"]


def update_method(service: ProcessService) -> UnaryMethod:
    def update(ctx: CallContext, message: Wire) -> Wire:
        request = UpdateRequest.from_wire(message)
        process = service.table.find_running(request.process)
        if request.pty is not None:
            process.resize(request.pty)
        return {}

    return UnaryMethod(update)
