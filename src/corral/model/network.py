"""`EgressPolicy`: what a sandbox may reach on the network, as the client asked for it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

__all__ = ["EgressPolicy", "SandboxNetwork", "policy_from_json", "policy_to_json"]


@dataclass(frozen=True)
class EgressPolicy:
    """A sandbox's egress rules (pure data; parsing and evaluation: `corral.network.policy`).

    `allow_internet` None means "the operator's default". Domains are lowercase without a
    trailing dot; a `*.example.com` entry matches every name below `example.com` (not the
    name itself). Deny entries always win over allow entries.
    """

    allow_internet: bool | None = None
    allow_cidrs: tuple[IPv4Network, ...] = ()
    deny_cidrs: tuple[IPv4Network, ...] = ()
    allow_domains: tuple[str, ...] = ()
    deny_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class SandboxNetwork:
    """How the runtime wires one sandbox's network namespace to the gateway."""

    gateway_netns: str
    """Path of the gateway's network namespace (a bind-mounted nsfs file)."""
    host_ifname: str
    """Name of the veth end in the gateway's namespace (the sandbox's end is `eth0`)."""
    address: IPv4Address
    prefix_len: int
    gateway: IPv4Address


def policy_to_json(policy: EgressPolicy) -> str:
    """The policy as a JSON text (the store's column)."""
    return json.dumps(
        {
            "allow_internet": policy.allow_internet,
            "allow_cidrs": [str(n) for n in policy.allow_cidrs],
            "deny_cidrs": [str(n) for n in policy.deny_cidrs],
            "allow_domains": list(policy.allow_domains),
            "deny_domains": list(policy.deny_domains),
        }
    )


def policy_from_json(text: str | None) -> EgressPolicy:
    """Inverse of `policy_to_json`; None (a row written before policies existed): default."""
    if not text:
        return EgressPolicy()
    raw = json.loads(text)
    return EgressPolicy(
        allow_internet=raw.get("allow_internet"),
        allow_cidrs=tuple(IPv4Network(n) for n in raw.get("allow_cidrs", ())),
        deny_cidrs=tuple(IPv4Network(n) for n in raw.get("deny_cidrs", ())),
        allow_domains=tuple(raw.get("allow_domains", ())),
        deny_domains=tuple(raw.get("deny_domains", ())),
    )
