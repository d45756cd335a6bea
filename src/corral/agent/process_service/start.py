"""`process.Process/Start` (server-stream): run a command or a PTY and stream its events.

Order of work, all before the loop runs again so no output can be missed: resolve the
user (Basic auth), the cwd and the environment; fork/exec; register the process; send
`start`; then stream. `Connect-Timeout-Ms` becomes the process lifetime (§5.4).
"""

from __future__ import annotations

from corral.agent.auth import requested_username
from corral.agent.connect_server import CallContext, ServerStream, ServerStreamMethod, Wire
from corral.agent.environment import compose_environment, resolve_workdir
from corral.agent.event_stream import ProcessEventStream
from corral.agent.managed_process import ManagedProcess
from corral.agent.process_service.context import ProcessService
from corral.agent.spawn import SpawnRequest, spawn
from corral.protocol.process_messages import StartRequest

__all__ = ["start_method"]


def start_method(service: ProcessService) -> ServerStreamMethod:
    def start(ctx: CallContext, message: Wire, stream: ServerStream) -> None:
        request = StartRequest.from_wire(message)
        name = requested_username(ctx.head.header("authorization"), service.config.default_user)
        user = service.users.lookup(name)
        cwd = resolve_workdir(request.process.cwd, user, service.config.default_workdir)
        env = compose_environment(user, service.config.env_vars, request.process.envs)
        child = spawn(
            SpawnRequest(
                argv=(request.process.cmd, *request.process.args),
                env=env,
                cwd=cwd,
                user=user,
                pty=request.pty,
                stdin=request.stdin is not False,
            )
        )
        process = ManagedProcess(
            service.loop, child, request.process, request.tag, service.table.process_ended
        )
        service.table.add(process)
        if ctx.timeout is not None:
            process.kill_after(ctx.timeout)
        ProcessEventStream(service.loop, stream, ctx.keepalive_interval).follow(process)

    return ServerStreamMethod(start)
