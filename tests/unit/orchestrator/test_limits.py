"""Resolution of a sandbox's limits: request over template over server, within ceilings."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from corral.api import build_control_plane
from corral.model import (
    LimitOverrides,
    Limits,
    SandboxRecord,
    SandboxState,
    TemplateRef,
    parse_limit_overrides,
)
from corral.orchestrator import CreateSandbox, InvalidArgument, Orchestrator, OrchestratorSettings
from corral.orchestrator.limits import (
    DEFAULT_CEILINGS,
    LIMIT_FLOORS,
    LimitPolicy,
    resolve_limits,
)
from corral.store import MemoryStore, SqliteStore
from corral.templates import parse_recipe
from corral.templates.manifest import TemplateManifest

from .fakes import MemoryRuntime, StaticTemplates

POLICY = LimitPolicy(
    defaults=Limits(cpu_count=2, memory_mb=1024, pids_max=1024, disk_mb=4096, open_files=1024),
    ceilings=Limits(cpu_count=4, memory_mb=4096, pids_max=2048, disk_mb=8192, open_files=4096),
)
NONE = LimitOverrides()


def test_server_defaults_apply_when_nothing_is_asked() -> None:
    assert resolve_limits(NONE, NONE, POLICY) == POLICY.defaults


def test_request_beats_template_beats_server() -> None:
    template = LimitOverrides(cpu_count=1, memory_mb=512, disk_mb=2048)
    request = LimitOverrides(memory_mb=768, open_files=2048)
    assert resolve_limits(request, template, POLICY) == Limits(
        cpu_count=1, memory_mb=768, pids_max=1024, disk_mb=2048, open_files=2048
    )


def test_request_may_ask_for_exactly_the_ceiling() -> None:
    request = LimitOverrides(**{name: getattr(POLICY.ceilings, name) for name in _names()})
    assert resolve_limits(request, NONE, POLICY) == POLICY.ceilings


@pytest.mark.parametrize(
    ("name", "key", "ceiling"),
    [
        ("cpu_count", "cpuCount", 4),
        ("memory_mb", "memoryMB", 4096),
        ("disk_mb", "diskSizeMB", 8192),
        ("pids_max", "pidsMax", 2048),
        ("open_files", "openFiles", 4096),
    ],
)
def test_request_above_the_ceiling_names_field_and_ceiling(
    name: str, key: str, ceiling: int
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve_limits(LimitOverrides(**{name: ceiling + 1}), NONE, POLICY)
    message = str(caught.value)
    assert f"'{key}'" in message and f"at most {ceiling}" in message


def test_request_below_the_floor_is_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"'openFiles' is 10; it must be at least 256"):
        resolve_limits(LimitOverrides(open_files=10), NONE, POLICY)


def test_template_values_are_clamped_not_refused() -> None:
    template = LimitOverrides(memory_mb=1 << 20, pids_max=1)
    limits = resolve_limits(NONE, template, POLICY)
    assert limits.memory_mb == POLICY.ceilings.memory_mb
    assert limits.pids_max == LIMIT_FLOORS.pids_max


def test_policy_refuses_defaults_outside_the_ceilings() -> None:
    with pytest.raises(ValueError, match="default memory_mb"):
        LimitPolicy(defaults=Limits(memory_mb=8192), ceilings=replace(Limits(), memory_mb=4096))


def test_policy_from_overrides_lowers_builtin_defaults_to_lowered_ceilings() -> None:
    policy = LimitPolicy.from_overrides(NONE, LimitOverrides(memory_mb=512, cpu_count=1))
    assert policy.defaults.memory_mb == 512 and policy.defaults.cpu_count == 1
    assert policy.ceilings == replace(DEFAULT_CEILINGS, memory_mb=512, cpu_count=1)
    explicit = LimitPolicy.from_overrides(LimitOverrides(disk_mb=100), NONE)
    assert explicit.defaults == replace(Limits(), disk_mb=100)
    with pytest.raises(ValueError):
        LimitPolicy.from_overrides(LimitOverrides(memory_mb=4096), LimitOverrides(memory_mb=512))


def test_limit_text_round_trips_and_rejects_nonsense() -> None:
    parsed = parse_limit_overrides("cpu=1 memory=512,disk=2048 pids=512 nofile=1024")
    assert parsed == LimitOverrides(
        cpu_count=1, memory_mb=512, disk_mb=2048, pids_max=512, open_files=1024
    )
    assert parse_limit_overrides(parsed.to_text()) == parsed
    assert parse_limit_overrides("") == NONE
    for bad in ("cpu", "cpu=0", "cpu=-1", "cpu=1.5", "gpu=1", "cpu=1 cpu=2"):
        with pytest.raises(ValueError):
            parse_limit_overrides(bad)


def test_recipe_limits_line_reaches_the_manifest_and_template_ref() -> None:
    recipe = parse_recipe("FROM base\nLIMITS cpu=1 memory=512\nLIMITS memory=256 disk=2048\n")
    assert recipe.limits == LimitOverrides(cpu_count=1, memory_mb=256, disk_mb=2048)
    manifest = TemplateManifest(name="small", layers=("a" * 24,), limits=recipe.limits)
    again = TemplateManifest.from_json(manifest.to_json())
    assert again.limits == recipe.limits
    assert "limits" not in TemplateManifest(name="x", layers=("a" * 24,)).to_json()


@pytest.mark.parametrize("line", ["LIMITS", "LIMITS cpu=0", "LIMITS swap=1"])
def test_recipe_limits_line_errors_name_the_line(line: str) -> None:
    from corral.templates import RecipeError

    with pytest.raises(RecipeError, match=r"<recipe>:2: LIMITS"):
        parse_recipe(f"FROM base\n{line}\n")


async def test_orchestrator_records_and_passes_resolved_limits() -> None:
    runtime, store = MemoryRuntime(), MemoryStore()
    templates = StaticTemplates()
    templates.refs["small"] = TemplateRef(
        template_id="small", layers=("/l/1",), alias="small", limits=LimitOverrides(cpu_count=1)
    )
    orchestrator = Orchestrator(runtime, store, templates, OrchestratorSettings(limits=POLICY))
    await orchestrator.start()
    try:
        record = await orchestrator.create(
            CreateSandbox(template="small", limits=LimitOverrides(disk_mb=1024))
        )
        expected = replace(POLICY.defaults, cpu_count=1, disk_mb=1024)
        assert record.limits == expected
        assert runtime.specs[record.sandbox_id].limits == expected
        assert store.get(record.sandbox_id) == record
        with pytest.raises(InvalidArgument, match="'memoryMB'"):
            await orchestrator.create(
                CreateSandbox(template="base", limits=LimitOverrides(memory_mb=4097))
            )
        assert len(store.all()) == 1  # the refused create left nothing behind
    finally:
        await orchestrator.close()


async def test_create_body_extension_keys(orchestrator: Orchestrator) -> None:
    transport = httpx.ASGITransport(app=build_control_plane(orchestrator))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://corral", headers={"X-API-KEY": "k"}
    ) as http:
        body = {"templateID": "base", "cpuCount": 1, "memoryMB": 512, "diskSizeMB": 1024}
        created = await http.post("/sandboxes", json=body)
        assert created.status_code == 201, created.text
        detail = (await http.get(f"/sandboxes/{created.json()['sandboxID']}")).json()
        assert (detail["cpuCount"], detail["memoryMB"], detail["diskSizeMB"]) == (1, 512, 1024)
        ceiling = orchestrator.settings.limits.ceilings.memory_mb
        too_big = await http.post("/sandboxes", json={"templateID": "base", "memoryMB": 10**6})
        assert too_big.status_code == 400
        assert too_big.json()["message"] == (
            f"'memoryMB' is 1000000; this server allows at most {ceiling}"
        )
        not_int = await http.post("/sandboxes", json={"templateID": "base", "pidsMax": "9"})
        assert not_int.status_code == 400 and "'pidsMax'" in not_int.json()["message"]


def _names() -> list[str]:
    return ["cpu_count", "memory_mb", "pids_max", "disk_mb", "open_files"]


async def test_timeout_is_capped_by_the_server_ceiling() -> None:
    settings = OrchestratorSettings(max_timeout=600)
    orchestrator = Orchestrator(MemoryRuntime(), MemoryStore(), StaticTemplates(), settings)
    await orchestrator.start()
    try:
        with pytest.raises(InvalidArgument, match=r"'timeout' must be between 1 and 600"):
            await orchestrator.create(CreateSandbox(template="base", timeout=601))
        record = await orchestrator.create(CreateSandbox(template="base", timeout=600))
        with pytest.raises(InvalidArgument, match="'timeout'"):
            orchestrator.set_timeout(record.sandbox_id, 601)
    finally:
        await orchestrator.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limits", "gpu=1"], "unknown limit 'gpu'"),
        (["--max-limits", "memory=0"], "must be a positive integer"),
        (["--limits", "memory=9000"], "default memory_mb (9000) is outside"),
        (["--limits", "nofile=100"], "default open_files (100) is outside"),
        (["--default-timeout", "700", "--max-timeout", "600"], "above --max-timeout 600"),
    ],
)
def test_corral_serve_refuses_bad_limit_options(args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from corral.cli import main

    result = CliRunner().invoke(main, ["serve", "--runtime", "fake", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_sqlite_store_keeps_every_limit_and_reads_rows_of_older_servers(tmp_path: Path) -> None:
    limits = Limits(cpu_count=1, memory_mb=300, pids_max=400, disk_mb=500, open_files=600)
    record = SandboxRecord(
        sandbox_id="a" * 20,
        template_id="base",
        alias="base",
        state=SandboxState.RUNNING,
        access_token="t",
        uid_base=100000,
        started_at=1.0,
        end_at=2.0,
        limits=limits,
        env_vars={},
        metadata={},
    )
    store = SqliteStore(tmp_path / "corral.db")
    store.insert(record)
    assert store.get(record.sandbox_id) == record
    old_limits = '{"cpu_count": 1, "memory_mb": 300, "pids_max": 400, "disk_mb": 500}'
    with sqlite3.connect(tmp_path / "corral.db") as db:
        db.execute("UPDATE sandboxes SET limits=?", (old_limits,))
    again = store.get(record.sandbox_id)
    assert again is not None and again.limits == replace(limits, open_files=Limits().open_files)
    store.close()
