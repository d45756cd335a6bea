from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from corral.orchestrator import Orchestrator, OrchestratorSettings
from corral.store import MemoryStore

from .fakes import MemoryRuntime, StaticTemplates


@pytest.fixture
def runtime() -> MemoryRuntime:
    return MemoryRuntime()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def orchestrator(runtime: MemoryRuntime, store: MemoryStore) -> AsyncIterator[Orchestrator]:
    orch = Orchestrator(
        runtime, store, StaticTemplates(), OrchestratorSettings(max_sandboxes=4, min_timeout=0.01)
    )
    await orch.start()
    yield orch
    await orch.close()
