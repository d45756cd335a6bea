"""The uplink helpers that need no namespace: default DNS upstream and the NAT table text."""

from __future__ import annotations

import logging
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from corral.network.uplink import (
    UPLINK_TABLE,
    default_dns_upstream,
    nameservers,
    resolv_conf_of,
    uplink_nat_ruleset,
)

RESOLV = """# generated
search example.org
nameserver 127.0.0.53
nameserver 10.0.0.2
nameserver fd00::1
nameserver 10.0.0.3 # second
options edns0
nameserver
"""


def test_nameservers_split_usable_and_loopback() -> None:
    usable, loopback = nameservers(RESOLV)
    assert usable == [IPv4Address("10.0.0.2"), IPv4Address("10.0.0.3")]
    assert loopback == [IPv4Address("127.0.0.53")]


def test_default_upstream_skips_loopback_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\n")
    with caplog.at_level(logging.WARNING):
        assert default_dns_upstream(conf) == ()
    assert "127.0.0.53" in caplog.text and "--dns-upstream" in caplog.text


def test_default_upstream_uses_the_rest(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text(RESOLV + "nameserver 10.0.0.2\n")
    assert default_dns_upstream(conf) == (IPv4Address("10.0.0.2"), IPv4Address("10.0.0.3"))


def test_missing_resolv_conf_gives_no_upstream(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        assert default_dns_upstream(tmp_path / "absent") == ()
    assert "--dns-upstream" in caplog.text


def test_resolv_conf_of_the_host_and_of_other_namespaces() -> None:
    assert resolv_conf_of(None) == Path("/etc/resolv.conf")
    assert resolv_conf_of("/run/netns/corral-no-such-ns") == Path("/etc/resolv.conf")
    assert resolv_conf_of("/proc/1/ns/net") == Path("/etc/resolv.conf")


def test_the_table_replaces_itself_and_masquerades_only_the_uplink() -> None:
    text = uplink_nat_ruleset("cu0123456789", IPv4Network("169.254.88.0/30"))
    assert text.startswith(f"add table ip {UPLINK_TABLE}\ndelete table ip {UPLINK_TABLE}\n")
    assert 'ip saddr 169.254.88.0/30 oifname != "cu0123456789" masquerade' in text
