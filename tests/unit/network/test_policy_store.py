"""A sandbox's requested egress policy survives a server restart (SQLite column)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from corral.model import Limits, SandboxRecord, SandboxState
from corral.network.policy import parse_create_network, parse_network_update
from corral.store import SqliteStore

RECORD = SandboxRecord(
    sandbox_id="sbxpolicy",
    template_id="base",
    alias=None,
    state=SandboxState.RUNNING,
    access_token="tok",
    uid_base=100000,
    started_at=1.0,
    end_at=2.0,
    limits=Limits(),
    env_vars={},
    metadata={},
    network=parse_create_network(
        {"allow_internet_access": False, "network": {"allowOut": ["10.0.0.0/8", "*.a.test"]}}
    ),
)


def test_policy_is_stored_and_updated(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "corral.db")
    store.insert(RECORD)
    updated = replace(RECORD, network=parse_network_update({"denyOut": ["1.2.3.4"]}))
    store.update(updated)
    store.close()
    reopened = SqliteStore(tmp_path / "corral.db")
    assert reopened.get(RECORD.sandbox_id) == updated
    reopened.close()


def test_a_database_from_before_policies_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "corral.db"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE sandboxes DROP COLUMN network")
    store = SqliteStore(path)
    store.insert(RECORD)
    assert store.get(RECORD.sandbox_id) == RECORD
    store.close()
