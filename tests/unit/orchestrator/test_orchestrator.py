"""Lifecycle of the orchestrator with an in-memory runtime and store."""

from __future__ import annotations

import asyncio
import time

import pytest

from corral.model import SandboxState, valid_sandbox_id
from corral.orchestrator import (
    CapacityExceeded,
    CreateSandbox,
    InvalidArgument,
    Orchestrator,
    OrchestratorSettings,
    SandboxNotFound,
    SandboxQuery,
    SandboxStartFailed,
    ShuttingDown,
    TemplateNotFound,
)
from corral.runtime import SandboxStartError
from corral.store import MemoryStore

from .fakes import MemoryRuntime, StaticTemplates


async def test_create_persists_running_record_and_indexes_route(
    orchestrator: Orchestrator, runtime: MemoryRuntime, store: MemoryStore
) -> None:
    before = time.time()
    record = await orchestrator.create(
        CreateSandbox(template="base", timeout=120, metadata={"k": "v"}, env_vars={"A": "1"})
    )
    assert valid_sandbox_id(record.sandbox_id)
    assert record.state is SandboxState.RUNNING
    assert record.template_id == "base-id" and record.alias == "base"
    assert before + 120 <= record.end_at <= time.time() + 120
    assert store.get(record.sandbox_id) == record
    assert record.agent_pid == runtime.running[record.sandbox_id].init_pid
    spec = runtime.specs[record.sandbox_id]
    assert spec.access_token == record.access_token and dict(spec.env_vars) == {"A": "1"}
    route = orchestrator.find_route(record.sandbox_id)
    assert route is not None
    assert route.agent_socket == runtime.running[record.sandbox_id].agent_socket
    assert route.access_token == record.access_token


async def test_each_sandbox_gets_its_own_uid_slot(orchestrator: Orchestrator) -> None:
    records = [await orchestrator.create(CreateSandbox(template="base")) for _ in range(3)]
    assert sorted(r.uid_base for r in records) == [100000, 165536, 231072]
    await orchestrator.kill(records[1].sandbox_id)
    again = await orchestrator.create(CreateSandbox(template="base"))
    assert again.uid_base == 165536  # the lowest free slot is reused


async def test_capacity_is_enforced(orchestrator: Orchestrator) -> None:
    for _ in range(4):
        await orchestrator.create(CreateSandbox(template="base"))
    with pytest.raises(CapacityExceeded):
        await orchestrator.create(CreateSandbox(template="base"))


async def test_failed_start_leaves_no_row_and_frees_the_slot(
    orchestrator: Orchestrator, runtime: MemoryRuntime, store: MemoryStore
) -> None:
    runtime.fail_next_start = SandboxStartError("no rootfs")
    with pytest.raises(SandboxStartFailed, match="no rootfs"):
        await orchestrator.create(CreateSandbox(template="base"))
    assert store.all() == []
    assert orchestrator.list(SandboxQuery()).items == ()
    record = await orchestrator.create(CreateSandbox(template="base"))
    assert record.uid_base == 100000


async def test_unexpected_runtime_error_is_wrapped_without_details(
    orchestrator: Orchestrator, runtime: MemoryRuntime
) -> None:
    runtime.fail_next_start = ValueError("secret internal detail")
    with pytest.raises(SandboxStartFailed) as info:
        await orchestrator.create(CreateSandbox(template="base"))
    assert "secret" not in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


async def test_unknown_template(orchestrator: Orchestrator) -> None:
    with pytest.raises(TemplateNotFound, match="template 'nope' not found"):
        await orchestrator.create(CreateSandbox(template="nope"))


@pytest.mark.parametrize(
    "command, field",
    [
        (CreateSandbox(template="base", timeout=0), "timeout"),
        (CreateSandbox(template="base", timeout=24 * 3600 + 1), "timeout"),
        (CreateSandbox(template="base", metadata={"k" * 300: "v"}), "metadata"),
        (CreateSandbox(template="base", metadata={str(i): "" for i in range(200)}), "metadata"),
        (CreateSandbox(template="base", env_vars={"A=B": "x"}), "envVars"),
        (CreateSandbox(template="base", env_vars={"A": "x\0y"}), "envVars"),
        (CreateSandbox(template="base", env_vars={"A": "x" * 20000}), "envVars"),
    ],
)
async def test_invalid_create_arguments_name_the_field(
    orchestrator: Orchestrator, command: CreateSandbox, field: str
) -> None:
    with pytest.raises(InvalidArgument, match=field):
        await orchestrator.create(command)


async def test_connect_only_extends(orchestrator: Orchestrator, store: MemoryStore) -> None:
    record = await orchestrator.create(CreateSandbox(template="base", timeout=600))
    same = orchestrator.connect(record.sandbox_id, 10)
    assert same.end_at == record.end_at
    longer = orchestrator.connect(record.sandbox_id, 1200)
    assert longer.end_at >= record.end_at + 590
    assert store.get(record.sandbox_id) == longer
    assert orchestrator.get(record.sandbox_id) == longer


async def test_set_timeout_may_shorten(orchestrator: Orchestrator, store: MemoryStore) -> None:
    record = await orchestrator.create(CreateSandbox(template="base", timeout=600))
    shorter = orchestrator.set_timeout(record.sandbox_id, 30)
    assert shorter.end_at < record.end_at
    assert abs(shorter.end_at - (time.time() + 30)) < 2
    assert store.get(record.sandbox_id) == shorter


async def test_unknown_ids_raise_not_found(orchestrator: Orchestrator) -> None:
    with pytest.raises(SandboxNotFound):
        orchestrator.get("x" * 20)
    with pytest.raises(SandboxNotFound):
        orchestrator.connect("x" * 20)
    with pytest.raises(SandboxNotFound):
        orchestrator.set_timeout("x" * 20, 10)
    with pytest.raises(SandboxNotFound):
        await orchestrator.kill("x" * 20)


async def test_kill_removes_everywhere_and_second_kill_is_not_found(
    orchestrator: Orchestrator, runtime: MemoryRuntime, store: MemoryStore
) -> None:
    removed: list[str] = []
    orchestrator.add_removal_listener(removed.append)
    record = await orchestrator.create(CreateSandbox(template="base"))
    await orchestrator.kill(record.sandbox_id)
    assert removed == [record.sandbox_id]
    assert runtime.stopped == [record.sandbox_id]
    assert store.get(record.sandbox_id) is None
    assert orchestrator.find_route(record.sandbox_id) is None
    with pytest.raises(SandboxNotFound):
        await orchestrator.kill(record.sandbox_id)


async def test_kill_is_visible_before_the_runtime_finishes(
    orchestrator: Orchestrator, runtime: MemoryRuntime
) -> None:
    record = await orchestrator.create(CreateSandbox(template="base"))
    release = asyncio.Event()
    original_stop = runtime.stop

    async def slow_stop(sandbox_id: str) -> None:
        await release.wait()
        await original_stop(sandbox_id)

    runtime.stop = slow_stop  # type: ignore[method-assign]
    kill = asyncio.create_task(orchestrator.kill(record.sandbox_id))
    await asyncio.sleep(0)
    assert orchestrator.find_route(record.sandbox_id) is None  # gone at once
    with pytest.raises(SandboxNotFound):
        orchestrator.get(record.sandbox_id)
    assert not kill.done()
    release.set()
    await kill


async def test_failed_stop_keeps_the_uid_slot_reserved(
    orchestrator: Orchestrator, runtime: MemoryRuntime, store: MemoryStore
) -> None:
    record = await orchestrator.create(CreateSandbox(template="base"))
    runtime.fail_stop = True
    await orchestrator.kill(record.sandbox_id)
    runtime.fail_stop = False
    row = store.get(record.sandbox_id)
    assert row is not None and row.state is SandboxState.STOPPING  # retried at next start
    again = await orchestrator.create(CreateSandbox(template="base"))
    assert again.uid_base != record.uid_base


async def test_deadline_expiry_kills(
    orchestrator: Orchestrator, runtime: MemoryRuntime, store: MemoryStore
) -> None:
    record = await orchestrator.create(CreateSandbox(template="base", timeout=0.05))
    keep = await orchestrator.create(CreateSandbox(template="base", timeout=60))
    assert orchestrator.find_route(record.sandbox_id) is not None
    await _wait_for(lambda: record.sandbox_id in runtime.stopped)
    assert orchestrator.find_route(record.sandbox_id) is None
    assert store.get(record.sandbox_id) is None
    assert orchestrator.find_route(keep.sandbox_id) is not None


async def test_set_timeout_moves_the_deadline(
    orchestrator: Orchestrator, runtime: MemoryRuntime
) -> None:
    extended = await orchestrator.create(CreateSandbox(template="base", timeout=0.05))
    orchestrator.set_timeout(extended.sandbox_id, 60)
    shortened = await orchestrator.create(CreateSandbox(template="base", timeout=60))
    orchestrator.set_timeout(shortened.sandbox_id, 0.05)
    await _wait_for(lambda: shortened.sandbox_id in runtime.stopped)
    assert extended.sandbox_id not in runtime.stopped
    assert orchestrator.find_route(extended.sandbox_id) is not None


async def test_close_stops_everything_and_refuses_new_sandboxes(
    runtime: MemoryRuntime, store: MemoryStore
) -> None:
    orch = Orchestrator(runtime, store, StaticTemplates())
    await orch.start()
    ids = {(await orch.create(CreateSandbox(template="base"))).sandbox_id for _ in range(3)}
    await orch.close()
    assert set(runtime.stopped) == ids
    assert store.all() == []
    assert runtime.closed
    with pytest.raises(ShuttingDown):
        await orch.create(CreateSandbox(template="base"))


async def test_list_applies_the_query(orchestrator: Orchestrator) -> None:
    a = await orchestrator.create(CreateSandbox(template="base", metadata={"team": "a"}))
    b = await orchestrator.create(CreateSandbox(template="base", metadata={"team": "b"}))
    page = orchestrator.list(SandboxQuery(metadata={"team": "b"}))
    assert [r.sandbox_id for r in page.items] == [b.sandbox_id]
    page = orchestrator.list(SandboxQuery(order="asc"))
    assert [r.sandbox_id for r in page.items] == [a.sandbox_id, b.sandbox_id]


def test_settings_default_timeouts() -> None:
    settings = OrchestratorSettings()
    assert settings.default_timeout == 300 and settings.max_timeout == 24 * 3600


async def _wait_for(condition: object, timeout: float = 2.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_a_sandbox_whose_init_dies_is_removed_everywhere(
    orchestrator: Orchestrator, runtime: MemoryRuntime, store: MemoryStore
) -> None:
    record = await orchestrator.create(CreateSandbox(template="base"))
    runtime.die(record.sandbox_id)
    assert orchestrator.find_route(record.sandbox_id) is None
    with pytest.raises(SandboxNotFound):
        orchestrator.get(record.sandbox_id)
    for _ in range(100):  # the teardown runs as a task
        if store.get(record.sandbox_id) is None:
            break
        await asyncio.sleep(0.01)
    assert store.get(record.sandbox_id) is None
    assert record.sandbox_id in runtime.stopped
