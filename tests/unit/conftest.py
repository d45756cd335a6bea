"""Fixtures shared by the orchestrator and API unit tests: an orchestrator over in-memory fakes.

A test folder sets how many sandboxes it may hold by overriding the `capacity` fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from orchestrator.fakes import MemoryRuntime, StaticTemplates

from corral.orchestrator import Orchestrator, OrchestratorSettings
from corral.store import MemoryStore


@pytest.fixture
def capacity() -> int:
    return 4


@pytest.fixture
def runtime() -> MemoryRuntime:
    return MemoryRuntime()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def orchestrator(
    runtime: MemoryRuntime, store: MemoryStore, capacity: int
) -> AsyncIterator[Orchestrator]:
    settings = OrchestratorSettings(max_sandboxes=capacity, min_timeout=0.01)
    orch = Orchestrator(runtime, store, StaticTemplates(), settings)
    await orch.start()
    yield orch
    await orch.close()
