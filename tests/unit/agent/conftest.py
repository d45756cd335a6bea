"""Fixtures: standalone agents (one per module by default) that must leave nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import AgentClient, AgentProcess


def _stop(agent: AgentProcess) -> None:
    survivors = agent.stop()
    stderr = agent.stderr()
    assert not survivors, f"processes outlived the agent: {survivors}"
    assert "Traceback" not in stderr, stderr


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """An agent running as root, default user root, token `test-token`."""
    workdir = tmp_path_factory.mktemp("agent")
    process = AgentProcess(workdir, env_vars={"SANDBOX_VAR": "from-sandbox", "SHARED": "sandbox"})
    try:
        yield process
    finally:
        _stop(process)


@pytest.fixture
def client(agent: AgentProcess) -> AgentClient:
    return agent.client


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[object]:
    """`make(**kwargs)` starts an extra agent for one test; all are stopped afterwards."""
    made: list[AgentProcess] = []

    def make(**kwargs: object) -> AgentProcess:
        workdir = tmp_path / f"agent{len(made)}"
        workdir.mkdir()
        process = AgentProcess(workdir, **kwargs)  # type: ignore[arg-type]
        made.append(process)
        return process

    try:
        yield make
    finally:
        for process in made:
            _stop(process)
