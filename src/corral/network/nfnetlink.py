"""Netfilter netlink messages the connection log reads: NFLOG packets and conntrack ends.

Pure encoding and parsing (`struct`, no sockets). Facts from the kernel's uapi headers
(`linux/netlink.h`, `linux/netfilter/nfnetlink*.h`): every message is a `nlmsghdr`
(len u32, type u16, flags u16, seq u32, pid u32, host order) followed by an `nfgenmsg`
(family u8, version u8, res_id be16) and netlink attributes (len u16, type u16, value,
padded to 4 bytes; nested attributes carry `NLA_F_NESTED`).

- NFLOG (`NFNL_SUBSYS_ULOG`): `config_messages(group)` binds this socket to a log group and
  asks for the first bytes of each packet; `parse_log_packet` turns a `NFULNL_MSG_PACKET`
  into `LoggedPacket` (prefix, addresses, protocol, ports from the IP header in the payload).
- conntrack (`NFNL_SUBSYS_CTNETLINK`, multicast group `NFNLGRP_CONNTRACK_DESTROY`):
  `parse_conntrack_end` turns an `IPCTNL_MSG_CT_DELETE` event into `EndedFlow` (the
  original tuple and both directions' byte counters, present when accounting is on).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "NETLINK_NETFILTER",
    "NFNLGRP_CONNTRACK_DESTROY",
    "EndedFlow",
    "LoggedPacket",
    "config_messages",
    "iter_messages",
    "parse_conntrack_end",
    "parse_log_packet",
    "protocol_name",
]

NETLINK_NETFILTER = 12
NFNLGRP_CONNTRACK_DESTROY = 3

_NLMSG_ERROR = 2
_NLM_F_REQUEST = 0x1
_NLM_F_ACK = 0x4
_NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER

_SUBSYS_CTNETLINK = 1
_SUBSYS_ULOG = 4
_IPCTNL_MSG_CT_DELETE = 2
_NFULNL_MSG_PACKET = 0
_NFULNL_MSG_CONFIG = 1

_NFULA_PAYLOAD = 9
_NFULA_PREFIX = 10
_NFULA_CFG_CMD = 1
_NFULA_CFG_MODE = 2
_NFULA_CFG_TIMEOUT = 4
_NFULNL_CFG_CMD_BIND = 1
_NFULNL_COPY_PACKET = 2
_COPY_RANGE = 64  # IP header (up to 60 bytes for v4, 40 for v6) + the first port bytes

_CTA_TUPLE_ORIG = 1
_CTA_COUNTERS_ORIG = 9
_CTA_COUNTERS_REPLY = 10
_CTA_TUPLE_IP = 1
_CTA_TUPLE_PROTO = 2
_CTA_IP_V4_SRC, _CTA_IP_V4_DST, _CTA_IP_V6_SRC, _CTA_IP_V6_DST = 1, 2, 3, 4
_CTA_PROTO_NUM, _CTA_PROTO_SRC_PORT, _CTA_PROTO_DST_PORT = 1, 2, 3
_CTA_COUNTERS_BYTES = 2

_NLMSGHDR = struct.Struct("=IHHII")
_NFGENMSG = struct.Struct("!BBH")
_NLATTR = struct.Struct("=HH")

_PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp", 136: "udplite"}
_PORTED = {6, 17, 132, 136}


def protocol_name(number: int) -> str:
    """`tcp`, `udp`, ... or the IP protocol number as text."""
    return _PROTOCOL_NAMES.get(number, str(number))


@dataclass(frozen=True)
class LoggedPacket:
    """The first packet of a connection that a firewall rule logged with a prefix."""

    prefix: str
    source: str
    destination: str
    protocol: str
    source_port: int | None
    port: int | None


@dataclass(frozen=True)
class EndedFlow:
    """A conntrack entry that went away: its original direction and byte counters."""

    source: str
    destination: str
    protocol: str
    source_port: int | None
    port: int | None
    bytes_sent: int
    """Bytes of the original direction (from the connection's initiator)."""
    bytes_received: int


def _message(msg_type: int, flags: int, seq: int, payload: bytes) -> bytes:
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(payload), msg_type, flags, seq, 0) + payload


def _attribute(attr_type: int, value: bytes) -> bytes:
    raw = _NLATTR.pack(_NLATTR.size + len(value), attr_type) + value
    return raw + b"\0" * (-len(raw) % 4)


def config_messages(group: int, *, flush_centiseconds: int = 1) -> list[bytes]:
    """The requests that bind an NFLOG socket to `group` (each wants an ACK): copy the first
    `_COPY_RANGE` bytes of every packet and hand batches over after `flush_centiseconds`."""
    msg_type = (_SUBSYS_ULOG << 8) | _NFULNL_MSG_CONFIG
    header = _NFGENMSG.pack(socket.AF_UNSPEC, 0, group)
    flags = _NLM_F_REQUEST | _NLM_F_ACK
    bind = _attribute(_NFULA_CFG_CMD, bytes([_NFULNL_CFG_CMD_BIND]))
    mode = _attribute(_NFULA_CFG_MODE, struct.pack("!IBx", _COPY_RANGE, _NFULNL_COPY_PACKET))
    timeout = _attribute(_NFULA_CFG_TIMEOUT, struct.pack("!I", flush_centiseconds))
    return [
        _message(msg_type, flags, 1, header + bind),
        _message(msg_type, flags, 2, header + mode + timeout),
    ]


def iter_messages(datagram: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, body after the nlmsghdr) of each message in one netlink datagram. Raises
    `OSError` for an error ACK (errno != 0); skips other control messages."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(datagram):
        length, msg_type, _, _, _ = _NLMSGHDR.unpack_from(datagram, offset)
        if length < _NLMSGHDR.size or offset + length > len(datagram):
            return
        body = datagram[offset + _NLMSGHDR.size : offset + length]
        offset += (length + 3) & ~3
        if msg_type == _NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", body)
            if error:
                raise OSError(-error, f"netfilter netlink request failed: errno {-error}")
            continue
        if msg_type >= 0x10:  # below are control messages (NOOP, DONE, OVERRUN)
            yield msg_type, body


def _attributes(raw: bytes, offset: int = 0) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    while offset + _NLATTR.size <= len(raw):
        length, attr_type = _NLATTR.unpack_from(raw, offset)
        if length < _NLATTR.size:
            break
        found[attr_type & _NLA_TYPE_MASK] = raw[offset + _NLATTR.size : offset + length]
        offset += (length + 3) & ~3
    return found


def _ip_header(payload: bytes) -> tuple[str, str, int, int | None, int | None] | None:
    """(source, destination, protocol, source port, destination port) of an IP packet."""
    if not payload:
        return None
    version = payload[0] >> 4
    if version == 4 and len(payload) >= 20:
        header_length = (payload[0] & 0x0F) * 4
        protocol = payload[9]
        source = str(ipaddress.IPv4Address(payload[12:16]))
        destination = str(ipaddress.IPv4Address(payload[16:20]))
        fragment_offset = struct.unpack_from("!H", payload, 6)[0] & 0x1FFF
        ports_at = header_length if fragment_offset == 0 else None
    elif version == 6 and len(payload) >= 40:
        protocol = payload[6]  # next header; extension headers are not followed
        source = str(ipaddress.IPv6Address(payload[8:24]))
        destination = str(ipaddress.IPv6Address(payload[24:40]))
        ports_at = 40
    else:
        return None
    if protocol in _PORTED and ports_at is not None and len(payload) >= ports_at + 4:
        sport, dport = struct.unpack_from("!HH", payload, ports_at)
        return source, destination, protocol, sport, dport
    return source, destination, protocol, None, None


def parse_log_packet(msg_type: int, body: bytes) -> LoggedPacket | None:
    """The logged packet in an NFLOG message, or None for other messages or packets without
    a readable IP header."""
    if msg_type != (_SUBSYS_ULOG << 8) | _NFULNL_MSG_PACKET or len(body) < _NFGENMSG.size:
        return None
    attributes = _attributes(body, _NFGENMSG.size)
    header = _ip_header(attributes.get(_NFULA_PAYLOAD, b""))
    if header is None:
        return None
    source, destination, protocol, sport, dport = header
    prefix = attributes.get(_NFULA_PREFIX, b"").split(b"\0", 1)[0].decode(errors="replace")
    return LoggedPacket(prefix, source, destination, protocol_name(protocol), sport, dport)


def _be_int(raw: bytes | None) -> int:
    return int.from_bytes(raw, "big") if raw else 0


def parse_conntrack_end(msg_type: int, body: bytes) -> EndedFlow | None:
    """The ended flow in a conntrack DESTROY event, or None for other messages."""
    if msg_type != (_SUBSYS_CTNETLINK << 8) | _IPCTNL_MSG_CT_DELETE:
        return None
    if len(body) < _NFGENMSG.size:
        return None
    attributes = _attributes(body, _NFGENMSG.size)
    tuple_attributes = _attributes(attributes.get(_CTA_TUPLE_ORIG, b""))
    ip = _attributes(tuple_attributes.get(_CTA_TUPLE_IP, b""))
    proto = _attributes(tuple_attributes.get(_CTA_TUPLE_PROTO, b""))
    if _CTA_IP_V4_SRC in ip and _CTA_IP_V4_DST in ip:
        source = str(ipaddress.IPv4Address(ip[_CTA_IP_V4_SRC]))
        destination = str(ipaddress.IPv4Address(ip[_CTA_IP_V4_DST]))
    elif _CTA_IP_V6_SRC in ip and _CTA_IP_V6_DST in ip:
        source = str(ipaddress.IPv6Address(ip[_CTA_IP_V6_SRC]))
        destination = str(ipaddress.IPv6Address(ip[_CTA_IP_V6_DST]))
    else:
        return None
    number = _be_int(proto.get(_CTA_PROTO_NUM))
    ported = number in _PORTED
    counters_orig = _attributes(attributes.get(_CTA_COUNTERS_ORIG, b""))
    counters_reply = _attributes(attributes.get(_CTA_COUNTERS_REPLY, b""))
    return EndedFlow(
        source=source,
        destination=destination,
        protocol=protocol_name(number),
        source_port=_be_int(proto.get(_CTA_PROTO_SRC_PORT)) if ported else None,
        port=_be_int(proto.get(_CTA_PROTO_DST_PORT)) if ported else None,
        bytes_sent=_be_int(counters_orig.get(_CTA_COUNTERS_BYTES)),
        bytes_received=_be_int(counters_reply.get(_CTA_COUNTERS_BYTES)),
    )
