"""The contract between the server and the in-sandbox agent. Imports nothing from corral.

The agent speaks the envd wire protocol (Connect RPC over HTTP/1.1) on a unix socket; this
package holds what both sides must agree on beyond that: the agent's start-up configuration
and the version it reports.
"""

from corral.protocol.agent_config import ENVD_VERSION, AgentConfig

__all__ = ["ENVD_VERSION", "AgentConfig"]
