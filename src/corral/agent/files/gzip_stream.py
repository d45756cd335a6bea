"""Streaming gzip in both directions (RFC 1952), bounded memory per step.

`GzipDecoder` inflates an upload as it arrives, at most `_STEP` bytes of output per step,
so a small, highly compressed chunk (a "gzip bomb") never becomes a large buffer: what it
expands to goes to disk piece by piece (bounded only by the sandbox's disk, like any
upload). Concatenated members are accepted, as `gzip -d` does. `gzip_compressor` makes the
compressor of a download.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from corral.agent.files.errors import BadFileRequest

__all__ = ["GzipDecoder", "gzip_compressor"]

_STEP = 1 << 20
_GZIP_WBITS = 31  # zlib: 16 (gzip wrapper) + 15 (window)
_DOWNLOAD_LEVEL = 1  # fastest: a sandbox link is local, CPU is the scarce resource


def gzip_compressor() -> zlib._Compress:
    return zlib.compressobj(_DOWNLOAD_LEVEL, zlib.DEFLATED, _GZIP_WBITS)


class GzipDecoder:
    """Feed compressed bytes, iterate over decompressed pieces; `finish()` at the end."""

    __slots__ = ("_inflater", "_started")

    def __init__(self) -> None:
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            if self._inflater.eof:  # the next member of a multi-member stream
                self._inflater = zlib.decompressobj(_GZIP_WBITS)
            self._started = True
            try:
                piece = self._inflater.decompress(data, _STEP)
            except zlib.error as exc:
                raise BadFileRequest(f"invalid gzip body: {exc}") from None
            if piece:
                yield piece
            data = self._inflater.unconsumed_tail or self._inflater.unused_data

    def finish(self) -> bytes:
        """The last decompressed bytes; `BadFileRequest` if the body ended mid-member."""
        if not self._started:
            raise BadFileRequest("invalid gzip body: it is empty")
        tail = self._inflater.flush()  # output zlib still held (at most about a window)
        if not self._inflater.eof:
            raise BadFileRequest("invalid gzip body: it ends before the end of its stream")
        return tail
