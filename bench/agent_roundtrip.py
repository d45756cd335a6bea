"""Agent micro-benchmark: `Start` of `/bin/true` over the agent's unix socket.

Runs the agent standalone (`python -m corral.agent`, no isolation), then sends N `Start`
requests (chunked body, like the SDK) on one keep-alive connection with a raw-socket client
and prints, in milliseconds, p50/p95/p99 of:
* `start`: request written -> `start` event received (the agent's answer; includes fork/exec);
* `round trip`: request written -> end-of-stream received (process exited, end event sent).
Also prints the agent's resident memory after the run.

`--user NAME` runs the command as another user (Basic auth), which makes CPython fork
instead of vfork (it refuses vfork when uid/gid/groups change): compare `--user nobody`.

    .venv/bin/python bench/agent_roundtrip.py [--count 200] [--user nobody] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from corral.protocol.agent_config import AgentConfig  # noqa: E402
from corral.protocol.connect import EnvelopeDecoder, encode_envelope  # noqa: E402

PYTHON = REPO / ".venv" / "bin" / "python"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _start_request(token: str, user: str | None) -> bytes:
    message = json.dumps(
        {"process": {"cmd": "/bin/true", "args": []}, "stdin": False}, separators=(",", ":")
    ).encode()
    body = encode_envelope(message)
    auth = b""
    if user is not None:
        auth = b"authorization: Basic " + base64.b64encode(f"{user}:".encode()) + b"\r\n"
    return (
        b"POST /process.Process/Start HTTP/1.1\r\nhost: agent\r\n"
        b"content-type: application/connect+json\r\nconnect-protocol-version: 1\r\n"
        b"x-access-token: "
        + token.encode()
        + b"\r\n"
        + auth
        + b"transfer-encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(body)
        + body
        + b"\r\n0\r\n\r\n"
    )


class _Reader:
    """Reads one chunked streaming response and decodes its envelopes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("agent closed the connection")
        self.buffer += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def response(self, on_first_message: object) -> list[bytes]:
        status = self._line()
        assert status.startswith(b"HTTP/1.1 200"), status
        while self._line():
            pass
        decoder = EnvelopeDecoder(1 << 20)
        payloads: list[bytes] = []
        while True:
            size = int(self._line(), 16)
            chunk = self._exact(size + 2)[:size]
            if size == 0:
                return payloads
            for envelope in decoder.feed(chunk):
                if not payloads:
                    on_first_message()  # type: ignore[operator]
                payloads.append(envelope.payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--user", default=None, help="run as this user (default: root)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="corral-bench-agent-")
    sock_path = os.path.join(workdir, "agent.sock")
    config = AgentConfig(access_token="bench-token", default_user="root", default_workdir="/")
    agent = subprocess.Popen(
        [
            str(PYTHON),
            "-m",
            "corral.agent",
            "--listen",
            sock_path,
            "--config-json",
            config.to_json(),
        ],
        env={"PYTHONPATH": str(REPO / "src"), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.connect(sock_path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                client.close()
                if time.monotonic() > deadline:
                    raise SystemExit("agent did not start") from None
                time.sleep(0.01)
        request = _start_request(config.access_token, args.user)
        reader = _Reader(client)
        start_ms: list[float] = []
        total_ms: list[float] = []
        for index in range(args.warmup + args.count):
            first_at: list[float] = []
            began = time.perf_counter()
            client.sendall(request)
            payloads = reader.response(lambda: first_at.append(time.perf_counter()))  # noqa: B023
            ended = time.perf_counter()
            assert payloads[0].startswith(b'{"event":{"start"'), payloads[0]
            assert b'"end"' in payloads[-2], payloads
            if index >= args.warmup:
                start_ms.append((first_at[0] - began) * 1000)
                total_ms.append((ended - began) * 1000)
        with open(f"/proc/{agent.pid}/status") as status:
            rss_kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        client.close()
    finally:
        agent.terminate()
        agent.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    result = {
        "count": args.count,
        "user": args.user or "root",
        "start_ms": {
            p: round(_percentile(start_ms, f), 3)
            for p, f in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        },
        "roundtrip_ms": {
            p: round(_percentile(total_ms, f), 3)
            for p, f in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        },
        "roundtrip_mean_ms": round(statistics.fmean(total_ms), 3),
        "agent_rss_kib": rss_kib,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"Start of /bin/true x{args.count} as {result['user']} over the agent's socket (ms)")
    for label, key in (("start event", "start_ms"), ("round trip ", "roundtrip_ms")):
        p = result[key]
        print(f"  {label}: p50 {p['p50']:.3f}  p95 {p['p95']:.3f}  p99 {p['p99']:.3f}")  # type: ignore[index]
    print(f"  agent RSS after run: {rss_kib} KiB")


if __name__ == "__main__":
    main()
