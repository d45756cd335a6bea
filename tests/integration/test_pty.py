"""`Start` with a PTY, through the official SDK: a login shell on a real terminal."""

from __future__ import annotations

import threading
import time
from typing import Any

from e2b.sandbox.commands.command_handle import PtySize


def _until(output: list[bytes], text: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        joined = b"".join(output).decode(errors="replace")
        if text in joined:
            return joined
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {b''.join(output)!r}")


def test_pty_shell_size_resize_and_exit(sandbox: Any) -> None:
    handle = sandbox.pty.create(PtySize(rows=24, cols=80))
    output: list[bytes] = []
    waiter = threading.Thread(target=lambda: handle.wait(on_pty=output.append), daemon=True)
    waiter.start()
    sandbox.pty.send_stdin(handle.pid, b"stty size; echo $TERM; tty\n")
    seen = _until(output, "/dev/pts/")
    assert "24 80" in seen and "xterm-256color" in seen
    sandbox.pty.resize(handle.pid, PtySize(rows=30, cols=100))
    sandbox.pty.send_stdin(handle.pid, b"tput cols; stty size\n")
    seen = _until(output, "30 100")
    assert "100" in seen
    sandbox.pty.send_stdin(handle.pid, b"exit\n")
    waiter.join(10)
    assert not waiter.is_alive()
    assert handle.pid not in [p.pid for p in sandbox.commands.list()]


def test_pty_kill(sandbox: Any) -> None:
    handle = sandbox.pty.create(PtySize(rows=24, cols=80))
    assert sandbox.pty.kill(handle.pid) is True
    assert sandbox.pty.kill(handle.pid) is False or handle.pid not in [
        p.pid for p in sandbox.commands.list()
    ]
