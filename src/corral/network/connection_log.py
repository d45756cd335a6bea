"""`ConnectionLog`: every connection attempt of every sandbox, allowed or denied, with bytes.

```
gateway netns ── nftables `log group LOG_GROUP prefix "corral:<verdict>:<reason>"` (NEW)
   │               └─ NFLOG netlink socket ──► LoggedPacket ──┐
   ├── conntrack DESTROY events (accounting on) ──► EndedFlow ──┤ source address
   │                                                             │   → sandbox id (gateway)
   ├── resolver: one entry per query (name, verdict)  ──────────┤
   └── SNI/Host proxy: one entry per redirected connection ─────┘
                                                                 ▼
                     buffered, written in one transaction every `flush_delay` s
                                                                 ▼
                store table `connections` (newest CONNECTIONS_PER_SANDBOX per sandbox,
                kept `retention_s` after the sandbox is gone) ◄── `entries()` (API, CLI)
```

A firewall entry starts without bytes; when conntrack reports the end of that flow, the log
finds the sandbox that started it (remembered from the NFLOG message, so an address reused
by a newer sandbox does not confuse it) and the store gives the newest entry of that flow
its byte counts. The proxy counts the bytes of the connections it carries itself; the
resolver logs each query with its size. A refused client that retries (TCP SYN
retransmits) is one entry, not one per packet. The netlink sockets are made inside the
gateway's network namespace by the gateway (`socket_in_gateway`) and read on the event
loop; a full socket buffer (ENOBUFS) loses entries, which is counted in `lost` and logged,
never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from corral.network.nfnetlink import (
    NETLINK_NETFILTER,
    NFNLGRP_CONNTRACK_DESTROY,
    EndedFlow,
    LoggedPacket,
    config_messages,
    iter_messages,
    parse_conntrack_end,
    parse_log_packet,
)
from corral.store import ConnectionEntry, FlowEnd, Store, StoreError, Verdict

__all__ = [
    "LOG_PREFIX",
    "ConnectionLog",
    "NetlinkGateway",
    "log_prefix",
    "parse_log_prefix",
]

log = logging.getLogger("corral.network.connections")

LOG_PREFIX = "corral:"
"""Every nftables log rule of Corral uses the prefix `corral:<allowed|denied>:<reason>`."""

_RETENTION_S = 7 * 24 * 3600.0
_PRUNE_EVERY_S = 3600.0
_SOCKET_BUFFER = 4 << 20
_SO_RCVBUFFORCE = 33  # Linux; not exported by Python's socket module
_DATAGRAM_MAX = 1 << 16
_FLOWS_KEPT = 65536
_RETRY_WINDOW_S = 30.0

_Flow = tuple[str, str, int | None, str, int | None]
"""(protocol, source, source port, destination, port)."""


def log_prefix(verdict: Verdict, reason: str) -> str:
    """The nftables log prefix for a rule with this verdict (reason: short, no spaces)."""
    return f"{LOG_PREFIX}{verdict.value}:{reason}"


def parse_log_prefix(prefix: str) -> tuple[Verdict, str] | None:
    """(verdict, reason) of a Corral log prefix, None for anything else."""
    if not prefix.startswith(LOG_PREFIX):
        return None
    verdict, _, reason = prefix[len(LOG_PREFIX) :].partition(":")
    try:
        return Verdict(verdict), reason.strip()
    except ValueError:
        return None


class NetlinkGateway(Protocol):
    """What the log needs of the gateway."""

    def sandbox_for_address(self, address: str) -> str | None:
        """The sandbox that owns `address`, or None."""

    def socket_in_gateway(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A new socket created inside the gateway's network namespace."""


class ConnectionLog:
    """Collects entries, writes them to the store in batches, answers queries."""

    def __init__(
        self,
        store: Store,
        *,
        flush_delay: float = 0.25,
        retention_s: float = _RETENTION_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._flush_delay = flush_delay
        self._retention_s = retention_s
        self._clock = clock
        self._pending: list[ConnectionEntry | FlowEnd] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._sockets: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_prune = 0.0
        self._flows: dict[_Flow, str] = {}
        """Allowed flows logged by the firewall → the sandbox that started them (oldest
        first; bounded): who gets the bytes when conntrack reports the end."""
        self._refused: dict[_Flow, float] = {}
        self.lost = 0
        """Kernel messages lost to a full socket buffer (ENOBUFS) since `listen`."""

    # -- entries from Corral's own components ------------------------------------------

    def now(self) -> float:
        return self._clock()

    def record(self, entry: ConnectionEntry) -> None:
        """Add one entry (from the resolver, the proxy or a firewall log message)."""
        self._pending.append(entry)
        self._schedule_flush()

    def record_end(self, end: FlowEnd) -> None:
        """A flow ended with these byte counts."""
        self._pending.append(end)
        self._schedule_flush()

    def entries(
        self, sandbox_id: str, limit: int, verdict: Verdict | None = None
    ) -> list[ConnectionEntry]:
        """The newest `limit` entries of `sandbox_id` (pending ones included), oldest first."""
        self.flush()
        return self._store.connections(sandbox_id, limit, verdict)

    def flush(self) -> None:
        """Write what is pending now (keeps the order of entries and ends)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        pending, self._pending = self._pending, []
        try:
            _write(self._store, pending)
            now = self._clock()
            if now >= self._next_prune:
                self._next_prune = now + _PRUNE_EVERY_S
                self._store.prune_connections(now - self._retention_s)
        except StoreError:
            log.exception("cannot write %d connection-log entries; they are lost", len(pending))

    def _schedule_flush(self) -> None:
        if self._flush_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a synchronous caller): write at once
            self.flush()
            return
        self._flush_handle = loop.call_later(self._flush_delay, self.flush)

    # -- entries from the kernel ----------------------------------------------------------

    def listen(self, gateway: NetlinkGateway, log_group: int) -> None:
        """Read NFLOG group `log_group` and conntrack DESTROY events of the gateway's network
        namespace on the running loop until `close`. Raises `OSError` if the kernel refuses
        (e.g. no `nfnetlink_log` support)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        nflog = _netlink_socket(gateway, groups=0)
        self._sockets.append(nflog)
        _configure_nflog(nflog, log_group)
        conntrack = _netlink_socket(gateway, groups=1 << (NFNLGRP_CONNTRACK_DESTROY - 1))
        self._sockets.append(conntrack)
        for sock in (nflog, conntrack):
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), self._read, sock, gateway)

    def close(self) -> None:
        """Stop reading the kernel and write what is pending."""
        for sock in self._sockets:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        self.flush()

    def _read(self, sock: socket.socket, gateway: NetlinkGateway) -> None:
        for _ in range(64):  # bounded: let other work run between bursts
            try:
                datagram = sock.recv(_DATAGRAM_MAX)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    self.lost += 1
                    log.warning("connection log: the kernel dropped messages (buffer full)")
                    continue
                raise
            try:
                self._handle(datagram, gateway)
            except (OSError, ValueError):
                log.exception("connection log: unreadable netfilter message")

    def _handle(self, datagram: bytes, gateway: NetlinkGateway) -> None:
        now = self._clock()
        for msg_type, body in iter_messages(datagram):
            packet = parse_log_packet(msg_type, body)
            if packet is not None:
                self._on_packet(packet, gateway.sandbox_for_address(packet.source), now)
                continue
            flow = parse_conntrack_end(msg_type, body)
            if flow is not None:
                self._on_flow_end(flow, now)

    def _on_packet(self, packet: LoggedPacket, sandbox_id: str | None, now: float) -> None:
        decided = parse_log_prefix(packet.prefix)
        if decided is None or sandbox_id is None:
            return
        verdict, reason = decided
        flow = (packet.protocol, packet.source, packet.source_port, packet.destination, packet.port)
        if verdict is Verdict.ALLOWED:
            self._flows[flow] = sandbox_id
            if len(self._flows) > _FLOWS_KEPT:
                del self._flows[next(iter(self._flows))]
        else:  # a refused client retries (SYN retransmits): one entry per attempt
            last = self._refused.get(flow)
            self._refused[flow] = now
            if len(self._refused) > _FLOWS_KEPT:
                del self._refused[next(iter(self._refused))]
            if last is not None and now - last < _RETRY_WINDOW_S:
                return
        self.record(
            ConnectionEntry(
                sandbox_id=sandbox_id,
                timestamp=now,
                protocol=packet.protocol,
                destination=packet.destination,
                port=packet.port,
                verdict=verdict,
                reason=reason,
                source_port=packet.source_port,
            )
        )

    def _on_flow_end(self, flow: EndedFlow, now: float) -> None:
        """Bytes for a flow whose start was logged here (by the sandbox that started it,
        even if its address belongs to another sandbox by now); others are not ours (the
        resolver's and the proxy's flows, which count their own bytes)."""
        key = (flow.protocol, flow.source, flow.source_port, flow.destination, flow.port)
        sandbox_id = self._flows.pop(key, None)
        if sandbox_id is None:
            return
        self.record_end(
            FlowEnd(
                sandbox_id=sandbox_id,
                protocol=flow.protocol,
                destination=flow.destination,
                port=flow.port,
                source_port=flow.source_port,
                bytes_sent=flow.bytes_sent,
                bytes_received=flow.bytes_received,
                ended_at=now,
            )
        )


def _write(store: Store, pending: Sequence[ConnectionEntry | FlowEnd]) -> None:
    """Write runs of entries and of ends in order (an end may refer to an entry before it)."""
    start = 0
    while start < len(pending):
        kind = type(pending[start])
        stop = start
        while stop < len(pending) and type(pending[stop]) is kind:
            stop += 1
        run = pending[start:stop]
        if kind is FlowEnd:
            store.end_connections([e for e in run if isinstance(e, FlowEnd)])
        else:
            store.add_connections([e for e in run if isinstance(e, ConnectionEntry)])
        start = stop


def _netlink_socket(gateway: NetlinkGateway, groups: int) -> socket.socket:
    sock = gateway.socket_in_gateway(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    try:
        with contextlib.suppress(OSError):  # SO_RCVBUFFORCE needs CAP_NET_ADMIN
            sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _SOCKET_BUFFER)
        sock.bind((0, groups))
    except OSError:
        sock.close()
        raise
    return sock


def _configure_nflog(sock: socket.socket, group: int) -> None:
    """Bind the socket to the log group; wait for each ACK (errors raise `OSError`)."""
    sock.settimeout(2.0)
    for request in config_messages(group):
        sock.send(request)
        while True:
            reply = sock.recv(_DATAGRAM_MAX)
            if not any(True for _ in iter_messages(reply)):  # the ACK (or raised error)
                break
