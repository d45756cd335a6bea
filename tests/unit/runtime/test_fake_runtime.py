"""The `fake` runtime: agents as host processes, found again after a crash, fully removed."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.model import SandboxSpec, TemplateRef, new_access_token, new_sandbox_id
from corral.runtime import SandboxStartError
from corral.runtime.fake import FakeRuntime


@pytest.fixture
def dirs() -> Iterator[tuple[Path, Path]]:
    root = Path(tempfile.mkdtemp(prefix="cf", dir="/tmp"))  # short: socket path limit
    yield root / "state", root / "run"
    shutil.rmtree(root, ignore_errors=True)


def _spec() -> SandboxSpec:
    return SandboxSpec(
        sandbox_id=new_sandbox_id(),
        template=TemplateRef(template_id="base", layers=()),
        access_token=new_access_token(),
        uid_base=100000,
        env_vars={"A": "1"},
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


async def test_start_live_after_crash_and_stop(dirs: tuple[Path, Path]) -> None:
    state, run = dirs
    runtime = FakeRuntime(state, run)
    await runtime.open()
    spec = _spec()
    live = await runtime.start(spec)
    try:
        assert _accepts(live.agent_socket)
        assert live.agent_socket == str(run / "sandboxes" / spec.sandbox_id / "agent.sock")
        assert [s.sandbox_id for s in await runtime.live()] == [spec.sandbox_id]
        # A new server process (after a crash) finds the agent through its pid file.
        reborn = FakeRuntime(state, run)
        found = await reborn.live()
        assert [(s.sandbox_id, s.init_pid) for s in found] == [(spec.sandbox_id, live.init_pid)]
        await reborn.stop(spec.sandbox_id)
        assert not _alive(live.init_pid) or _is_zombie(live.init_pid)
        assert not (run / "sandboxes" / spec.sandbox_id).exists()
        assert not (state / "sandboxes" / spec.sandbox_id).exists()
        assert await reborn.live() == []
    finally:
        await runtime.stop(spec.sandbox_id)  # reaps the child; idempotent
    assert not _alive(live.init_pid)


async def test_failed_agent_leaves_nothing(dirs: tuple[Path, Path]) -> None:
    state, run = dirs
    runtime = FakeRuntime(
        state, run, agent_command=[sys.executable, "-c", "import sys; sys.exit(3)"]
    )
    await runtime.open()
    with pytest.raises(SandboxStartError, match="exited with status 3"):
        await runtime.start(_spec())
    assert list((run / "sandboxes").iterdir()) == []
    assert list((state / "sandboxes").iterdir()) == []


async def test_stale_pid_file_is_not_trusted_and_sweep_removes_leftovers(
    dirs: tuple[Path, Path],
) -> None:
    state, run = dirs
    runtime = FakeRuntime(state, run)
    await runtime.open()
    kept = _spec()
    kept_live = await runtime.start(kept)
    stray = run / "sandboxes" / ("z" * 20)
    stray.mkdir()
    (stray / "agent.pid").write_text(f"{os.getpid()} 1\n")  # our own pid: wrong start time
    (state / "sandboxes" / ("y" * 20)).mkdir()
    try:
        assert [s.sandbox_id for s in await runtime.live()] == [kept.sandbox_id]
        removed = await runtime.sweep({kept.sandbox_id})
        assert removed == ["y" * 20, "z" * 20]
        assert _alive(os.getpid()) and _accepts(kept_live.agent_socket)
        assert sorted(p.name for p in (run / "sandboxes").iterdir()) == [kept.sandbox_id]
        assert await runtime.sweep(set()) == [kept.sandbox_id]
        assert not _alive(kept_live.init_pid)
    finally:
        await runtime.stop(kept.sandbox_id)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"
