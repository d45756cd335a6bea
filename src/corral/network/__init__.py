"""Sandbox networking: the gateway network namespace, nftables egress policy, the sandboxes'
resolver, the SNI/Host proxy and the connection log. Imports `model` and `store`; never
imported by the agent."""

__all__: list[str] = []
