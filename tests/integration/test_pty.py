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
    deadline = time.monotonic() + 10
    while handle.pid in [p.pid for p in sandbox.commands.list()]:
        assert time.monotonic() < deadline, "killed PTY still listed"
        time.sleep(0.02)
    assert sandbox.pty.kill(handle.pid) is False


def test_pty_connect_from_a_second_handle(sandbox: Any) -> None:
    """A PTY outlives its first stream: `pty.connect` picks it up and sees new output."""
    first = sandbox.pty.create(PtySize(rows=24, cols=80))
    first.disconnect()
    second = sandbox.pty.connect(first.pid)
    output: list[bytes] = []
    waiter = threading.Thread(target=lambda: second.wait(on_pty=output.append), daemon=True)
    waiter.start()
    sandbox.pty.send_stdin(first.pid, b"echo reconnected-$((6*7))\n")
    _until(output, "reconnected-42")
    sandbox.pty.send_stdin(first.pid, b"exit\n")
    waiter.join(10)
    assert not waiter.is_alive()


def test_pty_runs_a_login_shell_as_the_user(sandbox: Any) -> None:
    handle = sandbox.pty.create(PtySize(rows=24, cols=80))
    output: list[bytes] = []
    waiter = threading.Thread(target=lambda: handle.wait(on_pty=output.append), daemon=True)
    waiter.start()
    sandbox.pty.send_stdin(handle.pid, b"shopt -q login_shell && echo LOGIN-$(whoami)-$PWD\n")
    _until(output, "LOGIN-user-/home/user")
    sandbox.pty.send_stdin(handle.pid, b"exit\n")
    waiter.join(10)
    assert not waiter.is_alive()


async def test_async_pty_create_resize_send_and_kill(corral_server: Any) -> None:
    from e2b import AsyncSandbox

    sbx = await AsyncSandbox.create(timeout=60)
    try:
        output: list[bytes] = []
        handle = await sbx.pty.create(PtySize(rows=20, cols=70), on_data=output.append)
        await sbx.pty.send_stdin(handle.pid, b"stty size\n")
        await _until_async(output, "20 70")
        await sbx.pty.resize(handle.pid, PtySize(rows=33, cols=111))
        await sbx.pty.send_stdin(handle.pid, b"tput lines; tput cols\n")
        await _until_async(output, "111")
        assert "33" in b"".join(output).decode(errors="replace")
        assert await sbx.pty.kill(handle.pid) is True
        assert handle.pid not in [p.pid for p in await sbx.commands.list()]
    finally:
        await sbx.kill()


async def _until_async(output: list[bytes], text: str, timeout: float = 10) -> str:
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        joined = b"".join(output).decode(errors="replace")
        if text in joined:
            return joined
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} not in {b''.join(output)!r}")
