"""`Start`: event stream shape, exit semantics, output chunking, env, cwd, users, lifetime."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from corral.protocol.connect import Code
from corral.protocol.process_messages import DataEvent, EndEvent, OutputStream, StartEvent

from .harness import AgentClient, AgentProcess, bash


def test_start_event_first_then_output_then_end(client: AgentClient) -> None:
    result = client.run(bash("echo out; echo err >&2; printf tail"))
    assert result.status == 200
    assert result.content_type == "application/connect+json"
    assert isinstance(result.events[0], StartEvent) and result.pid > 1
    assert isinstance(result.events[-1], EndEvent)
    assert result.stdout == "out\ntail"
    assert result.stderr == "err\n"
    assert result.end == EndEvent(exit_code=0, exited=True, status="exit status 0", error=None)
    assert result.ended_cleanly and result.error is None


@pytest.mark.parametrize("code", [1, 3, 255])
def test_nonzero_exit(client: AgentClient, code: int) -> None:
    end = client.run(bash(f"exit {code}")).end
    assert end == EndEvent(code, True, f"exit status {code}", f"exit status {code}")


def test_killed_by_signal(client: AgentClient) -> None:
    end = client.run(bash("kill -9 $$")).end
    assert end == EndEvent(-1, False, "signal: killed", "signal: killed")
    end = client.run(bash("kill -TERM $$")).end
    assert end == EndEvent(-1, False, "signal: terminated", "signal: terminated")


def test_end_event_wire_format(client: AgentClient) -> None:
    """exitCode 0 is omitted; error only when non-zero (protocol doc §5.5)."""
    with client.stream("Start", bash("true")) as reader:
        raw = reader.response.read()
    assert b'{"event":{"end":{"exited":true,"status":"exit status 0"}}}' in raw
    assert raw.endswith(b"\x02\x00\x00\x00\x02{}")


def test_large_output_is_complete_ordered_and_chunked(client: AgentClient) -> None:
    result = client.run(bash("seq 1 200000; head -c 300000 /dev/zero >&2"))
    assert result.stdout == "".join(f"{i}\n" for i in range(1, 200001))
    assert result.data(OutputStream.STDERR) == b"\0" * 300000
    sizes = [len(e.data) for e in result.events if isinstance(e, DataEvent)]
    assert max(sizes) <= 32 * 1024
    assert max(sizes) > 16 * 1024  # really chunks, not lines


def test_invalid_utf8_passes_through_as_bytes(client: AgentClient) -> None:
    result = client.run(bash(r"printf '\xff\xfe\xe2\x82'"))
    assert result.data(OutputStream.STDOUT) == b"\xff\xfe\xe2\x82"


def test_environment_composition(agent: AgentProcess, client: AgentClient) -> None:
    result = client.run(bash("env", process={"envs": {"REQUEST_VAR": "req", "SHARED": "request"}}))
    env = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOME"] == "/root"
    assert env["USER"] == env["LOGNAME"] == "root"
    assert env["SANDBOX_VAR"] == "from-sandbox"
    assert env["REQUEST_VAR"] == "req"
    assert env["SHARED"] == "request"  # request envs win over sandbox env_vars
    assert "AGENT_HOST_ONLY" not in env  # nothing of the agent's own environment
    # per-command envs do not leak into later commands
    later = client.run(bash("echo ${REQUEST_VAR-unset} $SHARED")).stdout
    assert later == "unset sandbox\n"


def test_request_envs_override_path_and_home(client: AgentClient) -> None:
    out = client.run(bash("echo $PATH $HOME", process={"envs": {"PATH": "/x:/bin", "HOME": "/h"}}))
    assert out.stdout == "/x:/bin /h\n"


def test_cwd_default_is_default_workdir(agent: AgentProcess, client: AgentClient) -> None:
    assert client.run(bash("pwd")).stdout == f"{agent.config.default_workdir}\n"


def test_cwd_absolute_relative_and_tilde(client: AgentClient, tmp_path: Path) -> None:
    assert client.run(bash("pwd", process={"cwd": str(tmp_path)})).stdout == f"{tmp_path}\n"
    assert client.run(bash("pwd", process={"cwd": "~"})).stdout == "/root\n"
    os.makedirs("/root/.corral-agent-test-cwd", exist_ok=True)
    try:
        rel = client.run(bash("pwd", process={"cwd": ".corral-agent-test-cwd"})).stdout
        tilde = client.run(bash("pwd", process={"cwd": "~/.corral-agent-test-cwd"})).stdout
    finally:
        os.rmdir("/root/.corral-agent-test-cwd")
    assert rel == tilde == "/root/.corral-agent-test-cwd\n"


def test_missing_cwd_is_invalid_argument(client: AgentClient) -> None:
    result = client.run(bash("pwd", process={"cwd": "/definitely/not/here"}))
    assert result.status == 200 and result.events == []
    assert result.error is not None
    assert result.error.code is Code.INVALID_ARGUMENT
    assert result.error.message == "cwd '/definitely/not/here' does not exist"
    relative = client.run(bash("pwd", process={"cwd": "nope/x"}))
    assert (
        relative.error is not None and relative.error.message == "cwd '/root/nope/x' does not exist"
    )


def test_missing_default_workdir_falls_back_to_home(agent_factory: object) -> None:
    agent = agent_factory(default_workdir="/definitely/not/here")  # type: ignore[operator]
    assert agent.client.run(bash("pwd")).stdout == "/root\n"


def test_stdin_false_is_dev_null(client: AgentClient) -> None:
    result = client.run(bash("cat; readlink /proc/self/fd/0", stdin=False))
    assert result.stdout == "/dev/null\n"


def test_unknown_user_is_unauthenticated(client: AgentClient) -> None:
    result = client.run(bash("true"), user="no-such-user-xyz")
    assert result.error is not None
    assert result.error.code is Code.UNAUTHENTICATED
    assert result.error.message == "invalid username: 'no-such-user-xyz'"


def test_bad_authorization_header(client: AgentClient) -> None:
    result = client.run(bash("true"), authorization="Bearer abc")
    assert result.error is not None and result.error.code is Code.UNAUTHENTICATED
    result = client.run(bash("true"), authorization="Basic !!!")
    assert result.error is not None and result.error.code is Code.UNAUTHENTICATED


def test_runs_as_requested_user(client: AgentClient) -> None:
    out = client.run(bash("id -u; id -g; id -G; echo $HOME $USER $LOGNAME"), user="nobody")
    assert out.stdout.splitlines() == ["65534", "65534", "65534", "/nonexistent nobody nobody"]
    assert client.run(bash("id -u"), user="root").stdout == "0\n"


def test_supplementary_groups_from_etc_group(agent_factory: object, tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\ntester:x:12345:12346::/tmp:/bin/sh\n"
    )
    (etc / "group").write_text("root:x:0:\ntester:x:12346:\nextra:x:4242:other,tester\n")
    agent = agent_factory(etc_dir=str(etc), default_user="tester")  # type: ignore[operator]
    out = agent.client.run(bash("id -u; id -g; id -G; echo $HOME $USER")).stdout
    assert out.splitlines() == ["12345", "12346", "12346 4242", "/tmp tester"]


def test_exec_failure_is_internal(client: AgentClient) -> None:
    result = client.run({"process": {"cmd": "/no/such/binary"}})
    assert result.error is not None and result.error.code is Code.INTERNAL
    assert "/no/such/binary" in result.error.message
    assert "No such file or directory" in result.error.message


def test_nul_byte_is_invalid_argument(client: AgentClient) -> None:
    result = client.run(bash("true", process={"envs": {"A": "x\u0000y"}}))
    assert result.error is not None and result.error.code is Code.INVALID_ARGUMENT


def test_malformed_message_is_invalid_argument(client: AgentClient) -> None:
    result = client.run({"process": {"cmd": 5}})
    assert result.error is not None and result.error.code is Code.INVALID_ARGUMENT
    assert "process.cmd" in result.error.message


def test_timeout_kills_the_process(client: AgentClient) -> None:
    began = time.monotonic()
    result = client.run(bash("echo started; sleep 30"), connect_timeout_ms="300")
    assert time.monotonic() - began < 5
    assert result.stdout == "started\n"
    assert result.end == EndEvent(-1, False, "signal: killed", "signal: killed")


def test_timeout_zero_means_unlimited(client: AgentClient) -> None:
    result = client.run(bash("sleep 0.3; echo done"), connect_timeout_ms="0")
    assert result.stdout == "done\n" and result.end.exit_code == 0


def test_invalid_timeout_header(client: AgentClient) -> None:
    result = client.run(bash("true"), connect_timeout_ms="soon")
    assert result.error is not None and result.error.code is Code.INVALID_ARGUMENT


def test_keepalives_on_idle_stream(client: AgentClient) -> None:
    result = client.run(bash("sleep 0.55; echo x"), keepalive_ping_interval="0.1")
    assert 3 <= result.keepalives <= 6, result.events
    assert result.stdout == "x\n"
    quiet = client.run(bash("sleep 0.3"))  # default interval: 90 s
    assert quiet.keepalives == 0


def test_orphan_holding_the_pipe_does_not_block_the_end(client: AgentClient) -> None:
    marker = f"3.{os.getpid()}{time.monotonic_ns() % 1000}"
    began = time.monotonic()
    result = client.run(bash(f"sleep {marker} & echo parent-done"))
    assert time.monotonic() - began < 2
    assert result.stdout == "parent-done\n"
    assert result.end.exit_code == 0
    client.run(bash(f"pkill -f '^sleep {marker}$' || true"))


def test_shutdown_kills_processes_and_fresh_orphans(agent_factory: object) -> None:
    agent = agent_factory()  # type: ignore[operator]
    assert agent.client.run(bash("sleep 60 & echo started")).stdout == "started\n"
    with agent.client.stream("Start", bash("sleep 60")) as reader:
        reader.next_event()
        deadline = time.monotonic() + 5
        while len(agent.leftover_processes()) != 2 and time.monotonic() < deadline:
            time.sleep(0.02)  # /proc/<pid>/environ can be unreadable during exec
        assert len(agent.leftover_processes()) == 2
    began = time.monotonic()
    assert agent.stop() == []
    assert time.monotonic() - began < 2


def test_output_after_exit_of_a_quick_process_is_not_lost(client: AgentClient) -> None:
    for _ in range(20):
        assert client.run({"process": {"cmd": "/bin/echo", "args": ["hello"]}}).stdout == "hello\n"


def test_child_gets_only_stdio(agent_factory: object) -> None:
    """Even fds the agent inherited as inheritable (the listener, a stray fd) stay out."""
    code = (
        "import os, socket, sys\n"
        "import corral.agent\n"
        "from corral.protocol.agent_config import AgentConfig\n"
        "listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "listener.bind(sys.argv[1]); listener.listen(16); listener.set_inheritable(True)\n"
        "stray = os.open('/dev/null', os.O_RDONLY); os.set_inheritable(stray, True)\n"
        "corral.agent.serve(listener, AgentConfig.from_json(sys.argv[2]))\n"
    )
    agent = agent_factory(python_code=code)  # type: ignore[operator]
    script = "ls /proc/$$/fd; true"  # the shell's fds, listed by another process
    assert agent.client.run(bash(script)).stdout.split() == ["0", "1", "2"]
    pty = agent.client.run(
        {
            "process": {"cmd": "/bin/bash", "args": ["-c", script]},
            "pty": {"size": {"cols": 80, "rows": 24}},
        }
    )
    assert pty.pty.split() == [b"0", b"1", b"2"]
