"""The `corral serve` options of sandbox networking, folded into `OperatorNetworkSettings`."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from typing import Any, TypeVar

import click

from corral.network.policy import DEFAULT_ALWAYS_DENY, DEFAULT_SUBNET, OperatorNetworkSettings

__all__ = ["network_options"]

_T = TypeVar("_T")

_OPTIONS = (
    click.option(
        "--network",
        type=click.Choice(["on", "off"]),
        default="on",
        show_default=True,
        help="Sandbox networking through a gateway (namespaces runtime); off: only `lo`.",
    ),
    click.option(
        "--default-egress",
        type=click.Choice(["allow", "deny"]),
        default="allow",
        show_default=True,
        help="Internet access of a sandbox whose create request does not say "
        "(allow_internet_access).",
    ),
    click.option(
        "--always-deny",
        "always_deny",
        multiple=True,
        metavar="CIDR",
        help="A destination no sandbox may reach, whatever its policy (repeatable) "
        "[default: 169.254.0.0/16; the uplink, the host's addresses and the sandbox subnet "
        "are always denied].",
    ),
    click.option(
        "--dns-upstream",
        "dns_upstream",
        multiple=True,
        metavar="IP",
        help="Resolver the sandboxes' DNS queries are forwarded to (repeatable) "
        "[default: the non-loopback nameservers of the uplink namespace's resolv.conf].",
    ),
    click.option(
        "--uplink-netns",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Network namespace file the gateway's uplink goes to [default: the server's].",
    ),
    click.option(
        "--uplink-nat",
        is_flag=True,
        default=False,
        help="In the uplink namespace, set net.ipv4.ip_forward=1 and add the nftables table "
        "`ip corral_uplink` masquerading the gateway's traffic (both undone at stop), so "
        "sandboxes reach what the uplink reaches without host set-up.",
    ),
    click.option(
        "--sandbox-subnet",
        default=str(DEFAULT_SUBNET),
        show_default=True,
        help="IPv4 subnet of the sandboxes (its first address is the gateway's).",
    ),
)


def network_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options to a click command; it receives `network_settings` instead."""

    @functools.wraps(command)
    def wrapper(
        *args: Any,
        network: str,
        default_egress: str,
        always_deny: tuple[str, ...],
        dns_upstream: tuple[str, ...],
        uplink_netns: str | None,
        uplink_nat: bool,
        sandbox_subnet: str,
        **kwargs: Any,
    ) -> Any:
        settings = _settings(
            network, default_egress, always_deny, dns_upstream, uplink_netns, sandbox_subnet
        )
        settings = dataclasses.replace(settings, uplink_nat=uplink_nat)
        return command(*args, network_settings=settings, **kwargs)

    decorated: Callable[..., Any] = wrapper
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return decorated


def _parse(kind: Callable[[str], _T], text: str, hint: str) -> _T:
    try:
        return kind(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=hint) from exc


def _settings(
    network: str,
    default_egress: str,
    always_deny: tuple[str, ...],
    dns_upstream: tuple[str, ...],
    uplink_netns: str | None,
    sandbox_subnet: str,
) -> OperatorNetworkSettings:
    subnet = _parse(IPv4Network, sandbox_subnet, "--sandbox-subnet")
    if subnet.prefixlen > 24:
        raise click.BadParameter(
            f"{subnet} is too small (at most /24)", param_hint="--sandbox-subnet"
        )
    return OperatorNetworkSettings(
        enabled=network == "on",
        default_allow_internet=default_egress == "allow",
        always_deny=tuple(_parse(IPv4Network, c, "--always-deny") for c in always_deny)
        or DEFAULT_ALWAYS_DENY,
        dns_upstream=tuple(_parse(IPv4Address, a, "--dns-upstream") for a in dns_upstream),
        uplink_netns=uplink_netns,
        subnet=subnet,
    )
