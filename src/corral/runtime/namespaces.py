"""The `namespaces` runtime: Linux namespaces + cgroups + seccomp + idmapped overlay rootfs.

Sandboxes are forked by the launcher (`corral.runtime._linux.launcher`), a single-threaded
helper started by `open()`; this module is its asyncio client and owns the one clean-up path
(`stop`), which also removes what a failed create left behind and what a crash left behind.
Running sandboxes do not depend on the launcher: if it dies, the next create starts a new one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.model import SandboxSpec
from corral.protocol import AgentConfig
from corral.runtime._linux.cgroup_stats import read_cgroup_usage
from corral.runtime._linux.cgroups import (
    CgroupLayout,
    detect_layout,
    favor_dynamic_changes,
    release_dynamic_changes,
)
from corral.runtime._linux.disk_quota import StoragePool, remove_volume, volume_usage
from corral.runtime._linux.sandbox_net import network_to_json
from corral.runtime.base import (
    LauncherUnavailable,
    LiveSandbox,
    SandboxStartError,
    UsageSample,
    check_run_dir,
)
from corral.runtime.exits import ExitListener, ExitWatcher

__all__ = ["NamespacesRuntime"]

log = logging.getLogger(__name__)

_Reply = asyncio.Future[dict[str, Any]]

_KILL_WAIT_S = 5.0
# How long an abandoned create may still take before its launcher is presumed stuck.
_ABANDON_WAIT_S = 10.0


@dataclass(frozen=True)
class _Sent:
    """A request written to the launcher: its id, the future of its reply, the launcher."""

    request_id: int
    reply: _Reply
    launcher: asyncio.subprocess.Process


class NamespacesRuntime:
    """Isolation with kernel namespaces; see the module docstring of `sandbox_init`."""

    name = "namespaces"

    def __init__(
        self,
        state_dir: Path,
        run_dir: Path,
        *,
        start_timeout: float = 15.0,
        disk_pool_mb: int = 0,
    ) -> None:
        self.sandboxes_state = Path(state_dir) / "sandboxes"
        # Every sandbox's writable layer is a quota-limited volume of this pool, which is
        # mounted on `sandboxes_state` (disk_pool_mb 0: half the host's free space).
        self.disk_pool = StoragePool(
            Path(state_dir) / "disk-pool.img", self.sandboxes_state, disk_pool_mb
        )
        check_run_dir(Path(run_dir))
        self.sandboxes_run = Path(run_dir) / "sandboxes"
        self.favordynmods_mount = Path(run_dir) / "cgroup-favordynmods"
        self.start_timeout = start_timeout
        self._layout: CgroupLayout | None = None
        self._launcher: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        # request id -> (the launcher it was sent to, its answer)
        self._waiting: dict[int, tuple[asyncio.subprocess.Process, _Reply]] = {}
        self._next_id = 0
        self._exits = ExitWatcher()
        self._closing = False
        self._restarting = asyncio.Lock()

    @property
    def layout(self) -> CgroupLayout:
        if self._layout is None:
            self._layout = detect_layout()
        return self._layout

    async def open(self) -> None:
        if os.geteuid() != 0:
            raise LauncherUnavailable("the namespaces runtime must run as root")
        self.layout.ensure_parents()
        self.sandboxes_run.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            await self.disk_pool.open()
        except OSError as exc:
            raise LauncherUnavailable(f"the disk pool is unavailable: {exc}") from exc
        if not self.layout.is_pure_v2 and not favor_dynamic_changes(self.favordynmods_mount):
            log.warning("cgroup favordynmods unavailable: creates may wait ~20 ms for RCU")
        self._closing = False
        try:
            await self._start_launcher()
        except BaseException:
            # No server will run to undo the host mounts: undo them now.
            release_dynamic_changes(self.favordynmods_mount)
            self.disk_pool.close()
            raise

    async def _start_launcher(self) -> None:
        self._launcher = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "corral.runtime._linux.launcher",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 20,
        )
        assert self._launcher.stdout is not None
        first = await asyncio.wait_for(self._launcher.stdout.readline(), 30)
        if not first or json.loads(first).get("event") != "ready":
            raise LauncherUnavailable(f"the launcher did not start: {first!r}")
        self._reader = asyncio.create_task(self._read_replies(), name="launcher-replies")

    async def close(self) -> None:
        self._closing = True
        launcher, self._launcher = self._launcher, None
        if launcher is None:
            return
        if launcher.stdin is not None:
            launcher.stdin.close()
        try:
            await asyncio.wait_for(launcher.wait(), 5)
        except TimeoutError:
            launcher.kill()
            await launcher.wait()
        if self._reader is not None:
            await self._reader
        self._fail_waiting("launcher closed")
        release_dynamic_changes(self.favordynmods_mount)
        self.disk_pool.close()
        self._exits.close()

    async def start(self, spec: SandboxSpec) -> LiveSandbox:
        run_dir = self.sandboxes_run / spec.sandbox_id
        request = {
            "sandbox_id": spec.sandbox_id,
            "layers": list(spec.template.layers),
            "uid_base": spec.uid_base,
            "limits": {
                "cpu_count": spec.limits.cpu_count,
                "memory_mb": spec.limits.memory_mb,
                "pids_max": spec.limits.pids_max,
                "disk_mb": spec.limits.disk_mb,
                "open_files": spec.limits.open_files,
            },
            "hostname": spec.hostname,
            "state_dir": str(self.sandboxes_state / spec.sandbox_id),
            "run_dir": str(run_dir),
            "agent_config": _agent_config_json(spec),
            "network": network_to_json(spec.network),
        }
        sent = await self._send("create", request)
        try:
            # Not `wait_for`, whose extra task would send the request one loop turn late.
            async with asyncio.timeout(self.start_timeout):
                reply = await asyncio.shield(sent.reply)
        except LauncherUnavailable:
            # The launcher died mid-create (its setup process dies with it): remove what
            # was made so far, or it stays until the next start-up sweep.
            await self.stop(spec.sandbox_id)
            raise
        except (TimeoutError, asyncio.CancelledError) as exc:
            await asyncio.shield(self._abandon(spec.sandbox_id, sent))
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise SandboxStartError("the sandbox did not start in time") from None
        finally:
            self._waiting.pop(sent.request_id, None)
        if not reply.get("ok"):
            await self.stop(spec.sandbox_id)
            raise SandboxStartError(f"the sandbox could not be started: {reply.get('error')}")
        pid = int(reply["pid"])
        self._exits.watch(spec.sandbox_id, pid)
        return LiveSandbox(spec.sandbox_id, str(run_dir / "agent.sock"), pid)

    async def stop(self, sandbox_id: str) -> None:
        self._exits.unwatch(sandbox_id)
        cgroup = self.layout.sandbox(sandbox_id)
        if any(d.exists() for d in cgroup.dirs()):
            deadline = time.monotonic() + _KILL_WAIT_S
            cgroup.kill()
            while not cgroup.empty() and time.monotonic() < deadline:
                await asyncio.sleep(0.001)
                if not cgroup.empty():
                    cgroup.kill()
            while not cgroup.remove() and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        shutil.rmtree(self.sandboxes_run / sandbox_id, ignore_errors=True)
        state = self.sandboxes_state / sandbox_id
        if state.exists():
            try:
                await asyncio.to_thread(remove_volume, str(state))
            except OSError:
                log.exception("could not remove the writable layer of sandbox %s", sandbox_id)

    async def live(self) -> list[LiveSandbox]:
        found = []
        for sandbox_id in sorted(self._owned_ids()):
            pids = self.layout.sandbox(sandbox_id).pids()
            socket_path = self.sandboxes_run / sandbox_id / "agent.sock"
            init = _init_pid(pids)
            if init is not None and socket_path.exists():
                found.append(LiveSandbox(sandbox_id, str(socket_path), init))
                self._exits.watch(sandbox_id, init)
        return found

    def on_exit(self, listener: ExitListener) -> None:
        self._exits.set_listener(listener)

    async def usage(self, sandbox_id: str) -> UsageSample | None:
        cgroup = read_cgroup_usage(self.layout, sandbox_id)
        if cgroup is None:
            return None
        disk_used, disk_limit = await self._disk_usage(sandbox_id)
        return UsageSample(
            cpu_usage_ns=cgroup.cpu_usage_ns,
            memory_used=cgroup.memory_used,
            memory_cache=cgroup.memory_cache,
            memory_limit=cgroup.memory_limit,
            disk_used=disk_used,
            disk_limit=disk_limit,
            oom_kills=cgroup.oom_kills,
            pids_max_hits=cgroup.pids_max_hits,
            throttled_periods=cgroup.throttled_periods,
            throttled_ns=cgroup.throttled_ns,
        )

    async def _disk_usage(self, sandbox_id: str) -> tuple[int, int]:
        """(used, limit) bytes of the sandbox's writable layer, from its volume's qgroup
        (as of btrfs's last transaction commit); (0, 0) if it has no volume."""
        return volume_usage(str(self.sandboxes_state / sandbox_id)) or (0, 0)

    async def sweep(self, keep: set[str]) -> list[str]:
        removed = sorted(self._owned_ids() - keep)
        for sandbox_id in removed:
            await self.stop(sandbox_id)
        return removed

    def _owned_ids(self) -> set[str]:
        """Sandboxes of this server: those with a directory in its state or run dir.

        Cgroups are host-wide (other servers may share the `corral` group), so they never
        decide ownership; the launcher makes the directories before the cgroups.
        """
        ids: set[str] = set()
        for d in (self.sandboxes_state, self.sandboxes_run):
            if d.is_dir():
                ids.update(p.name for p in d.iterdir())
        return ids

    async def _abandon(self, sandbox_id: str, sent: _Sent) -> None:
        """Remove a create given up on (timeout, cancellation) only once the launcher can no
        longer finish it: removing it while its setup still runs would let the setup build a
        sandbox nobody knows of, in a uid slot handed to the next sandbox. Wait for the
        launcher's answer; a launcher that gives none within `_ABANDON_WAIT_S` is killed, and
        its setup processes die with it."""
        try:
            async with asyncio.timeout(_ABANDON_WAIT_S):
                await asyncio.shield(sent.reply)
        except TimeoutError:
            log.error(
                "the launcher did not answer the abandoned create of %s in %.0f s: killing it",
                sandbox_id,
                _ABANDON_WAIT_S,
            )
            if sent.launcher.returncode is None:
                sent.launcher.kill()
                await sent.launcher.wait()
        except LauncherUnavailable:
            pass
        await self.stop(sandbox_id)

    async def _send(self, op: str, request: dict[str, Any]) -> _Sent:
        """Write one request to the launcher (starting a new launcher if the last one died);
        the caller awaits `reply` and removes `request_id` from `_waiting` when done."""
        launcher = self._launcher
        if launcher is None or launcher.stdin is None or launcher.returncode is not None:
            if self._closing or launcher is None:
                raise LauncherUnavailable("the launcher is not running")
            # It died (killed or crashed): running sandboxes do not depend on it, so start
            # a new one for this and later creates.
            log.error("the launcher exited with %s; starting a new one", launcher.returncode)
            async with self._restarting:
                if self._launcher is launcher:
                    await self._start_launcher()
            launcher = self._launcher
            if launcher is None or launcher.stdin is None:
                raise LauncherUnavailable("the launcher could not be restarted")
        self._next_id += 1
        request_id = self._next_id
        future: _Reply = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = (launcher, future)
        launcher.stdin.write(json.dumps({"op": op, "id": request_id, "request": request}).encode())
        launcher.stdin.write(b"\n")
        return _Sent(request_id, future, launcher)

    async def _read_replies(self) -> None:
        assert self._launcher is not None and self._launcher.stdout is not None
        launcher = self._launcher
        stdout = launcher.stdout
        assert stdout is not None
        while line := await stdout.readline():
            try:
                reply = json.loads(line)
            except ValueError:
                log.error("unreadable launcher reply: %r", line[:200])
                continue
            waiting = self._waiting.get(reply.get("id"))
            if waiting is not None and waiting[0] is launcher and not waiting[1].done():
                waiting[1].set_result(reply)
        await launcher.wait()
        self._fail_waiting("the launcher exited", launcher)

    def _fail_waiting(self, why: str, launcher: asyncio.subprocess.Process | None = None) -> None:
        """Fail the requests sent to `launcher` (to any launcher when None)."""
        for sent_to, future in self._waiting.values():
            if (launcher is None or sent_to is launcher) and not future.done():
                future.set_exception(LauncherUnavailable(why))


def _agent_config_json(spec: SandboxSpec) -> str:
    return AgentConfig(
        access_token=spec.access_token,
        env_vars={**spec.template.env, **spec.env_vars},
        default_user=spec.template.default_user,
        default_workdir=spec.template.default_workdir,
        start_command=spec.template.start_command or "",
        ready_port=spec.template.ready_port,
    ).to_json()


def _init_pid(pids: list[int]) -> int | None:
    """The host pid of the process that is pid 1 inside its namespace."""
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("NSpid:"):
                        if line.split()[-1] == "1":
                            return pid
                        break
        except OSError:
            continue
    return None
