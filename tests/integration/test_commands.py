"""`sbx.commands` through the official `e2b` SDK: foreground, background, stdin, list, kill."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from e2b import (
    AuthenticationException,
    CommandExitException,
    InvalidArgumentException,
    NotFoundException,
    SandboxException,
    TimeoutException,
)

pytestmark = pytest.mark.usefixtures("corral_server")

UNKNOWN_PID = 3_999_999  # above any pid_max: never a real process

# One command line per process, read from /proc (procps may be absent from the template).
# Its own command line does not contain the markers the tests look for.
PROC_SCAN = r"for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline 2>/dev/null; echo; done"


def running_cmdlines(sbx: Any) -> list[str]:
    return [line for line in sbx.commands.run(PROC_SCAN).stdout.splitlines() if line]


def marker_seconds() -> str:
    """A unique `sleep` argument, so a process can be recognised by its command line."""
    return f"{random.randint(100, 999)}.{random.randint(100000, 999999)}"


def wait_until_gone(sbx: Any, needle: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(needle in line for line in running_cmdlines(sbx)):
            return True
        time.sleep(0.1)
    return False


# --- foreground -----------------------------------------------------------------------------


def test_stdout_stderr_and_exit_code_zero(shared_sandbox: Any) -> None:
    result = shared_sandbox.commands.run("echo out; echo err >&2; printf 'no-newline'")
    assert result.stdout == "out\nno-newline"
    assert result.stderr == "err\n"
    assert result.exit_code == 0
    assert result.error is None


def test_nonzero_exit_raises_command_exit_exception(shared_sandbox: Any) -> None:
    with pytest.raises(CommandExitException) as info:
        shared_sandbox.commands.run("echo partial; echo bad >&2; exit 3")
    assert info.value.exit_code == 3
    assert info.value.stdout == "partial\n"
    assert info.value.stderr == "bad\n"
    assert info.value.error == "exit status 3"


def test_large_output_is_complete_and_ordered(shared_sandbox: Any) -> None:
    result = shared_sandbox.commands.run("seq 1 20000")
    assert result.stdout == "".join(f"{i}\n" for i in range(1, 20001))


def test_command_envs_do_not_leak_into_later_commands(shared_sandbox: Any) -> None:
    first = shared_sandbox.commands.run("echo $ONLY_HERE", envs={"ONLY_HERE": "visible"})
    assert first.stdout == "visible\n"
    assert shared_sandbox.commands.run("echo ${ONLY_HERE-unset}").stdout == "unset\n"


def test_server_environment_is_not_inherited(shared_sandbox: Any) -> None:
    # corral serve runs with CORRAL_TEST_HOST_ONLY set (bench/_harness.py)
    out = shared_sandbox.commands.run("echo ${CORRAL_TEST_HOST_ONLY-absent}").stdout
    assert out == "absent\n"
    env = shared_sandbox.commands.run("env").stdout
    assert "E2B_API_KEY" not in env
    for name in ("PATH", "HOME", "USER", "LOGNAME"):
        assert f"\n{name}=" in f"\n{env}"


def test_cwd(shared_sandbox: Any) -> None:
    assert shared_sandbox.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n"
    shared_sandbox.commands.run("mkdir -p /tmp/cwd-check/inner")
    assert shared_sandbox.commands.run("pwd", cwd="/tmp/cwd-check/inner").stdout == (
        "/tmp/cwd-check/inner\n"
    )


def test_nonexistent_cwd_is_an_invalid_argument(shared_sandbox: Any) -> None:
    with pytest.raises(InvalidArgumentException) as info:
        shared_sandbox.commands.run("pwd", cwd="/definitely/not/here")
    assert "/definitely/not/here" in str(info.value)
    assert "does not exist" in str(info.value)


@pytest.mark.requires_isolation
def test_default_user_and_root(shared_sandbox: Any) -> None:
    run = shared_sandbox.commands.run
    assert run("whoami").stdout == "user\n"
    assert run("id -u").stdout == "1000\n"
    assert run("id -g").stdout == "1000\n"
    assert run("echo $HOME; pwd").stdout == "/home/user\n/home/user\n"
    assert run("whoami", user="root").stdout == "root\n"
    assert run("id -u", user="root").stdout == "0\n"
    assert run("echo $HOME", user="root").stdout == "/root\n"
    assert run("whoami", user="user").stdout == "user\n"


def test_unknown_user_is_rejected(shared_sandbox: Any) -> None:
    # protocol doc §5.1: unknown user -> `unauthenticated`
    with pytest.raises(AuthenticationException):
        shared_sandbox.commands.run("true", user="no-such-user-xyz")


def test_timeout_raises_and_kills_the_process(shared_sandbox: Any) -> None:
    seconds = marker_seconds()
    start = time.monotonic()
    with pytest.raises(TimeoutException):
        shared_sandbox.commands.run(f"sleep {seconds}", timeout=1)
    assert time.monotonic() - start < 5
    assert wait_until_gone(shared_sandbox, f"sleep {seconds}"), "timed-out command still runs"


def test_foreground_stdin_false_reads_dev_null(shared_sandbox: Any) -> None:
    # stdin is /dev/null unless stdin=True: `cat` must end at once instead of hanging
    result = shared_sandbox.commands.run("cat; echo done", timeout=10)
    assert result.stdout == "done\n"


def test_stdin_send_and_close(shared_sandbox: Any) -> None:
    handle = shared_sandbox.commands.run("cat", background=True, stdin=True, timeout=30)
    handle.send_stdin("hello\n")
    shared_sandbox.commands.send_stdin(handle.pid, b"world\n")
    handle.close_stdin()
    result = handle.wait()
    assert result.stdout == "hello\nworld\n"
    assert result.exit_code == 0


def test_stdin_without_pipe_is_an_error(shared_sandbox: Any) -> None:
    handle = shared_sandbox.commands.run("sleep 20", background=True, timeout=30)
    try:
        with pytest.raises(SandboxException):
            handle.send_stdin("ignored\n")
    finally:
        handle.kill()


def test_send_stdin_to_unknown_pid(shared_sandbox: Any) -> None:
    with pytest.raises(NotFoundException):
        shared_sandbox.commands.send_stdin(UNKNOWN_PID, "x")


# --- background -----------------------------------------------------------------------------


def test_background_callbacks_receive_lines_in_order(shared_sandbox: Any) -> None:
    handle = shared_sandbox.commands.run(
        "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; sleep 0.02; done",
        background=True,
    )
    out: list[str] = []
    err: list[str] = []
    result = handle.wait(on_stdout=out.append, on_stderr=err.append)
    assert "".join(out) == "out1\nout2\nout3\nout4\nout5\n"
    assert "".join(err) == "err1\nerr2\nerr3\nerr4\nerr5\n"
    assert result.stdout == "".join(out)
    assert result.exit_code == 0


def test_foreground_callbacks_stream_before_exit(shared_sandbox: Any) -> None:
    arrivals: list[tuple[float, str]] = []
    start = time.monotonic()
    shared_sandbox.commands.run(
        "echo first; sleep 1.5; echo second",
        on_stdout=lambda text: arrivals.append((time.monotonic() - start, text)),
    )
    total = time.monotonic() - start
    assert "".join(text for _, text in arrivals) == "first\nsecond\n"
    first_at = next(at for at, text in arrivals if "first" in text)
    assert first_at < total - 1.0, f"output was not streamed: {arrivals}, total {total:.2f}s"


def test_background_handle_kill(shared_sandbox: Any) -> None:
    seconds = marker_seconds()
    handle = shared_sandbox.commands.run(f"sleep {seconds}", background=True)
    assert handle.pid > 0
    assert handle.kill() is True
    with pytest.raises(CommandExitException) as info:
        handle.wait()
    assert info.value.exit_code == -1
    assert info.value.error == "signal: killed"
    assert wait_until_gone(shared_sandbox, f"sleep {seconds}")


def test_list_and_kill_by_pid(shared_sandbox: Any) -> None:
    seconds = marker_seconds()
    handle = shared_sandbox.commands.run(
        f"sleep {seconds}", background=True, envs={"LISTED": "1"}, cwd="/tmp"
    )
    listed = {proc.pid: proc for proc in shared_sandbox.commands.list()}
    assert handle.pid in listed
    proc = listed[handle.pid]
    assert proc.cmd == "/bin/bash"
    assert proc.args == ["-l", "-c", f"sleep {seconds}"]
    assert proc.envs.get("LISTED") == "1"
    assert proc.cwd == "/tmp"
    assert shared_sandbox.commands.kill(handle.pid) is True
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if handle.pid not in {p.pid for p in shared_sandbox.commands.list()}:
            break
        time.sleep(0.05)
    assert handle.pid not in {p.pid for p in shared_sandbox.commands.list()}
    assert shared_sandbox.commands.kill(handle.pid) is False
    assert shared_sandbox.commands.kill(UNKNOWN_PID) is False


def test_connect_to_running_background_process(shared_sandbox: Any) -> None:
    handle = shared_sandbox.commands.run(
        "sleep 0.3; for i in $(seq 1 10); do echo tick$i; sleep 0.05; done; exit 4",
        background=True,
    )
    handle.disconnect()  # the process must survive its original stream going away
    attached = shared_sandbox.commands.connect(handle.pid)
    assert attached.pid == handle.pid
    with pytest.raises(CommandExitException) as info:
        attached.wait()
    assert info.value.exit_code == 4
    assert "tick10\n" in info.value.stdout


def test_connect_stdin_roundtrip(shared_sandbox: Any) -> None:
    handle = shared_sandbox.commands.run(
        "read line; echo got:$line", background=True, stdin=True, timeout=30
    )
    attached = shared_sandbox.commands.connect(handle.pid)
    shared_sandbox.commands.send_stdin(handle.pid, "ping\n")
    assert attached.wait().stdout == "got:ping\n"


def test_close_stdin_delivers_eof(shared_sandbox: Any) -> None:
    handle = shared_sandbox.commands.run("wc -c", background=True, stdin=True, timeout=30)
    shared_sandbox.commands.send_stdin(handle.pid, "12345")
    shared_sandbox.commands.close_stdin(handle.pid)
    assert handle.wait().stdout.strip() == "5"


def test_connect_to_unknown_pid(shared_sandbox: Any) -> None:
    with pytest.raises(NotFoundException):
        shared_sandbox.commands.connect(UNKNOWN_PID)


def test_exit_code_of_killed_foreground_command(shared_sandbox: Any) -> None:
    with pytest.raises(CommandExitException) as info:
        shared_sandbox.commands.run("kill -9 $$")
    assert info.value.exit_code == -1
    assert info.value.error == "signal: killed"
