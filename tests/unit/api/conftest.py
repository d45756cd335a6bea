from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from orchestrator.fakes import MemoryRuntime, StaticTemplates

from corral.api import build_control_plane
from corral.orchestrator import Orchestrator, OrchestratorSettings
from corral.store import MemoryStore

KEY = {"X-API-KEY": "e2b_test"}


@pytest.fixture
def runtime() -> MemoryRuntime:
    return MemoryRuntime()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def orchestrator(runtime: MemoryRuntime, store: MemoryStore) -> AsyncIterator[Orchestrator]:
    orch = Orchestrator(
        runtime, store, StaticTemplates(), OrchestratorSettings(max_sandboxes=3, min_timeout=0.01)
    )
    await orch.start()
    yield orch
    await orch.close()


@pytest.fixture
async def client(orchestrator: Orchestrator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_control_plane(orchestrator))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://corral", headers=KEY
    ) as http:
        yield http
