"""The envd `process.Process` service: one module per RPC (protocol doc §5)."""

from __future__ import annotations

from corral.agent.connect_server import Method
from corral.agent.process_service.close_stdin import close_stdin_method
from corral.agent.process_service.connect import connect_method
from corral.agent.process_service.context import ProcessService
from corral.agent.process_service.list_processes import list_method
from corral.agent.process_service.send_input import send_input_method
from corral.agent.process_service.send_signal import send_signal_method
from corral.agent.process_service.start import start_method
from corral.agent.process_service.stream_input import stream_input_method
from corral.agent.process_service.update import update_method

__all__ = ["ProcessService", "process_methods"]


def process_methods(service: ProcessService) -> dict[str, Method]:
    """RPC path -> method, for every `process.Process` call."""
    return {
        "/process.Process/Start": start_method(service),
        "/process.Process/Connect": connect_method(service),
        "/process.Process/List": list_method(service),
        "/process.Process/SendInput": send_input_method(service),
        "/process.Process/StreamInput": stream_input_method(service),
        "/process.Process/CloseStdin": close_stdin_method(service),
        "/process.Process/SendSignal": send_signal_method(service),
        "/process.Process/Update": update_method(service),
    }
