"""`process.Process/SendInput` (unary): write stdin or PTY bytes; answers once written."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from corral.agent.connect_server import CallContext, UnaryMethod, Wire
from corral.agent.process_service.context import ProcessService
from corral.protocol.process_messages import SendInputRequest

__all__ = ["send_input_method"]

_EMPTY: Wire = {}


async def _after(pending: asyncio.Future[None]) -> Wire:
    await pending
    return _EMPTY


def send_input_method(service: ProcessService) -> UnaryMethod:
    def send_input(ctx: CallContext, message: Wire) -> Wire | Awaitable[Wire]:
        request = SendInputRequest.from_wire(message)
        process = service.table.find_running(request.process)
        pending = process.write_input(request.input)
        return _EMPTY if pending is None else _after(pending)

    return UnaryMethod(send_input)
