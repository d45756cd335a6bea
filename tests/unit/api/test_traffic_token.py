"""`network.allowPublicTraffic`: the traffic access token in create, connect and the store."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from corral.model import Limits, SandboxRecord, SandboxState
from corral.store import SqliteStore


@pytest.mark.parametrize(
    "network", [None, {}, {"allowPublicTraffic": True}, {"allowPublicTraffic": None}]
)
async def test_public_sandbox_has_no_token(
    client: httpx.AsyncClient, network: dict[str, object] | None
) -> None:
    body: dict[str, object] = {"templateID": "base"}
    if network is not None:
        body["network"] = network
    created = await client.post("/v2/sandboxes", json=body)
    assert created.status_code == 201
    assert created.json()["trafficAccessToken"] is None


async def test_private_sandbox_gets_a_random_token(client: httpx.AsyncClient) -> None:
    body = {"templateID": "base", "network": {"allowPublicTraffic": False}}
    first = (await client.post("/v2/sandboxes", json=body)).json()
    second = (await client.post("/v2/sandboxes", json=body)).json()
    token = first["trafficAccessToken"]
    assert isinstance(token, str) and len(token) >= 32
    assert token != second["trafficAccessToken"]
    assert token != first["envdAccessToken"]
    connected = await client.post(f"/sandboxes/{first['sandboxID']}/connect", json={})
    assert connected.json()["trafficAccessToken"] == token


@pytest.mark.parametrize("value", ["false", 0, [], {}])
async def test_allow_public_traffic_must_be_a_boolean(
    client: httpx.AsyncClient, value: object
) -> None:
    body = {"templateID": "base", "network": {"allowPublicTraffic": value}}
    response = await client.post("/v2/sandboxes", json=body)
    assert response.status_code == 400
    assert "'network.allowPublicTraffic' must be a boolean" in response.json()["message"]


RECORD = SandboxRecord(
    sandbox_id="t" * 20,
    template_id="base",
    alias=None,
    state=SandboxState.RUNNING,
    access_token="envd",
    uid_base=165536,
    started_at=1.0,
    end_at=2.0,
    limits=Limits(),
    env_vars={},
    metadata={},
    traffic_access_token="traffic",
)


def test_sqlite_persists_the_token(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "corral.db")
    store.insert(RECORD)
    store.update(replace(RECORD, agent_pid=7))
    store.close()
    reopened = SqliteStore(tmp_path / "corral.db")
    assert reopened.get(RECORD.sandbox_id) == replace(RECORD, agent_pid=7)
    reopened.close()


def test_older_database_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE sandboxes DROP COLUMN traffic_access_token")
    db.commit()
    db.close()
    store = SqliteStore(path)
    store.insert(RECORD)
    assert store.get(RECORD.sandbox_id) == RECORD
    store.close()
