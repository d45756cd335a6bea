"""`corral serve` with its gateway's uplink in a fake internet, and the host-side leak check.

`running_server(inet, *options)` starts a namespaces server whose uplink goes to `inet`,
stops it at the end and fails the test if the gateway left its namespace mount or its uplink
veth on the host; `force_cleanup` removes both whatever happened (a SIGKILLed server).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_internet import DNS, FakeInternet

from corral.network.gateway import gateway_netns_path, uplink_ifname

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import _harness as harness  # noqa: E402

__all__ = ["force_cleanup", "gateway_leftovers", "new_server", "running_server"]


def new_server(inet: FakeInternet, *extra: str) -> harness.CorralServer:
    """A server (not started) with its uplink in `inet` and `inet`'s DNS as upstream."""
    return harness.CorralServer(
        runtime="namespaces",
        extra_args=["--uplink-netns", inet.path, "--dns-upstream", DNS, *extra],
    )


def gateway_leftovers(server: harness.CorralServer) -> list[str]:
    """What the server's gateway left on the host after it stopped."""
    found = []
    netns = gateway_netns_path(server.run_dir)
    with open("/proc/self/mountinfo") as mounts:
        if any(f" {netns} " in line for line in mounts):
            found.append(f"gateway namespace still mounted at {netns}")
    uplink = uplink_ifname(server.run_dir)
    if subprocess.run(["ip", "link", "show", uplink], capture_output=True).returncode == 0:
        found.append(f"uplink veth {uplink} in the host namespace")
    return found


def force_cleanup(server: harness.CorralServer) -> None:
    netns = gateway_netns_path(server.run_dir)
    subprocess.run(["umount", "-l", str(netns)], capture_output=True, check=False)
    subprocess.run(["ip", "link", "del", uplink_ifname(server.run_dir)], capture_output=True)


@contextlib.contextmanager
def running_server(inet: FakeInternet, *extra: str) -> Iterator[harness.CorralServer]:
    server = new_server(inet, *extra)
    try:
        server.start()
    except harness.ServerStartError as exc:
        force_cleanup(server)
        server.remove_workdir()
        pytest.fail(str(exc))
    problems: list[str] = []
    try:
        yield server
    finally:
        server.stop()
        problems = gateway_leftovers(server)
        log_tail = server.log_tail()
        force_cleanup(server)
        server.remove_workdir()
    if problems:
        pytest.fail(f"the gateway leaked: {problems}\n--- server log ---\n{log_tail}")
