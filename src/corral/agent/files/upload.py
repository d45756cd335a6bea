"""`POST /files`: the request body, decoded and written as it arrives (protocol doc §7.4).

    body ──► [GzipDecoder if Content-Encoding: gzip] ──► sink ──► UploadTarget(s) on disk
                                                         ├─ OctetStreamSink: one file, `path`
                                                         └─ MultipartSink: a file per part

Nothing is buffered beyond the piece at hand: each `on_body` chunk (at most what one socket
read returns) is written before the next is read, so the agent's memory stays flat whatever
the size. Blocking disk writes in the loop are small and bounded by that chunk size. The
first error answers at once (400/507/...); the rest of the body is then drained unread.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol

from python_multipart.multipart import parse_options_header

from corral.agent.files.answers import send_error
from corral.agent.files.errors import BadFileRequest, FilesError
from corral.agent.files.gzip_stream import GzipDecoder
from corral.agent.files.multipart import MultipartSink
from corral.agent.files.target import UploadTarget
from corral.agent.http_server import RequestHead, Response

__all__ = ["OctetStreamSink", "UploadHandler", "content_decoder", "open_sink"]


class _Sink(Protocol):
    def feed(self, data: bytes) -> None: ...

    def finish(self) -> list[dict[str, object]]: ...

    def close(self) -> None: ...


class OctetStreamSink:
    """`application/octet-stream`: the body is the one file at `path`."""

    __slots__ = ("_target",)

    def __init__(self, target: UploadTarget) -> None:
        self._target = target

    def feed(self, data: bytes) -> None:
        self._target.write(data)

    def finish(self) -> list[dict[str, object]]:
        return [self._target.finished()]

    def close(self) -> None:
        self._target.close()


def open_sink(
    head: RequestHead,
    path: str | None,
    resolve: Callable[[str], str],
    open_target: Callable[[str], UploadTarget],
) -> _Sink:
    """The sink for the request's Content-Type; raises `BadFileRequest`."""
    content_type, options = parse_options_header(head.header("content-type") or "")
    if content_type == b"multipart/form-data":
        boundary = options.get(b"boundary")
        if not boundary:
            raise BadFileRequest("multipart/form-data without a boundary")
        return MultipartSink(boundary, path, resolve, open_target)
    if content_type == b"application/octet-stream":
        if path is None:
            raise BadFileRequest("an application/octet-stream upload needs the path parameter")
        return OctetStreamSink(open_target(resolve(path)))
    shown = content_type.decode("latin-1") or "none"
    raise BadFileRequest(
        f"unsupported Content-Type '{shown}': use multipart/form-data or application/octet-stream"
    )


def content_decoder(head: RequestHead) -> GzipDecoder | None:
    """The decoder for the request's Content-Encoding (gzip or identity)."""
    encoding = (head.header("content-encoding") or "identity").strip().lower()
    if encoding == "gzip":
        return GzipDecoder()
    if encoding in ("identity", ""):
        return None
    raise BadFileRequest(f"unsupported Content-Encoding '{encoding}': use gzip or none")


class UploadHandler:
    """Streams one upload's body into its sink and answers with the written files."""

    __slots__ = ("_response", "_sink", "_decoder", "_done")

    def __init__(self, response: Response, sink: _Sink, decoder: GzipDecoder | None) -> None:
        self._response = response
        self._sink = sink
        self._decoder = decoder
        self._done = False

    def on_body(self, data: bytes) -> None:
        if self._done:
            return
        try:
            if self._decoder is None:
                self._sink.feed(data)
            else:
                for piece in self._decoder.feed(data):
                    self._sink.feed(piece)
        except FilesError as exc:
            self._fail(exc)

    def on_body_end(self) -> None:
        if self._done:
            return
        try:
            if self._decoder is not None:
                tail = self._decoder.finish()
                if tail:
                    self._sink.feed(tail)
            written = self._sink.finish()
        except FilesError as exc:
            self._fail(exc)
            return
        self._done = True
        self._sink.close()
        body = json.dumps(written, separators=(",", ":")).encode()
        self._response.send(200, body, "application/json")

    def on_disconnect(self) -> None:
        self._done = True
        self._sink.close()

    def _fail(self, exc: FilesError) -> None:
        self._done = True
        self._sink.close()
        send_error(self._response, exc)
