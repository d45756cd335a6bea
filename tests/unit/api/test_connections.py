"""`GET /sandboxes/{id}/connections`: exact bodies, filters, bounds, 404, kept after kill."""

from __future__ import annotations

import re

import httpx

from corral.orchestrator import Orchestrator
from corral.store import ConnectionEntry, FlowEnd, Verdict

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
KEYS = {
    "timestamp",
    "timestampUnix",
    "protocol",
    "destination",
    "port",
    "name",
    "verdict",
    "reason",
    "sourcePort",
    "bytesSent",
    "bytesReceived",
    "endedAt",
}


async def _create(client: httpx.AsyncClient) -> str:
    response = await client.post("/v2/sandboxes", json={"templateID": "base"})
    assert response.status_code == 201, response.text
    sandbox_id = response.json()["sandboxID"]
    assert isinstance(sandbox_id, str)
    return sandbox_id


def _entry(sandbox_id: str, at: float, verdict: Verdict, **more: object) -> ConnectionEntry:
    fields: dict[str, object] = {
        "protocol": "tcp",
        "destination": "192.0.2.1",
        "port": 443,
        "reason": "allow",
        "source_port": 40000 + int(at),
    }
    fields.update(more)
    return ConnectionEntry(sandbox_id, 1_700_000_000.0 + at, verdict=verdict, **fields)  # type: ignore[arg-type]


async def test_connections_of_a_sandbox(
    client: httpx.AsyncClient, orchestrator: Orchestrator
) -> None:
    sandbox_id = await _create(client)
    empty = await client.get(f"/sandboxes/{sandbox_id}/connections")
    assert empty.status_code == 200 and empty.json() == []
    log = orchestrator.connection_log
    log.record(_entry(sandbox_id, 1, Verdict.ALLOWED))
    log.record(_entry(sandbox_id, 2, Verdict.DENIED, name="evil.test", reason="sni: no"))
    log.record(_entry(sandbox_id, 3, Verdict.DENIED, protocol="dns", port=53, name="x.test"))
    log.record_end(FlowEnd(sandbox_id, "tcp", "192.0.2.1", 443, 40001, 10, 2000, 1.7e9 + 9))
    body = (await client.get(f"/sandboxes/{sandbox_id}/connections")).json()
    assert [(e["verdict"], e["protocol"], e["name"]) for e in body] == [
        ("allowed", "tcp", None),
        ("denied", "tcp", "evil.test"),
        ("denied", "dns", "x.test"),
    ]
    for entry in body:
        assert set(entry) == KEYS and RFC3339_Z.match(entry["timestamp"])
    first = body[0]
    assert (first["bytesSent"], first["bytesReceived"], first["sourcePort"]) == (10, 2000, 40001)
    assert RFC3339_Z.match(first["endedAt"]) and body[1]["endedAt"] is None
    denied = (await client.get(f"/sandboxes/{sandbox_id}/connections?verdict=denied")).json()
    assert [e["name"] for e in denied] == ["evil.test", "x.test"]
    newest = (await client.get(f"/sandboxes/{sandbox_id}/connections?limit=1")).json()
    assert [e["name"] for e in newest] == ["x.test"]
    assert (await client.delete(f"/sandboxes/{sandbox_id}")).status_code == 204
    after = await client.get(f"/sandboxes/{sandbox_id}/connections")
    assert after.status_code == 200 and after.json() == body  # kept after the kill


async def test_bad_queries_and_unknown_sandbox(client: httpx.AsyncClient) -> None:
    sandbox_id = await _create(client)
    for query, word in (("limit=0", "limit"), ("limit=x", "limit"), ("verdict=maybe", "verdict")):
        response = await client.get(f"/sandboxes/{sandbox_id}/connections?{query}")
        assert response.status_code == 400 and word in response.json()["message"], query
    missing = await client.get("/sandboxes/nosuchsandbox0000000/connections")
    assert missing.status_code == 404 and missing.json()["code"] == 404
