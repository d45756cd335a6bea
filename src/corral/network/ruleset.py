"""The nftables ruleset of the gateway's network namespace, and its per-sandbox elements.

One table, `inet corral`, inside the gateway namespace (nothing in the host's). A sandbox is
known by its address `S` (anti-spoofing makes that an identity); its policy lives in sets:

    prerouting (raw)  from a sandbox veth: IPv6 dropped; (veth, S) not in @sandboxes dropped
    prerouting (nat)  tcp 80/443 to an IP that only the resolver pinned (or any 80/443 of an
                      open sandbox that denies domains, @inspect) -> the SNI/Host proxy
    input             from sandboxes: only DNS to the resolver and DNAT'ed proxy traffic
    forward           a connection decided under the sandbox's current policy generation
                      (conntrack mark, `@current`) -> accept, both ways; else from a
                      sandbox, first match: DNS/DoT elsewhere, @ceiling (operator),
                      S . D in @deny -> drop; S . D in @allow, S . D in @pinned, S in @open
                      -> accept and mark with the generation (`@generation`); else drop.
                      A policy change bumps the generation, so every open connection is
                      re-checked at its next packet: a change cuts what it denies.
    output            the gateway's own traffic (resolver, proxy) never reaches @ceiling,
                      except DNS to the operator's upstream resolvers
    postrouting (nat) masquerade out of the uplink

Every verdict on a new connection is logged to NFLOG group `LOG_GROUP` with the prefix
`corral:<allowed|denied>:<reason>` (read by `connection_log`).
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

from corral.model import EgressPolicy

__all__ = [
    "DNS_PORTS",
    "HOST_IFNAME_PREFIX",
    "LOG_GROUP",
    "RESOLVER_PORT",
    "SNI_PROXY_PORT",
    "TABLE",
    "UPLINK_IFNAME",
    "base_ruleset",
    "element_commands",
    "generation_elements",
    "generation_keys",
    "policy_elements",
]

TABLE = "corral"
LOG_GROUP = 7
"""NFLOG group of the firewall's verdict logs."""
SNI_PROXY_PORT = 15001
"""TCP port of the SNI/Host proxy on the gateway address (redirected 80/443 land here)."""
RESOLVER_PORT = 53
"""The resolver listens on the gateway address, UDP and TCP."""
DNS_PORTS = (53, 853)
"""DNS and DNS-over-TLS: to anything but the resolver, dropped."""
HOST_IFNAME_PREFIX = "cs"
"""Gateway-side veth of the sandbox in uid slot N: `cs<N>`."""
UPLINK_IFNAME = "gw-up"


def _log(verdict: str, reason: str) -> str:
    return f'log prefix "corral:{verdict}:{reason}" group {LOG_GROUP}'


def _elements(items: Iterable[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _decision_chain(name: str, *, logged: bool) -> str:
    """The policy decision for a packet from a sandbox: `decide_new` for a new connection
    (logged), `decide` for a connection made under an older policy of the sandbox (its
    conntrack mark is not the sandbox's current generation): re-checked, silently."""

    def log(verdict: str, reason: str) -> str:
        return _log(verdict, reason) + " " if logged else ""

    dns = _elements(str(p) for p in DNS_PORTS)
    return f"""    chain {name} {{
        meta l4proto {{ tcp, udp }} th dport {dns} {log("denied", "dns")}drop
        ip daddr @ceiling {log("denied", "operator")}drop
        ip saddr . ip daddr @deny {log("denied", "deny")}drop
        ip saddr . ip daddr @allow {log("allowed", "allow")}goto admit
        ip saddr . ip daddr @pinned {log("allowed", "pinned")}goto admit
        ip saddr @open {log("allowed", "open")}goto admit
        {log("denied", "default")}drop
    }}"""


def base_ruleset(
    gateway: IPv4Address,
    ceiling: Iterable[IPv4Network],
    dns_upstream: Iterable[IPv4Address],
) -> str:
    """The whole table, replacing any previous one in one transaction."""
    sandbox = f'iifname "{HOST_IFNAME_PREFIX}*"'
    ceiling_elements = _elements(str(n) for n in collapse_addresses(ceiling))
    upstream = list(dns_upstream)
    upstream_set = f"elements = {_elements(str(a) for a in upstream)}" if upstream else ""
    return f"""
add table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
    set ceiling {{ type ipv4_addr; flags interval; auto-merge; elements = {ceiling_elements} }}
    set dns_upstream {{ type ipv4_addr; {upstream_set} }}
    set sandboxes {{ type ifname . ipv4_addr; }}
    set open {{ type ipv4_addr; }}
    set inspect {{ type ipv4_addr; }}
    set allow {{ type ipv4_addr . ipv4_addr; flags interval; }}
    set deny {{ type ipv4_addr . ipv4_addr; flags interval; }}
    set pinned {{ type ipv4_addr . ipv4_addr; flags timeout; }}
    map generation {{ type ipv4_addr : mark; }}
    set current {{ type ipv4_addr . mark; }}

    chain prerouting {{
        type filter hook prerouting priority raw; policy accept;
        {sandbox} meta nfproto ipv6 drop
        {sandbox} iifname . ip saddr != @sandboxes {_log("denied", "spoofed")} drop
    }}
    chain to_proxy {{
        type nat hook prerouting priority dstnat; policy accept;
        {sandbox} tcp dport {{ 80, 443 }} ip daddr != @ceiling ip saddr . ip daddr != @deny \
ip saddr . ip daddr != @allow ip saddr . ip daddr @pinned dnat ip to {gateway}:{SNI_PROXY_PORT}
        {sandbox} tcp dport {{ 80, 443 }} ip saddr @inspect ip daddr != @ceiling \
ip saddr . ip daddr != @deny ip saddr . ip daddr != @allow \
dnat ip to {gateway}:{SNI_PROXY_PORT}
    }}
    chain input {{
        type filter hook input priority filter; policy drop;
        iif "lo" accept
        ct state established,related accept
        {sandbox} ip daddr {gateway} meta l4proto {{ tcp, udp }} th dport {RESOLVER_PORT} accept
        {sandbox} ip daddr {gateway} tcp dport {SNI_PROXY_PORT} ct status dnat accept
        {sandbox} ct state new {_log("denied", "gateway")} drop
    }}
    chain forward {{
        type filter hook forward priority filter; policy drop;
        iifname != "{HOST_IFNAME_PREFIX}*" ct state established,related \
ip daddr . ct mark @current accept
        iifname != "{HOST_IFNAME_PREFIX}*" drop
        ct state established,related ip saddr . ct mark @current accept
        ct state invalid drop
        ct state new goto decide_new
        goto decide
    }}
{_decision_chain("decide_new", logged=True)}
{_decision_chain("decide", logged=False)}
    chain admit {{
        ct mark set ip saddr map @generation accept
    }}
    chain output {{
        type filter hook output priority filter; policy accept;
        oifname "{UPLINK_IFNAME}" ip daddr @dns_upstream meta l4proto {{ tcp, udp }} \
th dport 53 accept
        oifname "{UPLINK_IFNAME}" ip daddr @ceiling drop
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname "{UPLINK_IFNAME}" masquerade
    }}
}}
"""


def policy_elements(address: IPv4Address, policy: EgressPolicy) -> dict[str, list[str]]:
    """Set name -> elements holding an *effective* policy of the sandbox at `address`.

    CIDRs are collapsed: interval sets refuse overlapping elements.
    """
    allow = collapse_addresses(policy.allow_cidrs)
    deny = collapse_addresses(policy.deny_cidrs)
    elements: dict[str, list[str]] = {
        "allow": [f"{address} . {n}" for n in allow],
        "deny": [f"{address} . {n}" for n in deny],
        "open": [str(address)] if policy.allow_internet else [],
        "inspect": [str(address)] if policy.allow_internet and policy.deny_domains else [],
    }
    return {name: items for name, items in elements.items() if items}


def generation_elements(address: IPv4Address, generation: int) -> dict[str, list[str]]:
    """The elements naming the sandbox's current policy generation."""
    return {
        "generation": [f"{address} : {generation}"],
        "current": [f"{address} . {generation}"],
    }


def generation_keys(address: IPv4Address, generation: int) -> dict[str, list[str]]:
    """The same elements as keys (what `delete element` takes)."""
    return {"generation": [str(address)], "current": [f"{address} . {generation}"]}


def element_commands(verb: str, elements: dict[str, list[str]]) -> str:
    """`add`/`delete element` commands for `elements` (set name -> items)."""
    return "".join(
        f"{verb} element inet {TABLE} {name} {_elements(items)}\n"
        for name, items in elements.items()
        if items
    )
