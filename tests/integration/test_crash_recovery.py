"""`kill -9` of the server, then a restart on the same state: live sandboxes are re-adopted and
usable, expired ones and orphaned leftovers are removed, and the store agrees with the host.

The "mid-create/exec/kill" windows are hit with load, not with test hooks: four clients
create, exec and kill in a loop while the server or the launcher is killed at a random point,
three times per test; afterwards every sandbox a client saw is usable or reported gone, and
nothing else is on the host. `corral leftovers` (the operator's view with the server
stopped) is checked against a crash's debris: it lists and, with `--clean`, removes exactly
what a restart would not re-adopt.

Each test runs its own server (not the session one), because it kills it.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
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
        if leaks:  # e.g. a restart failed: never leave live sandboxes on a shared host
            _leftovers(srv, "--clean", "--all")
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


# --- kill -9 under load: mid-create, mid-exec and mid-kill ------------------------------------


def _listed(srv: harness.CorralServer) -> set[str]:
    reply = httpx.get(f"{srv.url}/v2/sandboxes", headers={"X-API-KEY": "k"}, timeout=30)
    reply.raise_for_status()
    return {item["sandboxID"] for item in reply.json()}


def _load(srv: harness.CorralServer, seen: set[str], stop: threading.Event) -> None:
    """Create, exec and kill in a loop until `stop`; records every id it saw created."""
    rng = random.Random()
    while not stop.is_set():
        try:
            sbx = Sandbox.create(timeout=120, **_sdk(srv))
            seen.add(sbx.sandbox_id)
            sbx.commands.run("echo hi; sleep 0.05", timeout=30)
            if rng.random() < 0.6:
                sbx.kill()
        except Exception:  # the server or launcher is being killed: errors are expected
            time.sleep(0.02)


def _check_usable_or_gone(srv: harness.CorralServer, seen: set[str]) -> None:
    """Every sandbox a client saw is either usable or reported gone, and nothing else of
    ours is on the host."""
    listed = _listed(srv)
    for sandbox_id in seen:
        if sandbox_id in listed:
            again = Sandbox.connect(sandbox_id, **_sdk(srv))
            assert again.commands.run("echo ok", timeout=30).stdout == "ok\n", sandbox_id
        else:
            with pytest.raises(NotFoundException):
                Sandbox.get_info(sandbox_id, **_sdk(srv))
    deadline = time.monotonic() + 10
    while _ids_on_disk(srv) != listed and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _ids_on_disk(srv) == listed
    for sandbox_id in listed:
        Sandbox.kill(sandbox_id, **_sdk(srv))
    dirs = [srv.state_dir, srv.run_dir]
    leaks = harness.wait_no_leaks(seen | listed, dirs, timeout=10, server_running=True)
    assert leaks == [], "\n".join(leaks)


@pytest.mark.parametrize("victim", ["server", "launcher"])
def test_kill_9_under_load_leaves_every_sandbox_usable_or_gone(
    server: harness.CorralServer, victim: str
) -> None:
    for _ in range(3):
        seen: set[str] = set()
        stop = threading.Event()
        workers = [
            threading.Thread(target=_load, args=(server, seen, stop), daemon=True) for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        while len(seen) < 4:  # load is under way: creates, execs and kills in flight
            time.sleep(0.01)
        time.sleep(random.uniform(0.0, 0.5))
        if victim == "server":
            _crash(server)
        else:
            os.kill(_launcher_pid(server), signal.SIGKILL)
        stop.set()
        for worker in workers:
            worker.join(60)
        if victim == "server":
            _restart(server)
        _check_usable_or_gone(server, seen)


# --- `corral leftovers`: the operator's view of what a crash left ------------------------------


def _leftovers(srv: harness.CorralServer, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(harness.CORRAL_BIN), "leftovers", "--state-dir", str(srv.state_dir)]
        + ["--run-dir", str(srv.run_dir), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _forget_row(srv: harness.CorralServer, sandbox_id: str) -> None:
    """Delete a row as a crash between two writes could leave it (and close the database:
    `corral leftovers` treats any process holding it open as a running server)."""
    with contextlib.closing(sqlite3.connect(srv.state_dir / "corral.db")) as db, db:
        db.execute("DELETE FROM sandboxes WHERE sandbox_id = ?", (sandbox_id,))


def test_leftovers_refuses_to_clean_under_a_running_server(server: harness.CorralServer) -> None:
    sbx = Sandbox.create(timeout=120, **_sdk(server))
    refused = _leftovers(server, "--clean")
    assert refused.returncode != 0 and "stop it before --clean" in refused.stderr
    listing = _leftovers(server)
    assert listing.returncode == 0 and "warning: a server" in listing.stderr
    assert f"kept (re-adopted at the next start): {sbx.sandbox_id}" in listing.stdout
    assert sbx.commands.run("echo still").stdout == "still\n"
    sbx.kill()


def test_leftovers_lists_and_cleans_what_a_crash_left(server: harness.CorralServer) -> None:
    kept = Sandbox.create(timeout=120, **_sdk(server))
    unknown = Sandbox.create(timeout=120, **_sdk(server))
    dead = Sandbox.create(timeout=120, **_sdk(server))
    unknown.commands.run("sleep 300", background=True)
    _crash(server)
    _forget_row(server, unknown.sandbox_id)
    os.kill(_init_pid(dead.sandbox_id), signal.SIGKILL)
    orphan = "orphan0000000000000y"
    (server.run_dir / "sandboxes" / orphan).mkdir(parents=True)
    gone = {unknown.sandbox_id, dead.sandbox_id, orphan}

    listing = _leftovers(server)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert any(
        line.startswith(f"sandbox {unknown.sandbox_id}: unknown to the store") for line in lines
    )
    assert any(line.startswith(f"sandbox {dead.sandbox_id}: not running") for line in lines)
    assert any(line.startswith(f"sandbox {orphan}: unknown to the store") for line in lines)
    assert f"kept (re-adopted at the next start): {kept.sandbox_id}" in lines
    assert any(line.startswith("mount ") for line in lines), lines  # favordynmods at least
    assert harness.cgroup_dirs(unknown.sandbox_id), "listing must not change anything"

    cleaned = _leftovers(server, "--clean")
    assert cleaned.returncode == 0 and "cleaned" in cleaned.stdout, cleaned.stdout + cleaned.stderr
    assert harness.find_leaks(gone, []) == []
    assert _ids_on_disk(server) == {kept.sandbox_id}
    assert _leftovers(server).stdout.splitlines()[-1].startswith("kept")

    _restart(server)  # the kept sandbox is re-adopted and usable
    again = Sandbox.connect(kept.sandbox_id, **_sdk(server))
    assert again.commands.run("echo kept").stdout == "kept\n"
    assert again.kill()


def test_leftovers_clean_all_removes_every_sandbox_and_host_mount(
    server: harness.CorralServer,
) -> None:
    forgotten = Sandbox.create(timeout=120, **_sdk(server))
    kept = Sandbox.create(timeout=120, **_sdk(server))
    _crash(server)
    _forget_row(server, forgotten.sandbox_id)
    dirs = [server.state_dir, server.run_dir]
    assert _leftovers(server, "--clean").returncode == 0
    mounts = [leak for leak in harness.find_leaks(set(), dirs) if leak.startswith("mount ")]
    assert mounts, "host mounts stay while a sandbox is kept"
    assert _ids_on_disk(server) == {kept.sandbox_id}
    cleaned = _leftovers(server, "--clean", "--all")
    assert cleaned.returncode == 0, cleaned.stderr
    assert harness.find_leaks({forgotten.sandbox_id, kept.sandbox_id}, dirs) == []
    assert _leftovers(server).stdout == "no leftovers\n"
