"""The agent never imports anything after start-up (inside the sandbox it could not).

The agent runs in a subprocess that imports `corral.agent`, then installs a `sys.meta_path`
finder that records and refuses every import, then serves. The test drives every RPC and
endpoint, success and error paths, and checks nothing was imported.
"""

from __future__ import annotations

import gzip
import hashlib
import socket
from pathlib import Path

import pytest

from corral.protocol.connect import Code, ConnectError
from corral.protocol.process_messages import StartEvent
from corral.protocol.signing import compute_signature

from .harness import AgentProcess, b64, bash

BLOCKING_AGENT = r"""
import socket, sys
import corral.agent
from corral.protocol.agent_config import AgentConfig

class RefuseImports:
    def find_spec(self, name, path=None, target=None):
        sys.stderr.write(f"LAZY IMPORT: {name}\n")
        sys.stderr.flush()
        raise ImportError(f"lazy import of {name} after start-up")

path, config_json = sys.argv[1], sys.argv[2]
listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
listener.bind(path)
listener.listen(128)
config = AgentConfig.from_json(config_json)
sys.meta_path.insert(0, RefuseImports())
sys.path_hooks.clear()
sys.path_importer_cache.clear()
corral.agent.serve(listener, config)
"""


@pytest.fixture(scope="module")
def blocked_agent(tmp_path_factory: pytest.TempPathFactory) -> AgentProcess:
    workdir = tmp_path_factory.mktemp("blocked")
    agent = AgentProcess(workdir, python_code=BLOCKING_AGENT, env_vars={"A": "1"})
    yield agent  # type: ignore[misc]
    survivors = agent.stop()
    assert survivors == []


def _drive_files(agent: AgentProcess) -> None:
    """Every /files path: multipart, octet-stream, gzip both ways, metadata, signed links."""
    http, token = agent.client.http, agent.config.access_token
    auth = {"x-access-token": token}
    target = f"{agent.socket_path}.d/f.txt"
    up = http.post("/files", params={"path": target}, files={"file": ("f", b"x")}, headers=auth)
    assert up.status_code == 200, up.text
    octet = {**auth, "content-type": "application/octet-stream", "content-encoding": "gzip"}
    body = gzip.compress(b"y" * 1000)
    gz = http.post("/files", params={"path": target}, content=body, headers=octet)
    assert gz.status_code == 200, gz.text
    metadata = {**octet, "x-metadata-k": "v"}
    bad = http.post("/files", params={"path": target}, content=b"not gzip", headers=metadata)
    assert bad.status_code == 400
    assert http.get("/files", params={"path": target}, headers=auth).status_code == 200
    gz_headers = {**auth, "accept-encoding": "gzip"}
    assert http.get("/files", params={"path": target}, headers=gz_headers).status_code == 200
    signature = compute_signature(target, "read", "", token, "9999999999")
    signed = {"path": target, "signature": signature, "signature_expiration": "9999999999"}
    assert http.get("/files", params=signed).status_code == 200
    assert http.get("/files", params={**signed, "signature": "v1_x"}).status_code == 401
    assert http.get("/files", params={"path": "/no/such"}, headers=auth).status_code == 404
    assert http.put("/files", headers=auth).status_code == 405


def _drive_everything(agent: AgentProcess) -> None:
    client = agent.client
    # plain endpoints
    assert client.http.get("/health").status_code == 204
    assert client.http.get("/envs", headers=client.headers()).status_code == 200
    assert client.http.get("/envs").status_code == 401
    _drive_files(agent)
    assert client.http.get("/nope", headers=client.headers()).status_code == 404
    assert (
        client.http.post(
            "/filesystem.Filesystem/NoSuchCall",
            content=b"{}",
            headers=client.headers(content_type="application/json"),
        ).status_code
        == 501
    )
    # Start: pipes, users, env, cwd, errors
    result = client.run(bash("echo out; echo err >&2; exit 2", process={"envs": {"X": "y"}}))
    assert result.stdout == "out\n" and result.end.exit_code == 2
    assert client.run(bash("id -u"), user="nobody").stdout == "65534\n"
    assert client.run(bash("true"), user="nobody-xyz").error is not None
    assert client.run(bash("true"), authorization="Basic !!").error is not None
    assert client.run(bash("true", process={"cwd": "/no/where"})).error is not None
    assert client.run({"process": {"cmd": "/no/such"}}).error is not None
    assert client.run({"process": {"cmd": 1}}).error is not None
    assert client.run(bash("true", process={"envs": {"A": "\u0000"}})).error is not None
    assert client.run(bash("kill -9 $$")).end.status == "signal: killed"
    assert client.run(bash("kill -SEGV $$")).end.status.startswith("signal: segmentation")
    assert client.run(bash("sleep 5"), connect_timeout_ms="100").end.status == "signal: killed"
    assert client.run(bash("sleep 0.25"), keepalive_ping_interval="0.1").keepalives >= 1
    assert client.run(bash("sleep 2 & echo x")).stdout == "x\n"  # grace path
    assert client.run(bash("seq 1 100000")).stdout.endswith("100000\n")
    # stdin: SendInput, StreamInput, CloseStdin, misuse
    with client.stream("Start", bash("sha256sum | cut -c1-64")) as reader:
        pid = reader.read_until(lambda e: isinstance(e, StartEvent)).pid  # type: ignore[union-attr]
        data = b"z" * 300_000
        client.unary("SendInput", {"process": {"pid": pid}, "input": {"stdin": b64(data)}})
        stream = client.stream_input(
            [
                {"start": {"process": {"pid": pid}}},
                {"keepalive": {}},
                {"data": {"input": {"stdin": b64(data)}}},
            ]
        )
        assert stream.error is None
        with pytest.raises(ConnectError):
            client.unary("SendInput", {"process": {"pid": pid}, "input": {"pty": "eA=="}})
        with pytest.raises(ConnectError):
            client.unary(
                "Update", {"process": {"pid": pid}, "pty": {"size": {"cols": 2, "rows": 2}}}
            )
        client.unary("CloseStdin", {"process": {"pid": pid}})
        with pytest.raises(ConnectError):
            client.unary("SendInput", {"process": {"pid": pid}, "input": {"stdin": "eA=="}})
        assert reader.read_all().stdout.strip() == hashlib.sha256(data * 2).hexdigest()
    assert client.stream_input([{"start": {"process": {"pid": 3999999}}}]).error is not None
    assert client.stream_input([{"data": {}}]).error is not None
    # PTY: output, input, resize, Ctrl-D
    pty_body = {
        "process": {"cmd": "/bin/sh", "args": []},
        "pty": {"size": {"cols": 80, "rows": 24}},
    }
    with client.stream("Start", pty_body) as reader:
        pid = reader.read_until(lambda e: isinstance(e, StartEvent)).pid  # type: ignore[union-attr]
        client.unary("Update", {"process": {"pid": pid}, "pty": {"size": {"cols": 90, "rows": 9}}})
        client.unary(
            "SendInput", {"process": {"pid": pid}, "input": {"pty": b64("stty size\n\x04")}}
        )
        assert b"9 90" in reader.read_all().pty
    # Connect (live and late), List, SendSignal, errors
    with client.stream("Start", bash("sleep 5"), connect_timeout_ms="10000") as reader:
        pid = reader.read_until(lambda e: isinstance(e, StartEvent)).pid  # type: ignore[union-attr]
        assert pid in {p["pid"] for p in client.unary("List", {})["processes"]}
        with client.stream("Connect", {"process": {"pid": pid}}, connect_timeout_ms="100") as c:
            assert c.read_all().error is not None  # deadline_exceeded
        with client.stream("Connect", {"process": {"pid": pid}}) as attached:
            attached.next_event()
            client.unary("SendSignal", {"process": {"pid": pid}, "signal": "SIGNAL_SIGTERM"})
            assert attached.read_all().end.status == "signal: terminated"
        reader.read_all()
    with client.stream("Connect", {"process": {"pid": pid}}) as late:
        assert late.read_all().end.status == "signal: terminated"
    for method, body in (
        ("SendSignal", {"process": {"pid": 3999999}, "signal": 9}),
        ("SendSignal", {"process": {"pid": 1}, "signal": "BOGUS"}),
        ("CloseStdin", {"process": {"tag": "none"}}),
        ("Update", {"process": {}}),
    ):
        with pytest.raises(ConnectError) as info:
            client.unary(method, body)
        assert info.value.code in (Code.NOT_FOUND, Code.INVALID_ARGUMENT)
    # a client that goes away mid-stream
    with client.stream("Start", bash("sleep 0.2; echo later")) as reader:
        reader.next_event()
    assert client.unary_raw("List", b"{bad").status_code == 400
    # raw HTTP: pipelining, 100-continue, a malformed request
    token = agent.config.access_token.encode()
    list_request = (
        b"POST /process.Process/List HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n"
        b"x-access-token: " + token + b"\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n{}"
    )
    for payload, expected in (
        (list_request * 2 + b"GET /health HTTP/1.1\r\nconnection: close\r\n\r\n", b"204"),
        (b"NOT HTTP AT ALL\r\n\r\n", b"400"),
    ):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:
            raw.settimeout(10)
            raw.connect(agent.socket_path)
            raw.sendall(payload)
            received = b""
            while chunk := raw.recv(65536):
                received += chunk
        assert expected in received


def test_every_rpc_works_with_imports_forbidden(blocked_agent: AgentProcess) -> None:
    _drive_everything(blocked_agent)
    status = Path(f"/proc/{blocked_agent.process.pid}/status").read_text()
    assert "\nThreads:\t1\n" in status  # no helper threads, ever
    stderr = blocked_agent.stderr()
    assert "LAZY IMPORT" not in stderr, stderr
    assert "Traceback" not in stderr, stderr


def test_the_blocker_really_blocks(tmp_path: Path) -> None:
    """The finder used above does catch a lazy import (so the test above can fail)."""
    import subprocess
    import sys

    code = BLOCKING_AGENT.split("path, config_json")[0] + (
        "sys.meta_path.insert(0, RefuseImports())\n"
        "try:\n    import wave\nexcept ImportError:\n    pass\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert "LAZY IMPORT: wave" in done.stderr
