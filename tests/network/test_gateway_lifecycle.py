"""The gateway across a server crash: re-adoption keeps policies in force, nothing leaks."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from fake_internet import WEB, WEB_2, FakeInternet
from gateway_host import force_cleanup, gateway_leftovers, harness, new_server
from sandbox_probe import probe

from corral.network.gateway import gateway_netns_path

pytestmark = pytest.mark.timeout(240)


def _gateway_links(server: Any) -> list[str]:
    netns = gateway_netns_path(server.run_dir)
    shown = subprocess.run(
        ["nsenter", f"--net={netns}", "ip", "-o", "link", "show"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in shown.splitlines())


def test_a_crashed_server_re_adopts_the_gateway_and_sweeps_dead_veths(
    sdk_to: Callable[[Any], None],
) -> None:
    from e2b import Sandbox

    if harness.runtime_name() != "namespaces":
        pytest.skip("network tests need the namespaces runtime")
    inet = FakeInternet()  # its own: two gateways must not share an uplink namespace
    server = new_server(inet)
    try:
        server.start()
        sdk_to(server)
        kept = Sandbox.create(timeout=120, network={"allow_out": [WEB]})
        doomed = Sandbox.create(timeout=120, allow_internet_access=True)
        targets = [("tcp", WEB, 80), ("tcp", WEB_2, 80)]
        assert list(probe(kept, targets).values()) == [True, False]
        assert _gateway_links(server) == ["cs0", "cs1", "gw-up", "lo"]

        assert server.process is not None
        server.process.kill()  # SIGKILL: no shutdown, the sandboxes live on
        server.process.wait()
        doomed_init = _init_pid(server, doomed.sandbox_id)
        subprocess.run(["kill", "-9", str(doomed_init)], check=True)

        server.start()
        sdk_to(server)
        again = Sandbox.connect(kept.sandbox_id)
        assert list(probe(again, targets).values()) == [True, False]
        assert _gateway_links(server) == ["cs0", "gw-up", "lo"]  # the dead one's veth: swept
        again.update_network({"allow_out": [WEB_2]})
        assert list(probe(again, targets).values()) == [False, True]
        fresh = Sandbox.create(timeout=60, allow_internet_access=True)
        assert list(probe(fresh, targets).values()) == [True, True]
        fresh.kill()
        again.kill()
    finally:
        server.stop()
        problems = gateway_leftovers(server)
        force_cleanup(server)
        server.remove_workdir()
        inet.close()
    assert not problems


def _init_pid(server: Any, sandbox_id: str) -> int:
    """The host pid of a sandbox's init (its agent), from its cgroup."""
    for path in subprocess.run(
        ["find", "/sys/fs/cgroup", "-maxdepth", "4", "-type", "d", "-name", sandbox_id],
        capture_output=True,
        text=True,
    ).stdout.split():
        with open(f"{path}/cgroup.procs") as procs:
            pids = [int(line) for line in procs]
        for pid in pids:
            with open(f"/proc/{pid}/status") as status:
                for entry in status:
                    if entry.startswith("NSpid:") and entry.split()[-1] == "1":
                        return pid
    raise AssertionError(f"no init found for sandbox {sandbox_id}")
