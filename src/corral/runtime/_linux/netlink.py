"""The few rtnetlink requests Corral's networking needs, over a raw `AF_NETLINK` socket.

A netlink socket acts on the network namespace it was created in, whichever namespace its
user is in later; the sandbox setup and the gateway rely on that. Facts from the kernel's
uapi headers (`linux/netlink.h`, `linux/rtnetlink.h`, `linux/if_link.h`, `linux/veth.h`):
a request is a `nlmsghdr` (len u32, type u16, flags u16, seq u32, pid u32), a fixed header
(`ifinfomsg`, `ifaddrmsg` or `rtmsg`) and attributes (len u16, type u16, value, 4-aligned).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from ipaddress import IPv4Address

__all__ = ["RtNetlink"]

_RTM_NEWLINK, _RTM_DELLINK, _RTM_GETLINK = 16, 17, 18
_RTM_NEWADDR, _RTM_GETADDR = 20, 22
_RTM_NEWROUTE = 24
_NLM_F_REQUEST, _NLM_F_ACK = 0x1, 0x4
_NLM_F_EXCL, _NLM_F_CREATE, _NLM_F_DUMP = 0x200, 0x400, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_IFLA_IFNAME, _IFLA_LINKINFO, _IFLA_NET_NS_FD = 3, 18, 28
_IFLA_INFO_KIND, _IFLA_INFO_DATA, _VETH_INFO_PEER = 1, 2, 1
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_RTA_DST, _RTA_OIF, _RTA_GATEWAY, _RTA_PREFSRC = 1, 4, 5, 7
_NLA_F_NESTED = 0x8000
_IFF_UP = 0x1
_RT_TABLE_MAIN, _RTPROT_STATIC, _RTN_UNICAST = 254, 4, 1
_RT_SCOPE_UNIVERSE, _RT_SCOPE_LINK = 0, 253
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NLMSGHDR = struct.Struct("=IHHII")


def _attr(kind: int, value: bytes) -> bytes:
    size = 4 + len(value)
    return struct.pack("=HH", size, kind) + value + b"\0" * (-size % 4)


def _name(name: str) -> bytes:
    return _attr(_IFLA_IFNAME, name.encode() + b"\0")


def _ifinfo(index: int = 0, up: bool = False) -> bytes:
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, _IFF_UP if up else 0, _IFF_UP if up else 0)


def _attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + 4 <= len(data):
        size, kind = struct.unpack_from("=HH", data, offset)
        if size < 4:
            return
        yield kind & ~_NLA_F_NESTED, data[offset + 4 : offset + size]
        offset += (size + 3) & ~3


class RtNetlink:
    """A `NETLINK_ROUTE` socket in the network namespace of the thread that made it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> RtNetlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------

    def create_veth(self, name: str, peer: str, peer_netns_fd: int) -> None:
        """A veth pair: `name` here (up), `peer` in the namespace of the fd (down: a peer
        cannot be opened before its partner exists; `set_up` it from that namespace)."""
        peer_info = (
            _ifinfo() + _name(peer) + _attr(_IFLA_NET_NS_FD, struct.pack("=I", peer_netns_fd))
        )
        linkinfo = _attr(_IFLA_INFO_KIND, b"veth") + _attr(
            _IFLA_INFO_DATA | _NLA_F_NESTED, _attr(_VETH_INFO_PEER | _NLA_F_NESTED, peer_info)
        )
        self._request(
            _RTM_NEWLINK,
            _NLM_F_CREATE | _NLM_F_EXCL,
            _ifinfo(up=True) + _name(name) + _attr(_IFLA_LINKINFO | _NLA_F_NESTED, linkinfo),
        )

    def delete_link(self, name: str) -> bool:
        """Delete the interface `name` (a veth takes its peer along); False if absent."""
        try:
            self._request(_RTM_DELLINK, 0, _ifinfo() + _name(name))
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    def set_up(self, name: str) -> None:
        self._request(_RTM_NEWLINK, 0, _ifinfo(up=True) + _name(name))

    def add_address(self, ifname: str, address: IPv4Address, prefix_len: int) -> None:
        header = _IFADDRMSG.pack(
            socket.AF_INET, prefix_len, 0, _RT_SCOPE_UNIVERSE, self.index(ifname)
        )
        packed = address.packed
        self._request(
            _RTM_NEWADDR,
            _NLM_F_CREATE | _NLM_F_EXCL,
            header + _attr(_IFA_LOCAL, packed) + _attr(_IFA_ADDRESS, packed),
        )

    def add_route(
        self,
        destination: IPv4Address,
        prefix_len: int,
        ifname: str,
        *,
        via: IPv4Address | None = None,
        source: IPv4Address | None = None,
    ) -> None:
        """A main-table route; without `via` it is on-link (scope link)."""
        header = _RTMSG.pack(
            socket.AF_INET,
            prefix_len,
            0,
            0,
            _RT_TABLE_MAIN,
            _RTPROT_STATIC,
            _RT_SCOPE_UNIVERSE if via is not None else _RT_SCOPE_LINK,
            _RTN_UNICAST,
            0,
        )
        attrs = _attr(_RTA_OIF, struct.pack("=I", self.index(ifname)))
        if prefix_len:
            attrs += _attr(_RTA_DST, destination.packed)
        if via is not None:
            attrs += _attr(_RTA_GATEWAY, via.packed)
        if source is not None:
            attrs += _attr(_RTA_PREFSRC, source.packed)
        self._request(_RTM_NEWROUTE, _NLM_F_CREATE | _NLM_F_EXCL, header + attrs)

    def index(self, name: str) -> int:
        """The interface index of `name` in this socket's namespace."""
        seq = self._send(_RTM_GETLINK, 0, _ifinfo() + _name(name))  # one answer, no ACK
        for msg_type, payload in self._replies(seq):
            if msg_type == _NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", payload)
                raise OSError(-code, f"{os.strerror(-code)}: {name}")
            index: int = _IFINFOMSG.unpack_from(payload)[2]
            return index
        raise OSError(errno.ENODEV, f"no interface {name}")

    # -- dumps ---------------------------------------------------------------------------

    def link_names(self) -> list[str]:
        names = []
        for payload in self._dump(_RTM_GETLINK, _ifinfo()):
            for kind, value in _attrs(payload[_IFINFOMSG.size :]):
                if kind == _IFLA_IFNAME:
                    names.append(value.rstrip(b"\0").decode())
        return names

    def ipv4_addresses(self) -> list[IPv4Address]:
        found = []
        header = _IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)
        for payload in self._dump(_RTM_GETADDR, header):
            for kind, value in _attrs(payload[_IFADDRMSG.size :]):
                if kind == _IFA_LOCAL and len(value) == 4:
                    found.append(IPv4Address(value))
        return found

    # -- transport -----------------------------------------------------------------------

    def _send(self, kind: int, flags: int, payload: bytes) -> int:
        self._seq += 1
        header = _NLMSGHDR.pack(
            _NLMSGHDR.size + len(payload), kind, _NLM_F_REQUEST | flags, self._seq, 0
        )
        self._sock.send(header + payload)
        return self._seq

    def _request(self, kind: int, flags: int, payload: bytes) -> None:
        seq = self._send(kind, flags | _NLM_F_ACK, payload)
        for msg_type, payload in self._replies(seq):
            if msg_type == _NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", payload)
                if code:
                    raise OSError(-code, os.strerror(-code))
                return

    def _dump(self, kind: int, header: bytes) -> Iterator[bytes]:
        seq = self._send(kind, _NLM_F_DUMP, header)
        for msg_type, payload in self._replies(seq):
            if msg_type == _NLMSG_DONE:
                return
            if msg_type == _NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", payload)
                raise OSError(-code, os.strerror(-code))
            yield payload

    def _replies(self, seq: int) -> Iterator[tuple[int, bytes]]:
        while True:
            data = self._sock.recv(1 << 16)
            offset = 0
            while offset + _NLMSGHDR.size <= len(data):
                size, msg_type, _flags, msg_seq, _pid = _NLMSGHDR.unpack_from(data, offset)
                if size < _NLMSGHDR.size:
                    return
                if msg_seq == seq:
                    yield msg_type, data[offset + _NLMSGHDR.size : offset + size]
                offset += (size + 3) & ~3
