"""Run the agent standalone (`python -m corral.agent`) and talk raw HTTP to its unix socket.

`AgentProcess` starts one agent with a given `AgentConfig`; `AgentClient` speaks Connect by
hand over httpx (unary JSON calls, server streams read envelope by envelope, client streams
with chunked bodies). Every process an agent starts inherits a per-agent marker variable,
so `AgentProcess.stop` can prove nothing it started survives.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from corral.protocol.agent_config import AgentConfig
from corral.protocol.connect import (
    ConnectError,
    EnvelopeDecoder,
    encode_envelope,
    error_from_end_stream,
    error_from_unary_body,
)
from corral.protocol.process_messages import (
    DataEvent,
    EndEvent,
    KeepaliveEvent,
    OutputStream,
    ProcessEvent,
    StartEvent,
    decode_event,
)

PYTHON = sys.executable
MARKER_VAR = "CORRAL_AGENT_TEST_MARKER"


def basic_auth(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def bash(script: str, **extra: Any) -> dict[str, Any]:
    """A `Start` body running `script` like the SDK's `commands.run` does."""
    body: dict[str, Any] = {"process": {"cmd": "/bin/bash", "args": ["-c", script]}}
    body["process"].update(extra.pop("process", {}))
    body.update(extra)
    return body


@dataclass
class StreamResult:
    """Everything one server stream delivered."""

    status: int
    content_type: str | None
    events: list[ProcessEvent] = field(default_factory=list)
    error: ConnectError | None = None
    ended_cleanly: bool = False  # an end-of-stream envelope arrived

    def data(self, stream: OutputStream) -> bytes:
        return b"".join(
            e.data for e in self.events if isinstance(e, DataEvent) and e.stream is stream
        )

    @property
    def stdout(self) -> str:
        return self.data(OutputStream.STDOUT).decode()

    @property
    def stderr(self) -> str:
        return self.data(OutputStream.STDERR).decode()

    @property
    def pty(self) -> bytes:
        return self.data(OutputStream.PTY)

    @property
    def pid(self) -> int:
        first = self.events[0]
        assert isinstance(first, StartEvent), self.events
        return first.pid

    @property
    def end(self) -> EndEvent:
        ends = [e for e in self.events if isinstance(e, EndEvent)]
        assert len(ends) == 1, self.events
        return ends[0]

    @property
    def keepalives(self) -> int:
        return sum(isinstance(e, KeepaliveEvent) for e in self.events)


class EventReader:
    """Reads a streaming response envelope by envelope (the stream stays usable meanwhile)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.result = StreamResult(response.status_code, response.headers.get("content-type"))
        self._decoder = EnvelopeDecoder(1 << 26)
        self._chunks = response.iter_raw()
        self._queue: list[Any] = []

    def next_event(self) -> ProcessEvent | None:
        """The next message event, or None at end of stream."""
        while not self._queue:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                return None
            self._queue.extend(self._decoder.feed(chunk))
        envelope = self._queue.pop(0)
        if envelope.is_end_stream:
            self.result.ended_cleanly = True
            self.result.error = error_from_end_stream(envelope.payload)
            self._queue.clear()
            return None
        event = decode_event(json.loads(envelope.payload))
        self.result.events.append(event)
        return event

    def read_until(self, predicate: Any, limit: float = 10.0) -> ProcessEvent:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            event = self.next_event()
            if event is None:
                raise AssertionError(f"stream ended early: {self.result}")
            if predicate(event):
                return event
        raise AssertionError("timed out")

    def read_all(self) -> StreamResult:
        while self.next_event() is not None:
            pass
        return self.result


class AgentClient:
    """Hand-rolled Connect client for one agent socket."""

    def __init__(self, socket_path: str, token: str | None) -> None:
        self.socket_path = socket_path
        self.token = token
        self.http = httpx.Client(
            transport=httpx.HTTPTransport(uds=socket_path), base_url="http://agent", timeout=30
        )

    def close(self) -> None:
        self.http.close()

    def headers(self, user: str | None = None, **extra: str) -> dict[str, str]:
        headers = {"connect-protocol-version": "1"}
        if self.token:
            headers["x-access-token"] = self.token
        if user is not None:
            headers["authorization"] = basic_auth(user)
        headers.update({k.replace("_", "-"): v for k, v in extra.items()})
        return headers

    def unary_raw(
        self, method: str, body: Mapping[str, Any] | bytes, **headers: str
    ) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs = self.headers(**headers)
        hdrs.setdefault("content-type", "application/json")
        return self.http.post(f"/process.Process/{method}", content=content, headers=hdrs)

    def unary(self, method: str, body: Mapping[str, Any], **headers: str) -> dict[str, Any]:
        """Call and return the JSON response; raises ConnectError on an error status."""
        response = self.unary_raw(method, body, **headers)
        if response.status_code != 200:
            raise error_from_unary_body(response.status_code, response.content)
        assert response.headers["content-type"] == "application/json"
        value = response.json()
        assert isinstance(value, dict)
        return value

    def open_stream(
        self, path: str, messages: Iterable[bytes], **headers: str
    ) -> Iterator[httpx.Response]:
        hdrs = self.headers(**headers)
        hdrs.setdefault("content-type", "application/connect+json")

        def body() -> Iterator[bytes]:
            yield from messages

        with self.http.stream("POST", path, content=body(), headers=hdrs) as response:
            yield response

    def stream(self, method: str, body: Mapping[str, Any], **headers: str) -> Any:
        """Context manager yielding an `EventReader` over a Start/Connect stream."""
        import contextlib

        @contextlib.contextmanager
        def manager() -> Iterator[EventReader]:
            payload = encode_envelope(json.dumps(body).encode())
            for response in self.open_stream(f"/process.Process/{method}", [payload], **headers):
                yield EventReader(response)

        return manager()

    def run(self, body: Mapping[str, Any], **headers: str) -> StreamResult:
        """Start and read the stream to its end."""
        with self.stream("Start", body, **headers) as reader:
            return reader.read_all()

    def stream_input(self, messages: Iterable[Mapping[str, Any]], **headers: str) -> StreamResult:
        envelopes = (encode_envelope(json.dumps(m).encode()) for m in messages)
        for response in self.open_stream("/process.Process/StreamInput", envelopes, **headers):
            result = StreamResult(response.status_code, response.headers.get("content-type"))
            decoder = EnvelopeDecoder(1 << 20)
            for envelope in decoder.feed(response.read()):
                if envelope.is_end_stream:
                    result.ended_cleanly = True
                    result.error = error_from_end_stream(envelope.payload)
                else:
                    assert json.loads(envelope.payload) == {}
            return result
        raise AssertionError("unreachable")


def terminate(process: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM a server process started by a test and wait; SIGKILL it after `timeout` s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _processes_with_marker(marker: str) -> list[int]:
    found = []
    needle = f"{MARKER_VAR}={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if needle in handle.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


class AgentProcess:
    """One standalone agent in a temp dir; `stop()` also checks nothing it started survives."""

    def __init__(
        self,
        workdir: Path,
        *,
        token: str = "test-token",
        env_vars: Mapping[str, str] | None = None,
        default_user: str = "root",
        default_workdir: str | None = None,
        etc_dir: str | None = None,
        wrapper: list[str] | None = None,
        python_code: str | None = None,
    ) -> None:
        self.marker = uuid.uuid4().hex
        self.socket_path = str(workdir / "a.sock")
        self.config = AgentConfig(
            access_token=token,
            env_vars={**(env_vars or {}), MARKER_VAR: self.marker},
            default_user=default_user,
            default_workdir=default_workdir if default_workdir is not None else str(workdir),
        )
        self.stderr_path = workdir / "agent.stderr"
        argv = [
            PYTHON,
            "-m",
            "corral.agent",
            "--listen",
            self.socket_path,
            "--config-json",
            self.config.to_json(),
        ]
        if etc_dir is not None:
            argv += ["--etc-dir", etc_dir]
        if python_code is not None:
            argv = [PYTHON, "-c", python_code, self.socket_path, self.config.to_json()]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "AGENT_HOST_ONLY": "leak"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen((wrapper or []) + argv, env=env, stderr=stderr)
        self.client = AgentClient(self.socket_path, token or None)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"agent exited: {self.stderr()}")
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(self.socket_path)
                return
            except OSError:
                time.sleep(0.01)
            finally:
                probe.close()
        raise RuntimeError("agent did not start listening")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def leftover_processes(self) -> list[int]:
        return _processes_with_marker(self.marker)

    def stop(self) -> list[int]:
        """SIGTERM the agent; return pids of its processes still alive 5 s later."""
        self.client.close()
        terminate(self.process)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            survivors = self.leftover_processes()
            if not survivors:
                return []
            time.sleep(0.05)
        survivors = self.leftover_processes()
        for pid in survivors:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return survivors
