"""Run the agent: an asyncio loop serving HTTP on a unix socket, reaping as pid 1.

`serve` blocks until SIGTERM/SIGINT, then kills every process it started. It creates no
threads: signals arrive through the loop's wakeup fd, SIGCHLD runs the reaper.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket

from corral.agent.files import FileTransfers
from corral.agent.filesystem_service import FilesystemService, WatcherRegistry, filesystem_methods
from corral.agent.http_server import HttpConnection
from corral.agent.process_service import ProcessService, process_methods
from corral.agent.process_table import ProcessTable
from corral.agent.routes import AgentApp
from corral.agent.start_command import StartCommand
from corral.agent.users import UserDatabase
from corral.protocol.agent_config import AgentConfig

__all__ = ["run", "serve"]

_BACKLOG = 1024
_FALLBACK_FD_LIMIT = 1024


def _prepare_file_descriptors(listener: socket.socket) -> None:
    """Started processes inherit every fd that is not close-on-exec (posix_spawn closes
    nothing): mark all of ours, inherited ones included (the launcher hands the listener
    over as inheritable), and make sure 0-2 exist so no pipe can land on them."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free fd: exactly this one
    listener.set_inheritable(False)
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, _FALLBACK_FD_LIMIT))
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


async def run(
    listener: socket.socket,
    config: AgentConfig,
    etc_dir: str,
    stop: asyncio.Future[None] | None = None,
) -> None:
    """Serve on the running loop until SIGTERM/SIGINT or until `stop` is done."""
    loop = asyncio.get_running_loop()
    table = ProcessTable(loop)
    users = UserDatabase(etc_dir)
    service = ProcessService(loop=loop, config=config, users=users, table=table)
    filesystem = FilesystemService(loop, config, users, WatcherRegistry())
    methods = {**process_methods(service), **filesystem_methods(filesystem)}
    start_command = StartCommand(loop, config, users, table)
    app = AgentApp(loop, config, methods, FileTransfers(loop, config, users), start_command)
    if stop is None:
        stop = loop.create_future()

    def request_stop() -> None:
        assert stop is not None
        if not stop.done():
            stop.set_result(None)

    loop.add_signal_handler(signal.SIGCHLD, table.reap_children)
    loop.add_signal_handler(signal.SIGTERM, request_stop)
    loop.add_signal_handler(signal.SIGINT, request_stop)
    table.reap_children()  # anything that exited before the handler was installed
    start_command.launch()
    server = await loop.create_unix_server(
        lambda: HttpConnection(app), sock=listener, backlog=_BACKLOG
    )
    try:
        await stop
    finally:
        server.close()
        filesystem.close()
        table.kill_all()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            loop.remove_signal_handler(signum)


def serve(listener: socket.socket, config: AgentConfig, *, etc_dir: str = "/etc") -> None:
    """Serve envd on `listener` (a bound unix stream socket) until SIGTERM or SIGINT.

    `etc_dir` is where `passwd` and `group` are read (tests point it elsewhere).
    """
    _prepare_file_descriptors(listener)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run(listener, config, etc_dir))
    finally:
        loop.close()
