"""The launcher: a single-threaded privileged helper that forks sandboxes for the server.

The asyncio server never forks (forking a threaded process is unsafe); it starts this process
once, before it creates any sandbox, and talks to it over the launcher's stdin/stdout with one
JSON object per line. The launcher imports everything a sandbox needs (including the agent)
before its first fork, so a sandbox costs a few `fork`s and syscalls, not an interpreter start.

Closed op list (requests from the server):

- `create {id, request: CreateRequest fields}`: build one sandbox; answered
  `{id, ok: true, pid}` once its agent is about to serve (the listening socket already
  accepts), or `{id, ok: false, error}`. What a failed create leaves behind (cgroups,
  directories) is removed by the server's `stop`, the one clean-up path.

The launcher is the child subreaper of the sandboxes' init processes and reaps them. It dies
with the server (PDEATHSIG); sandboxes do not, so a restarted server can re-adopt them.
"""

from __future__ import annotations

import gc
import json
import os
import selectors
import signal
import sys
from dataclasses import dataclass
from typing import Any

from corral.agent import warm_up
from corral.model import Limits
from corral.runtime._linux import syscalls as sc
from corral.runtime._linux.cgroups import CgroupLayout, detect_layout
from corral.runtime._linux.sandbox_init import CreateRequest, run_setup
from corral.runtime._linux.sandbox_net import network_from_json
from corral.runtime._linux.seccomp import compile_filter
from corral.runtime._linux.userns import UserNamespaces

__all__ = ["main", "parse_create"]


@dataclass
class _Pending:
    request_id: int
    pid: int | None = None
    buffer: bytes = b""
    answered: bool = False


def parse_create(raw: dict[str, Any]) -> CreateRequest:
    """Validate a `create` request's fields (they come from our own server, but check types)."""
    limits = raw["limits"]
    return CreateRequest(
        sandbox_id=str(raw["sandbox_id"]),
        layers=tuple(str(p) for p in raw["layers"]),
        uid_base=int(raw["uid_base"]),
        limits=Limits(
            cpu_count=int(limits["cpu_count"]),
            memory_mb=int(limits["memory_mb"]),
            pids_max=int(limits["pids_max"]),
            disk_mb=int(limits["disk_mb"]),
            open_files=int(limits["open_files"]),
        ),
        hostname=str(raw["hostname"]),
        state_dir=str(raw["state_dir"]),
        run_dir=str(raw["run_dir"]),
        agent_config=str(raw["agent_config"]),
        network=network_from_json(raw.get("network")),
    )


class Launcher:
    def __init__(self, layout: CgroupLayout, seccomp: bytes) -> None:
        self.layout = layout
        self.seccomp = seccomp
        self.userns = UserNamespaces()
        self.selector = selectors.DefaultSelector()
        self.pending: dict[int, _Pending] = {}
        self.inbox = b""
        self.out = sys.stdout.buffer

    def reply(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message).encode() + b"\n")
        self.out.flush()

    def run(self) -> None:
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        stdin = sys.stdin.buffer.fileno()
        os.set_blocking(stdin, False)
        self.selector.register(stdin, selectors.EVENT_READ, "control")
        self.selector.register(wake_r, selectors.EVENT_READ, "signal")
        self.reply({"event": "ready", "pid": os.getpid()})
        while True:
            for key, _ in self.selector.select():
                if key.data == "control":
                    if not self.on_control(stdin):
                        return
                elif key.data == "signal":
                    _drain(wake_r)
                    _reap()
                else:
                    self.on_status(key.fd)

    def on_control(self, fd: int) -> bool:
        chunk = _read(fd)
        if chunk is None:
            return True
        if not chunk:
            return False
        self.inbox += chunk
        while b"\n" in self.inbox:
            line, self.inbox = self.inbox.split(b"\n", 1)
            self.handle(line)
        return True

    def handle(self, line: bytes) -> None:
        try:
            message = json.loads(line)
            request_id = int(message["id"])
        except (ValueError, KeyError, TypeError):
            self.reply({"id": None, "ok": False, "error": "malformed launcher request"})
            return
        if message.get("op") != "create":
            self.reply({"id": request_id, "ok": False, "error": "unknown launcher op"})
            return
        try:
            request = parse_create(message["request"])
        except (KeyError, TypeError, ValueError) as exc:
            self.reply({"id": request_id, "ok": False, "error": f"bad create request: {exc}"})
            return
        try:
            userns_fd = self.userns.get(request.uid_base)
        except OSError as exc:
            self.reply({"id": request_id, "ok": False, "error": f"user namespace: {exc}"})
            return
        status_r, status_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(status_r)
            run_setup(request, status_w, userns_fd, self.layout, self.seccomp)
        os.close(status_w)
        os.set_blocking(status_r, False)
        self.pending[status_r] = _Pending(request_id)
        self.selector.register(status_r, selectors.EVENT_READ, "status")

    def on_status(self, fd: int) -> None:
        state = self.pending[fd]
        chunk = _read(fd)
        if chunk is None:
            return
        state.buffer += chunk
        while b"\n" in state.buffer:
            line, state.buffer = state.buffer.split(b"\n", 1)
            self.on_status_line(state, line.decode(errors="replace"))
        if not chunk:
            self.selector.unregister(fd)
            os.close(fd)
            del self.pending[fd]
            if not state.answered:
                self.reply(
                    {
                        "id": state.request_id,
                        "ok": False,
                        "error": "sandbox setup exited without reporting",
                    }
                )

    def on_status_line(self, state: _Pending, line: str) -> None:
        if state.answered:
            return
        kind, _, rest = line.partition(" ")
        if kind == "pid":
            state.pid = int(rest)
        elif kind == "ready" and state.pid is not None:
            state.answered = True
            self.reply({"id": state.request_id, "ok": True, "pid": state.pid})
        elif kind == "error":
            state.answered = True
            self.reply({"id": state.request_id, "ok": False, "error": rest})


def _read(fd: int) -> bytes | None:
    """Bytes available on `fd`, b"" at end of file, None if nothing is there yet."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    parent = os.getppid()
    sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        sys.exit(1)
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    layout = detect_layout()
    seccomp = compile_filter()
    warm_up()  # before the first fork: sandboxes inherit a warmed-up agent copy-on-write
    gc.collect()
    gc.freeze()
    Launcher(layout, seccomp).run()


if __name__ == "__main__":
    main()
