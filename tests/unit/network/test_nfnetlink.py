"""NFLOG and conntrack messages, built byte by byte from the uapi layouts, parse as expected."""

from __future__ import annotations

import socket
import struct

import pytest

from corral.network.nfnetlink import (
    EndedFlow,
    LoggedPacket,
    config_messages,
    iter_messages,
    parse_conntrack_end,
    parse_log_packet,
)


def _attr(kind: int, value: bytes, nested: bool = False) -> bytes:
    raw = struct.pack("=HH", 4 + len(value), kind | (0x8000 if nested else 0)) + value
    return raw + b"\0" * (-len(raw) % 4)


def _msg(kind: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def _ipv4_tcp(src: str, dst: str, sport: int, dport: int) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        40,
        1,
        0x4000,
        64,
        6,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    return header + struct.pack("!HHII", sport, dport, 0, 0)


def _nflog(payload: bytes, prefix: bytes, family: int = socket.AF_INET) -> bytes:
    body = struct.pack("!BBH", family, 0, 5)
    body += _attr(1, struct.pack("!HBx", 0x0800, 2))  # NFULA_PACKET_HDR
    body += _attr(10, prefix + b"\0")  # NFULA_PREFIX
    body += _attr(9, payload)  # NFULA_PAYLOAD
    return _msg((4 << 8) | 0, body)


def test_log_packet_ipv4_tcp() -> None:
    datagram = _nflog(_ipv4_tcp("10.88.0.2", "192.0.2.9", 41000, 8443), b"corral:denied:x")
    ((kind, body),) = list(iter_messages(datagram))
    assert parse_log_packet(kind, body) == LoggedPacket(
        "corral:denied:x", "10.88.0.2", "192.0.2.9", "tcp", 41000, 8443
    )


def test_log_packet_ipv6_udp_and_icmp() -> None:
    src, dst = (
        socket.inet_pton(socket.AF_INET6, "fd00::2"),
        socket.inet_pton(socket.AF_INET6, "2001:db8::1"),
    )
    v6 = struct.pack("!IHBB16s16s", 6 << 28, 8, 17, 64, src, dst) + struct.pack(
        "!HHHH", 5353, 53, 8, 0
    )
    icmp = bytearray(_ipv4_tcp("10.88.0.2", "192.0.2.9", 0, 0))
    icmp[9] = 1
    datagram = _nflog(v6, b"corral:allowed:a", socket.AF_INET6) + _nflog(bytes(icmp), b"p")
    first, second = (parse_log_packet(k, b) for k, b in iter_messages(datagram))
    assert first == LoggedPacket("corral:allowed:a", "fd00::2", "2001:db8::1", "udp", 5353, 53)
    assert second == LoggedPacket("p", "10.88.0.2", "192.0.2.9", "icmp", None, None)


def test_log_packet_ignores_other_messages_and_truncated_payloads() -> None:
    assert parse_log_packet((1 << 8) | 2, b"\0" * 4) is None
    ((kind, body),) = list(iter_messages(_nflog(b"\x45\0\0", b"corral:denied:x")))
    assert parse_log_packet(kind, body) is None


def _conntrack_destroy(sport: int, dport: int, sent: int, received: int) -> bytes:
    ip = _attr(1, socket.inet_aton("10.88.0.3")) + _attr(2, socket.inet_aton("192.0.2.1"))
    proto = _attr(1, bytes([6])) + _attr(2, struct.pack("!H", sport))
    proto += _attr(3, struct.pack("!H", dport))
    orig = _attr(1, _attr(1, ip, nested=True) + _attr(2, proto, nested=True), nested=True)
    counters = _attr(9, _attr(1, struct.pack("!Q", 3)) + _attr(2, struct.pack("!Q", sent)), True)
    counters += _attr(10, _attr(1, struct.pack("!Q", 2)) + _attr(2, struct.pack("!Q", received)))
    body = struct.pack("!BBH", socket.AF_INET, 0, 0) + orig + _attr(3, struct.pack("!I", 0xE))
    return _msg((1 << 8) | 2, body + counters)


def test_conntrack_end_with_counters() -> None:
    ((kind, body),) = list(iter_messages(_conntrack_destroy(40000, 443, 180, 5000)))
    assert parse_conntrack_end(kind, body) == EndedFlow(
        "10.88.0.3", "192.0.2.1", "tcp", 40000, 443, 180, 5000
    )
    assert parse_conntrack_end((1 << 8) | 0, body) is None  # a NEW event


def test_error_ack_raises_and_plain_ack_is_skipped() -> None:
    ack = _msg(2, struct.pack("=i", 0) + b"\0" * 16)
    assert list(iter_messages(ack)) == []
    with pytest.raises(OSError) as failure:
        list(iter_messages(_msg(2, struct.pack("=i", -1) + b"\0" * 16)))
    assert failure.value.errno == 1


def test_config_messages_bind_the_group() -> None:
    bind, mode = config_messages(7)
    length, kind, flags = struct.unpack_from("=IHH", bind)
    assert (length, kind, flags) == (len(bind), (4 << 8) | 1, 0x5)
    assert struct.unpack_from("!BBH", bind, 16) == (0, 0, 7)
    assert bind[20:] == struct.pack("=HH", 5, 1) + b"\x01\0\0\0"  # NFULA_CFG_CMD BIND
    assert struct.pack("!IBx", 64, 2) in mode  # NFULA_CFG_MODE: 64 bytes of each packet
