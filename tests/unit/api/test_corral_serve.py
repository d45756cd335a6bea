"""`corral serve --runtime fake` as a subprocess, driven by the official `e2b` SDK.

Proves the wiring end to end: CLI -> uvicorn -> control plane -> orchestrator -> fake
runtime -> real agent, and SDK data-plane traffic through the router. Also checks that
SIGTERM stops every sandbox and leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

import _harness as harness  # bench/_harness.py (put on sys.path by tests/conftest.py)


@pytest.fixture(scope="module")
def server() -> Iterator[harness.CorralServer]:
    corral = harness.CorralServer(runtime="fake")
    corral.templates_dir = corral.workdir / "templates"  # nothing built: fake serves `base`
    corral.start()
    try:
        yield corral
    finally:
        corral.stop()
        corral.remove_workdir()


@pytest.fixture
def sdk_env(server: harness.CorralServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in harness.sdk_env(server).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("E2B_DEBUG", raising=False)
    monkeypatch.delenv("E2B_DOMAIN", raising=False)


@pytest.mark.usefixtures("sdk_env")
def test_sdk_create_run_kill(server: harness.CorralServer) -> None:
    from e2b import Sandbox, SandboxException

    sbx = Sandbox.create(timeout=60, envs={"CORRAL_E2E": "yes"}, metadata={"suite": "serve"})
    try:
        result = sbx.commands.run("echo hello; echo $CORRAL_E2E")
        assert result.exit_code == 0
        assert result.stdout == "hello\nyes\n"
        assert sbx.is_running()
        info = sbx.get_info()
        assert info.sandbox_id == sbx.sandbox_id and info.metadata == {"suite": "serve"}
        listed = Sandbox.list().next_items()
        assert sbx.sandbox_id in [item.sandbox_id for item in listed]
    finally:
        assert sbx.kill() is True
    assert sbx.kill() is False
    assert not sbx.is_running()
    with pytest.raises(SandboxException, match="was not found"):
        sbx.commands.run("echo gone")
    leaks = harness.wait_no_leaks(
        [sbx.sandbox_id], [server.state_dir, server.run_dir], timeout=5, server_running=True
    )
    assert leaks == []


def test_sigterm_stops_every_sandbox() -> None:
    corral = harness.CorralServer(runtime="fake")  # its workdir is short: socket path limit
    corral.templates_dir = corral.workdir / "templates"
    corral.start()
    try:
        headers = {"X-API-KEY": "k"}
        ids = []
        for _ in range(2):
            response = httpx.post(
                f"{corral.url}/v2/sandboxes", json={"templateID": "base"}, headers=headers
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["sandboxID"])
        assert harness.find_leaks(ids, [corral.run_dir], server_running=True) != []
    finally:
        assert corral.stop() in (0, -15)  # uvicorn re-raises SIGTERM after a clean shutdown
    assert harness.find_leaks(ids, [corral.state_dir, corral.run_dir]) == []
    log = corral.log_path.read_text()
    assert "E2B_API_URL=" in log and "stopped 2 sandbox(es) at shutdown" in log
    assert os.path.exists(corral.state_dir / "corral.db")
    corral.remove_workdir()
