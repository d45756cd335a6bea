"""Create a sandbox, run one command in it with its output streamed, kill the sandbox.

`run_in_new_sandbox` is what `corral sandbox run -- CMD` does:

1. `POST /v2/sandboxes` (control plane) → sandbox id and envd access token;
2. `POST /process.Process/Start` with `E2b-Sandbox-Id` (data plane): the command's output
   events are written to the given binary streams as they arrive;
3. `DELETE /sandboxes/{id}`, always (unless `keep`).

Error hierarchy::

    ClientError        the server could not be reached or answered something unexpected
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from corral.protocol.connect import (
    STREAM_CONTENT_TYPE,
    EnvelopeDecoder,
    EnvelopeError,
    encode_envelope,
    error_from_end_stream,
    error_from_unary_body,
)
from corral.protocol.process_messages import (
    DataEvent,
    EndEvent,
    OutputStream,
    ProcessConfig,
    StartRequest,
    decode_event,
)
from corral.protocol.protojson import ProtoJsonError

__all__ = ["ClientError", "RunResult", "run_in_new_sandbox"]

ENVD_PORT = "49983"
MAX_MESSAGE = 4 << 20


class ClientError(Exception):
    """The server could not be reached or its answer was not what the protocol says."""


@dataclass(frozen=True, slots=True)
class RunResult:
    """How the command ended: `exit_code` is -1 when a signal ended it."""

    sandbox_id: str
    exit_code: int
    status: str


class _Connection:
    """One keep-alive HTTP/1.1 connection to the server, with its errors made `ClientError`."""

    def __init__(self, url: str, api_key: str, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ClientError(f"server URL must look like http://host:port, got {url!r}")
        self.url = url
        self.api_key = api_key
        self.http = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        try:
            self.http.request(method, path, body=body, headers=headers)
            return self.http.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise ClientError(
                f"cannot reach Corral at {self.url} ({exc}); is `corral serve` running there?"
            ) from exc

    def control(self, method: str, path: str, payload: object | None) -> tuple[int, bytes]:
        headers = {"X-API-KEY": self.api_key}
        body = None
        if payload is not None:
            body = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        response = self.request(method, path, body, headers)
        return response.status, response.read()

    def close(self) -> None:
        self.http.close()


def _create(conn: _Connection, template: str, timeout: int) -> tuple[str, str | None]:
    body = {"templateID": template, "timeout": timeout, "metadata": {}, "envVars": {}}
    status, raw = conn.control("POST", "/v2/sandboxes", body)
    if status != 201:
        raise ClientError(f"create failed with HTTP {status}: {raw.decode(errors='replace')}")
    try:
        answer = json.loads(raw)
        token = answer.get("envdAccessToken")
        return str(answer["sandboxID"]), None if token is None else str(token)
    except (ValueError, KeyError, AttributeError) as exc:
        raise ClientError(f"create answered an unexpected body: {raw[:200]!r}") from exc


def _start(
    conn: _Connection,
    sandbox_id: str,
    token: str | None,
    argv: Sequence[str],
    stdout: BinaryIO,
    stderr: BinaryIO,
) -> EndEvent:
    request = StartRequest(ProcessConfig(argv[0], tuple(argv[1:])), stdin=False)
    body = encode_envelope(json.dumps(request.to_wire(), separators=(",", ":")).encode())
    headers = {
        "Content-Type": STREAM_CONTENT_TYPE,
        "Connect-Protocol-Version": "1",
        "E2b-Sandbox-Id": sandbox_id,
        "E2b-Sandbox-Port": ENVD_PORT,
    }
    if token is not None:
        headers["X-Access-Token"] = token
    response = conn.request("POST", "/process.Process/Start", body, headers)
    if response.status != 200:
        error = error_from_unary_body(response.status, response.read())
        raise ClientError(f"starting {argv[0]!r} failed: {error}")
    sinks = {OutputStream.STDOUT: stdout, OutputStream.STDERR: stderr, OutputStream.PTY: stdout}
    decoder = EnvelopeDecoder(MAX_MESSAGE)
    end: EndEvent | None = None
    try:
        while chunk := response.read1(65536):
            for envelope in decoder.feed(chunk):
                if envelope.is_end_stream:
                    failure = error_from_end_stream(envelope.payload)
                    if failure is not None:
                        raise ClientError(f"running {argv[0]!r} failed: {failure}")
                    continue
                event = decode_event(json.loads(envelope.payload))
                if isinstance(event, DataEvent):
                    sink = sinks[event.stream]
                    sink.write(event.data)
                    sink.flush()
                elif isinstance(event, EndEvent):
                    end = event
    except (OSError, http.client.HTTPException, EnvelopeError, ProtoJsonError, ValueError) as exc:
        raise ClientError(f"the output stream of {argv[0]!r} broke: {exc}") from exc
    if end is None:
        raise ClientError(f"{argv[0]!r} ended without an end event (sandbox gone?)")
    return end


def run_in_new_sandbox(
    url: str,
    api_key: str,
    argv: Sequence[str],
    *,
    stdout: BinaryIO,
    stderr: BinaryIO,
    template: str = "base",
    sandbox_timeout: int = 300,
    keep: bool = False,
    http_timeout: float = 60.0,
) -> RunResult:
    """Create a sandbox of `template`, run `argv` in it (output streamed), then kill it."""
    if not argv:
        raise ClientError("no command given: put it after `--`, e.g. `-- echo hi`")
    conn = _Connection(url, api_key, http_timeout)
    try:
        sandbox_id, token = _create(conn, template, sandbox_timeout)
        try:
            end = _start(conn, sandbox_id, token, argv, stdout, stderr)
        except BaseException:
            conn.close()  # a broken stream leaves the connection unusable: kill on a new one
            raise
        finally:
            if not keep:
                status, raw = conn.control("DELETE", f"/sandboxes/{sandbox_id}", None)
                if status not in (204, 404):
                    raise ClientError(f"kill of {sandbox_id} answered HTTP {status}: {raw!r}")
        return RunResult(sandbox_id, end.exit_code, end.status)
    finally:
        conn.close()
