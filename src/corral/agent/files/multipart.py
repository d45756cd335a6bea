"""`multipart/form-data` uploads, parsed as they stream (protocol doc §7.4).

Parts named `file` are files; each part's `filename` is its destination path (relative or
with `/`, never reduced to a base name), unless the `path` query parameter overrides it.
Other parts are skipped. Two parts that resolve to the same path → 400. The parser is
python-multipart's `MultipartParser` (it skips through part data with `bytes.find`, so a
part costs about a memcpy); headers of one part are capped at 8 KiB.
"""

from __future__ import annotations

from collections.abc import Callable

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from corral.agent.files.errors import BadFileRequest
from corral.agent.files.target import UploadTarget

__all__ = ["MultipartSink"]

_MAX_PART_HEADER_BYTES = 8192
# httpx (the SDK) escapes these three in `filename="…"` the HTML5 way.
_FILENAME_ESCAPES = (("%22", '"'), ("%0D", "\r"), ("%0A", "\n"))


def _filename(raw: bytes) -> str:
    name = raw.decode("utf-8", "surrogateescape")
    for escaped, plain in _FILENAME_ESCAPES:
        name = name.replace(escaped, plain)
    return name


class MultipartSink:
    """Writes every `file` part of a multipart body to its own `UploadTarget`."""

    def __init__(
        self,
        boundary: bytes,
        path_override: str | None,
        resolve: Callable[[str], str],
        open_target: Callable[[str], UploadTarget],
    ) -> None:
        """`resolve` turns a requested path into an absolute one; `open_target` opens it."""
        self._override = path_override
        self._resolve = resolve
        self._open_target = open_target
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[bytes, bytes] = {}
        self._header_bytes = 0
        self._current: UploadTarget | None = None
        self._seen: set[str] = set()
        self._written: list[dict[str, object]] = []
        self._ended = False
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                    "on_end": self._on_end,
                },
            )
        except (ValueError, MultipartParseError) as exc:
            raise BadFileRequest(f"invalid multipart boundary: {exc}") from None

    def feed(self, data: bytes) -> None:
        try:
            self._parser.write(data)
        except MultipartParseError as exc:
            raise BadFileRequest(f"invalid multipart body: {exc}") from None

    def finish(self) -> list[dict[str, object]]:
        if not self._ended:
            raise BadFileRequest("invalid multipart body: it ends before its closing boundary")
        if not self._written:
            raise BadFileRequest("the multipart body has no part named 'file'")
        return self._written

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None

    # --- parser callbacks -------------------------------------------------------------------

    def _on_part_begin(self) -> None:
        self._headers = {}
        self._header_bytes = 0

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header_bytes(end - start)
        self._header_value += data[start:end]

    def _count_header_bytes(self, count: int) -> None:
        self._header_bytes += count
        if self._header_bytes > _MAX_PART_HEADER_BYTES:
            raise BadFileRequest("invalid multipart body: part headers over 8 KiB")

    def _on_header_end(self) -> None:
        self._headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        if options.get(b"name") != b"file":
            return  # not a file part: its data is skipped
        destination = self._override
        if destination is None:
            filename = options.get(b"filename")
            if not filename:
                raise BadFileRequest("a 'file' part has no filename and no path was given")
            destination = _filename(filename)
        path = self._resolve(destination)
        if path in self._seen:
            raise BadFileRequest(f"path '{path}' appears twice in one upload")
        self._seen.add(path)
        self._current = self._open_target(path)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self._current.write(memoryview(data)[start:end])

    def _on_part_end(self) -> None:
        if self._current is not None:
            target, self._current = self._current, None
            self._written.append(target.finished())

    def _on_end(self) -> None:
        self._ended = True
