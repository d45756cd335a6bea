"""Every filesystem RPC works with imports forbidden after start-up (as after `pivot_root`).

Same blocking agent as `test_no_lazy_imports.py`; this drives the filesystem service's
success and error paths, including a move across filesystems (the copy fallback), a
recursive remove, xattr metadata, a streamed and a polled recursive watch.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.protocol.connect import EnvelopeDecoder, encode_envelope

from .harness import AgentClient, AgentProcess
from .test_no_lazy_imports import BLOCKING_AGENT


@pytest.fixture(scope="module")
def blocked_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    agent = AgentProcess(tmp_path_factory.mktemp("blocked-fs"), python_code=BLOCKING_AGENT)
    yield agent
    assert agent.stop() == []


def _call(client: AgentClient, method: str, body: dict[str, Any], **headers: str) -> Any:
    hdrs = client.headers(**headers)
    hdrs["content-type"] = "application/json"
    response = client.http.post(
        f"/filesystem.Filesystem/{method}", content=json.dumps(body), headers=hdrs
    )
    return response.status_code, response.json()


def _watch_messages(client: AgentClient, path: Path, touch: Path) -> list[Any]:
    body = encode_envelope(json.dumps({"path": str(path), "recursive": True}).encode())
    messages: list[Any] = []
    decoder = EnvelopeDecoder(1 << 20)
    streams = client.open_stream(
        "/filesystem.Filesystem/WatchDir", [body], connect_timeout_ms="1500"
    )
    for response in streams:
        for chunk in response.iter_raw():
            for envelope in decoder.feed(chunk):
                messages.append(json.loads(envelope.payload))
                if len(messages) == 1:
                    touch.write_text("x")
                    os.chmod(touch, 0o600)
    return messages


def test_filesystem_rpcs_work_with_imports_forbidden(blocked_agent: AgentProcess) -> None:
    client = blocked_agent.client
    base = Path(blocked_agent.socket_path).parent / "tree"
    (base / "sub/deeper").mkdir(parents=True)
    (base / "file").write_text("data")
    os.symlink("/nowhere", base / "dangling")
    try:
        os.setxattr(base / "file", "user.e2b.k", b"v")
    except OSError:
        pass
    ok = 200
    assert _call(client, "Stat", {"path": str(base / "file")})[0] == ok
    assert _call(client, "Stat", {"path": str(base / "dangling")})[0] == ok
    assert _call(client, "Stat", {"path": str(base / "missing")})[0] == 404
    assert _call(client, "Stat", {"path": "~/x\0"})[0] == 400
    assert _call(client, "Stat", {"path": "x"}, user="nobody-xyz")[0] == 401
    assert len(_call(client, "ListDir", {"path": str(base), "depth": 5})[1]["entries"]) == 4
    assert _call(client, "ListDir", {"path": str(base / "file")})[0] == 400
    assert _call(client, "MakeDir", {"path": str(base / "new/a/b")})[0] == ok
    assert _call(client, "MakeDir", {"path": str(base / "new")})[0] == 409
    move = {"source": str(base / "new"), "destination": str(base / "moved/x")}
    assert _call(client, "Move", move)[0] == ok
    with tempfile.TemporaryDirectory(prefix="corral-fs-", dir="/dev/shm") as other_fs:
        across = {"source": str(base / "moved"), "destination": f"{other_fs}/m"}
        assert _call(client, "Move", across)[0] == ok  # EXDEV: copied, then removed
        assert os.path.isdir(f"{other_fs}/m/x/a/b") and not (base / "moved").exists()
    assert _call(client, "Move", {"source": str(base / "gone"), "destination": "y"})[0] == 404
    assert _call(client, "Remove", {"path": str(base / "sub")})[0] == ok
    assert _call(client, "Remove", {"path": str(base / "sub")})[0] == ok
    status, created = _call(client, "CreateWatcher", {"path": str(base), "includeEntry": True})
    assert status == ok
    (base / "polled").write_text("x")
    time.sleep(0.1)
    assert _call(client, "GetWatcherEvents", created)[1]["events"]
    assert _call(client, "RemoveWatcher", created)[0] == ok
    assert _call(client, "RemoveWatcher", created)[0] == 404
    assert _call(client, "CreateWatcher", {"path": str(base / "file")})[0] == 400
    (base / "watched").mkdir()
    messages = _watch_messages(client, base, base / "watched/f")
    assert messages[0] == {"start": {}}
    assert {"filesystem": {"name": "watched/f", "type": "EVENT_TYPE_CHMOD"}} in messages
    assert "deadline_exceeded" in json.dumps(messages[-1])
    status_text = Path(f"/proc/{blocked_agent.process.pid}/status").read_text()
    assert "\nThreads:\t1\n" in status_text
    stderr = blocked_agent.stderr()
    assert "LAZY IMPORT" not in stderr, stderr
    assert "Traceback" not in stderr, stderr
