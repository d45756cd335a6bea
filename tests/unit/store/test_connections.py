"""Connection-log entries in both stores: append, bound, match ended flows, filter, prune."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import corral.store.memory
import corral.store.sqlite
from corral.store import ConnectionEntry, FlowEnd, MemoryStore, SqliteStore, Store, Verdict

SANDBOX = "s" * 20
ENTRY = ConnectionEntry(
    sandbox_id=SANDBOX,
    timestamp=1700000000.5,
    protocol="tcp",
    destination="192.0.2.7",
    port=443,
    verdict=Verdict.ALLOWED,
    reason="allow-cidr",
    source_port=40000,
)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store = MemoryStore()
    if request.param == "sqlite":
        made = SqliteStore(tmp_path / "corral.db")
    yield made
    made.close()


def _end(source_port: int = 40000, at: float = 1700000009.0) -> FlowEnd:
    return FlowEnd(SANDBOX, "tcp", "192.0.2.7", 443, source_port, 100, 2000, at)


def test_round_trip_and_filter(store: Store) -> None:
    denied = replace(
        ENTRY, timestamp=ENTRY.timestamp + 1, verdict=Verdict.DENIED, reason="x", name="a.test"
    )
    store.add_connections([ENTRY, denied])
    assert store.connections(SANDBOX, 10) == [ENTRY, denied]
    assert store.connections(SANDBOX, 10, Verdict.DENIED) == [denied]
    assert store.connections(SANDBOX, 1) == [denied]  # the newest, oldest first
    assert store.connections("o" * 20, 10) == []


def test_ended_flow_gives_bytes_to_the_newest_entry_of_the_flow(store: Store) -> None:
    older = replace(ENTRY, timestamp=ENTRY.timestamp - 5)
    other_port = replace(ENTRY, source_port=40001)
    store.add_connections([older, ENTRY, other_port])
    store.end_connections([_end()])
    kept = store.connections(SANDBOX, 10)
    assert kept[0] == older
    assert kept[1] == replace(ENTRY, bytes_sent=100, bytes_received=2000, ended_at=1700000009.0)
    assert kept[2] == other_port
    store.end_connections([_end(at=1700000099.0)])  # counted already (by the proxy): ignored
    assert store.connections(SANDBOX, 10) == kept


def test_ended_flow_without_an_entry_is_added(store: Store) -> None:
    store.end_connections([_end(source_port=1234)])
    (only,) = store.connections(SANDBOX, 10)
    assert only.verdict is Verdict.ALLOWED
    assert (only.source_port, only.bytes_sent, only.reason) == (1234, 100, "ended")


def test_bounded_per_sandbox(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (corral.store.sqlite, corral.store.memory):
        monkeypatch.setattr(module, "CONNECTIONS_PER_SANDBOX", 3)
    other = replace(ENTRY, sandbox_id="o" * 20)
    store.add_connections([replace(ENTRY, timestamp=float(i)) for i in range(5)] + [other])
    assert [e.timestamp for e in store.connections(SANDBOX, 10)] == [2.0, 3.0, 4.0]
    assert store.connections(other.sandbox_id, 10) == [other]


def test_prune_by_age(store: Store) -> None:
    store.add_connections([replace(ENTRY, timestamp=float(i)) for i in range(4)])
    assert store.prune_connections(2.0) == 2
    assert [e.timestamp for e in store.connections(SANDBOX, 10)] == [2.0, 3.0]
