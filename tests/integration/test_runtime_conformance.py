"""One conformance suite every `Runtime` backend passes (STYLE 14).

Drives the runtime directly (no server): start → the agent answers on its socket → `live()`
sees it → `stop()` leaves nothing behind; failed starts clean up; a fresh runtime instance
(as after a server crash) finds running sandboxes again and `sweep` removes leftovers.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from corral.model import Limits, SandboxSpec, TemplateRef, new_access_token, new_sandbox_id
from corral.runtime import RunDirTooLong, Runtime, SandboxStartError
from corral.runtime._linux.cgroups import detect_layout
from corral.templates import load_template

TEMPLATES_DIR = Path(os.environ.get("CORRAL_TEMPLATES_DIR", "/var/lib/corral/templates"))
UID_BASE = 100_000 + 4000 * 65_536  # far from the slots a concurrently running server uses


def _make_runtime(name: str, state_dir: Path, run_dir: Path) -> Runtime:
    if name == "namespaces":
        from corral.runtime.namespaces import NamespacesRuntime

        return NamespacesRuntime(state_dir, run_dir)
    from corral.runtime.fake import FakeRuntime

    return FakeRuntime(state_dir, run_dir)


@pytest.fixture(params=["namespaces", "fake"])
def runtime_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A short private dir (pytest's own is too long for agent socket paths)."""
    path = Path(tempfile.mkdtemp(prefix="corral-rt-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def runtime(runtime_name: str, tmp_path: Path) -> AsyncIterator[Runtime]:
    rt = _make_runtime(runtime_name, tmp_path / "state", tmp_path / "run")
    await rt.open()
    try:
        yield rt
    finally:
        await rt.sweep(set())
        await rt.close()


def _spec(template: TemplateRef, slot: int = 0) -> SandboxSpec:
    return SandboxSpec(
        sandbox_id=new_sandbox_id(),
        template=template,
        access_token=new_access_token(),
        uid_base=UID_BASE + slot * 65_536,
        limits=Limits(cpu_count=1, memory_mb=256, pids_max=256, disk_mb=1024),
        env_vars={"CONFORMANCE": "1"},
    )


async def _health(socket_path: str) -> int:
    transport = httpx.AsyncHTTPTransport(uds=socket_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://agent") as client:
        response = await client.get("/health")
        return response.status_code


def _leftovers(tmp_path: Path, sandbox_id: str) -> list[str]:
    found = []
    for d in (tmp_path / "state" / "sandboxes", tmp_path / "run" / "sandboxes"):
        if (d / sandbox_id).exists():
            found.append(str(d / sandbox_id))
    found += [str(p) for p in detect_layout().sandbox(sandbox_id).dirs() if p.exists()]
    with open("/proc/self/mountinfo") as mountinfo:
        found += [line.split()[4] for line in mountinfo if sandbox_id in line]
    return found


async def test_start_serves_then_stop_removes_everything(runtime: Runtime, tmp_path: Path) -> None:
    spec = _spec(load_template(TEMPLATES_DIR, "base"))
    live = await runtime.start(spec)
    assert live.sandbox_id == spec.sandbox_id
    assert await _health(live.agent_socket) == 204
    assert [s.sandbox_id for s in await runtime.live()] == [spec.sandbox_id]
    await runtime.stop(spec.sandbox_id)
    assert not os.path.exists(f"/proc/{live.init_pid}/status") or _is_zombie(live.init_pid)
    assert await runtime.live() == []
    assert _leftovers(tmp_path, spec.sandbox_id) == []


async def test_stop_is_idempotent(runtime: Runtime) -> None:
    await runtime.stop(new_sandbox_id())
    spec = _spec(load_template(TEMPLATES_DIR, "base"))
    await runtime.start(spec)
    await runtime.stop(spec.sandbox_id)
    await runtime.stop(spec.sandbox_id)


async def test_failed_start_leaves_nothing(runtime: Runtime, tmp_path: Path) -> None:
    broken = TemplateRef("broken", (str(tmp_path / "no-such-layer"),))
    spec = _spec(broken)
    if runtime.name == "fake":
        pytest.skip("the fake runtime does not mount template layers")
    with pytest.raises(SandboxStartError):
        await runtime.start(spec)
    assert _leftovers(tmp_path, spec.sandbox_id) == []


async def test_concurrent_starts(runtime: Runtime) -> None:
    template = load_template(TEMPLATES_DIR, "base")
    specs = [_spec(template, slot) for slot in range(4)]
    lives = await asyncio.gather(*(runtime.start(s) for s in specs))
    assert sorted(s.sandbox_id for s in await runtime.live()) == sorted(s.sandbox_id for s in specs)
    assert all([await _health(live.agent_socket) == 204 for live in lives])
    await asyncio.gather(*(runtime.stop(s.sandbox_id) for s in specs))
    assert await runtime.live() == []


async def test_new_instance_finds_running_sandboxes_and_sweeps(
    runtime_name: str, runtime: Runtime, tmp_path: Path
) -> None:
    template = load_template(TEMPLATES_DIR, "base")
    kept, dropped = _spec(template, 0), _spec(template, 1)
    await runtime.start(kept)
    await runtime.start(dropped)
    again = _make_runtime(runtime_name, tmp_path / "state", tmp_path / "run")
    await again.open()
    try:
        found = {s.sandbox_id: s for s in await again.live()}
        assert set(found) == {kept.sandbox_id, dropped.sandbox_id}
        assert await _health(found[kept.sandbox_id].agent_socket) == 204
        assert await again.sweep({kept.sandbox_id}) == [dropped.sandbox_id]
        assert [s.sandbox_id for s in await again.live()] == [kept.sandbox_id]
        assert _leftovers(tmp_path, dropped.sandbox_id) == []
    finally:
        await again.close()


async def test_sandbox_processes_run_as_shifted_host_uids(runtime: Runtime) -> None:
    if runtime.name == "fake":
        pytest.skip("the fake runtime isolates nothing")
    spec = _spec(load_template(TEMPLATES_DIR, "base"))
    live = await runtime.start(spec)
    with open(f"/proc/{live.init_pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status if ":" in line)
    assert fields["Uid"].split()[0] == str(spec.uid_base)
    assert fields["NSpid"].split()[-1] == "1"
    with open(f"/proc/{live.init_pid}/uid_map") as uid_map:
        assert uid_map.read().split() == ["0", str(spec.uid_base), "65536"]
    for ns in ("mnt", "pid", "net", "uts", "ipc", "user", "cgroup"):
        assert os.readlink(f"/proc/{live.init_pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
    await runtime.stop(spec.sandbox_id)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.parametrize("name", ["namespaces", "fake"])
def test_a_run_dir_too_long_for_socket_paths_is_refused(name: str) -> None:
    with pytest.raises(RunDirTooLong, match="too long"):
        _make_runtime(name, Path("/tmp"), Path("/tmp/" + "d" * 80))


async def test_on_exit_reports_an_init_that_dies_but_not_a_stop(runtime: Runtime) -> None:
    exited: list[str] = []
    runtime.on_exit(exited.append)
    template = load_template(TEMPLATES_DIR, "base")
    dying, stopped = _spec(template, 0), _spec(template, 1)
    live = await runtime.start(dying)
    await runtime.start(stopped)
    await runtime.stop(stopped.sandbox_id)
    os.kill(live.init_pid, 9)
    for _ in range(200):
        if exited:
            break
        await asyncio.sleep(0.01)
    assert exited == [dying.sandbox_id]
    await runtime.stop(dying.sandbox_id)


async def test_usage_of_a_running_sandbox_then_none(runtime: Runtime) -> None:
    spec = _spec(load_template(TEMPLATES_DIR, "base"))
    await runtime.start(spec)
    usage = await runtime.usage(spec.sandbox_id)
    assert usage is not None
    assert usage.cpu_usage_ns > 0 and usage.memory_used > 0 and usage.disk_used >= 0
    assert (usage.oom_kills, usage.pids_max_hits) == (0, 0)
    if runtime.name == "namespaces":
        assert usage.memory_limit == spec.limits.memory_mb * 1024 * 1024
    await runtime.stop(spec.sandbox_id)
    assert await runtime.usage(spec.sandbox_id) is None
    assert await runtime.usage(new_sandbox_id()) is None


@pytest.mark.parametrize("give_up", ["timeout", "cancel"])
async def test_a_start_given_up_on_never_finishes_later(give_up: str, tmp_path: Path) -> None:
    """A create abandoned while the launcher is still building it (the client's timeout or a
    cancelled request) must not leave a sandbox behind that the launcher finishes later: its
    uid slot is released and handed to the next sandbox."""
    from corral.runtime.namespaces import NamespacesRuntime

    runtime = NamespacesRuntime(
        tmp_path / "state", tmp_path / "run", start_timeout=0.001 if give_up == "timeout" else 15
    )
    await runtime.open()
    spec = _spec(load_template(TEMPLATES_DIR, "base"))
    try:
        if give_up == "timeout":
            with pytest.raises(SandboxStartError):
                await runtime.start(spec)
        else:
            starting = asyncio.create_task(runtime.start(spec))
            await asyncio.sleep(0.002)
            starting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await starting
        await asyncio.sleep(1.0)  # a setup still under way would have finished by now
        assert await runtime.live() == []
        assert _leftovers(tmp_path, spec.sandbox_id) == []
    finally:
        await runtime.sweep(set())
        await runtime.close()
