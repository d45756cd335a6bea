"""The sandbox's network namespace, made and wired by host root in the setup process.

The namespace is created before the setup joins the sandbox's user namespace, so it belongs
to the host's user namespace: sandbox root has no CAP_NET_ADMIN over it and cannot change
its address or routes, add interfaces or open raw sockets (EPERM). With a gateway:

    gateway netns:  <host_ifname> (veth, up) ── route <address>/32, source <gateway>
    sandbox netns:  eth0 (veth peer, up) <address>/<prefix>, default via <gateway>; lo up

Other sandboxes' addresses are on-link for the sandbox but nothing answers their ARP: the
gateway routes only to each sandbox's own /32, and nftables drops sandbox-to-sandbox.
"""

from __future__ import annotations

import errno
import os
from ipaddress import IPv4Address

from corral.model import SandboxNetwork
from corral.runtime._linux import syscalls as sc
from corral.runtime._linux.netlink import RtNetlink

__all__ = ["SANDBOX_IFNAME", "enter_new_netns", "network_from_json", "network_to_json"]

SANDBOX_IFNAME = "eth0"


def network_to_json(network: SandboxNetwork | None) -> dict[str, object] | None:
    """The launcher request's `network` value."""
    if network is None:
        return None
    return {
        "gateway_netns": network.gateway_netns,
        "host_ifname": network.host_ifname,
        "address": str(network.address),
        "prefix_len": network.prefix_len,
        "gateway": str(network.gateway),
    }


def network_from_json(raw: dict[str, object] | None) -> SandboxNetwork | None:
    if raw is None:
        return None
    return SandboxNetwork(
        gateway_netns=str(raw["gateway_netns"]),
        host_ifname=str(raw["host_ifname"]),
        address=IPv4Address(str(raw["address"])),
        prefix_len=int(str(raw["prefix_len"])),
        gateway=IPv4Address(str(raw["gateway"])),
    )


def enter_new_netns(network: SandboxNetwork | None) -> None:
    """Unshare a new network namespace (host root) and wire it; `lo` is up either way."""
    if network is None:
        sc.unshare(sc.CLONE_NEWNET)
        with RtNetlink() as own:
            own.set_up("lo")
        return
    gateway_ns = os.open(network.gateway_netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        sc.setns(gateway_ns, sc.CLONE_NEWNET)
    finally:
        os.close(gateway_ns)
    with RtNetlink() as gateway_side:
        sc.unshare(sc.CLONE_NEWNET)
        own_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                gateway_side.create_veth(network.host_ifname, SANDBOX_IFNAME, own_ns)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
                # Left by a sandbox of this slot whose teardown never ran: replace it.
                gateway_side.delete_link(network.host_ifname)
                gateway_side.create_veth(network.host_ifname, SANDBOX_IFNAME, own_ns)
        finally:
            os.close(own_ns)
        gateway_side.add_route(network.address, 32, network.host_ifname, source=network.gateway)
    with RtNetlink() as own:
        own.set_up("lo")
        own.set_up(SANDBOX_IFNAME)
        own.add_address(SANDBOX_IFNAME, network.address, network.prefix_len)
        own.add_route(IPv4Address(0), 0, SANDBOX_IFNAME, via=network.gateway)
