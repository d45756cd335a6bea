"""`ConnectionLog` without the kernel: prefixes, batching order, queries flush first."""

from __future__ import annotations

import asyncio
import time

from corral.network.connection_log import ConnectionLog, log_prefix, parse_log_prefix
from corral.network.nfnetlink import EndedFlow, LoggedPacket
from corral.store import ConnectionEntry, FlowEnd, MemoryStore, Verdict

ENTRY = ConnectionEntry(
    "s" * 20, time.time(), "tcp", "192.0.2.1", 80, Verdict.ALLOWED, "allow", None, 5
)


def test_prefix_round_trip_and_foreign_prefixes() -> None:
    assert parse_log_prefix(log_prefix(Verdict.DENIED, "operator")) == (Verdict.DENIED, "operator")
    assert parse_log_prefix("corral:allowed:pinned ") == (Verdict.ALLOWED, "pinned")
    assert parse_log_prefix("corral:maybe:x") is None
    assert parse_log_prefix("other: x") is None


async def test_entries_are_batched_and_written_in_order() -> None:
    store = MemoryStore()
    log = ConnectionLog(store, flush_delay=60)
    log.record(ENTRY)
    log.record_end(FlowEnd(ENTRY.sandbox_id, "tcp", "192.0.2.1", 80, 5, 1, 2, ENTRY.timestamp))
    log.record(ENTRY)  # the same flow again (source port reused) stays open
    assert store.connections(ENTRY.sandbox_id, 10) == []  # not yet written
    first, second = log.entries(ENTRY.sandbox_id, 10)  # a query writes what is pending
    assert (first.bytes_sent, first.bytes_received, first.ended_at) == (1, 2, ENTRY.timestamp)
    assert second.ended_at is None


async def test_flush_happens_by_itself() -> None:
    store = MemoryStore()
    log = ConnectionLog(store, flush_delay=0.01)
    log.record(ENTRY)
    await asyncio.sleep(0.05)
    assert store.connections(ENTRY.sandbox_id, 10) == [ENTRY]


def test_without_a_loop_entries_are_written_at_once() -> None:
    store = MemoryStore()
    ConnectionLog(store).record(ENTRY)
    assert store.connections(ENTRY.sandbox_id, 10) == [ENTRY]


def test_flow_end_goes_to_the_sandbox_that_started_the_flow() -> None:
    store = MemoryStore()
    log = ConnectionLog(store)
    now = time.time()
    start = LoggedPacket("corral:allowed:allow", "10.88.0.2", "192.0.2.1", "tcp", 4000, 443)
    log._on_packet(start, "first", now)
    # the address now belongs to another sandbox; the flow still ends for the first one
    log._on_flow_end(EndedFlow("10.88.0.2", "192.0.2.1", "tcp", 4000, 443, 10, 20), now + 1)
    (entry,) = store.connections("first", 10)
    assert (entry.bytes_sent, entry.bytes_received, entry.reason) == (10, 20, "allow")
    # flows this log did not see start (the resolver's, the proxy's) are not recorded
    log._on_flow_end(EndedFlow("10.88.0.2", "10.88.0.1", "udp", 5000, 53, 1, 1), now + 2)
    log._on_flow_end(EndedFlow("10.88.0.2", "192.0.2.1", "tcp", 4000, 443, 10, 20), now + 3)
    assert store.connections("first", 10) == [entry]
    assert store.connections("second", 10) == []


def test_retries_of_a_refused_connection_are_one_entry() -> None:
    store = MemoryStore()
    log = ConnectionLog(store)
    now = time.time()
    syn = LoggedPacket("corral:denied:default", "10.88.0.2", "192.0.2.9", "tcp", 4001, 22)
    for delay in (0.0, 1.0, 3.0):
        log._on_packet(syn, "sbx", now + delay)
    log._on_packet(
        LoggedPacket("corral:denied:default", "10.88.0.2", "192.0.2.9", "tcp", 4002, 22),
        "sbx",
        now + 4,
    )
    log._on_packet(syn, "sbx", now + 60)  # a new attempt much later, same source port
    assert [e.source_port for e in store.connections("sbx", 10)] == [4001, 4002, 4001]
    log._on_packet(LoggedPacket("other:x", "10.88.0.2", "192.0.2.9", "tcp", 1, 2), "sbx", now)
    log._on_packet(syn, None, now + 200)  # not a sandbox's address
    assert len(store.connections("sbx", 10)) == 3
