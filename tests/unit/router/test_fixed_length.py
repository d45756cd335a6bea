"""`Content-Length` responses, relayed past the parser once their head is read (proxy.py).

The whole body arrives and the agent connection is reused; a body the agent cuts short
aborts the client's response; `Connection: close` from the agent is honoured.
"""

from __future__ import annotations

import httpx
import pytest

from corral.router import DataPlaneRouter

from .conftest import ENVD, SANDBOX
from .stand_in_agent import sized_body

SIZE = 3 * 1024 * 1024 + 7


async def test_a_long_fixed_length_body_arrives_whole_and_the_connection_is_reused(
    client: httpx.AsyncClient, router: DataPlaneRouter
) -> None:
    for _ in range(2):
        response = await client.get(f"/sized?n={SIZE}", headers=ENVD)
        assert response.headers["content-length"] == str(SIZE)
        assert response.content == sized_body(SIZE)
        assert router.pool.idle_count(SANDBOX) == 1
    # Nothing past the body was consumed: the pooled connection answers the next request.
    assert (await client.get("/health", headers=ENVD)).status_code == 204
    assert router.pool.idle_count(SANDBOX) == 1


async def test_a_fixed_length_body_cut_short_aborts_the_client(
    client: httpx.AsyncClient, router: DataPlaneRouter
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(f"/sized?n={SIZE}&cut={1024 * 1024}", headers=ENVD)
    assert router.pool.idle_count(SANDBOX) == 0
    assert (await client.get("/health", headers=ENVD)).status_code == 204


async def test_connection_close_from_the_agent_is_not_pooled(
    client: httpx.AsyncClient, router: DataPlaneRouter
) -> None:
    response = await client.get(f"/sized?n={SIZE}&close=1", headers=ENVD)
    assert response.content == sized_body(SIZE)
    assert router.pool.idle_count(SANDBOX) == 0
    assert router.pool.active_count(SANDBOX) == 0
