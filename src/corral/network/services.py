"""`NetworkServices`: the resolver, the SNI/Host proxy and the connection log of a gateway.

Wiring for whoever owns the `Gateway` (the server): `start` after the gateway opened,
`forget` when a sandbox is removed, `close` before the gateway closes. The connection log
itself belongs to the caller (it answers queries with or without a gateway). Policies are read
from the gateway at every decision (`Gateway.policy`), so `PUT /sandboxes/{id}/network`
takes effect on the next query or connection.
"""

from __future__ import annotations

import logging
from ipaddress import IPv4Address

from corral.network.connection_log import ConnectionLog
from corral.network.dns_upstream import DnsUpstream
from corral.network.gateway import Gateway
from corral.network.pinned_names import PinnedNames
from corral.network.policy import address_allowed, domain_allowed
from corral.network.resolver import Resolver
from corral.network.ruleset import LOG_GROUP, RESOLVER_PORT, SNI_PROXY_PORT
from corral.network.sni_proxy import SniProxy

__all__ = ["NetworkServices"]

log = logging.getLogger("corral.network")


class NetworkServices:
    """See the module docstring."""

    def __init__(self, gateway: Gateway, connection_log: ConnectionLog) -> None:
        self._gateway = gateway
        self.connection_log = connection_log
        self.pinned = PinnedNames()
        address = str(gateway.gateway_address)
        self._upstream = DnsUpstream(
            [(str(a), 53) for a in gateway.operator.dns_upstream], gateway.socket_in_gateway
        )
        self.resolver = Resolver(
            gateway,
            address,
            self._name_allowed,
            self._upstream,
            self.pinned,
            self.connection_log,
            port=RESOLVER_PORT,
            pins_needed=self._pins_needed,
        )
        self.proxy = SniProxy(
            gateway,
            address,
            SNI_PROXY_PORT,
            self._name_allowed,
            self._address_allowed,
            self.pinned,
            self.connection_log,
        )
        self._started: list[Resolver | SniProxy] = []

    async def start(self) -> None:
        """Serve DNS and the proxy on the gateway address; read the kernel's logs."""
        if not self._upstream_configured():
            log.warning("no --dns-upstream: sandboxes' DNS queries will fail (SERVFAIL)")
        try:
            for service in (self.resolver, self.proxy):
                await service.start()
                self._started.append(service)
            self.connection_log.listen(self._gateway, LOG_GROUP)
        except BaseException:
            await self.close()
            raise

    def forget(self, sandbox_id: str) -> None:
        """The sandbox is gone: drop its pinned names (its log entries stay)."""
        self.pinned.forget(sandbox_id)

    async def close(self) -> None:
        self.connection_log.close()  # stops reading the kernel, writes what is pending
        for service in reversed(self._started):
            await service.close()
        self._started.clear()

    def _upstream_configured(self) -> bool:
        return bool(self._gateway.operator.dns_upstream)

    def _name_allowed(self, sandbox_id: str, name: str) -> bool:
        policy = self._gateway.policy(sandbox_id)
        return policy is not None and domain_allowed(policy, name)

    def _pins_needed(self, sandbox_id: str) -> bool:
        """An open sandbox reaches every address not denied: no pin would change that (and
        each pin costs an nftables transaction)."""
        policy = self._gateway.policy(sandbox_id)
        return policy is not None and not policy.allow_internet

    def _address_allowed(self, sandbox_id: str, address: str) -> bool:
        policy = self._gateway.policy(sandbox_id)
        return policy is not None and address_allowed(policy, IPv4Address(address))
