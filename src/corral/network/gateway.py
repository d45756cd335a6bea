"""`Gateway`: the server's network namespace between its sandboxes and the uplink.

    uplink netns (host, or a test's fake internet)
        [--uplink-nat: ip_forward=1, table `ip corral_uplink` masquerading the /30 (uplink.py)]
        cu<hash> <uplink_subnet .1>
            │ veth
        gw-up <uplink_subnet .2>  ── default route; masquerade
    gateway netns (`<run_dir>/netns/gateway`, a bind-mounted nsfs file)
        lo: <subnet .1>  (resolver :53, SNI proxy), nftables `inet corral` (`ruleset.py`)
        cs<slot> ── route <subnet .(2+slot)>/32 ──veth── eth0 of that sandbox

Everything that touches the namespace (netlink, nftables, new sockets) runs on one worker
thread that entered it at open: a thread's `setns` changes only that thread, so the event
loop stays in the host's namespace. After a crash the namespace is found by its file and
re-adopted (live sandboxes keep their veths); `sweep` then removes the veths of sandboxes
that are gone, and every policy is re-applied by the orchestrator.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import TypeVar

from corral.model import EgressPolicy, SandboxNetwork
from corral.network._linux.nftables import Nftables, NftablesError
from corral.network.policy import OperatorNetworkSettings, effective
from corral.network.ruleset import (
    HOST_IFNAME_PREFIX,
    TABLE,
    UPLINK_IFNAME,
    base_ruleset,
    element_commands,
    generation_elements,
    generation_keys,
    policy_elements,
)
from corral.network.uplink import (
    default_dns_upstream,
    disable_uplink_nat,
    enable_uplink_nat,
    resolv_conf_of,
)
from corral.runtime._linux import syscalls as sc
from corral.runtime._linux.netlink import RtNetlink

__all__ = ["Gateway", "GatewayError", "gateway_netns_path", "uplink_ifname"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_MIN_PIN_TTL = 30


class GatewayError(Exception):
    """The gateway could not be set up or changed; the message says what failed."""


def gateway_netns_path(run_dir: Path) -> Path:
    """Where a server with this run dir keeps its gateway namespace."""
    return Path(run_dir) / "netns" / "gateway"


def uplink_ifname(run_dir: Path) -> str:
    """The uplink veth's name in the uplink namespace: unique per server run dir."""
    digest = hashlib.sha256(str(Path(run_dir).resolve()).encode()).hexdigest()
    return f"cu{digest[:10]}"


@dataclass
class _Attached:
    slot: int
    address: IPv4Address
    ifname: str
    policy: EgressPolicy  # effective
    elements: dict[str, list[str]]
    generation: int  # conntrack mark of connections decided under the current policy
    pins: dict[IPv4Address, float]  # pinned IP -> monotonic expiry


def _is_nsfs_mount(path: Path) -> bool:
    """Whether a namespace file is bind-mounted on `path` (a crashed server's gateway)."""
    target = str(path)
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[4] == target and line.split(" - ", 1)[1].startswith("nsfs "):
                return True
    return False


class Gateway:
    """See the module docstring. Methods run on the event loop unless they say otherwise."""

    def __init__(self, operator: OperatorNetworkSettings, run_dir: Path) -> None:
        self.operator = operator
        subnet = operator.subnet
        self._subnet = subnet
        self.gateway_address: IPv4Address = subnet.network_address + 1
        uplink = list(operator.uplink_subnet.hosts())
        if len(uplink) < 2:
            raise GatewayError(f"the uplink subnet {operator.uplink_subnet} needs 2 addresses")
        self.uplink_peer_address, self.uplink_address = uplink[0], uplink[1]
        self.netns_path = gateway_netns_path(run_dir)
        self.uplink_peer = uplink_ifname(run_dir)
        self._uplink_nat_state = self.netns_path.parent / "uplink-ip-forward"
        self._thread: ThreadPoolExecutor | None = None
        self._nft: Nftables | None = None
        self._gateway_fd = -1
        self._uplink_fd = -1  # kept while --uplink-nat's table is loaded there
        self._ceiling: list[IPv4Network] = []
        self._attached: dict[str, _Attached] = {}
        self._by_address: dict[IPv4Address, str] = {}
        self._stale_links: set[str] = set()
        # Never 0 (unmarked connections) and unlike a previous run's (re-adopted sandboxes).
        self._generation = int(time.time()) & 0x3FFFFFFF | 1

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        """Create (or re-adopt) the namespace, the uplink and the ruleset."""
        if not self.operator.dns_upstream:
            upstream = default_dns_upstream(resolv_conf_of(self.operator.uplink_netns))
            self.operator = replace(self.operator, dns_upstream=upstream)
        # The uplink namespace is opened here, on the event loop's thread (the host's
        # namespace unless --uplink-netns names another).
        uplink_ns = os.open(
            self.operator.uplink_netns or "/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC
        )
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="corral-gateway")
        try:
            await self._run(self._open_here, uplink_ns)
        except BaseException:
            await self.close()
            raise
        finally:
            os.close(uplink_ns)

    def _open_here(self, uplink_ns: int) -> None:
        self.netns_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        adopted = _is_nsfs_mount(self.netns_path)
        if adopted:
            fd = os.open(self.netns_path, os.O_RDONLY | os.O_CLOEXEC)
            sc.setns(fd, sc.CLONE_NEWNET)
            os.close(fd)
        else:
            sc.unshare(sc.CLONE_NEWNET)
            self.netns_path.touch(mode=0o600)
            sc.mount("/proc/thread-self/ns/net", str(self.netns_path), None, sc.MS_BIND, None)
        self._gateway_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        for name, value in (
            ("ipv4/ip_forward", "1"),
            ("ipv6/conf/all/disable_ipv6", "1"),
            ("ipv6/conf/default/disable_ipv6", "1"),
        ):
            _sysctl(name, value)
        with RtNetlink() as rt:
            rt.set_up("lo")
            _ignore_exists(lambda: rt.add_address("lo", self.gateway_address, 32))
            links = rt.link_names()
            self._stale_links = {n for n in links if n.startswith(HOST_IFNAME_PREFIX)}
            if UPLINK_IFNAME in links:
                rt.delete_link(UPLINK_IFNAME)
            rt.create_veth(UPLINK_IFNAME, self.uplink_peer, uplink_ns)
            prefix = self.operator.uplink_subnet.prefixlen
            rt.add_address(UPLINK_IFNAME, self.uplink_address, prefix)
            rt.add_route(IPv4Address(0), 0, UPLINK_IFNAME, via=self.uplink_peer_address)
        sc.setns(uplink_ns, sc.CLONE_NEWNET)
        try:
            with RtNetlink() as uplink:
                uplink.set_up(self.uplink_peer)
                uplink.add_address(self.uplink_peer, self.uplink_peer_address, prefix)
                host_addresses = uplink.ipv4_addresses() if not self.operator.uplink_netns else []
            if self.operator.uplink_nat:
                self._uplink_fd = os.dup(uplink_ns)
                enable_uplink_nat(
                    self.uplink_peer, self.operator.uplink_subnet, self._uplink_nat_state
                )
        finally:
            sc.setns(self._gateway_fd, sc.CLONE_NEWNET)
        self._ceiling = [
            *self.operator.always_deny,
            self.operator.uplink_subnet,
            self._subnet,
            *(IPv4Network(a) for a in host_addresses),
        ]
        self._nft = Nftables()
        self._nft.run(base_ruleset(self.gateway_address, self._ceiling, self.operator.dns_upstream))
        _sysctl("netfilter/nf_conntrack_acct", "1")  # conntrack is loaded by the ruleset
        # The connection log learns a flow's bytes when conntrack forgets it (DESTROY event):
        # for closed TCP connections that is after TIME_WAIT, 120 s by default.
        _sysctl("netfilter/nf_conntrack_tcp_timeout_time_wait", "10")
        log.info(
            "gateway %s namespace %s, uplink %s -> %s",
            "re-adopted" if adopted else "created",
            self.netns_path,
            self.uplink_peer,
            self.operator.uplink_netns or "the host's namespace",
        )

    async def close(self) -> None:
        """Remove the uplink, the table and the namespace (call after every sandbox stopped)."""
        if self._thread is None:
            return
        try:
            await self._run(self._close_here)
        finally:
            self._thread.shutdown(wait=True)
            self._thread = None
        try:
            sc.umount2(str(self.netns_path), sc.MNT_DETACH)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: not mounted
                log.warning("could not unmount %s: %s", self.netns_path, exc)
        self.netns_path.unlink(missing_ok=True)

    def _close_here(self) -> None:
        if self._uplink_fd >= 0:
            sc.setns(self._uplink_fd, sc.CLONE_NEWNET)
            try:
                disable_uplink_nat(self._uplink_nat_state)
            finally:
                os.close(self._uplink_fd)
                self._uplink_fd = -1
                if self._gateway_fd >= 0:
                    sc.setns(self._gateway_fd, sc.CLONE_NEWNET)
        if self._gateway_fd < 0:
            return
        with RtNetlink() as rt:
            rt.delete_link(UPLINK_IFNAME)
            for name in rt.link_names():
                if name.startswith(HOST_IFNAME_PREFIX):
                    rt.delete_link(name)
        if self._nft is not None:
            try:
                self._nft.run(f"delete table inet {TABLE}")
            except NftablesError:
                pass
            self._nft.close()
            self._nft = None
        os.close(self._gateway_fd)
        self._gateway_fd = -1
        # The thread ends right after this (executor shutdown), releasing the namespace.

    # -- sandboxes -----------------------------------------------------------------------

    def address_of_slot(self, slot: int) -> IPv4Address:
        address = self._subnet.network_address + 2 + slot
        if address >= self._subnet.broadcast_address:
            raise GatewayError(f"the sandbox subnet {self._subnet} has no address for slot {slot}")
        return address

    def network_of_slot(self, slot: int) -> SandboxNetwork:
        """How the runtime wires the sandbox in `slot` (pure: addresses follow slots)."""
        return SandboxNetwork(
            gateway_netns=str(self.netns_path),
            host_ifname=f"{HOST_IFNAME_PREFIX}{slot}",
            address=self.address_of_slot(slot),
            prefix_len=self._subnet.prefixlen,
            gateway=self.gateway_address,
        )

    async def attach(self, sandbox_id: str, slot: int, policy: EgressPolicy) -> SandboxNetwork:
        """Reserve the slot's address for `sandbox_id` and install its policy. May run while
        the runtime wires the veth: until the elements are in, the gateway drops everything
        from that address, and the sandbox runs nothing of the client's before create returns."""
        network = self.network_of_slot(slot)
        address = network.address
        ifname = network.host_ifname
        previous = self._by_address.get(address)
        if previous is not None and previous != sandbox_id:
            await self.detach(previous)
        attached = _Attached(
            slot, address, ifname, effective(policy, self.operator), {}, self._next(), {}
        )
        attached.elements = policy_elements(address, attached.policy)
        sandbox = {"sandboxes": [f'"{ifname}" . {address}']}
        generation = generation_elements(address, attached.generation)
        await self._nft_run(element_commands("add", {**sandbox, **generation, **attached.elements}))
        self._attached[sandbox_id] = attached
        self._by_address[address] = sandbox_id
        self._stale_links.discard(ifname)
        return network

    async def apply(self, sandbox_id: str, policy: EgressPolicy) -> EgressPolicy:
        """Replace the sandbox's policy (one nftables transaction); returns the effective one.

        Open connections the new policy denies are cut at their next packet (see
        `ruleset`); pins of names the new policy no longer allows stay until their TTL ends; the
        resolver stops answering those names at once.
        """
        attached = self._attached.get(sandbox_id)
        if attached is None:
            raise GatewayError(f"sandbox {sandbox_id} has no network")
        new_policy = effective(policy, self.operator)
        new_elements = policy_elements(attached.address, new_policy)
        generation = self._next()
        await self._nft_run(
            element_commands("delete", attached.elements)
            + element_commands("delete", generation_keys(attached.address, attached.generation))
            + element_commands("add", new_elements)
            + element_commands("add", generation_elements(attached.address, generation))
        )
        attached.policy, attached.elements = new_policy, new_elements
        attached.generation = generation
        return new_policy

    def _next(self) -> int:
        self._generation = (self._generation + 1) & 0x7FFFFFFF or 1
        return self._generation

    async def pin(self, sandbox_id: str, ips: Iterable[IPv4Address], ttl: float) -> None:
        """Let the sandbox reach `ips` (answers of a name it may resolve) for `ttl` seconds
        (at least 30); 80/443 to them go through the SNI/Host proxy."""
        attached = self._attached.get(sandbox_id)
        if attached is None:
            return
        seconds = max(int(ttl), _MIN_PIN_TTL)
        now = time.monotonic()
        wanted = [ip for ip in dict.fromkeys(ips) if isinstance(ip, IPv4Address)]
        if not wanted:
            return
        known = [ip for ip in wanted if attached.pins.get(ip, 0) > now + 1]
        add = {"pinned": [f"{attached.address} . {ip} timeout {seconds}s" for ip in wanted]}
        remove = {"pinned": [f"{attached.address} . {ip}" for ip in known]}
        try:
            await self._nft_run(element_commands("delete", remove) + element_commands("add", add))
        except GatewayError:
            if not known:
                raise
            # One of them expired in the kernel meanwhile: add only (the rest keep theirs).
            await self._nft_run(element_commands("add", add))
        for ip in wanted:
            attached.pins[ip] = now + seconds

    async def detach(self, sandbox_id: str) -> None:
        """Forget the sandbox: its elements, pins and gateway-side veth (if still there)."""
        attached = self._attached.pop(sandbox_id, None)
        if attached is None:
            return
        self._by_address.pop(attached.address, None)
        now = time.monotonic()
        pins = [f"{attached.address} . {ip}" for ip, end in attached.pins.items() if end > now]
        elements = {
            **attached.elements,
            **generation_keys(attached.address, attached.generation),
            "sandboxes": [f'"{attached.ifname}" . {attached.address}'],
        }
        try:
            await self._nft_run(element_commands("delete", elements))
        except GatewayError:
            log.exception("could not remove the nftables elements of sandbox %s", sandbox_id)
        for pin in pins:  # one by one: any may have expired meanwhile
            try:
                await self._nft_run(element_commands("delete", {"pinned": [pin]}))
            except GatewayError:
                pass
        await self._run(self._delete_link, attached.ifname)

    async def sweep(self) -> list[str]:
        """Delete sandbox veths found at open that no re-attached sandbox claimed."""
        stale, self._stale_links = sorted(self._stale_links), set()
        for name in stale:
            await self._run(self._delete_link, name)
        return stale

    def _delete_link(self, name: str) -> None:
        with RtNetlink() as rt:
            rt.delete_link(name)

    # -- queries (N2's resolver, proxy and connection log) ---------------------------------

    def sandbox_for_address(self, address: IPv4Address | str) -> str | None:
        try:
            return self._by_address.get(IPv4Address(address))
        except ValueError:
            return None

    def policy(self, sandbox_id: str) -> EgressPolicy | None:
        """The effective policy in force for the sandbox (None: not attached)."""
        attached = self._attached.get(sandbox_id)
        return None if attached is None else attached.policy

    def address_of(self, sandbox_id: str) -> IPv4Address | None:
        attached = self._attached.get(sandbox_id)
        return None if attached is None else attached.address

    def pinned(self, sandbox_id: str, address: IPv4Address) -> bool:
        """Whether the resolver pinned `address` for the sandbox and the pin is still live."""
        attached = self._attached.get(sandbox_id)
        return attached is not None and attached.pins.get(address, 0) > time.monotonic()

    def socket_in_gateway(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        """A new socket inside the gateway's namespace (blocks the caller for microseconds)."""
        if self._thread is None:
            raise GatewayError("the gateway is not open")
        return self._thread.submit(socket.socket, family, kind, proto).result()

    # -- the worker thread ---------------------------------------------------------------

    async def _run(self, func: Callable[..., _T], *args: object) -> _T:
        if self._thread is None:
            raise GatewayError("the gateway is not open")
        return await asyncio.get_running_loop().run_in_executor(self._thread, func, *args)

    async def _nft_run(self, commands: str) -> None:
        if not commands:
            return
        await self._run(self._nft_here, commands)

    def _nft_here(self, commands: str) -> None:
        if self._nft is None:
            raise GatewayError("the gateway's ruleset is not loaded")
        try:
            self._nft.run(commands)
        except NftablesError as exc:
            raise GatewayError(f"nftables refused the change: {exc}") from exc


def _sysctl(name: str, value: str) -> None:
    """Write a per-namespace sysctl of the calling thread's network namespace."""
    with open(f"/proc/sys/net/{name}", "w") as knob:  # resolved per calling thread
        knob.write(value)


def _ignore_exists(action: Callable[[], None]) -> None:
    try:
        action()
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise
