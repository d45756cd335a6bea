"""`ConnectionEntry`: one connection attempt of a sandbox, allowed or denied (the egress log).

Entries come from four places (see `corral.network.connection_log`): the kernel's firewall
verdict on a new connection (NFLOG), the end of that connection with its byte counts
(conntrack), the sandboxes' resolver (one entry per query, `protocol="dns"`) and the SNI/Host
proxy (`protocol="tcp"`, with the name the sandbox asked for in its TLS ClientHello or HTTP
Host header, and the bytes the proxy carried).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CONNECTIONS_PER_SANDBOX", "ConnectionEntry", "FlowEnd", "Verdict"]

CONNECTIONS_PER_SANDBOX = 10_000
"""A store keeps at most this many entries per sandbox (the newest)."""


class Verdict(enum.Enum):
    """What Corral did with the attempt. The values are the wire names."""

    ALLOWED = "allowed"
    DENIED = "denied"


@dataclass(frozen=True)
class ConnectionEntry:
    """One attempt, as the log keeps it."""

    sandbox_id: str
    timestamp: float
    """Unix time the attempt was seen."""
    protocol: str
    """`tcp`, `udp`, `icmp`, `icmpv6` or an IP protocol number as text (firewall and proxy
    entries); `dns` for the resolver's entries (one per query)."""
    destination: str
    """The address the sandbox tried to reach (for `dns`: the resolver's address)."""
    port: int | None
    """Destination port (None for protocols without ports)."""
    verdict: Verdict
    reason: str
    """Short, human: which rule decided (`allow-cidr`, `deny-ceiling`, `not-allowed`, ...)."""
    name: str | None = None
    """The domain name involved, if known (query name, SNI, Host)."""
    source_port: int | None = None
    """The sandbox's source port: with the rest of the flow it matches the `FlowEnd`."""
    bytes_sent: int | None = None
    """Bytes from the sandbox to the destination, once the connection ended (None before)."""
    bytes_received: int | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class FlowEnd:
    """The end of a connection with its byte counts (a conntrack DESTROY event)."""

    sandbox_id: str
    protocol: str
    destination: str
    port: int | None
    source_port: int | None
    bytes_sent: int
    bytes_received: int
    ended_at: float

    def as_entry(self) -> ConnectionEntry:
        """An allowed entry for a flow whose start was not logged."""
        return ConnectionEntry(
            sandbox_id=self.sandbox_id,
            timestamp=self.ended_at,
            protocol=self.protocol,
            destination=self.destination,
            port=self.port,
            verdict=Verdict.ALLOWED,
            reason="ended",
            source_port=self.source_port,
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
            ended_at=self.ended_at,
        )
