"""`GET /files`: stream a regular file to the client (protocol doc §7.3).

An uncompressed file larger than one chunk is answered with `Content-Length` (its size at
open) and sent by the kernel (`Response.send_file`, sendfile): no bytes pass through Python,
and the socket buffer is the only buffer. If the file shrinks meanwhile the connection is
aborted, so the client sees a failed download rather than a short one; if it grows, the
bytes past the size at open are not sent.

Otherwise (gzip, and small files, which include the pseudo-files of /proc and /sys whose
`st_size` is 0 or a nominal 4096) the file is read in 128 KiB steps, one per loop
iteration, and written to the response as a chunk; when the transport's buffer is full
(`Response.on_flow(True)`) reading stops until it drains, so memory per download stays
about two chunks whatever the file size.

Encoding: identity unless the client asks for gzip *alone* (`Accept-Encoding: gzip`, what
the SDK sends for `files.read(gzip=True)`); the SDK's default `gzip, deflate` is answered
uncompressed, which it accepts equally and which costs no CPU on a local link. A client
that refuses identity and gzip gets 406.
"""

from __future__ import annotations

import asyncio
import logging
import os
import posixpath
import stat
from urllib.parse import quote

from corral.agent.files.errors import BadFileRequest, FilesError, NotAcceptable, from_os_error
from corral.agent.files.gzip_stream import gzip_compressor
from corral.agent.http_server import Response

__all__ = ["Download", "open_download", "wants_gzip"]

_log = logging.getLogger("corral.agent")
_CHUNK = 1 << 17
# Files up to this size are read and sent chunked, as they are read (see the docstring).
_SENDFILE_MIN = _CHUNK
_OCTET_STREAM = "application/octet-stream"
# Content-Type by extension; anything else is application/octet-stream.
_CONTENT_TYPES = {
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".xml": "application/xml",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".tar": "application/x-tar",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
    ".mp3": "audio/mpeg",
    ".mp4": "video/mp4",
    ".wasm": "application/wasm",
}


def _codings(accept_encoding: str) -> dict[str, float]:
    """`Accept-Encoding` as coding → q (RFC 9110 §12.5.3); unparsable q counts as 1."""
    codings: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        quality = 1.0
        key, _, value = params.partition("=")
        if key.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 1.0
        codings[name] = quality
    return codings


def wants_gzip(accept_encoding: str | None) -> bool:
    """Whether to gzip the answer; raises `NotAcceptable` if neither coding is allowed."""
    if accept_encoding is None:
        return False
    codings = _codings(accept_encoding)
    star = codings.get("*")
    gzip_ok = codings.get("gzip", star if star is not None else 0.0) > 0
    identity_ok = codings.get("identity", star if star is not None else 1.0) > 0
    if not identity_ok and not gzip_ok:
        raise NotAcceptable("no acceptable content encoding: this server sends identity or gzip")
    return gzip_ok and (not identity_ok or set(codings) == {"gzip"})


def _disposition(path: str) -> str:
    name = posixpath.basename(path)
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        return f'inline; filename="{name}"'
    encoded = quote(name.encode("utf-8", "surrogateescape"), safe="")
    return f"inline; filename*=UTF-8''{encoded}"


def open_download(path: str) -> int:
    """An fd of the regular file at `path`; raises 404 / 400 as §7.3 says."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise from_os_error(exc, path) from exc
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise from_os_error(exc, path) from exc
    if stat.S_ISDIR(mode):
        os.close(fd)
        raise BadFileRequest(f"path '{path}' is a directory")
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise BadFileRequest(f"path '{path}' is not a regular file")
    return fd


class Download:
    """Pumps one open file into a streaming response (a `RequestHandler`)."""

    __slots__ = (
        "_loop",
        "_response",
        "_fd",
        "_path",
        "_compressor",
        "_paused",
        "_scheduled",
        "_sending",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        response: Response,
        fd: int,
        path: str,
        compress: bool,
    ) -> None:
        self._loop = loop
        self._response = response
        self._fd = fd
        self._path = path
        self._compressor = gzip_compressor() if compress else None
        self._paused = False
        self._scheduled = False
        self._sending: asyncio.Task[bool] | None = None
        extension = posixpath.splitext(path)[1].lower()
        content_type = _CONTENT_TYPES.get(extension, _OCTET_STREAM)
        headers = {"content-disposition": _disposition(path)}
        if compress:
            headers["content-encoding"] = "gzip"
        headers["vary"] = "accept-encoding"
        size = os.fstat(fd).st_size
        if not compress and size > _SENDFILE_MIN:
            self._sending = loop.create_task(
                response.send_file(200, content_type, fd, size, headers)
            )
            self._sending.add_done_callback(self._sent)
            return
        response.start_stream(200, content_type, headers)
        response.on_flow = self._on_flow
        self._schedule()

    # RequestHandler: a GET body is ignored.
    def on_body(self, data: bytes) -> None:
        pass

    def on_body_end(self) -> None:
        pass

    def on_disconnect(self) -> None:
        if self._sending is not None:
            self._sending.cancel()  # `_sent` closes the file
        else:
            self._close()

    def _sent(self, sending: asyncio.Task[bool]) -> None:
        self._close()
        if sending.cancelled():
            return
        error = sending.exception()
        if error is not None:
            _log.error("download of %s failed", self._path, exc_info=error)
            self._response.abort()
        elif not sending.result():
            _log.warning(
                "download of %s aborted: the client left, or the file shrank below its"
                " size at open",
                self._path,
            )

    def _on_flow(self, paused: bool) -> None:
        self._paused = paused
        if not paused:
            self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled and self._fd >= 0:
            self._scheduled = True
            self._loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._scheduled = False
        if self._fd < 0 or self._paused:
            return
        if self._response.closed:
            self._close()
            return
        try:
            data = os.read(self._fd, _CHUNK)
        except OSError as exc:
            error: FilesError = from_os_error(exc, self._path)
            _log.warning("download of %s failed mid-stream: %s", self._path, error)
            self._close()
            self._response.abort()
            return
        if not data:
            tail = self._compressor.flush() if self._compressor is not None else b""
            self._close()
            self._response.end_stream(tail)
            return
        if self._compressor is not None:
            data = self._compressor.compress(data)
        self._response.write(data)
        self._schedule()

    def _close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)
