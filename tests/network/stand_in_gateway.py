"""A scratch network namespace and a stand-in for `Gateway` over it (N2's component tests).

Everything lives on the namespace's `lo`, with one address per role: the gateway
(resolver, proxy), two "sandboxes", an upstream DNS server and two web hosts. Sockets are
made inside the namespace by a short-lived thread that `setns`es into it (a thread's
namespace change is its own), exactly as the real gateway hands them out. The namespace is
`ip netns add`ed under a unique name and deleted at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address

from corral.runtime._linux import syscalls as sc

__all__ = ["GATEWAY", "SANDBOX_A", "SANDBOX_B", "ScratchNetns", "StandInGateway"]

GATEWAY = "10.99.0.1"
SANDBOX_A = "10.99.0.2"
SANDBOX_B = "10.99.0.3"
ADDRESSES = (GATEWAY, SANDBOX_A, SANDBOX_B, "10.99.1.53", "10.99.2.10", "10.99.2.20")


class ScratchNetns:
    """`ip netns add n2-<random>` with `lo` up and every address of `ADDRESSES` on it."""

    def __init__(self) -> None:
        self.name = f"n2-{uuid.uuid4().hex[:10]}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.path = f"/run/netns/{self.name}"
        batch = "link set lo up\n" + "".join(f"addr add {a}/32 dev lo\n" for a in ADDRESSES)
        self.run("ip", "-batch", "-", stdin=batch)

    def run(self, *argv: str, stdin: str | None = None) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            input=stdin,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def in_netns(self, func, *args):  # type: ignore[no-untyped-def]
        """Call `func(*args)` on a thread inside the namespace; return its result."""
        result: list[object] = []
        failure: list[BaseException] = []

        def work() -> None:
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    sc.setns(fd, sc.CLONE_NEWNET)
                finally:
                    os.close(fd)
                result.append(func(*args))
            except BaseException as exc:  # handed to the caller
                failure.append(exc)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]
        return result[0]

    def socket(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        sock = self.in_netns(socket.socket, family, kind, proto)
        assert isinstance(sock, socket.socket)
        return sock

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)


class StandInGateway:
    """`sandbox_for_address`, `pin`, `socket_in_gateway` over a `ScratchNetns`."""

    def __init__(self, netns: ScratchNetns, sandboxes: dict[str, str]) -> None:
        self.netns = netns
        self.gateway_address = IPv4Address(GATEWAY)
        self.sandboxes = sandboxes  # address -> sandbox id
        self.pins: list[tuple[str, tuple[str, ...], float]] = []

    def sandbox_for_address(self, address: IPv4Address | str) -> str | None:
        return self.sandboxes.get(str(address))

    async def pin(self, sandbox_id: str, ips: Iterable[IPv4Address], ttl: float) -> None:
        self.pins.append((sandbox_id, tuple(str(ip) for ip in ips), ttl))

    def socket_in_gateway(self, family: int, kind: int, proto: int = 0) -> socket.socket:
        return self.netns.socket(family, kind, proto)


def pinned_addresses(gateway: StandInGateway, sandbox_id: str) -> Sequence[str]:
    return [ip for sid, ips, _ in gateway.pins if sid == sandbox_id for ip in ips]
