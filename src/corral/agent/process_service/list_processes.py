"""`process.Process/List` (unary): every running process, commands and PTYs alike."""

from __future__ import annotations

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.process_service.context import ProcessService
from corral.protocol.process_messages import ListResponse

__all__ = ["list_method"]


def list_method(service: ProcessService) -> UnaryMethod:
    def list_processes(ctx: CallContext, message: Wire) -> Wire:
        infos = tuple(process.info() for process in service.table.running())
        return ListResponse(infos).to_wire()

    return UnaryMethod(list_processes)
