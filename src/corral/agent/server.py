"""Run the agent: an asyncio loop serving HTTP on a unix socket, reaping as pid 1.

`serve` blocks until SIGTERM/SIGINT, then kills every process it started. It creates no
threads: signals arrive through the loop's wakeup fd, SIGCHLD runs the reaper.
"""

from __future__ import annotations

import asyncio
import signal
import socket

from corral.agent.http_server import HttpConnection
from corral.agent.process_service import ProcessService, process_methods
from corral.agent.process_table import ProcessTable
from corral.agent.routes import AgentApp
from corral.agent.users import UserDatabase
from corral.protocol.agent_config import AgentConfig

__all__ = ["serve"]

_BACKLOG = 1024


async def _run(listener: socket.socket, config: AgentConfig, etc_dir: str) -> None:
    loop = asyncio.get_running_loop()
    table = ProcessTable(loop)
    service = ProcessService(loop=loop, config=config, users=UserDatabase(etc_dir), table=table)
    app = AgentApp(loop, config, process_methods(service))
    stop: asyncio.Future[None] = loop.create_future()

    def request_stop() -> None:
        if not stop.done():
            stop.set_result(None)

    loop.add_signal_handler(signal.SIGCHLD, table.reap_children)
    loop.add_signal_handler(signal.SIGTERM, request_stop)
    loop.add_signal_handler(signal.SIGINT, request_stop)
    table.reap_children()  # anything that exited before the handler was installed
    server = await loop.create_unix_server(
        lambda: HttpConnection(app), sock=listener, backlog=_BACKLOG
    )
    try:
        await stop
    finally:
        server.close()
        table.kill_all()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            loop.remove_signal_handler(signum)


def serve(listener: socket.socket, config: AgentConfig, *, etc_dir: str = "/etc") -> None:
    """Serve envd on `listener` (a bound unix stream socket) until SIGTERM or SIGINT.

    `etc_dir` is where `passwd` and `group` are read (tests point it elsewhere).
    """
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_run(listener, config, etc_dir))
    finally:
        loop.close()
