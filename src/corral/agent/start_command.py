"""The template's start command: launched once when the agent boots, waited for by create.

A template may name a command (recipe `START`) that every sandbox runs from boot, such as the
code interpreter's port-49999 server, and a port (`READY`) it listens on once it is usable.
The agent starts it as the template's default user in the default workdir, with the
sandbox-wide environment, stdin from /dev/null and stdout/stderr appended to `LOG_PATH`
(opened by the agent as root: the user cannot truncate it). The orchestrator then calls
`GET /ready` (`routes`), which answers once the port accepts a connection on the sandbox's
loopback, or says why it never will (the command exited or could not start; the log's tail
is included).
"""

from __future__ import annotations

import asyncio
import os
import time

from corral.agent.environment import compose_environment
from corral.agent.errors import AgentError
from corral.agent.process_table import ProcessTable
from corral.agent.spawn import spawn_detached
from corral.agent.users import UserDatabase
from corral.protocol.agent_config import AgentConfig

__all__ = ["LOG_PATH", "StartCommand"]

LOG_PATH = "/var/log/corral-start.log"
_POLL_SECONDS = 0.005
_LOG_TAIL_BYTES = 2048


class StartCommand:
    """The one start command of a sandbox (a no-op when the template has none)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        config: AgentConfig,
        users: UserDatabase,
        table: ProcessTable,
        log_path: str = LOG_PATH,
    ) -> None:
        self._loop = loop
        self._config = config
        self._users = users
        self._table = table
        self._log_path = log_path
        self._failure: str | None = None
        self._exited = loop.create_future()

    def launch(self) -> None:
        """Start the command (once, at boot). Failures are kept for `wait_ready`."""
        command = self._config.start_command
        if not command:
            return
        try:
            user = self._users.lookup(self._config.default_user)
            env = compose_environment(user, self._config.env_vars, {})
            log_fd = os.open(
                self._log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644
            )
        except (AgentError, OSError) as exc:
            self._failure = f"the start command could not be started: {exc}"
            return
        try:
            pid = spawn_detached(
                ["/bin/sh", "-c", command], env, self._config.default_workdir, user, log_fd
            )
        except AgentError as exc:
            self._failure = f"the start command could not be started: {exc}"
            return
        finally:
            os.close(log_fd)
        self._table.watch_exit(pid, self._on_exit)

    def _on_exit(self, status: int) -> None:
        if not self._exited.done():
            self._exited.set_result(os.waitstatus_to_exitcode(status))

    async def wait_ready(self, timeout: float) -> str | None:
        """None once the ready port accepts (or there is nothing to wait for); else why not."""
        if self._failure is not None:
            return self._failure
        port = self._config.ready_port
        if not self._config.start_command or not port:
            return None
        deadline = time.monotonic() + timeout
        while True:
            if self._exited.done():
                return self._exit_message(self._exited.result(), port)
            if await _accepts(port):
                return None
            if time.monotonic() >= deadline:
                return (
                    f"the start command did not listen on port {port} within {timeout:g} s"
                    f"{self._log_tail()}"
                )
            await asyncio.sleep(_POLL_SECONDS)

    def _exit_message(self, code: int, port: int) -> str:
        how = f"with status {code}" if code >= 0 else f"killed by signal {-code}"
        return f"the start command exited {how} before port {port} was ready{self._log_tail()}"

    def _log_tail(self) -> str:
        try:
            with open(self._log_path, "rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - _LOG_TAIL_BYTES))
                tail = log.read().decode(errors="replace").strip()
        except OSError:
            return ""
        return f"; the end of {self._log_path}:\n{tail}" if tail else ""


async def _accepts(port: int) -> bool:
    for host in ("127.0.0.1", "::1"):
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            continue
        writer.close()
        return True
    return False
