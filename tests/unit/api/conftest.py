from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from corral.api import build_control_plane
from corral.orchestrator import Orchestrator

KEY = {"X-API-KEY": "e2b_test"}


@pytest.fixture
def capacity() -> int:
    return 3


@pytest.fixture
async def client(orchestrator: Orchestrator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_control_plane(orchestrator))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://corral", headers=KEY
    ) as http:
        yield http
