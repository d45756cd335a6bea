"""The official `e2b` SDK (unmodified) drives the agent directly.

`Sandbox` is built by hand with `sandbox_url` pointing at a local TCP port that is bridged
to the agent's unix socket (the SDK's transport speaks TCP only), so its real `commands` and
`pty` modules, connectrpc client and error mapping run against the agent with no server.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.version import Version

from .harness import AgentProcess

e2b = pytest.importorskip("e2b")


class TcpToUnixBridge:
    """Forwards every TCP connection on 127.0.0.1 to a unix socket, byte for byte."""

    def __init__(self, unix_path: str) -> None:
        self.unix_path = unix_path
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            try:
                target.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def _accept(self) -> None:
        while True:
            try:
                tcp, _ = self.server.accept()
            except OSError:
                return
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            unix.connect(self.unix_path)
            self._sockets += [tcp, unix]
            threading.Thread(target=self._pump, args=(tcp, unix), daemon=True).start()
            threading.Thread(target=self._pump, args=(unix, tcp), daemon=True).start()

    def close(self) -> None:
        self.server.close()
        for sock in self._sockets:
            sock.close()


def _sandbox(port: int, token: str) -> Any:
    headers = {"E2b-Sandbox-Id": "sbxagenttest", "E2b-Sandbox-Port": "49983"}
    headers["X-Access-Token"] = token
    config = e2b.ConnectionConfig(
        api_key="e2b_test", sandbox_url=f"http://127.0.0.1:{port}", extra_sandbox_headers=headers
    )
    return e2b.Sandbox(
        sandbox_id="sbxagenttest",
        sandbox_domain=None,
        envd_version=Version("0.6.13"),
        envd_access_token=token,
        traffic_access_token=None,
        connection_config=config,
    )


@pytest.fixture(scope="module")
def sdk_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AgentProcess, int]]:
    # The SDK runs `bash -l`: give the agent its own users with empty homes, so no login
    # profile of the host (e.g. root's pyenv init) is involved.
    workdir = tmp_path_factory.mktemp("sdk")
    homes = Path(tempfile.mkdtemp(prefix="corral-agent-sdk-"))  # traversable by uid 1000
    homes.chmod(0o755)
    (homes / "root").mkdir()
    (homes / "user").mkdir()
    os.chown(homes / "user", 1000, 1000)
    etc = workdir / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(
        f"root:x:0:0:root:{homes}/root:/bin/bash\nuser:x:1000:1000::{homes}/user:/bin/bash\n"
    )
    (etc / "group").write_text("root:x:0:\nuser:x:1000:\n")
    agent = AgentProcess(
        workdir,
        token="sdk-token",
        env_vars={"SV": "1"},
        default_user="user",
        default_workdir=f"{homes}/user",
        etc_dir=str(etc),
    )
    bridge = TcpToUnixBridge(agent.socket_path)
    try:
        yield agent, bridge.port
    finally:
        bridge.close()
        survivors = agent.stop()
        shutil.rmtree(homes, ignore_errors=True)
        assert survivors == []


@pytest.fixture
def sbx(sdk_agent: tuple[AgentProcess, int]) -> Any:
    return _sandbox(sdk_agent[1], "sdk-token")


def test_run_foreground(sbx: Any) -> None:
    assert sbx.is_running() is True
    result = sbx.commands.run("echo out; echo err >&2; echo $SV $X", envs={"X": "y"})
    assert (result.stdout, result.stderr, result.exit_code, result.error) == (
        "out\n1 y\n",
        "err\n",
        0,
        None,
    )
    assert sbx.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n"
    assert sbx.commands.run("id -u; echo $HOME").stdout.startswith("1000\n/")
    assert sbx.commands.run("id -u", user="root").stdout == "0\n"


def test_errors_map_to_sdk_exceptions(sbx: Any, sdk_agent: tuple[AgentProcess, int]) -> None:
    with pytest.raises(e2b.CommandExitException) as info:
        sbx.commands.run("echo partial; exit 3")
    assert (info.value.exit_code, info.value.stdout, info.value.error) == (
        3,
        "partial\n",
        "exit status 3",
    )
    with pytest.raises(e2b.InvalidArgumentException, match="does not exist"):
        sbx.commands.run("pwd", cwd="/definitely/not/here")
    with pytest.raises(e2b.AuthenticationException):
        sbx.commands.run("true", user="no-such-user-xyz")
    with pytest.raises(e2b.NotFoundException):
        sbx.commands.connect(3999999)
    assert sbx.commands.kill(3999999) is False
    with pytest.raises(e2b.AuthenticationException):
        _sandbox(sdk_agent[1], "wrong-token").commands.list()


def test_background_list_kill(sbx: Any) -> None:
    handle = sbx.commands.run("sleep 30", background=True, envs={"LISTED": "1"}, cwd="/tmp")
    listed = {proc.pid: proc for proc in sbx.commands.list()}
    assert listed[handle.pid].cmd == "/bin/bash"
    assert listed[handle.pid].args == ["-l", "-c", "sleep 30"]
    assert listed[handle.pid].envs == {"LISTED": "1"} and listed[handle.pid].cwd == "/tmp"
    assert handle.kill() is True
    with pytest.raises(e2b.CommandExitException) as info:
        handle.wait()
    assert (info.value.exit_code, info.value.error) == (-1, "signal: killed")


def test_disconnect_and_reconnect(sbx: Any) -> None:
    handle = sbx.commands.run("sleep 0.3; echo late; exit 4", background=True)
    handle.disconnect()
    attached = sbx.commands.connect(handle.pid)
    with pytest.raises(e2b.CommandExitException) as info:
        attached.wait()
    assert info.value.exit_code == 4 and info.value.stdout == "late\n"


def test_stdin_send_stream_close(sbx: Any) -> None:
    handle = sbx.commands.run("cat", background=True, stdin=True)
    sbx.commands.send_stdin(handle.pid, "one,")
    sbx.commands.stream_input(handle.pid, iter(["two,", b"three"]))
    sbx.commands.close_stdin(handle.pid)
    assert handle.wait().stdout == "one,two,three"
    closed = sbx.commands.run("sleep 5", background=True)
    with pytest.raises(e2b.SandboxException):
        closed.send_stdin("x")
    closed.kill()


def test_timeout_kills(sbx: Any) -> None:
    began = time.monotonic()
    with pytest.raises(e2b.TimeoutException):
        sbx.commands.run("sleep 30", timeout=1)
    assert time.monotonic() - began < 5


def test_pty(sbx: Any) -> None:
    output: list[bytes] = []
    terminal = sbx.pty.create(e2b.PtySize(rows=24, cols=80))
    sbx.pty.resize(terminal.pid, e2b.PtySize(rows=33, cols=99))
    sbx.pty.send_stdin(terminal.pid, b"stty size; exit 0\n")
    result = terminal.wait(on_pty=output.append)
    assert result.exit_code == 0
    assert b"33 99" in b"".join(output)
    # kill a second terminal
    other = sbx.pty.create(e2b.PtySize(rows=24, cols=80))
    assert sbx.pty.kill(other.pid) is True
    with pytest.raises(e2b.CommandExitException):
        other.wait()


def test_files_round_trip(sbx: Any, tmp_path: Path) -> None:
    """`/files` end to end with the SDK's own multipart, octet-stream and gzip bodies."""
    target = str(tmp_path / "sdk" / "f.txt")
    assert sbx.files.write(target, "via sdk").path == target
    assert sbx.files.read(target) == "via sdk"
    sbx.files.write(target, b"gz" * 1000, gzip=True)
    assert sbx.files.read(target, format="bytes", gzip=True) == bytearray(b"gz" * 1000)
    with pytest.raises(e2b.FileNotFoundException):
        sbx.files.read(str(tmp_path / "missing"))
