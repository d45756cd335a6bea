"""The name a client asks for in the first bytes of a connection: TLS SNI or HTTP Host.

`server_name(data)` looks at what a client sent so far and answers `NEED_MORE`, or a `Peek`
with the name (lowercase, no trailing dot, no port) or without one (the bytes are neither a
TLS ClientHello with a `server_name` extension nor an HTTP/1 request head with exactly one
Host). Facts: RFC 8446 §4.1.2 (ClientHello, possibly split over several handshake records),
RFC 6066 §3 (server_name extension, type 0, `host_name` entries of type 0), RFC 9112 §3.2
(Host; an absolute-form request target's authority must agree with it).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Final

__all__ = ["MAX_PEEK", "NEED_MORE", "NeedMore", "Peek", "server_name"]

MAX_PEEK = 16 * 1024 + 5 + 1024
"""How many bytes a caller reads at most before giving up (one full TLS record and then
some, or an HTTP request head)."""

_TLS_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_EXT_SERVER_NAME = 0x0000
_HOST_NAME = 0
_METHOD = re.compile(rb"^[A-Z]{1,16}(?: |$)")
_NAME = re.compile(r"^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$")


class NeedMore:
    """The bytes so far are a valid beginning: read more (up to `MAX_PEEK`)."""


NEED_MORE: Final = NeedMore()


@dataclass(frozen=True)
class Peek:
    """The verdict of the first bytes."""

    kind: str
    """`tls`, `http` or `unknown`."""
    name: str | None
    """The requested name (lowercase, no port), or None when there is none or it is bad."""


def server_name(data: bytes) -> Peek | NeedMore:
    """See the module docstring."""
    if not data:
        return NEED_MORE
    if data[0] == _TLS_HANDSHAKE:
        return _tls(data)
    if _METHOD.match(data[:17]):
        return _http(data)
    return Peek("unknown", None)


def _normal(raw: str) -> str | None:
    name = raw.strip().lower().rstrip(".")
    return name if 0 < len(name) <= 253 and _NAME.match(name) else None


def _tls(data: bytes) -> Peek | NeedMore:
    handshake = bytearray()
    offset = 0
    while True:
        if len(data) < offset + 5:
            return NEED_MORE
        content_type, _, length = struct.unpack_from("!BHH", data, offset)
        if content_type != _TLS_HANDSHAKE or length == 0:
            return Peek("tls", None)
        if len(data) < offset + 5 + length:
            return NEED_MORE if offset + 5 + length <= MAX_PEEK else Peek("tls", None)
        handshake += data[offset + 5 : offset + 5 + length]
        offset += 5 + length
        if len(handshake) >= 4:
            if handshake[0] != _CLIENT_HELLO:
                return Peek("tls", None)
            needed = 4 + int.from_bytes(handshake[1:4], "big")
            if len(handshake) >= needed:
                return Peek("tls", _sni(bytes(handshake[4:needed])))


def _sni(hello: bytes) -> str | None:
    """The host_name of a ClientHello body; None if absent or malformed."""
    try:
        at = 2 + 32  # legacy_version, random
        at += 1 + hello[at]  # legacy_session_id
        (suites,) = struct.unpack_from("!H", hello, at)
        at += 2 + suites
        at += 1 + hello[at]  # legacy_compression_methods
        (extensions_length,) = struct.unpack_from("!H", hello, at)
        at += 2
        end = at + extensions_length
        if end > len(hello):
            return None
        while at + 4 <= end:
            ext_type, ext_length = struct.unpack_from("!HH", hello, at)
            at += 4
            if ext_type == _EXT_SERVER_NAME:
                return _host_name(hello[at : at + ext_length])
            at += ext_length
    except (IndexError, struct.error):
        return None
    return None


def _host_name(extension: bytes) -> str | None:
    (list_length,) = struct.unpack_from("!H", extension)
    at, end = 2, min(2 + list_length, len(extension))
    names = []
    while at + 3 <= end:
        name_type, length = struct.unpack_from("!BH", extension, at)
        at += 3
        if name_type == _HOST_NAME:
            names.append(extension[at : at + length])
        at += length
    if len(names) != 1:  # RFC 6066: at most one name of each type
        return None
    try:
        return _normal(names[0].decode("ascii"))
    except UnicodeDecodeError:
        return None


def _http(data: bytes) -> Peek | NeedMore:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return NEED_MORE if len(data) < MAX_PEEK else Peek("http", None)
    try:
        head = data[:end].decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        return Peek("http", None)
    request_line, *fields = head.split("\r\n")
    hosts = [value for key, _, value in (f.partition(":") for f in fields) if key.lower() == "host"]
    if len(hosts) != 1 or any(f[:1] in (" ", "\t") for f in fields):  # no folded lines
        return Peek("http", None)
    host = _normal(_without_port(hosts[0]))
    parts = request_line.split(" ")
    if len(parts) != 3 or host is None:
        return Peek("http", None)
    target = parts[1]
    if "://" in target:  # absolute form: its authority is what the server will use
        authority = target.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        if _normal(_without_port(authority)) != host:
            return Peek("http", None)
    return Peek("http", host)


def _without_port(authority: str) -> str:
    authority = authority.strip()
    if authority.startswith("["):
        return authority  # an IPv6 literal: not a name
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority
