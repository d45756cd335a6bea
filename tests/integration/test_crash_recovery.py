"""`kill -9` of the server, then a restart on the same state: live sandboxes are re-adopted and
usable, expired ones and orphaned leftovers are removed, and the store agrees with the host.

Each test runs its own server (not the session one), because it kills it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2b import NotFoundException, Sandbox

import _harness as harness

pytestmark = pytest.mark.requires_isolation


@pytest.fixture
def server() -> Iterator[harness.CorralServer]:
    srv = harness.CorralServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()
        leaks = harness.find_leaks(_ids_on_disk(srv), [srv.state_dir, srv.run_dir])
        srv.remove_workdir()
        assert leaks == [], "\n".join(leaks)


def _crash(srv: harness.CorralServer) -> None:
    assert srv.process is not None
    srv.process.send_signal(signal.SIGKILL)
    srv.process.wait(10)


def _restart(srv: harness.CorralServer) -> None:
    srv.start()


def _ids_on_disk(srv: harness.CorralServer) -> set[str]:
    ids: set[str] = set()
    for d in (srv.state_dir / "sandboxes", srv.run_dir / "sandboxes"):
        if d.is_dir():
            ids.update(p.name for p in d.iterdir())
    return ids


def _rows(srv: harness.CorralServer) -> set[str]:
    with sqlite3.connect(srv.state_dir / "corral.db") as db:
        return {row[0] for row in db.execute("SELECT sandbox_id FROM sandboxes")}


def _sdk(srv: harness.CorralServer) -> dict[str, str]:
    env = harness.sdk_env(srv)
    return {"api_url": env["E2B_API_URL"], "sandbox_url": env["E2B_SANDBOX_URL"], "api_key": "k"}


def test_live_sandbox_survives_a_server_crash(server: harness.CorralServer) -> None:
    sbx = Sandbox.create(timeout=120, **_sdk(server))
    sbx.commands.run("echo kept > /home/user/state.txt")
    sleeper = sbx.commands.run("sleep 300", background=True)
    short = Sandbox.create(timeout=2, **_sdk(server))

    _crash(server)
    time.sleep(2.5)  # `short` expires while no server is running
    _restart(server)

    again = Sandbox.connect(sbx.sandbox_id, **_sdk(server))
    assert again.commands.run("cat /home/user/state.txt").stdout == "kept\n"
    assert sleeper.pid in [p.pid for p in again.commands.list()]
    with pytest.raises(NotFoundException):
        Sandbox.get_info(short.sandbox_id, **_sdk(server))
    assert _ids_on_disk(server) == {sbx.sandbox_id}
    assert _rows(server) == {sbx.sandbox_id}
    assert again.kill() is True
    assert _ids_on_disk(server) == set()


def test_orphaned_leftovers_are_swept_at_start(server: harness.CorralServer) -> None:
    sbx = Sandbox.create(timeout=120, **_sdk(server))
    _crash(server)
    # What a crash mid-create can leave: directories of a sandbox the store never recorded.
    orphan = "orphan0000000000000x"
    (server.state_dir / "sandboxes" / orphan / "upper").mkdir(parents=True)
    (server.run_dir / "sandboxes" / orphan).mkdir(parents=True)
    # And a row whose sandbox is gone (its processes were killed while the server was down).
    with sqlite3.connect(server.state_dir / "corral.db") as db:
        db.execute("DELETE FROM sandboxes WHERE sandbox_id = ?", (sbx.sandbox_id,))
    _restart(server)
    assert _ids_on_disk(server) == set()
    assert _rows(server) == set()
    with pytest.raises(NotFoundException):
        Sandbox.get_info(sbx.sandbox_id, **_sdk(server))


def test_shutdown_removes_every_sandbox(server: harness.CorralServer) -> None:
    for _ in range(3):
        Sandbox.create(timeout=120, **_sdk(server))
    assert len(_ids_on_disk(server)) == 3
    server.stop()
    assert _ids_on_disk(server) == set()
    leftover: Path = server.run_dir / "cgroup-favordynmods"
    assert not leftover.exists()


def _init_pid(sandbox_id: str) -> int:
    procs = Path("/sys/fs/cgroup/pids/corral") / sandbox_id / "cgroup.procs"
    if not procs.exists():
        procs = Path("/sys/fs/cgroup/corral") / sandbox_id / "cgroup.procs"
    for pid in procs.read_text().split():
        status = Path(f"/proc/{pid}/status").read_text()
        nspid = next(line for line in status.splitlines() if line.startswith("NSpid:"))
        if nspid.split()[-1] == "1":
            return int(pid)
    raise AssertionError(f"no init process in sandbox {sandbox_id}")


def test_a_sandbox_whose_agent_dies_is_removed_at_once(server: harness.CorralServer) -> None:
    sbx = Sandbox.create(timeout=120, **_sdk(server))
    sbx.commands.run("sleep 300", background=True)
    os.kill(_init_pid(sbx.sandbox_id), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while sbx.sandbox_id in _ids_on_disk(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ids_on_disk(server) == set()
    assert _rows(server) == set()
    with pytest.raises(NotFoundException):
        Sandbox.get_info(sbx.sandbox_id, **_sdk(server))
    assert not sbx.is_running()


def _launcher_pid(srv: harness.CorralServer) -> int:
    assert srv.process is not None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == srv.process.pid and b"corral.runtime._linux.launcher" in cmdline:
            return int(entry.name)
    raise AssertionError("no launcher process found")


def test_a_killed_launcher_is_replaced_and_sandboxes_keep_running(
    server: harness.CorralServer,
) -> None:
    before = Sandbox.create(timeout=120, **_sdk(server))
    old = _launcher_pid(server)
    os.kill(old, signal.SIGKILL)
    time.sleep(0.2)
    after = Sandbox.create(timeout=120, **_sdk(server))
    assert after.commands.run("echo new").stdout == "new\n"
    assert before.commands.run("echo old").stdout == "old\n"
    assert _launcher_pid(server) != old
    assert before.kill() and after.kill()
    assert _ids_on_disk(server) == set()
