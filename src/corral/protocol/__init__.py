"""The contract between the server and the in-sandbox agent. Imports nothing from corral.

The agent speaks the envd wire protocol (Connect RPC over HTTP/1.1) on a unix socket; this
package holds what both sides must agree on beyond that: the agent's start-up configuration
and the version it reports. Its modules, for anything that speaks envd:

* `connect`: Connect error codes and their HTTP statuses, envelopes, end-of-stream;
* `protojson`: ProtoJSON scalars (base64 bytes, int64 strings, enum names);
* `process_messages`: the `process.Process` requests and stream events.
"""

from corral.protocol.agent_config import ENVD_VERSION, AgentConfig

__all__ = ["ENVD_VERSION", "AgentConfig"]
