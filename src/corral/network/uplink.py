"""The uplink namespace's side of the gateway: NAT there (`--uplink-nat`) and its resolvers.

`--uplink-nat` makes a plain host forward the sandboxes' traffic to the internet: in the
uplink namespace it sets `net.ipv4.ip_forward=1` and loads Corral's own table
`ip corral_uplink`, which masquerades the uplink /30 (the gateway already masquerades the
sandboxes behind it) on every interface but the uplink veth. The functions run on a thread
that is inside the uplink namespace (see `Gateway`). The operator's ip_forward value is kept
in a state file before Corral changes it, so a server restarted after a crash still restores
the operator's value, not its own; the table is replaced as a whole, so loading it twice is
harmless.

Without `--dns-upstream` the sandboxes' queries go to the uplink namespace's resolvers
(`nameserver` lines of its resolv.conf); a loopback one (systemd-resolved's 127.0.0.53) is
unreachable from the gateway and is skipped with a warning.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from corral.network._linux.nftables import Nftables, NftablesError

__all__ = [
    "UPLINK_TABLE",
    "default_dns_upstream",
    "disable_uplink_nat",
    "enable_uplink_nat",
    "nameservers",
    "resolv_conf_of",
    "uplink_nat_ruleset",
]

log = logging.getLogger(__name__)

UPLINK_TABLE = "corral_uplink"
_IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"  # resolved in the calling thread's namespace


def uplink_nat_ruleset(peer_ifname: str, uplink_subnet: IPv4Network) -> str:
    """The table (as one transaction that replaces any earlier copy of it)."""
    return f"""add table ip {UPLINK_TABLE}
delete table ip {UPLINK_TABLE}
table ip {UPLINK_TABLE} {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {uplink_subnet} oifname != "{peer_ifname}" masquerade
    }}
}}
"""


def enable_uplink_nat(peer_ifname: str, uplink_subnet: IPv4Network, state_file: Path) -> None:
    """Turn forwarding on and load the table in the calling thread's namespace."""
    with open(_IP_FORWARD) as knob:
        current = knob.read().strip()
    if not state_file.exists():  # else: a crashed run's file holds the operator's value
        state_file.write_text(current + "\n")
    if current != "1":
        with open(_IP_FORWARD, "w") as knob:
            knob.write("1")
    nft = Nftables()
    try:
        nft.run(uplink_nat_ruleset(peer_ifname, uplink_subnet))
    finally:
        nft.close()


def disable_uplink_nat(state_file: Path) -> None:
    """Remove the table and put back the ip_forward value Corral found (if it changed it)."""
    nft = Nftables()
    try:
        nft.run(f"delete table ip {UPLINK_TABLE}")
    except NftablesError:
        pass  # not there
    finally:
        nft.close()
    try:
        original = state_file.read_text().strip()
    except FileNotFoundError:
        return
    if original != "1":
        with open(_IP_FORWARD, "w") as knob:
            knob.write(original)
    state_file.unlink()


def resolv_conf_of(uplink_netns: str | None) -> Path:
    """The resolv.conf programs of the uplink namespace use: `ip netns exec`'s
    `/etc/netns/<name>/resolv.conf` for a named namespace that has one, else the host's."""
    if uplink_netns is not None and Path(uplink_netns).parent == Path("/run/netns"):
        own = Path("/etc/netns") / Path(uplink_netns).name / "resolv.conf"
        if own.is_file():
            return own
    return Path("/etc/resolv.conf")


def nameservers(text: str) -> tuple[list[IPv4Address], list[IPv4Address]]:
    """The IPv4 `nameserver` addresses of a resolv.conf: (usable, loopback)."""
    usable: list[IPv4Address] = []
    loopback: list[IPv4Address] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0] != "nameserver":
            continue
        try:
            address = IPv4Address(fields[1])
        except ValueError:
            continue  # IPv6: the gateway has no IPv6 uplink
        (loopback if address.is_loopback else usable).append(address)
    return usable, loopback


def default_dns_upstream(resolv_conf: Path) -> tuple[IPv4Address, ...]:
    """The upstream resolvers when the operator named none (may be empty: warned)."""
    try:
        text = resolv_conf.read_text()
    except OSError as exc:
        log.warning("could not read %s (%s): pass --dns-upstream IP", resolv_conf, exc)
        return ()
    usable, loopback = nameservers(text)
    if loopback:
        log.warning(
            "%s names loopback resolver(s) %s, which the sandboxes' gateway cannot reach%s: "
            "pass --dns-upstream IP (e.g. the server systemd-resolved forwards to, "
            "see `resolvectl status`)",
            resolv_conf,
            ", ".join(map(str, loopback)),
            "; using only " + ", ".join(map(str, usable)) if usable else "",
        )
    if usable:
        log.info("DNS upstream from %s: %s", resolv_conf, ", ".join(map(str, usable)))
    return tuple(dict.fromkeys(usable))
