"""`process.Process/SendSignal` (unary): SIGTERM or SIGKILL to a process and its group."""

from __future__ import annotations

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.process_service.context import ProcessService
from corral.protocol.connect import Code, ConnectError
from corral.protocol.process_messages import SendSignalRequest, Signal

__all__ = ["send_signal_method"]


def send_signal_method(service: ProcessService) -> UnaryMethod:
    def send_signal(ctx: CallContext, message: Wire) -> Wire:
        request = SendSignalRequest.from_wire(message)
        if request.signal is Signal.SIGNAL_UNSPECIFIED:
            raise ConnectError(Code.INVALID_ARGUMENT, "invalid signal: SIGNAL_UNSPECIFIED")
        service.table.find_running(request.process).send_signal(int(request.signal))
        return {}

    return UnaryMethod(send_signal)
