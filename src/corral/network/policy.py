"""Egress policy: parsing of the E2B request keys, the operator's settings, evaluation.

Pure (no I/O). The kernel enforces the same rules (`ruleset.py`); the resolver and the SNI
proxy ask `domain_allowed` / `address_allowed`. Semantics, in order (first match decides):

1. the operator's always-deny CIDRs and the client's `denyOut` CIDRs/domains: denied
   (deny always wins over allow);
2. the client's `allowOut` CIDRs/domains: allowed;
3. otherwise allowed only in *open* mode: internet access on (`allow_internet_access`, or the
   operator's `--default-egress` when the client gave none), no `allowOut` entry, and no
   catch-all `denyOut` (`0.0.0.0/0`).

`allow_internet_access: false` is E2B's shorthand for `denyOut: ["0.0.0.0/0"]`: a catch-all
deny sets the default to deny instead of overriding every `allowOut` entry, so the E2B idiom
"deny all, allow X" works; every narrower deny still beats every allow.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network, ip_network
from typing import Any

from corral.model import EgressPolicy

__all__ = [
    "ALL_TRAFFIC",
    "DEFAULT_ALWAYS_DENY",
    "DEFAULT_SUBNET",
    "DEFAULT_UPLINK_SUBNET",
    "OperatorNetworkSettings",
    "PolicyError",
    "address_allowed",
    "domain_allowed",
    "effective",
    "parse_create_network",
    "parse_network_update",
    "render_network",
]

ALL_TRAFFIC = IPv4Network("0.0.0.0/0")
DEFAULT_SUBNET = IPv4Network("10.88.0.0/16")
DEFAULT_UPLINK_SUBNET = IPv4Network("169.254.88.0/30")
DEFAULT_ALWAYS_DENY = (IPv4Network("169.254.0.0/16"),)
"""Link-local: cloud metadata services (169.254.169.254) and the gateway's uplink."""

_MAX_ENTRIES = 1000
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class PolicyError(ValueError):
    """A request's network keys are malformed; the message names the key (a 400)."""


@dataclass(frozen=True)
class OperatorNetworkSettings:
    """`corral serve` network options: the default and the ceiling of every sandbox."""

    enabled: bool = True
    default_allow_internet: bool = True
    always_deny: tuple[IPv4Network, ...] = DEFAULT_ALWAYS_DENY
    """No sandbox may reach these, whatever it asks (the gateway adds the uplink's and the
    host's own addresses and the sandbox subnet)."""
    dns_upstream: tuple[IPv4Address, ...] = ()
    uplink_netns: str | None = None
    """Network namespace file the gateway's uplink goes to; None: the server's own."""
    uplink_nat: bool = False
    """Forward and masquerade the uplink's traffic in the uplink namespace (`uplink.py`)."""
    subnet: IPv4Network = DEFAULT_SUBNET
    uplink_subnet: IPv4Network = DEFAULT_UPLINK_SUBNET
    """A /30: the uplink side takes the first address, the gateway the second."""


def parse_create_network(body: Mapping[str, Any]) -> EgressPolicy:
    """The policy of a create body (`allow_internet_access`, `network.allowOut/denyOut`)."""
    network = body.get("network")
    if network is None:
        network = {}
    if not isinstance(network, Mapping):
        raise PolicyError("'network' must be an object")
    return _parse(body.get("allow_internet_access"), network, "network.")


def parse_network_update(body: Mapping[str, Any]) -> EgressPolicy:
    """The policy of a `PUT /sandboxes/{id}/network` body (it replaces the whole policy)."""
    return _parse(body.get("allow_internet_access"), body, "")


def _parse(allow_internet: object, keys: Mapping[str, Any], where: str) -> EgressPolicy:
    if allow_internet is not None and not isinstance(allow_internet, bool):
        raise PolicyError("'allow_internet_access' must be a boolean")
    allow_cidrs, allow_domains = _entries(keys.get("allowOut"), f"{where}allowOut")
    deny_cidrs, deny_domains = _entries(keys.get("denyOut"), f"{where}denyOut")
    return EgressPolicy(
        allow_internet=allow_internet,
        allow_cidrs=allow_cidrs,
        deny_cidrs=deny_cidrs,
        allow_domains=allow_domains,
        deny_domains=deny_domains,
    )


def _entries(raw: object, key: str) -> tuple[tuple[IPv4Network, ...], tuple[str, ...]]:
    if raw is None:
        return (), ()
    if not isinstance(raw, list) or not all(isinstance(e, str) for e in raw):
        raise PolicyError(f"'{key}' must be a list of strings (IPs, CIDRs or domains)")
    if len(raw) > _MAX_ENTRIES:
        raise PolicyError(f"'{key}' has more than {_MAX_ENTRIES} entries")
    cidrs: list[IPv4Network] = []
    domains: list[str] = []
    for entry in raw:
        text = entry.strip().lower()
        try:
            network = ip_network(text, strict=False)
        except ValueError:
            domain = _domain(text)
            if domain is None:
                raise PolicyError(
                    f"'{key}': {entry!r} is not an IPv4 address, CIDR or domain "
                    "(like 10.0.0.0/8, example.com or *.example.com)"
                ) from None
            if domain not in domains:
                domains.append(domain)
            continue
        if not isinstance(network, IPv4Network):
            raise PolicyError(f"'{key}': {entry!r}: sandboxes have IPv4 only")
        if network not in cidrs:
            cidrs.append(network)
    return tuple(cidrs), tuple(domains)


def _domain(text: str) -> str | None:
    text = text.rstrip(".")
    labels = text[2:].split(".") if text.startswith("*.") else text.split(".")
    if not 1 <= len(text) <= 253 or not all(_LABEL.match(label) for label in labels):
        return None
    if labels[-1].isdigit():  # 10.0.0.300 is a bad address, not a name
        return None
    return text


def effective(policy: EgressPolicy, operator: OperatorNetworkSettings) -> EgressPolicy:
    """The policy the gateway enforces: `allow_internet` resolved to *open* mode (see the
    module docstring), catch-all denies folded into it, the operator's denies added."""
    wants_internet = (
        operator.default_allow_internet if policy.allow_internet is None else policy.allow_internet
    )
    catch_all = ALL_TRAFFIC in policy.deny_cidrs
    allowlist = bool(policy.allow_cidrs or policy.allow_domains)
    deny = [n for n in policy.deny_cidrs if n != ALL_TRAFFIC]
    deny += [n for n in operator.always_deny if n not in deny]
    return replace(
        policy,
        allow_internet=wants_internet and not catch_all and not allowlist,
        deny_cidrs=tuple(deny),
    )


def _name_matches(name: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return name.endswith(pattern[1:])
    return name == pattern


def domain_allowed(policy: EgressPolicy, name: str) -> bool:
    """Whether an *effective* policy lets the sandbox resolve and reach `name`."""
    name = name.strip().lower().rstrip(".")
    if any(_name_matches(name, p) for p in policy.deny_domains):
        return False
    if any(_name_matches(name, p) for p in policy.allow_domains):
        return True
    return policy.allow_internet is True


def address_allowed(policy: EgressPolicy, address: IPv4Address) -> bool:
    """Whether an *effective* policy lets the sandbox reach `address` by its CIDR rules
    alone (names pinned by the resolver are the gateway's business)."""
    if any(address in n for n in policy.deny_cidrs):
        return False
    if any(address in n for n in policy.allow_cidrs):
        return True
    return policy.allow_internet is True


def render_network(policy: EgressPolicy, operator: OperatorNetworkSettings) -> dict[str, Any]:
    """`allowInternetAccess` and `network` of `SandboxDetail`, as the client asked (the
    flag resolved with the operator's default)."""
    allow_internet = (
        operator.default_allow_internet if policy.allow_internet is None else policy.allow_internet
    )
    return {
        "allowInternetAccess": allow_internet,
        "network": {
            "allowOut": [_render(n) for n in policy.allow_cidrs] + list(policy.allow_domains),
            "denyOut": [_render(n) for n in policy.deny_cidrs] + list(policy.deny_domains),
        },
    }


def _render(network: IPv4Network) -> str:
    return str(network.network_address) if network.prefixlen == 32 else str(network)
