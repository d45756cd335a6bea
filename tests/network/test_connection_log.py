"""The per-connection log end to end: firewall verdicts, DNS queries, proxy decisions, bytes,
through the API (`GET /sandboxes/{id}/connections`) and the CLI (`corral sandbox connections`).

Same fake internet with names as `test_dns_and_sni.py`. Bytes of a connection that went
straight through the firewall arrive when conntrack forgets it (the gateway keeps closed TCP
connections 10 s in TIME_WAIT), so the test polls for them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from name_probes import API_KEY, connections, run_probe
from tls_internet import OTHER, WEB, WEB_2, TlsInternet

pytestmark = pytest.mark.timeout(300)


def _wait_for_entries(
    server: Any, sandbox_id: str, check: Callable[[list[dict[str, Any]]], bool], within: float
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while True:
        found = connections(server, sandbox_id)
        if check(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_log_has_verdicts_names_and_bytes(
    named_sandbox: Callable[..., Any], named_internet: tuple[Any, TlsInternet]
) -> None:
    server, _ = named_internet
    sbx = named_sandbox([WEB, "api.wild.test"])  # WEB by address, WEB_2 by name only
    size = 300_000
    found = run_probe(
        sbx,
        ["bulk", WEB, 9000, size],  # allowed CIDR: straight through the firewall
        ["bulk", OTHER, 9000, 10],  # nothing allows OTHER: dropped by the firewall
        ["resolve", "api.wild.test"],
        ["resolve", "secret.evil.test"],
        ["https", WEB_2, "wild.test"],  # pinned for api.wild.test only: the proxy refuses
    )
    assert found[0] == size and str(found[1]).startswith("error"), found
    assert found[2] == [WEB_2] and str(found[4]).startswith("error"), found

    def complete(entries: list[dict[str, Any]]) -> bool:
        return any(
            e["port"] == 9000 and e["destination"] == WEB and e["bytesReceived"] for e in entries
        )

    entries = _wait_for_entries(server, sbx.sandbox_id, complete, within=150)
    by = {(e["protocol"], e["destination"], e["port"], e["verdict"]): e for e in entries}
    allowed = by[("tcp", WEB, 9000, "allowed")]
    assert allowed["reason"] == "allow" and allowed["sourcePort"], entries
    assert allowed["bytesReceived"] > size > allowed["bytesSent"] > 0, allowed
    assert allowed["endedAt"] is not None
    denied = by[("tcp", OTHER, 9000, "denied")]
    assert denied["reason"] == "default" and denied["bytesSent"] is None, denied
    dns = {(e["name"], e["verdict"]) for e in entries if e["protocol"] == "dns"}
    assert {("api.wild.test", "allowed"), ("secret.evil.test", "denied")} <= dns, dns
    (refused,) = [e for e in entries if e["name"] == "wild.test"]
    assert (refused["verdict"], refused["destination"], refused["port"]) == ("denied", WEB_2, 443)
    assert refused["reason"] == "sni: name not allowed" and refused["bytesSent"], refused
    for entry in entries:
        assert entry["timestamp"].endswith("Z")


def test_cli_prints_the_log(
    named_sandbox: Callable[..., Any], named_internet: tuple[Any, TlsInternet]
) -> None:
    server, _ = named_internet
    sbx = named_sandbox(["web.test"])
    run_probe(sbx, ["resolve", "web.test"], ["resolve", "secret.evil.test"])
    command = [str(Path(sys.executable).parent / "corral"), "sandbox", "connections"]
    command += ["--url", server.url, "--api-key", API_KEY]
    printed = subprocess.run(
        [*command, "--verdict", "denied", sbx.sandbox_id],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "secret.evil.test" in printed and "web.test" not in printed, printed
    assert "denied" in printed and "dns" in printed
    as_json = subprocess.run(
        [*command, "--json", sbx.sandbox_id], capture_output=True, text=True, check=True
    ).stdout
    assert {e["name"] for e in json.loads(as_json)} >= {"web.test", "secret.evil.test"}
    missing = subprocess.run(
        [*command, "nosuchsandbox0000000"], capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1 and "404" in missing.stderr, missing.stderr
