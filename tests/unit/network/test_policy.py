"""Egress policy parsing, the operator's default and ceiling, and evaluation (pure)."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from corral.model import EgressPolicy, policy_from_json, policy_to_json
from corral.network.policy import (
    OperatorNetworkSettings,
    PolicyError,
    address_allowed,
    domain_allowed,
    effective,
    parse_create_network,
    parse_network_update,
    render_network,
)
from corral.network.ruleset import policy_elements

OPERATOR = OperatorNetworkSettings()
DENY_BY_DEFAULT = OperatorNetworkSettings(default_allow_internet=False)


def net(text: str) -> IPv4Network:
    return IPv4Network(text)


def ip(text: str) -> IPv4Address:
    return IPv4Address(text)


def test_create_body_keys() -> None:
    policy = parse_create_network(
        {
            "allow_internet_access": False,
            "network": {
                "allowOut": ["1.1.1.1", "10.0.0.0/8", "API.Example.com.", "*.pypi.org"],
                "denyOut": ["10.1.2.3/8", "evil.test"],
                "allowPublicTraffic": False,
            },
        }
    )
    assert policy == EgressPolicy(
        allow_internet=False,
        allow_cidrs=(net("1.1.1.1/32"), net("10.0.0.0/8")),
        deny_cidrs=(net("10.0.0.0/8"),),
        allow_domains=("api.example.com", "*.pypi.org"),
        deny_domains=("evil.test",),
    )


def test_absent_keys_leave_the_default_to_the_operator() -> None:
    assert parse_create_network({}) == EgressPolicy()
    assert parse_network_update({}) == EgressPolicy()


def test_update_body_is_flat() -> None:
    policy = parse_network_update({"denyOut": ["0.0.0.0/0"], "allow_internet_access": False})
    assert policy == EgressPolicy(allow_internet=False, deny_cidrs=(net("0.0.0.0/0"),))


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"network": []}, "'network'"),
        ({"allow_internet_access": "yes"}, "'allow_internet_access'"),
        ({"network": {"allowOut": "1.1.1.1"}}, "'network.allowOut'"),
        ({"network": {"allowOut": [1]}}, "'network.allowOut'"),
        ({"network": {"denyOut": ["not a name!"]}}, "'network.denyOut'"),
        ({"network": {"denyOut": ["10.0.0.300"]}}, "'network.denyOut'"),
        ({"network": {"allowOut": ["::1"]}}, "IPv4 only"),
        ({"network": {"allowOut": ["a..b"]}}, "'network.allowOut'"),
    ],
)
def test_malformed_bodies_name_the_key(body: dict[str, object], key: str) -> None:
    with pytest.raises(PolicyError, match=key.replace(".", r"\.")):
        parse_create_network(body)


def test_a_name_may_start_with_a_digit() -> None:
    assert parse_create_network({"network": {"allowOut": ["1password.com"]}}).allow_domains == (
        "1password.com",
    )


def test_open_mode_needs_internet_and_no_allowlist_and_no_catch_all() -> None:
    assert effective(EgressPolicy(), OPERATOR).allow_internet is True
    assert effective(EgressPolicy(), DENY_BY_DEFAULT).allow_internet is False
    assert effective(EgressPolicy(allow_internet=True), DENY_BY_DEFAULT).allow_internet is True
    assert effective(EgressPolicy(allow_internet=False), OPERATOR).allow_internet is False
    allowlist = EgressPolicy(allow_cidrs=(net("1.1.1.1/32"),))
    assert effective(allowlist, OPERATOR).allow_internet is False
    domains = EgressPolicy(allow_domains=("a.test",))
    assert effective(domains, OPERATOR).allow_internet is False
    catch_all = EgressPolicy(allow_internet=True, deny_cidrs=(net("0.0.0.0/0"),))
    assert effective(catch_all, OPERATOR).allow_internet is False


def test_operator_denies_are_added_and_the_catch_all_folded() -> None:
    policy = EgressPolicy(deny_cidrs=(net("0.0.0.0/0"), net("10.0.0.0/8")))
    assert effective(policy, OPERATOR).deny_cidrs == (net("10.0.0.0/8"), net("169.254.0.0/16"))


def test_address_rules_deny_wins() -> None:
    policy = effective(
        EgressPolicy(
            allow_cidrs=(net("10.0.0.0/8"), net("169.254.169.254/32")),
            deny_cidrs=(net("10.1.0.0/16"),),
        ),
        OPERATOR,
    )
    assert address_allowed(policy, ip("10.2.3.4"))
    assert not address_allowed(policy, ip("10.1.3.4"))
    assert not address_allowed(policy, ip("169.254.169.254"))  # the operator's ceiling
    assert not address_allowed(policy, ip("8.8.8.8"))  # allowlist mode
    open_policy = effective(EgressPolicy(deny_cidrs=(net("8.8.0.0/16"),)), OPERATOR)
    assert address_allowed(open_policy, ip("1.1.1.1"))
    assert not address_allowed(open_policy, ip("8.8.8.8"))


def test_domain_rules() -> None:
    policy = effective(
        EgressPolicy(
            allow_domains=("*.example.com", "pypi.org"), deny_domains=("bad.example.com",)
        ),
        OPERATOR,
    )
    assert domain_allowed(policy, "api.example.com")
    assert domain_allowed(policy, "A.B.Example.COM.")
    assert not domain_allowed(policy, "example.com")  # the wildcard is below the name only
    assert not domain_allowed(policy, "bad.example.com")
    assert domain_allowed(policy, "pypi.org")
    assert not domain_allowed(policy, "files.pypi.org")
    assert not domain_allowed(policy, "evil.test")
    open_policy = effective(EgressPolicy(deny_domains=("*.evil.test",)), OPERATOR)
    assert domain_allowed(open_policy, "anything.test")
    assert not domain_allowed(open_policy, "x.evil.test")
    closed = effective(EgressPolicy(allow_internet=False), OPERATOR)
    assert not domain_allowed(closed, "anything.test")


def test_rendering_for_get_info() -> None:
    policy = parse_network_update({"allowOut": ["1.1.1.1", "10.0.0.0/8", "a.test"]})
    assert render_network(policy, DENY_BY_DEFAULT) == {
        "allowInternetAccess": False,
        "network": {"allowOut": ["1.1.1.1", "10.0.0.0/8", "a.test"], "denyOut": []},
    }


def test_store_round_trip() -> None:
    policy = parse_create_network(
        {"allow_internet_access": True, "network": {"allowOut": ["1.1.1.1", "*.a.test"]}}
    )
    assert policy_from_json(policy_to_json(policy)) == policy
    assert policy_from_json(None) == EgressPolicy()


def test_nftables_elements_do_not_overlap() -> None:
    policy = effective(
        EgressPolicy(
            allow_cidrs=(net("10.0.0.0/8"), net("10.1.0.0/16"), net("11.0.0.0/8")),
            deny_cidrs=(net("169.254.169.254/32"),),
        ),
        OPERATOR,
    )
    elements = policy_elements(ip("10.88.0.2"), policy)
    assert elements["allow"] == ["10.88.0.2 . 10.0.0.0/7"]
    assert elements["deny"] == ["10.88.0.2 . 169.254.0.0/16"]
    assert "open" not in elements
