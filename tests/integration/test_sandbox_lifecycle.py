"""Sandbox lifecycle through the official `e2b` SDK: create, info, timeouts, connect, kill."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from e2b import (
    AsyncSandbox,
    NotFoundException,
    Sandbox,
    SandboxNotRunningException,
    SandboxQuery,
)

from corral.model import new_sandbox_id

pytestmark = pytest.mark.usefixtures("corral_server")

SLACK = timedelta(seconds=10)


def _now() -> datetime:
    return datetime.now(UTC)


def _listed(query: SandboxQuery | None = None) -> list[str]:
    """Ids of every listed sandbox, all pages."""
    paginator = Sandbox.list(query=query)
    ids: list[str] = []
    while paginator.has_next:
        ids += [item.sandbox_id for item in paginator.next_items()]
    return ids


def test_create_with_envs_metadata_and_timeout(sandbox_factory: Callable[..., Any]) -> None:
    before = _now()
    sbx = sandbox_factory(
        timeout=77,
        metadata={"suite": "corral-e2e", "spaced": "a b&c=d"},
        envs={"CORRAL_SBX_VAR": "sandbox-wide"},
    )
    assert len(sbx.sandbox_id) == 20 and sbx.sandbox_id.isalnum()
    info = sbx.get_info()
    assert info.sandbox_id == sbx.sandbox_id
    assert info.template_id  # the template's id; `base` may be an alias
    assert info.template_id == "base" or info.name == "base"
    assert info.metadata == {"suite": "corral-e2e", "spaced": "a b&c=d"}
    assert before - SLACK <= info.started_at <= _now() + SLACK
    assert abs((info.end_at - info.started_at) - timedelta(seconds=77)) < SLACK
    assert info.state.value == "running"
    assert sbx.is_running()
    # sandbox-wide envVars reach every command
    assert sbx.commands.run("echo $CORRAL_SBX_VAR").stdout == "sandbox-wide\n"
    assert sbx.commands.run("echo $CORRAL_SBX_VAR", user="root").stdout == "sandbox-wide\n"
    # per-command envs override sandbox-wide ones for that command only
    assert (
        sbx.commands.run("echo $CORRAL_SBX_VAR", envs={"CORRAL_SBX_VAR": "override"}).stdout
        == "override\n"
    )
    assert sbx.commands.run("echo $CORRAL_SBX_VAR").stdout == "sandbox-wide\n"


def test_default_timeout_is_300s(sandbox_factory: Callable[..., Any]) -> None:
    sbx = sandbox_factory(timeout=None)
    info = sbx.get_info()
    assert abs((info.end_at - info.started_at) - timedelta(seconds=300)) < SLACK


def test_list_shows_running_sandbox_with_metadata_filter(sandbox: Any) -> None:
    marker = new_sandbox_id()
    other = Sandbox.create(timeout=60, metadata={"listmark": marker})
    try:
        assert _listed(SandboxQuery(metadata={"listmark": marker})) == [other.sandbox_id]
        assert {sandbox.sandbox_id, other.sandbox_id} <= set(_listed())
    finally:
        other.kill()
    assert _listed(SandboxQuery(metadata={"listmark": marker})) == []
    assert other.sandbox_id not in _listed()


def test_set_timeout_moves_end_at_both_ways(sandbox: Any) -> None:
    sandbox.set_timeout(200)
    later = sandbox.get_info().end_at
    assert abs(later - (_now() + timedelta(seconds=200))) < SLACK
    sandbox.set_timeout(40)
    sooner = sandbox.get_info().end_at
    assert abs(sooner - (_now() + timedelta(seconds=40))) < SLACK
    assert sooner < later


def test_connect_by_id_extends_but_never_shortens(sandbox_factory: Callable[..., Any]) -> None:
    sbx = sandbox_factory(timeout=30)
    first_end = sbx.get_info().end_at
    again = Sandbox.connect(sbx.sandbox_id, timeout=250)
    assert again.sandbox_id == sbx.sandbox_id
    extended = again.get_info().end_at
    assert extended > first_end + timedelta(seconds=150)
    Sandbox.connect(sbx.sandbox_id, timeout=10)  # shorter: must not shorten
    assert sbx.get_info().end_at >= extended - timedelta(seconds=1)
    # the connected object drives the same sandbox
    again.commands.run("echo shared > /tmp/connect-check")
    assert sbx.commands.run("cat /tmp/connect-check").stdout == "shared\n"


def test_every_call_on_a_killed_sandbox_raises(sandbox_factory: Callable[..., Any]) -> None:
    sbx = sandbox_factory(timeout=60)
    assert sbx.commands.run("true").exit_code == 0
    assert sbx.kill() is True
    assert sbx.is_running() is False
    with pytest.raises(SandboxNotRunningException):
        sbx.commands.run("echo nope")
    with pytest.raises(SandboxNotRunningException):
        sbx.commands.list()
    with pytest.raises(SandboxNotRunningException):
        sbx.files.read("/etc/hostname")
    with pytest.raises(NotFoundException):
        sbx.get_info()
    with pytest.raises(NotFoundException):
        sbx.set_timeout(30)
    with pytest.raises(NotFoundException):
        Sandbox.connect(sbx.sandbox_id)
    assert sbx.kill() is False
    assert Sandbox.kill(sbx.sandbox_id) is False


def test_unknown_sandbox_id() -> None:
    unknown = new_sandbox_id()
    assert Sandbox.kill(unknown) is False
    with pytest.raises(NotFoundException):
        Sandbox.get_info(unknown)
    with pytest.raises(NotFoundException):
        Sandbox.connect(unknown)
    with pytest.raises(NotFoundException):
        Sandbox.set_timeout(unknown, 30)


def test_deadline_kills_the_sandbox(sandbox_factory: Callable[..., Any]) -> None:
    sbx = sandbox_factory(timeout=2)
    handle = sbx.commands.run("sleep 60", background=True, timeout=0)
    assert sbx.is_running()
    deadline = time.monotonic() + 10
    while sbx.is_running() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sbx.is_running() is False, "sandbox still running 10 s after a 2 s timeout"
    with pytest.raises(NotFoundException):
        sbx.get_info()
    with pytest.raises(SandboxNotRunningException):
        sbx.commands.run("true")
    # the stream of the command that was running when the sandbox died ends with an error
    # that the SDK turns into "killed or reached its end of life" (protocol doc §4.8)
    with pytest.raises(SandboxNotRunningException):
        handle.wait()
    assert sbx.sandbox_id not in _listed()


def test_two_sandboxes_used_concurrently(sandbox_factory: Callable[..., Any]) -> None:
    sandboxes = [sandbox_factory(timeout=120) for _ in range(2)]
    errors: list[BaseException] = []

    def work(index: int, sbx: Any) -> None:
        try:
            # relative: the default workdir, private to each sandbox in every runtime
            sbx.commands.run(f"echo {index} > whoami-index")
            for round_ in range(15):
                out = sbx.commands.run(f"cat whoami-index; echo {round_}").stdout
                assert out == f"{index}\n{round_}\n"
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate(sandboxes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []


async def test_async_sandbox_create_run_kill(corral_server: Any) -> None:
    sbx = await AsyncSandbox.create(timeout=60, envs={"ASYNC_VAR": "yes"})
    try:
        result = await sbx.commands.run("echo $ASYNC_VAR; echo err >&2")
        assert result.stdout == "yes\n"
        assert result.stderr == "err\n"
        assert result.exit_code == 0
        lines: list[str] = []
        handle = await sbx.commands.run(
            "for i in 1 2 3; do echo tick$i; done", background=True, on_stdout=lines.append
        )
        done = await handle.wait()
        assert done.exit_code == 0
        assert "".join(lines) == "tick1\ntick2\ntick3\n"
        assert await sbx.is_running()
    finally:
        assert await sbx.kill() is True
    assert await sbx.is_running() is False
    with pytest.raises(NotFoundException):
        await AsyncSandbox.get_info(sbx.sandbox_id)
