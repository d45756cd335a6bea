"""`corral serve --uplink-nat`: sandboxes reach an internet that only the uplink namespace
routes to, through two NATs, and the server undoes its changes there when it stops.

Topology (all made by the test; the real host is not touched):

    sandbox ─ gateway netns (masquerade) ─ "host" netns (--uplink-netns, --uplink-nat)
        ─ veth 10.99.77.1 ↔ 10.99.77.2 ─ "internet" (a `FakeInternet`; 198.51.100.0/24 and
        203.0.113.0/24 routed only from "host", no route back to the uplink /30)
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fake_internet import DNS, OTHER, UDP_ECHO_PORT, WEB, FakeInternet
from gateway_host import running_server
from sandbox_probe import probe

from corral.network.uplink import UPLINK_TABLE

pytestmark = pytest.mark.timeout(180)

HOST_SIDE = "10.99.77.1"
INTERNET_SIDE = "10.99.77.2"


def _in(netns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv], check=check, capture_output=True, text=True
    )


def _ip_forward(netns: str) -> str:
    return _in(netns, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()


def _has_table(netns: str) -> bool:
    return _in(netns, "nft", "list", "table", "ip", UPLINK_TABLE, check=False).returncode == 0


@pytest.fixture
def host_and_internet(
    fake_internet_factory: Callable[[], FakeInternet],
) -> Iterator[tuple[str, FakeInternet]]:
    inet = fake_internet_factory()
    host = f"corral-host-{secrets.token_hex(4)}"
    veth = f"cn{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", host], check=True)
    try:
        _in(host, "ip", "link", "set", "lo", "up")
        _in(
            host,
            "ip",
            "link",
            "add",
            veth,
            "type",
            "veth",
            "peer",
            "name",
            "to-host",
            "netns",
            inet.name,
        )
        _in(host, "ip", "addr", "add", f"{HOST_SIDE}/30", "dev", veth)
        _in(host, "ip", "link", "set", veth, "up")
        _in(inet.name, "ip", "addr", "add", f"{INTERNET_SIDE}/30", "dev", "to-host")
        _in(inet.name, "ip", "link", "set", "to-host", "up")
        # The fake DNS server's UDP socket is bound to 0.0.0.0: make its replies leave from
        # the address asked (as a real server's do), else "host"'s conntrack cannot match them.
        _in(inet.name, "ip", "route", "replace", "10.99.77.0/30", "dev", "to-host", "src", DNS)
        for prefix in ("198.51.100.0/24", "203.0.113.0/24"):
            _in(host, "ip", "route", "add", prefix, "via", INTERNET_SIDE)
        yield host, inet
    finally:
        subprocess.run(["ip", "netns", "del", host], check=False, capture_output=True)


@pytest.fixture
def fake_internet_factory() -> Iterator[Callable[[], FakeInternet]]:
    made: list[FakeInternet] = []

    def make() -> FakeInternet:
        made.append(FakeInternet())
        return made[-1]

    yield make
    for inet in made:
        inet.close()


def test_sandboxes_reach_the_internet_through_the_uplink_nat(
    host_and_internet: tuple[str, FakeInternet], sdk_to: Callable[[Any], None]
) -> None:
    from e2b import Sandbox

    host, inet = host_and_internet
    forward_before = _ip_forward(host)
    assert forward_before == "0", "a new namespace starts without forwarding"
    # Without --uplink-nat nothing would forward in "host": the test would fail (checked).
    uplink = SimpleNamespace(path=f"/run/netns/{host}")
    with running_server(uplink, "--uplink-nat") as server:  # type: ignore[arg-type]
        assert _ip_forward(host) == "1"
        assert _has_table(host)
        sdk_to(server)
        online = Sandbox.create(timeout=120, allow_internet_access=True)
        offline = Sandbox.create(timeout=120, allow_internet_access=False)
        try:
            targets = [("tcp", WEB, 80), ("udp", OTHER, UDP_ECHO_PORT)]
            assert probe(online, targets) == dict.fromkeys(targets, True)
            assert probe(offline, targets) == dict.fromkeys(targets, False)
            # Names resolve too: the gateway's own DNS traffic takes the same two NATs.
            lookup = online.commands.run(
                "python3 -c 'import socket; print(socket.gethostbyname(\"web.test\"))'",
                timeout=30,
            )
            assert lookup.stdout.strip() == WEB
        finally:
            online.kill()
            offline.kill()
        seen = inet.seen()
        # The internet saw "host"'s address only: masqueraded in "host", not routed back.
        assert f"tcp {WEB}:80 from {HOST_SIDE}" in seen, seen
        assert f"udp {OTHER}:{UDP_ECHO_PORT} from {HOST_SIDE}" in seen, seen
        assert f"web.test from {HOST_SIDE}" in seen, seen
    assert not _has_table(host), "the server left its table in the uplink namespace"
    assert _ip_forward(host) == forward_before


_RESTART = """
import sys
from ipaddress import IPv4Network
from pathlib import Path
from corral.network.uplink import disable_uplink_nat, enable_uplink_nat
state = Path(sys.argv[1])
knob = Path("/proc/sys/net/ipv4/ip_forward")
enable_uplink_nat("cu-test", IPv4Network("169.254.88.0/30"), state)
enable_uplink_nat("cu-test", IPv4Network("169.254.88.0/30"), state)  # a restart after a crash
assert knob.read_text().strip() == "1"
disable_uplink_nat(state)
print(knob.read_text().strip(), state.exists())
"""


@pytest.mark.parametrize("before", ["0", "1"])
def test_a_restart_after_a_crash_still_restores_the_operators_ip_forward(
    before: str, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    netns = f"corral-host-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        _in(netns, "sh", "-c", f"echo {before} > /proc/sys/net/ipv4/ip_forward")
        result = _in(netns, sys.executable, "-c", _RESTART, str(tmp_path / "state"))
        assert result.stdout.split() == [before, "False"]
        assert not _has_table(netns)
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False, capture_output=True)
