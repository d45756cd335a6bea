"""The `fake` runtime: the agent as a plain host process. IT ISOLATES NOTHING.

For unit tests and development only. Each sandbox is one `python -m corral.agent` process
(new session, so it heads its own process group) listening on
`<run_dir>/sandboxes/<id>/agent.sock`; commands run as the server's own user, on the
host's filesystem, with the host's network. Template layers, uid ranges and resource limits
are ignored. The agent's default user is the server's user and its default working
directory is `<state_dir>/sandboxes/<id>/home`.

Crash recovery: `agent.pid` (pid and kernel start time) next to the socket lets `live()`
find agents that outlived a server crash; a pid is trusted only if its start time matches
and its command line names the sandbox's socket. `stop()` kills the agent's process group
and every descendant (also those that left the group, e.g. PTY sessions), waits for them,
and removes both per-sandbox directories. The agent's access token and sandbox env vars
are on its command line, visible to local users: another reason not to use this in
production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from corral.model import SandboxSpec
from corral.protocol import AgentConfig
from corral.runtime._linux.disk_usage import tree_bytes
from corral.runtime.base import LiveSandbox, SandboxStartError, UsageSample, check_run_dir
from corral.runtime.exits import ExitListener, ExitWatcher

__all__ = ["FakeRuntime"]

log = logging.getLogger(__name__)

_EXIT_WAIT_S = 5.0
_POLL_S = 0.005


class FakeRuntime:
    """Runs each sandbox's agent as an unisolated host subprocess (see module docstring)."""

    name = "fake"

    def __init__(
        self,
        state_dir: Path,
        run_dir: Path,
        *,
        agent_command: Sequence[str] | None = None,
        start_timeout: float = 20.0,
    ) -> None:
        check_run_dir(Path(run_dir))
        self._state_root = Path(state_dir) / "sandboxes"
        self._run_root = Path(run_dir) / "sandboxes"
        self._agent_command = list(agent_command or (sys.executable, "-m", "corral.agent"))
        self._start_timeout = start_timeout
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._exits = ExitWatcher()

    async def open(self) -> None:
        for root in (self._state_root, self._run_root):
            root.mkdir(parents=True, exist_ok=True, mode=0o700)

    async def close(self) -> None:
        """Stop watching; agents are independent processes, stopped one by one."""
        self._exits.close()

    def on_exit(self, listener: ExitListener) -> None:
        self._exits.set_listener(listener)

    async def start(self, spec: SandboxSpec) -> LiveSandbox:
        run_dir = self._run_root / spec.sandbox_id
        home = self._state_root / spec.sandbox_id / "home"
        socket_path = run_dir / "agent.sock"
        try:
            run_dir.mkdir(parents=True, mode=0o700)
            home.mkdir(parents=True, mode=0o700)
            user = pwd.getpwuid(os.getuid())
            etc_dir = _write_user_database(run_dir / "etc", user, home)
            config = AgentConfig(
                access_token=spec.access_token,
                env_vars=spec.env_vars,
                default_user=user.pw_name,
                default_workdir=str(home),
            )
            with open(run_dir / "agent.log", "wb") as agent_log:
                child = subprocess.Popen(
                    [
                        *self._agent_command,
                        "--listen",
                        str(socket_path),
                        "--config-json",
                        config.to_json(),
                        "--etc-dir",
                        str(etc_dir),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=agent_log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=_agent_environment(),
                    cwd=home,
                )
        except OSError as exc:
            await self.stop(spec.sandbox_id)
            raise SandboxStartError(f"cannot start the agent: {exc}") from exc
        self._children[spec.sandbox_id] = child
        _write_pid_file(run_dir / "agent.pid", child.pid)
        try:
            await self._wait_ready(child, socket_path)
        except BaseException:
            tail = _tail(run_dir / "agent.log")
            await self.stop(spec.sandbox_id)
            if tail:
                log.warning("agent of sandbox %s failed:\n%s", spec.sandbox_id, tail)
            raise
        self._exits.watch(spec.sandbox_id, child.pid)
        return LiveSandbox(spec.sandbox_id, str(socket_path), child.pid)

    async def _wait_ready(self, child: subprocess.Popen[bytes], socket_path: Path) -> None:
        deadline = time.monotonic() + self._start_timeout
        while True:
            if child.poll() is not None:
                raise SandboxStartError(f"the agent exited with status {child.returncode}")
            if _accepts(socket_path):
                return
            if time.monotonic() > deadline:
                raise SandboxStartError(
                    f"the agent did not listen within {self._start_timeout:.0f} s"
                )
            await asyncio.sleep(_POLL_S)

    async def stop(self, sandbox_id: str) -> None:
        self._exits.unwatch(sandbox_id)
        child = self._children.pop(sandbox_id, None)
        pid = child.pid if child is not None else self._verified_pid(sandbox_id)
        if pid is not None:
            await _kill_tree(pid)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=1)  # it has exited (`_kill_tree` waited): this only reaps
        for root in (self._run_root, self._state_root):
            shutil.rmtree(root / sandbox_id, ignore_errors=True)

    async def usage(self, sandbox_id: str) -> UsageSample | None:
        """CPU and resident memory of the agent's process tree, bytes under its home; no
        limits exist, so limits and limit-hit counters are 0."""
        child = self._children.get(sandbox_id)
        pid = child.pid if child is not None else self._verified_pid(sandbox_id)
        if pid is None or child is not None and child.poll() is not None:
            return None
        tree = [pid, *_descendants(pid)]
        home = str(self._state_root / sandbox_id / "home")
        return UsageSample(
            cpu_usage_ns=sum(_cpu_ns(p, with_children=p == pid) for p in tree),
            memory_used=sum(_resident_bytes(p) for p in tree),
            memory_cache=0,
            memory_limit=0,
            disk_used=await asyncio.to_thread(tree_bytes, home),
            disk_limit=0,
            oom_kills=0,
            pids_max_hits=0,
            throttled_periods=0,
            throttled_ns=0,
        )

    async def live(self) -> list[LiveSandbox]:
        found: list[LiveSandbox] = []
        if not self._run_root.is_dir():
            return found
        for entry in sorted(self._run_root.iterdir()):
            pid = self._verified_pid(entry.name)
            if pid is not None:
                found.append(LiveSandbox(entry.name, str(entry / "agent.sock"), pid))
                self._exits.watch(entry.name, pid)
        return found

    async def sweep(self, keep: set[str]) -> list[str]:
        leftovers: set[str] = set()
        for root in (self._run_root, self._state_root):
            if root.is_dir():
                leftovers |= {entry.name for entry in root.iterdir()} - keep
        for sandbox_id in sorted(leftovers):
            await self.stop(sandbox_id)
        return sorted(leftovers)

    def _verified_pid(self, sandbox_id: str) -> int | None:
        """The agent pid from the pid file, if that process is still this sandbox's agent."""
        run_dir = self._run_root / sandbox_id
        try:
            pid_text, start_text = (run_dir / "agent.pid").read_text().split()
            pid, start_time = int(pid_text), int(start_text)
        except (OSError, ValueError):
            return None
        if _start_time(pid) != start_time:
            return None
        cmdline = _read_bytes(f"/proc/{pid}/cmdline").split(b"\0")
        if str(run_dir / "agent.sock").encode() not in cmdline:
            return None
        return pid


def _agent_environment() -> dict[str, str]:
    """Only what the interpreter needs; nothing of the server's environment leaks through."""
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "LANG": "C.UTF-8"}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def _accepts(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(socket_path))
        except OSError:
            return False
    return True


def _write_pid_file(path: Path, pid: int) -> None:
    path.write_text(f"{pid} {_start_time(pid)}\n")


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (field 3 is index 0)."""
    stat = _read_bytes(f"/proc/{pid}/stat")
    return stat[stat.rfind(b")") + 2 :].decode().split()


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if len(fields) > 19 else None


_TICK_NS = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _cpu_ns(pid: int, *, with_children: bool) -> int:
    """utime + stime (+ cutime + cstime of reaped children) of `pid`, in ns."""
    fields = _stat_fields(pid)
    if len(fields) < 15:
        return 0
    ticks = fields[11:15] if with_children else fields[11:13]
    return sum(int(t) for t in ticks) * _TICK_NS


def _resident_bytes(pid: int) -> int:
    statm = _read_bytes(f"/proc/{pid}/statm").split()
    return int(statm[1]) * _PAGE if len(statm) > 1 else 0


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if len(fields) > 1:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


async def _kill_tree(pid: int) -> None:
    """SIGKILL the agent, its process group and all its descendants; wait for the agent."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return  # already gone
    try:
        for _ in range(2):  # a second pass catches processes forked during the first
            for victim in _descendants(pid):
                with contextlib.suppress(OSError):
                    os.kill(victim, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        await _wait_readable(pidfd, _EXIT_WAIT_S)
    finally:
        os.close(pidfd)


async def _wait_readable(fd: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await asyncio.wait_for(ready, timeout)
    except TimeoutError:
        log.warning("process behind pidfd %d did not exit within %.0f s", fd, timeout)
    finally:
        loop.remove_reader(fd)


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(_read_bytes(str(path)).decode(errors="replace").splitlines()[-lines:])


def _write_user_database(etc_dir: Path, user: pwd.struct_passwd, home: Path) -> Path:
    """A passwd/group pair naming only the server's own user, with HOME = the sandbox home.

    Without it, `bash -l` (how the SDK runs every command) would read the host user's own
    login files, which may do anything (e.g. `pyenv rehash` behind a host-wide lock).
    """
    etc_dir.mkdir(mode=0o700)
    (etc_dir / "passwd").write_text(
        f"{user.pw_name}:x:{user.pw_uid}:{user.pw_gid}::{home}:/bin/bash\n"
    )
    (etc_dir / "group").write_text(f"{user.pw_name}:x:{user.pw_gid}:\n")
    return etc_dir
